"""`python -m cnnablate status` on a study stopped mid-way, built from files written here."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import yaml

from cnnablate.workflow import status
from tests import tiny

ROOT = Path(__file__).resolve().parents[1]

CONFIG = tiny.config(s={
    "dataset": "digits", "model": {"name": "all_cnn_c"}, "train": {"epochs": 4}, "seeds": [0, 1],
    "variants": {"a": {"activation": "relu"}, "b": {"activation": "elu"},
                 "c": {"activation": "selu"}},
})


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return int(done.stdout)


def _partial(run_dir: Path, rows: list[tuple[float, float]], pid: int, host: str) -> None:
    """What a training job leaves in .resume/: CSVLogger's history and the heartbeat."""
    work = run_dir / ".resume"
    work.mkdir(parents=True)
    lines = ["epoch,accuracy,loss,seconds,val_accuracy,val_loss"]
    lines += [f"{i},0.5,1.0,{sec},{acc},1.1" for i, (sec, acc) in enumerate(rows)]
    (work / "history.csv").write_text("\n".join(lines) + "\n")
    beat = {"pid": pid, "host": host, "epoch": len(rows), "epochs": 4, "time": 0}
    (work / "heartbeat.json").write_text(json.dumps(beat))


def _log(root: Path, name: str, text: str, age: float) -> None:
    path = root / "logs/train/s" / f"{name}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    when = time.time() - age
    os.utime(path, (when, when))


def _half_finished_study(root: Path) -> None:
    runs = root / "results/runs/s"
    # a/seed0: finished
    (runs / "a/seed0").mkdir(parents=True)
    (runs / "a/seed0/metrics.json").write_text(json.dumps({
        "status": "completed", "epochs_completed": 4, "best_val_accuracy": 0.9,
        "seconds_per_epoch": 60.0}))
    # a/seed1: running in this very process, two epochs done
    _partial(runs / "a/seed1", [(60.0, 0.5), (120.0, 0.6)], os.getpid(), socket.gethostname())
    _log(root, "a/seed1", "[10:00:00] data: digits ...\n[10:01:00] epoch 1/4 ...\n", 30)
    # b/seed0: failed with an error after one epoch
    _partial(runs / "b/seed0", [(70.0, 0.4)], _dead_pid(), socket.gethostname())
    _log(root, "b/seed0", "[10:00:00] data: digits ...\nTraceback (most recent call last):\n"
         '  File "x.py", line 1, in <module>\n    boom()\nValueError: boom\n', 3000)
    # b/seed1: killed after three epochs (no error in its log)
    _partial(runs / "b/seed1", [(50.0, 0.7)] * 3, _dead_pid(), socket.gethostname())
    _log(root, "b/seed1", "[10:00:00] data: digits ...\n[10:01:00] epoch 3/4 ...\n", 3000)
    # c/seed0: diverged in its first epoch
    (runs / "c/seed0").mkdir(parents=True)
    (runs / "c/seed0/metrics.json").write_text(json.dumps({
        "status": "diverged", "epochs_completed": 1, "diverged_epoch": 1,
        "best_val_accuracy": None, "seconds_per_epoch": 90.0}))
    # c/seed1: not started


def _status_lines(root: Path, *extra: str) -> list[str]:
    config = root / "study.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    done = subprocess.run(
        [sys.executable, "-c",
         "import sys; from cnnablate.__main__ import main; code = main(sys.argv[1:]);"
         "assert not {'tensorflow', 'keras', 'snakemake'} & set(sys.modules), 'imported';"
         "sys.exit(code)",
         "status", "--configfile", str(config), "--directory", str(root), *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in root.rglob("*") if p.name != "study.yaml"}


def test_study_stopped_midway(tmp_path):
    _half_finished_study(tmp_path)
    # The first line of a/seed1 must be alive: it is this test process.
    before = _snapshot(tmp_path)
    lines = _status_lines(tmp_path)
    # 24 epochs planned, 10 left (0+2+3+1+0+4): 58%, 11 of 20 marks. Measured s/epoch:
    # a0 60, a1 (60+120)/2 = 90, c0 90 -> 80; 10 epochs x 80 s / 1 running = 800 s.
    assert lines == [
        "s [###########---------]  58%  1 done, 1 diverged, 1 running, 2 failed, 1 waiting; "
        "10 epochs left, ETA 13m20s",
        "  a/seed0                  done      4 epochs, best val_accuracy 0.9000, 60.00 s/epoch",
        "  a/seed1                  running   epoch 2 of 4, val_accuracy 0.6000, 90.00 s/epoch",
        "  b/seed0                  failed    after epoch 1 of 4: ValueError: boom; "
        "log: logs/train/s/b/seed0.log",
        "  b/seed1                  failed    after epoch 3 of 4: stopped (killed? a rerun "
        "resumes after the last finished epoch); log: logs/train/s/b/seed1.log",
        "  c/seed0                  diverged  at epoch 1; log: logs/train/s/c/seed0.log",
        "  c/seed1                  waiting   4 epochs",
        "total: 2 of 6 runs finished, 1 running; ETA 13m20s",
    ]
    assert _snapshot(tmp_path) == before  # reads only


def test_empty_results_folder(tmp_path):
    lines = _status_lines(tmp_path)
    assert lines[0] == (
        "s [--------------------]   0%  6 waiting; 24 epochs left, "
        "ETA unknown (nothing measured yet)"
    )
    assert lines[1:] == [
        f"  {v}/seed{seed}                  waiting   4 epochs"
        for v in "abc" for seed in (0, 1)
    ] + ["total: 0 of 6 runs finished, 0 running; ETA unknown"]
    assert not (tmp_path / "results").exists() and not (tmp_path / "logs").exists()


def test_smoke_runs_are_read_from_the_smoke_folders(tmp_path):
    (tmp_path / "results/smoke/runs/s/a/seed0").mkdir(parents=True)
    (tmp_path / "results/smoke/runs/s/a/seed0/metrics.json").write_text(json.dumps({
        "status": "completed", "epochs_completed": 1, "best_val_accuracy": 0.25,
        "seconds_per_epoch": 2.0}))
    lines = _status_lines(tmp_path, "--config", "smoke=true")
    # Smoke: one seed, one epoch per run; a finished, b and c waiting: 2 epochs x 2 s.
    assert lines == [
        "s [######--------------]  33%  1 done, 2 waiting; 2 epochs left, ETA 4s",
        "  a/seed0                  done      1 epochs, best val_accuracy 0.2500, 2.00 s/epoch",
        "  b/seed0                  waiting   1 epoch",
        "  c/seed0                  waiting   1 epoch",
        "total: 1 of 3 runs finished, 0 running; ETA 4s",
    ]


RUN = {"study": "s", "variant": "a", "seed": 0, "train": {"epochs": 4}}


def test_heartbeat_from_another_host_counts_while_fresh(tmp_path):
    run_dir = tmp_path / "run"
    _partial(run_dir, [(10.0, 0.5)], pid=1, host="gpu-node-17")
    beat = run_dir / ".resume/heartbeat.json"
    now = beat.stat().st_mtime
    assert status.run_status(RUN, run_dir, tmp_path / "none.log", now=now + 60).state == "running"
    late = status.run_status(RUN, run_dir, tmp_path / "none.log", now=now + 3600)
    assert (late.state, late.epochs_done) == ("failed", 1)


def test_job_loading_its_data_counts_as_starting(tmp_path):
    log = tmp_path / "job.log"
    log.write_text("[10:00:00] gpu: none\n")
    starting = status.run_status(RUN, tmp_path / "run", log)
    assert (starting.state, starting.detail) == ("running", "starting")
    old = time.time() - 3600
    os.utime(log, (old, old))
    assert status.run_status(RUN, tmp_path / "run", log).state == "failed"


def test_job_that_wrote_its_first_heartbeat_is_starting(tmp_path):
    run_dir = tmp_path / "run"
    _partial(run_dir, [], os.getpid(), socket.gethostname())  # alive, no epoch done yet
    starting = status.run_status(RUN, run_dir, tmp_path / "none.log")
    assert (starting.state, starting.detail, starting.epochs_done) == ("running", "starting", 0)


def test_adaptive_seeds_a_decided_variant_runs_no_later_round(tmp_path):
    from cnnablate.workflow.status import scheduled

    spec = {"initial": 2, "max": 6, "step": 2}
    runs = [{"study": "ada", "variant": v, "seed": s} for v in ("a", "b") for s in range(6)]
    # no decision yet: every seed may still run
    assert len(scheduled(runs, {"ada": spec}, tmp_path)) == 12
    rounds_dir = tmp_path / "results" / "studies" / "ada" / "rounds"
    rounds_dir.mkdir(parents=True)
    (rounds_dir / "round1.json").write_text('{"continuing": ["a"]}')
    kept = {(r["variant"], r["seed"]) for r in scheduled(runs, {"ada": spec}, tmp_path)}
    assert kept == {("a", 0), ("a", 1), ("a", 2), ("a", 3), ("a", 4), ("a", 5),
                    ("b", 0), ("b", 1)}
    (rounds_dir / "round2.json").write_text('{"continuing": []}')
    kept = {(r["variant"], r["seed"]) for r in scheduled(runs, {"ada": spec}, tmp_path)}
    assert kept == {("a", 0), ("a", 1), ("a", 2), ("a", 3), ("b", 0), ("b", 1)}
    # a fixed seed list is left as it is
    assert len(scheduled(runs, {"ada": [0, 1, 2, 3, 4, 5]}, tmp_path)) == 12
