"""Training throughput of a zoo model on any Keras backend, with its FLOPs, for GPU hosts.

    python benchmarks/train_throughput.py --model mobilenet_v2 --image-size 224 --batch-size 64 \\
        --steps 50 --precision float32            # then mixed_float16 / mixed_bfloat16
    KERAS_BACKEND=jax python benchmarks/train_throughput.py ...   # or torch

GPU hosts may have JAX or PyTorch and no TensorFlow, so this script takes numpy inputs and
imports neither tensorflow (unless it is the Keras backend) nor cnnablate.training.train: only
`cnnablate.zoo.models` (backend-agnostic). Random images and labels; the model is compiled as the
training jobs compile it (SGD with momentum, sparse categorical cross-entropy from logits,
accuracy) and trained with `model.fit` on numpy arrays held in host memory (so host-to-device
copies are included, as in real training). One warm-up pass over the pool of batches (tracing or
compilation), then `--repeats` timed `fit`s of `--steps` steps; images/s is the median.

FLOPs per image are counted analytically from the layers: 2 x multiply-accumulates of every
Conv2D, DepthwiseConv2D, SeparableConv2D and Dense, forward pass (batch norm, activations,
additions and pooling are elementwise and left out: a few percent). A training step costs about
3 x the forward pass (the backward pass computes gradients for both activations and weights),
so achieved FLOP/s = images/s x 3 x forward FLOPs/image; set it against the device's peak
(`--peak-tflops` prints the utilisation).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def layer_macs(layer) -> int:
    """Multiply-accumulates of one forward pass of `layer` for one example (0: not counted)."""
    import keras

    def shape(t):
        return tuple(int(d) for d in t.shape[1:])

    if isinstance(layer, keras.layers.DepthwiseConv2D):
        h, w, c_out = shape(layer.output)
        kh, kw = layer.kernel_size
        return h * w * c_out * kh * kw
    if isinstance(layer, keras.layers.SeparableConv2D):
        h, w, c_out = shape(layer.output)
        c_in = shape(layer.input)[-1]
        kh, kw = layer.kernel_size
        mid = c_in * layer.depth_multiplier
        return h * w * (mid * kh * kw + mid * c_out)
    if isinstance(layer, keras.layers.Conv2D):
        h, w, c_out = shape(layer.output)
        c_in = shape(layer.input)[-1]
        kh, kw = layer.kernel_size
        return h * w * c_out * kh * kw * c_in // max(1, getattr(layer, "groups", 1))
    if isinstance(layer, keras.layers.Dense):
        in_shape = shape(layer.input)
        return math.prod(in_shape[:-1]) * in_shape[-1] * layer.units
    if hasattr(layer, "layers"):  # a nested model
        return sum(layer_macs(inner) for inner in layer.layers)
    return 0


def forward_flops(model) -> int:
    return 2 * sum(layer_macs(layer) for layer in model.layers)


def device_names() -> list[str]:
    import keras

    backend = keras.backend.backend()
    try:
        if backend == "jax":
            import jax

            return [f"{d.platform}:{getattr(d, 'device_kind', d)}" for d in jax.devices()]
        if backend == "torch":
            import torch

            if torch.cuda.is_available():
                return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
            return ["cpu"]
        if backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            return [tf.config.experimental.get_device_details(g).get("device_name", g.name)
                    for g in gpus] or ["cpu"]
    except Exception as exc:  # noqa: BLE001 - a report line, never a failure
        return [f"unknown ({exc})"]
    return ["cpu"]


def cpu_model() -> str:
    from cnnablate.training.provenance import cpu_model as model  # plain Python, no TensorFlow

    return model()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mobilenet_v2",
                        choices=["mobilenet_v2", "all_cnn_c", "nin"])
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=50, help="timed steps per repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pool", type=int, default=8,
                        help="distinct batches held in host memory (reused across the steps)")
    parser.add_argument("--precision", default="float32",
                        choices=["float32", "mixed_float16", "mixed_bfloat16"])
    parser.add_argument("--jit-compile", default="auto", choices=["auto", "true", "false"])
    parser.add_argument("--peak-tflops", type=float,
                        help="the device's peak TFLOP/s at this precision, for utilisation")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import keras
    import numpy as np

    from cnnablate.zoo.models import build_model

    keras.utils.set_random_seed(args.seed)
    if args.precision != "float32":
        keras.mixed_precision.set_dtype_policy(args.precision)
    size, bs = args.image_size, args.batch_size
    model = build_model(args.model, (size, size, 3), args.classes, activation="relu6"
                        if args.model == "mobilenet_v2" else "relu", width=args.width)
    jit = {"auto": "auto", "true": True, "false": False}[args.jit_compile]
    model.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=jit,
    )
    flops = forward_flops(model)

    pool = max(1, min(args.pool, args.steps))
    rng = np.random.default_rng(args.seed)
    x = rng.uniform(-1.0, 1.0, size=(pool * bs, size, size, 3)).astype(np.float32)
    y = rng.integers(0, args.classes, size=(pool * bs,)).astype(np.int64)
    epochs = math.ceil(args.steps / pool)
    steps = epochs * pool

    print("# training throughput")
    print(f"command: {' '.join(['python', *sys.argv])}")
    print(f"date: {time.strftime('%Y-%m-%dT%H:%M:%S%z')}; host: {os.cpu_count()} cores, CPU "
          f"{cpu_model()!r}; Keras {keras.__version__}, backend {keras.backend.backend()}; "
          f"devices: {', '.join(device_names())}")
    print(f"{args.model} width {args.width} at {size}x{size}, batch {bs}, {args.precision}, "
          f"jit_compile={model.jit_compile}, {model.count_params():,} parameters")
    print(f"forward: {flops / 1e9:.3f} GFLOP/image (2 x MACs of conv/depthwise/dense); "
          f"training ~3 x forward = {3 * flops / 1e9:.3f} GFLOP/image", flush=True)

    t0 = time.perf_counter()
    model.fit(x, y, batch_size=bs, epochs=1, shuffle=False, verbose=0)
    warm = time.perf_counter() - t0
    print(f"warm-up ({pool} steps, tracing/compilation included): {warm:.1f} s", flush=True)
    rates = []
    for rep in range(args.repeats):
        t0 = time.perf_counter()
        model.fit(x, y, batch_size=bs, epochs=epochs, shuffle=False, verbose=0)
        seconds = time.perf_counter() - t0
        rates.append(steps * bs / seconds)
        print(f"  repeat {rep + 1}: {steps} steps in {seconds:.2f} s = {rates[-1]:.1f} images/s",
              flush=True)
    ips = statistics.median(rates)
    achieved = ips * 3 * flops / 1e12
    print(f"\n| model | size | batch | precision | backend | images/s (median of {args.repeats}) "
          f"| fwd GFLOP/img | achieved TFLOP/s (train ~3x fwd) |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {args.model} w{args.width} | {size} | {bs} | {args.precision} | "
          f"{keras.backend.backend()} | {ips:.1f} | {flops / 1e9:.3f} | {achieved:.3f} |")
    if args.peak_tflops:
        print(f"utilisation: {100 * achieved / args.peak_tflops:.1f}% of {args.peak_tflops} "
              f"TFLOP/s")


if __name__ == "__main__":
    main()
