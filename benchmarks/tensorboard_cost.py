"""What the per-run TensorBoard logs cost a training job, timed inside the job itself.

    python benchmarks/tensorboard_cost.py [--models all_cnn_c,mobilenet_v2] [--epochs 4]

Runs `cnnablate.training.train.train_run` on the default study's run of each model (fresh process
each)
with every hook of its TensorBoard callback timed: wall-clock and the calling thread's CPU
time (`time.thread_time`, which another process's load on a shared CPU does not inflate).
The callback has no batch hooks (cnnablate/training/monitor.py), so its whole cost is per epoch and
at
start/end of training. Reported per model: TensorBoard seconds per epoch against the run's
median epoch time, and the implied hot-loop factor epoch / (epoch + TensorBoard).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

HOOKS = ("on_train_begin", "on_epoch_begin", "on_test_begin", "on_test_end", "on_epoch_end",
         "on_train_end")


def child(run: dict, data_dir: Path, work: Path, result: Path) -> None:
    from cnnablate.training import monitor
    from cnnablate.training.train import RunPaths, train_run

    spent = {hook: [0.0, 0.0, 0] for hook in HOOKS}  # wall, cpu, calls
    epoch_end_cpu: list[float] = []  # per call: the first one also creates the file writers
    original = monitor.watch_callbacks

    def timed_callbacks(*args, **kwargs):
        callbacks = original(*args, **kwargs)
        board = callbacks[0]
        for hook in HOOKS:
            method = getattr(board, hook)

            def wrapped(*a, _method=method, _hook=hook, **k):
                wall, cpu = time.perf_counter(), time.thread_time()
                try:
                    return _method(*a, **k)
                finally:
                    spent[_hook][0] += time.perf_counter() - wall
                    spent[_hook][1] += time.thread_time() - cpu
                    spent[_hook][2] += 1
                    if _hook == "on_epoch_end":
                        epoch_end_cpu.append(time.thread_time() - cpu)

            setattr(board, hook, wrapped)
        return callbacks

    monitor.watch_callbacks = timed_callbacks
    metrics = train_run(run, data_dir, RunPaths.in_dir(work), log=lambda m: None)
    with open(work / "history.csv") as fh:
        seconds = sorted(float(line.split(",")[-1]) for line in list(fh)[1:])
    result.write_text(json.dumps({"spent": spent, "epoch_seconds": seconds,
                                  "epoch_end_cpu": epoch_end_cpu,
                                  "epochs": metrics["epochs_completed"]}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="all_cnn_c,mobilenet_v2")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_file, data_dir, work, result = args.child
        child(json.loads(Path(run_file).read_text()), Path(data_dir), Path(work), Path(result))
        return

    from benchmarks._common import child_env, median, prepare_digits, print_machine
    from benchmarks.fixed_cost import default_run

    print_machine("TensorBoard callback cost inside a training job")
    with tempfile.TemporaryDirectory(prefix="cnnablate-tb-") as tmp:
        tmp = Path(tmp)
        data = prepare_digits(tmp / "digits")
        for model in args.models.split(","):
            run = default_run(model, args.epochs)
            run["train"]["tensorboard"] = True
            (tmp / "run.json").write_text(json.dumps(run))
            result = tmp / f"{model}.json"
            subprocess.run([sys.executable, __file__, "--child", str(tmp / "run.json"),
                            str(data), str(tmp / f"work-{model}"), str(result)],
                           check=True, env=child_env())
            out = json.loads(result.read_text())
            epochs, spent = out["epochs"], out["spent"]
            per_epoch = [sum(spent[h][i] for h in HOOKS[1:5]) / epochs for i in (0, 1)]
            once = [spent["on_train_begin"][i] + spent["on_train_end"][i] for i in (0, 1)]
            epoch = median(out["epoch_seconds"])
            print(f"{model}: {epochs} epochs, median epoch {epoch:.3f} s (wall)")
            for hook in HOOKS:
                wall, cpu, calls = spent[hook]
                print(f"  {hook:<15} {calls} calls  wall {wall * 1000:8.1f} ms  "
                      f"cpu {cpu * 1000:8.1f} ms")
            print(f"  per epoch: wall {per_epoch[0] * 1000:.1f} ms, cpu {per_epoch[1] * 1000:.1f}"
                  f" ms; once per run: wall {once[0] * 1000:.1f} ms, cpu {once[1] * 1000:.1f} ms")
            later = out["epoch_end_cpu"][1:]
            print(f"  on_epoch_end cpu per call: "
                  f"{', '.join(f'{c * 1000:.1f}' for c in out['epoch_end_cpu'])} ms (the first "
                  f"creates the writers); later calls median {median(later) * 1000:.1f} ms")
            print(f"  hot-loop factor epoch / (epoch + TensorBoard): wall "
                  f"{epoch / (epoch + per_epoch[0]):.4f}, cpu-based "
                  f"{epoch / (epoch + per_epoch[1]):.4f}", flush=True)


if __name__ == "__main__":
    main()
