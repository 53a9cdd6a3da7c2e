"""Hot loop: images/s of the pipeline's training function against a plain `model.fit`.

    python benchmarks/hot_loop.py [--models all_cnn_c,mobilenet_v2] [--rounds 3] [--epochs 5]
                                  [--threads 1]

Two arms on the same model (the default study's run of each model: same width, image size,
batch size, optimizer, seed), the same data (the default study's prepared digits) and the same
TensorFlow thread count, each in a fresh process, alternated (pipeline, plain, pipeline, ...):

- pipeline: `cnnablate.training.train.train_run` itself, as a run is configured by default: its
input
  (digits fits the device budget, so `train.data_on_device: auto` places the splits on the
  device, host memory here, and every batch is made inside the compiled step), op
  determinism, its compile and its callbacks (TerminateOnNaN, epoch clock, CSVLogger, the
  epoch backup of resumable state, heartbeat, TensorBoard);
- plain: what a notebook does: the arrays resized once and scaled to float32 numpy, then
  `model.fit(x, y, batch_size, epochs, validation_data=(x_val, y_val))` with the same compile.

An epoch's time is the interval between the end of one epoch and the end of the next, so it
holds the training steps, the validation pass and every per-epoch callback (checkpointing
included). The first epoch (tracing) is dropped; images/s = training images / epoch time.
Reported: the median over all steady epochs of each arm, and the median over rounds of
(pipeline images/s / plain images/s) within a round. Target: >= 0.97.

Optional arms (--arms): pipeline-no-tb, the pipeline with `tensorboard: false`;
pipeline-host, the pipeline with `data_on_device: false` (batches made on the host by
`Split.train_dataset`'s tf.data, the path before data on the device), reported as
pipeline / pipeline-host per round.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def child(arm: str, run: dict, data_dir: Path, work: Path, threads: int, result: Path) -> None:
    stamps: list[float] = []
    if arm.startswith("pipeline"):
        if arm == "pipeline-no-tb":  # the pipeline without its TensorBoard callback
            run = {**run, "train": {**run["train"], "tensorboard": False}}
        if arm == "pipeline-host":  # batches made on the host (tf.data), not in the step
            run = {**run, "train": {**run["train"], "data_on_device": False}}
        from cnnablate.training.train import RunPaths, train_run

        def log(message: str) -> None:
            if re.match(r"epoch \d+/", message):
                stamps.append(time.perf_counter())

        train_run(run, data_dir, RunPaths.in_dir(work), threads=threads, log=log)
        n_train = None
    else:
        from cnnablate.training.train import configure_threads

        configure_threads(threads)
        import keras
        import tensorflow as tf

        from cnnablate.data.store import load_meta, load_prepared

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(max(1, min(threads, 2)))
        keras.utils.set_random_seed(int(run["seed"]))
        size, train = run["image_size"], run["train"]

        from benchmarks.notebook import notebook_arrays, notebook_model

        (x, y) = notebook_arrays(*load_prepared(data_dir, "train"), size)
        val = notebook_arrays(*load_prepared(data_dir, "val"), size)
        model = notebook_model(run, load_meta(data_dir)["num_classes"])

        class Stamp(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                stamps.append(time.perf_counter())

        model.fit(x, y, batch_size=train["batch_size"], epochs=train["epochs"],
                  validation_data=val, callbacks=[Stamp()], verbose=0)
        n_train = len(y)
    result.write_text(json.dumps({"stamps": stamps, "n_train": n_train}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="all_cnn_c,mobilenet_v2")
    parser.add_argument("--rounds", type=int, default=3, help="pipeline/plain pairs per model")
    parser.add_argument("--epochs", type=int, default=5, help="timed epochs per process")
    parser.add_argument("--threads", type=int, default=1,
                        help="TensorFlow threads in both arms (the pipeline's default: 1)")
    parser.add_argument("--wait-quiet", action="store_true")
    parser.add_argument("--arms", default="pipeline,plain",
                        help="arms per round, in order; add pipeline-no-tb for the pipeline "
                             "without TensorBoard logs, pipeline-host for the pipeline with "
                             "its batches made on the host (data_on_device: false)")
    parser.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        arm, run_file, data_dir, work, threads, result = args.child
        child(arm, json.loads(Path(run_file).read_text()), Path(data_dir), Path(work),
              int(threads), Path(result))
        return

    from benchmarks._common import (
        child_env,
        median,
        prepare_digits,
        print_machine,
        table,
        wait_for_quiet,
    )
    from benchmarks.fixed_cost import default_run

    print_machine("hot loop: pipeline training function vs plain model.fit")
    models = args.models.split(",")
    rows = []
    with tempfile.TemporaryDirectory(prefix="cnnablate-hot-") as tmp:
        tmp = Path(tmp)
        data = prepare_digits(tmp / "digits")
        n_train = int(json.loads((data / "meta.json").read_text())["counts"]["train"])
        if args.wait_quiet:
            wait_for_quiet()
        for m in models:
            run = default_run(m, 1 + args.epochs)
            run_file = tmp / f"{m}.json"
            run_file.write_text(json.dumps(run))
            print(f"{m}: {run['image_size']}px, width {run['model']['width']}, batch "
                  f"{run['train']['batch_size']}, {n_train} training images, 1 + {args.epochs} "
                  f"epochs per process, {args.threads} thread(s)", flush=True)
            arms = args.arms.split(",")
            ips: dict[str, list[float]] = {arm: [] for arm in arms}
            ratios = []
            tb_ratios = []
            host_ratios = []
            for rnd in range(args.rounds):
                per_round = {}
                for arm in arms:
                    result = tmp / f"{m}-{arm}-{rnd}.json"
                    load = os.getloadavg()[0]
                    t0 = time.perf_counter()
                    proc = subprocess.run(
                        [sys.executable, __file__, "--child", arm, str(run_file), str(data),
                         str(tmp / f"work-{m}-{arm}-{rnd}"), str(args.threads), str(result)],
                        capture_output=True, text=True, env=child_env(),
                    )
                    if proc.returncode != 0:
                        sys.exit(f"{arm} child failed:\n{proc.stderr[-4000:]}")
                    stamps = json.loads(result.read_text())["stamps"]
                    periods = [b - a for a, b in zip(stamps, stamps[1:])]
                    rates = [n_train / p for p in periods]
                    ips[arm] += rates
                    per_round[arm] = median(rates)
                    print(f"  round {rnd + 1} {arm:>13}: {median(rates):7.1f} images/s "
                          f"(epochs {', '.join(f'{p:.2f}' for p in periods)} s; process "
                          f"{time.perf_counter() - t0:.0f} s; load {load:.2f})", flush=True)
                ratios.append(per_round["pipeline"] / per_round["plain"])
                if "pipeline-host" in per_round:
                    host_ratios.append(per_round["pipeline"] / per_round["pipeline-host"])
                if "pipeline-no-tb" in per_round:
                    tb_ratios.append(per_round["pipeline"] / per_round["pipeline-no-tb"])
            rows.append([m, median(ips["pipeline"]), median(ips["plain"]),
                         median(ips["pipeline"]) / median(ips["plain"]), median(ratios),
                         min(ratios), max(ratios), len(ips["pipeline"])])
            if host_ratios:
                print(f"  {m}: pipeline (data on device) / pipeline-host (tf.data), per round: "
                      f"{', '.join(f'{r:.3f}' for r in host_ratios)} (median "
                      f"{median(host_ratios):.3f}); ratio of medians "
                      f"{median(ips['pipeline']) / median(ips['pipeline-host']):.3f}; "
                      f"pipeline-host / plain: "
                      f"{median(ips['pipeline-host']) / median(ips['plain']):.3f}", flush=True)
            if tb_ratios:
                print(f"  {m}: pipeline with / without TensorBoard, per round: "
                      f"{', '.join(f'{r:.3f}' for r in tb_ratios)} (median "
                      f"{median(tb_ratios):.3f}); without TensorBoard / plain: median "
                      f"{median(ips['pipeline-no-tb']) / median(ips['plain']):.3f}", flush=True)
    print(f"\nsteady-state epochs, {args.threads} TensorFlow thread(s) in both arms")
    print(table(["model", "pipeline img/s", "plain img/s", "ratio of medians",
                 "median round ratio", "min", "max", "epochs/arm"], rows))
    print("\nratio: pipeline images/s / plain images/s (target >= 0.97)")


if __name__ == "__main__":
    main()
