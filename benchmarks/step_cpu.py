"""CPU seconds per training step of the default study's All-CNN-C and MobileNetV2, on one
thread: Keras on TensorFlow (its graph: oneDNN/Eigen kernels), Keras on TensorFlow with
`jit_compile=True` (the step compiled by XLA, as on JAX), and Keras on JAX (XLA). TensorFlow's
arm runs as the jobs do (op determinism on; Keras's "auto" leaves XLA off on a CPU).

    python benchmarks/step_cpu.py [--steps 30] [--repeats 2]

Each arm is a fresh process: the model as the default study builds it (config.yaml), compiled as
the training jobs compile it, `fit` on one batch of random images repeated (no input pipeline,
no callbacks), one warm-up epoch, then process CPU seconds (every thread) over `--steps` steps.
CPU time, not wall time: all arms run at once, on a host shared with other work, where wall time
measures the load; CPU time measures each step's work. If TensorFlow with XLA costs what JAX
costs, the JAX gap on the CPU is XLA's CPU code for these models, not JAX or the job around it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ARMS = ("tf", "tf-xla", "jax")


def child(model_name: str, arm: str, steps: int) -> None:
    if arm == "jax":
        from cnnablate.training.backend import prepare_jax

        prepare_jax(1, log=lambda m: None)
    else:
        from cnnablate.training.train import configure_threads

        configure_threads(1)
        os.environ["KERAS_BACKEND"] = "tensorflow"
    import keras
    import numpy as np

    from benchmarks.fixed_cost import default_run
    from cnnablate.zoo.models import build_model

    if arm != "jax":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        if arm == "tf":  # as the jobs run (XLA's own determinism is separate)
            tf.config.experimental.enable_op_determinism()
    run = default_run(model_name, 1)
    size, bs = int(run["image_size"]), int(run["train"]["batch_size"])
    keras.utils.set_random_seed(0)
    model = build_model(run["model"]["name"], (size, size, 3), 10, activation=run["activation"],
                        norm=run["norm"], init=run["init"],
                        **{k: v for k, v in run["model"].items() if k != "name"})
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"], jit_compile=(arm == "tf-xla") if arm != "jax" else "auto")
    rng = np.random.default_rng(0)
    x = np.repeat(rng.uniform(-1, 1, (1, size, size, 3)).astype("float32"), bs * steps, axis=0)
    y = rng.integers(0, 10, bs * steps)
    model.fit(x[: bs * 3], y[: bs * 3], batch_size=bs, epochs=1, shuffle=False, verbose=0)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    model.fit(x, y, batch_size=bs, epochs=1, shuffle=False, verbose=0)
    print(json.dumps({"cpu_per_step": (time.process_time() - cpu0) / steps,
                      "wall_per_step": (time.perf_counter() - wall0) / steps}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="all_cnn_c,mobilenet_v2")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]))
        return

    from benchmarks._common import child_env, median, print_machine, table

    print_machine("CPU seconds per training step, one thread, TF / TF+XLA / JAX")
    env = {k: v for k, v in child_env().items() if not k.startswith(("XLA_", "KERAS_"))}
    jobs = [(m, a, r) for r in range(args.repeats) for m in args.models.split(",") for a in ARMS]
    procs = [(job, subprocess.Popen([sys.executable, __file__, "--child", job[0], job[1],
                                     str(args.steps)], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True, env=env))
             for job in jobs]  # all at once: CPU time per process does not depend on the load
    results: dict[tuple[str, str], list[float]] = {}
    for (model, arm, rep), proc in procs:
        out, err = proc.communicate()
        if proc.returncode != 0:
            sys.exit(f"{model} {arm} failed:\n{err[-3000:]}")
        got = json.loads(out.strip().splitlines()[-1])
        results.setdefault((model, arm), []).append(got["cpu_per_step"])
        print(f"  {rep + 1} {model:13s} {arm:7s} {got['cpu_per_step'] * 1000:.0f} ms CPU/step",
              flush=True)
    rows = []
    for model in args.models.split(","):
        tf_ms = median(results[model, "tf"]) * 1000
        for arm in ARMS:
            ms = median(results[model, arm]) * 1000
            rows.append([model, arm, f"{ms:.0f}", f"{ms / tf_ms:.2f}"])
    print()
    print(table(["model", "arm", "CPU ms per step (median)", "/ tf"], rows))


if __name__ == "__main__":
    main()
