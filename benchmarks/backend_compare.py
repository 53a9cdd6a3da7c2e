"""Keras on JAX against Keras on TensorFlow, on the CPU: epoch time of the default study's runs.

    python benchmarks/backend_compare.py [--repeats 3] [--models all_cnn_c,mobilenet_v2]
                                         [--epochs 4] [--arms ...] [--out results/backend.json]

Each measurement is a fresh process running `cnnablate.training.train.train_run` (the training
job itself) on the default study's run of that model (config.yaml, seed 0, `--epochs` epochs,
one thread as the default jobs), on one backend. The arms, run alternately within each repeat so
that the host's drift hits all alike:

- `tf`: TensorFlow as a job runs it (op determinism on);
- `tf-nondet`: the same without `tf.config.experimental.enable_op_determinism`;
- `jax`: Keras's JAX backend as a job runs it (`--xla_gpu_deterministic_ops=true`, a no-op on
  the CPU; batches made ahead by `numpy_feed.FEED_WORKERS` threads), compilation cache warm;
- `jax-nondet`: the same with `XLA_FLAGS=--xla_gpu_deterministic_ops=false`;
- `jax-w1`: the same with the numpy feed making each batch between steps (FEED_WORKERS = 1,
  as before issue 32): what the feed's overlap of host work with the step is worth;
- `jax-cold`: `jax` with an empty compilation cache (a fresh folder each time): the first
  epoch and the process's wall time without the persistent compilation cache.

With `--cache DIR` the warm arms use that cache, as filled by an earlier run (the untimed
warm-up jobs are skipped). Per arm: the steady epoch (median of epochs 2..), the first epoch,
and the job's wall time (process start to exit). Prints a Markdown table of medians over the
repeats and the JAX/TF ratios; writes every measurement to --out.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ARMS = ("tf", "tf-nondet", "jax", "jax-nondet", "jax-w1", "jax-cold")


def child(run_file: Path, data_dir: Path, out_dir: Path, arm: str) -> None:
    from cnnablate.training import train

    run = json.loads(run_file.read_text())
    if arm.startswith("tf"):
        train.configure_threads(1)
        with train._job_imports():
            import tensorflow as tf
        if arm == "tf-nondet":
            tf.config.experimental.enable_op_determinism = lambda: None
    elif arm == "jax-w1":  # once Keras is imported on JAX, just before the feed is made
        make_feed = train.input_feed

        def input_feed(*args, **kwargs):
            from cnnablate.training import numpy_feed

            numpy_feed.FEED_WORKERS = 1
            return make_feed(*args, **kwargs)

        train.input_feed = input_feed
    # CPU seconds of the whole process per epoch (every thread: the step's, the feed's), next
    # to the wall seconds history.csv records: on a host shared with other work, wall time
    # measures the load as much as the backend; CPU time measures the work each epoch takes.
    cpu: list[float] = []
    watch = train.monitor.watch_callbacks

    def watch_with_cpu_clock(keras, *args, **kwargs):
        class CPUClock(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.t0 = time.process_time()

            def on_epoch_end(self, epoch, logs=None):
                cpu.append(time.process_time() - self.t0)

        return [CPUClock(), *watch(keras, *args, **kwargs)]

    train.monitor.watch_callbacks = watch_with_cpu_clock
    t0 = time.perf_counter()
    train.train_run(run, data_dir, train.RunPaths.in_dir(out_dir), threads=1,
                    log=lambda message: None)
    print(json.dumps({"train_run_s": time.perf_counter() - t0, "epoch_cpu_s": cpu}))


def measure(model: str, arm: str, tmp: Path, data: Path, run_file: Path, rep: int,
            warm: Path) -> dict:
    from benchmarks._common import child_env

    out_dir = tmp / f"run-{model}-{arm}-{rep}"
    env = child_env()
    for name in [k for k in env if k.startswith(("XLA_", "JAX_", "KERAS_"))]:
        env.pop(name)
    env["JAX_COMPILATION_CACHE_DIR"] = str(
        tmp / f"cache-cold-{model}-{rep}" if arm == "jax-cold" else warm)
    if arm == "jax-nondet":
        env["XLA_FLAGS"] = "--xla_gpu_deterministic_ops=false"
    cmd = [sys.executable, __file__, "--child", str(run_file), str(data), str(out_dir), arm]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{model} {arm} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    with open(out_dir / "history.csv") as fh:
        seconds = [float(line.split(",")[-1]) for line in fh.read().splitlines()[1:]]
    cpu = json.loads(proc.stdout.strip().splitlines()[-1])["epoch_cpu_s"]
    return {"model": model, "arm": arm, "repeat": rep, "wall_s": wall,
            "first_epoch_s": seconds[0], "steady_epoch_s": statistics.median(seconds[1:]),
            "steady_epoch_cpu_s": statistics.median(cpu[1:]), "first_epoch_cpu_s": cpu[0],
            "epoch_s": seconds, "epoch_cpu_s": cpu, "load1": os.getloadavg()[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", default="all_cnn_c,mobilenet_v2")
    parser.add_argument("--epochs", type=int, default=4, help="epochs per job (>= 2)")
    parser.add_argument("--arms", default=",".join(ARMS))
    parser.add_argument("--out", type=Path, default=Path("results/backend_compare.json"))
    parser.add_argument("--cache", type=Path,
                        help="the warm arms' compilation cache (default: a fresh one, filled "
                             "by untimed JAX jobs first)")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_file, data_dir, out_dir, arm = args.child
        child(Path(run_file), Path(data_dir), Path(out_dir), arm)
        return

    from benchmarks._common import median, prepare_digits, print_machine, table
    from benchmarks.fixed_cost import default_run

    print_machine("JAX against TensorFlow on the CPU, per epoch")
    models, arms = args.models.split(","), args.arms.split(",")
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="cnnablate-backends-") as tmp:
        tmp = Path(tmp)
        data = prepare_digits(tmp / "digits")
        files = {}
        for model in models:
            for backend in ("tensorflow", "jax"):
                run = default_run(model, max(2, args.epochs))
                run["train"]["backend"] = backend
                files[model, backend] = tmp / f"{model}-{backend}.json"
                files[model, backend].write_text(json.dumps(run))
            print(f"{model}: {run['study']}/{run['variant']} at {run['image_size']} px, width "
                  f"{run['model']['width']}, batch {run['train']['batch_size']}, "
                  f"{run['train']['epochs']} epochs, 1 thread", flush=True)
        warm = args.cache or tmp / "cache-warm"
        for model in models:  # the warm arms start warm: untimed JAX jobs first (the XLA
            for arm in sorted({"jax", "jax-nondet"} & set(arms)):  # flags are in the key)
                if args.cache is None:
                    measure(model, arm, tmp, data, files[model, "jax"], -1, warm)
        for rep in range(args.repeats):
            for model in models:
                order = arms if rep % 2 == 0 else arms[::-1]  # alternate the order too
                for arm in order:
                    backend = "tensorflow" if arm.startswith("tf") else "jax"
                    row = measure(model, arm, tmp, data, files[model, backend], rep, warm)
                    rows.append(row)
                    print(f"  {rep + 1} {model:13s} {arm:10s} steady {row['steady_epoch_s']:.2f} s"
                          f" (CPU {row['steady_epoch_cpu_s']:.2f} s)  first "
                          f"{row['first_epoch_s']:.2f} s (CPU {row['first_epoch_cpu_s']:.2f} s)"
                          f"  wall {row['wall_s']:.1f} s  (load {row['load1']:.1f})", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=1))

    def med(model: str, arm: str, key: str) -> float:
        return median([r[key] for r in rows if r["model"] == model and r["arm"] == arm])

    print(f"\nmedian of {args.repeats} fresh processes per arm, seconds")
    print(table(["model", "arm", "steady epoch", "its CPU", "first epoch", "its CPU", "job wall"],
                [[m, a, f"{med(m, a, 'steady_epoch_s'):.2f}",
                  f"{med(m, a, 'steady_epoch_cpu_s'):.2f}", f"{med(m, a, 'first_epoch_s'):.2f}",
                  f"{med(m, a, 'first_epoch_cpu_s'):.2f}", f"{med(m, a, 'wall_s'):.1f}"]
                 for m in models for a in arms]))
    jax_arm = next((a for a in ("jax", "jax-nondet") if a in arms), None)
    if "tf" in arms and jax_arm:
        print()
        for m in models:
            for key in ("steady_epoch_s", "steady_epoch_cpu_s"):
                ratios = [j[key] / t[key] for j, t in zip(
                    [r for r in rows if r["model"] == m and r["arm"] == jax_arm],
                    [r for r in rows if r["model"] == m and r["arm"] == "tf"], strict=True)]
                print(f"{m}: {jax_arm} / tf, {key}, per repeat "
                      f"{', '.join(f'{x:.2f}' for x in ratios)}; median {median(ratios):.2f}")


if __name__ == "__main__":
    main()
