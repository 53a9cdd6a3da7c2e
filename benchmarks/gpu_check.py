"""One command to check a GPU host end to end and measure it (no network; ~5-8 min on one GPU).

    python benchmarks/gpu_check.py                      # on a GPU host (make gpu-env first)
    python benchmarks/gpu_check.py --cpu                # the same checks, tiny, on a CPU (CI)
    python benchmarks/gpu_check.py --backend jax        # Keras's JAX backend, no TensorFlow
                                                        # (benchmarks/gpu_check_jax.py)

1. What TensorFlow sees: version, CUDA build, GPUs, CUDA_VISIBLE_DEVICES, nvidia-smi.
2. Every study file in smoke mode through the real workflow, with `resources: {gpu: 1}` (so a
   run that cannot see the GPU fails fast); where a study's real data is absent, smoke mode
   trains on SYNTHETIC stand-ins in the real format (cnnablate/data/synthetic.py), offline.
3. Training images/s, MobileNetV2 at 224 px (batch 64) and All-CNN-C at 32 px (batch 128):
   - pipeline: the training input pipeline (cnnablate.training.pipeline.Split) from uint8 images
     (256 px natives for MobileNetV2, as a real dataset is resized; 32 px for All-CNN-C),
   - data on device: the same batches made on the device inside the step (what training does
     when `train.data_on_device` places the splits there: cnnablate.training.device.DeviceTrainer,
     fed only indices; the split's uint8 pixels are gathered, resized, scaled and augmented
     there),
   - bound: the same model and the same compiled train step on synthetic tensors already on
     the device (what the step costs with no input work at all),
   each in float32 and in mixed precision (mixed_float16; mixed_bfloat16 with --cpu), and for
   All-CNN-C 1 run against 4 runs packed on the GPU (4 processes, runs_per_gpu 4: each with its
   memory cap, started together; the packed figure is their summed images/s).
Writes the results as a Markdown table (--out; default results/gpu_check.md) and prints it.
Every measurement runs in a worker process of its own (a dtype policy and a GPU memory set-up
are per process); the parent imports no TensorFlow.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, cpu_model, gpus, start_together, table  # noqa: E402

# (model, width, image size, native size of the stored images, batch)
FULL = [("mobilenet_v2", 1.0, 224, 256, 64), ("all_cnn_c", 1.0, 32, 32, 128)]
TINY = [("mobilenet_v2", 0.35, 32, 40, 16), ("all_cnn_c", 0.25, 16, 16, 16)]
PACKED = 4


# ---------------------------------------------------------------- worker (imports TensorFlow)


def worker(spec: dict) -> dict:
    """Train `spec["steps"]` timed steps per arm; images/s per arm."""
    from cnnablate.training.gpu import ENV_RUNS_PER_GPU
    from cnnablate.training.train import configure_threads

    configure_threads(int(spec.get("threads", 1)))
    os.environ[ENV_RUNS_PER_GPU] = str(spec.get("runs_per_gpu", 1))
    import keras
    import numpy as np
    import tensorflow as tf

    from cnnablate.training.device import make_feed
    from cnnablate.training.gpu import configure_tensorflow
    from cnnablate.training.pipeline import Split
    from cnnablate.zoo.models import build_model

    configure_tensorflow(tf, log=lambda m: print(m, file=sys.stderr))
    keras.mixed_precision.set_dtype_policy(spec["precision"])
    keras.utils.set_random_seed(0)
    size, native, bs, steps = spec["size"], spec["native"], spec["batch"], spec["steps"]
    model = build_model(spec["model"], (size, size, 3), 10, width=spec["width"])
    model.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=False,  # every arm's step alike (the data-on-device step would use XLA)
    )
    model_step = tf.function(model.train_step)  # the step fit() runs, without its bookkeeping
    rng = np.random.default_rng(0)
    results = {}
    for arm in spec["arms"]:
        step = model_step
        if arm in ("pipeline", "device"):
            n = max(bs * 8, 512)
            images = rng.integers(0, 256, (n, native, native, 3), dtype=np.uint8)
            split = Split.load(images, rng.integers(0, 10, n), image_size=size)
            epochs = -(-(steps + 5) * bs // n) + 1
            if arm == "pipeline":
                batches = iter(split.train_dataset(bs, 0, 0, epochs, augment="flip_crop"))
            else:
                feed = make_feed(model, {"train": split}, True, "flip_crop")
                batches = iter(feed.train(bs, 0, 0, epochs, augment="flip_crop"))
                step = tf.function(feed.model.train_step)  # indices in, the batch made inside
        else:
            with tf.device("/GPU:0" if tf.config.list_logical_devices("GPU") else "/CPU:0"):
                x = tf.random.uniform((bs, size, size, 3), -1.0, 1.0)
                y = tf.random.uniform((bs,), 0, 10, dtype=tf.int64)
            batches = itertools.repeat((x, y))
        for _ in range(3):  # trace, warm up
            logs = step(next(batches))
        float(logs["loss"])
        start_together(spec)  # packed runs start their timed steps together
        t0 = time.perf_counter()
        for _ in range(steps):
            logs = step(next(batches))
        float(logs["loss"])  # waits for the device
        results[arm] = steps * bs / (time.perf_counter() - t0)
    return results


def run_worker(spec: dict, timeout: float = 900) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(spec)],
        capture_output=True, text=True, timeout=timeout, cwd=ROOT,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"worker {spec} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def packed_throughput(spec: dict, k: int) -> float:
    """Summed images/s of k workers sharing the GPU, timed steps started together."""
    barrier = Path(tempfile.mkdtemp(prefix="gpu_check_barrier_"))
    spec = {**spec, "arms": ["pipeline"], "runs_per_gpu": k, "barrier": str(barrier),
            "parties": k}
    procs = [
        subprocess.Popen([sys.executable, __file__, "--worker", json.dumps(spec)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        for _ in range(k)
    ]
    total = 0.0
    for proc in procs:
        out, err = proc.communicate(timeout=900)
        if proc.returncode != 0:
            raise RuntimeError(f"packed worker failed:\n{err[-3000:]}")
        total += json.loads(out.strip().splitlines()[-1])["pipeline"]
    shutil.rmtree(barrier, ignore_errors=True)
    return total


# ---------------------------------------------------------------- checks (no TensorFlow here)


def what_tensorflow_sees() -> str:
    code = (
        "import json, tensorflow as tf\n"
        "info = tf.sysconfig.get_build_info()\n"
        "gpus = tf.config.list_physical_devices('GPU')\n"
        "print(json.dumps({'tensorflow': tf.__version__, 'built_with_cuda': "
        "tf.test.is_built_with_cuda(), 'cuda': info.get('cuda_version'), 'cudnn': "
        "info.get('cudnn_version'), 'gpus': [tf.config.experimental.get_device_details(g)"
        ".get('device_name', g.name) for g in gpus]}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    seen = proc.stdout.strip().splitlines()[-1] if proc.returncode == 0 else proc.stderr[-500:]
    smi = ", ".join(gpus()) or "none (no nvidia-smi or no GPU)"
    return (f"TensorFlow: {seen}\nCUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r}"
            f"\nnvidia-smi: {smi}\nCPU: {cpu_model()}")


def smoke_studies(files: list[Path], gpu: int, cores: int) -> list[list[str]]:
    import yaml

    rows = []
    for path in files:
        scratch = Path(tempfile.mkdtemp(prefix="gpu_check_"))
        try:
            config = yaml.safe_load(path.read_text())
            # smoke mode trains on SYNTHETIC stand-ins where the real data is absent (offline)
            note = "smoke (SYNTHETIC data where the real data is absent)"
            config["resources"] = {**(config.get("resources") or {}), "gpu": gpu}
            (scratch / "study.yaml").write_text(yaml.safe_dump(config))
            t0 = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"),
                 "--directory", str(scratch), "--configfile", str(scratch / "study.yaml"),
                 "--config", "smoke=true", "--cores", str(cores), "--resources", f"gpu={gpu}"],
                capture_output=True, text=True, cwd=scratch, timeout=1800,
            )
            seconds = f"{time.perf_counter() - t0:.0f}"
            status = "ok" if proc.returncode == 0 else f"FAILED: {proc.stderr.strip()[-300:]}"
            rows.append([path.name, status, note, seconds])
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", action="store_true", help="tiny sizes on the CPU (for CI)")
    parser.add_argument("--studies", nargs="*", help="study files to smoke (default: studies/*)")
    parser.add_argument("--no-studies", action="store_true", help="skip the study smoke runs")
    parser.add_argument("--no-packed", action="store_true", help="skip 1-vs-4 packed runs")
    parser.add_argument("--steps", type=int, help="timed steps per measurement")
    parser.add_argument("--models", nargs="*", help="only these of mobilenet_v2, all_cnn_c (nin)")
    parser.add_argument("--out", type=Path, help="default: results/gpu_check[_jax].md")
    parser.add_argument("--backend", choices=("tensorflow", "jax"), default="tensorflow",
                        help="jax: benchmarks/gpu_check_jax.py (models: also nin)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    suffix = "_jax" if args.backend == "jax" else ""
    args.out = args.out or ROOT / "results" / f"gpu_check{suffix}.md"
    if args.backend == "jax":  # no TensorFlow, no Snakemake: a JAX-only host runs this
        import gpu_check_jax

        sys.exit(gpu_check_jax.main(args))

    started = time.time()
    seen = what_tensorflow_sees()
    print(seen, flush=True)
    cases = TINY if args.cpu else FULL
    if args.models:
        cases = [case for case in cases if case[0] in args.models]
    steps = args.steps or (5 if args.cpu else 50)
    mixed = "mixed_bfloat16" if args.cpu else "mixed_float16"
    rows = []
    for model, width, size, native, bs in cases:
        for precision in ("float32", mixed):
            spec = {"model": model, "width": width, "size": size, "native": native,
                    "batch": bs, "precision": precision, "steps": steps,
                    "arms": ["pipeline", "device", "bound"],
                    "threads": os.cpu_count() if args.cpu else 4}
            got = run_worker(spec)
            ratio = got["pipeline"] / got["bound"]
            rows.append([f"{model} w{width}", size, bs, precision, f"{got['pipeline']:.0f}",
                         f"{got['device']:.0f}", f"{got['bound']:.0f}", f"{ratio:.2f}",
                         f"{got['device'] / got['bound']:.2f}"])
            print(rows[-1], flush=True)
    packed_rows = []
    if not args.no_packed:
        model, width, size, native, bs = (TINY if args.cpu else FULL)[1]
        spec = {"model": model, "width": width, "size": size, "native": native, "batch": bs,
                "precision": "float32", "steps": steps * 2, "threads": 1 if args.cpu else 2}
        one = packed_throughput(spec, 1)
        four = packed_throughput(spec, PACKED)
        packed_rows.append([f"{model} w{width}", size, bs, f"{one:.0f}", f"{four:.0f}",
                            f"{four / one:.2f}"])
        print(packed_rows[-1], flush=True)
    study_rows = []
    if not args.no_studies:
        files = [Path(f) for f in args.studies] if args.studies else sorted(
            (ROOT / "studies").glob("*.yaml"))
        study_rows = smoke_studies(files, 0 if args.cpu else 1, 4)
        for row in study_rows:
            print(row, flush=True)

    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = [f"## gpu_check ({'CPU mode' if args.cpu else 'GPU'}), {when}", "",
            "```", seen, "```", "",
            f"Training images/s, {steps} timed steps after 3 warm-up steps:", "",
            table(["model", "px", "batch", "precision", "pipeline", "data on device",
                   "bound", "pipeline / bound", "on device / bound"], rows)]
    if packed_rows:
        text += ["", f"Runs packed on one device ({PACKED} processes, runs_per_gpu {PACKED}, "
                 "pipeline arm, float32; summed images/s):", "",
                 table(["model", "px", "batch", "1 run", f"{PACKED} runs", "ratio"], packed_rows)]
    if study_rows:
        text += ["", "Study files in smoke mode:", "",
                 table(["study", "result", "data", "s"], study_rows)]
    text += ["", f"Total {time.time() - started:.0f} s: `python benchmarks/gpu_check.py"
             f"{' --cpu' if args.cpu else ''}`"]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(text) + "\n")
    print("\n".join(text))
    failed = [r for r in study_rows if r[1].startswith("FAILED")]
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
