"""Reliability of the training job: resume after SIGKILL (bit-identical to an uninterrupted run,
its first epochs trained again from scratch), divergence.

Each in a copy of the session's finished workflow with only its prepared digits (tests/conftest.py):
training starts at once."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests import tiny
from tests.workflow import copy_finished, copy_prepared, planned_jobs, snakemake, write_config

pytestmark = pytest.mark.workflow

RUN = "results/runs/r/relu/seed3"
TIMINGS = {"train_seconds", "seconds_per_epoch", "started_at", "finished_at"}

CONFIG = tiny.config(r=tiny.study(
    # Augmentation draws per batch from stateless seeds: a resume must see the same.
    {"epochs": 4, "batch_size": 32, "learning_rate": 0.05, "augment": "flip_crop"},
    # Dropout and RReLU draw random numbers every step: a resume must restore their
    # generator state, not only the weights, to match an uninterrupted run.
    model={"bn_momentum": 0.9}, seeds=[3], variants={"relu": {"activation": {"type": "rrelu"}}},
))


def _history(work: Path) -> list[dict]:
    with open(work / RUN / "history.csv") as fh:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(fh)]


def _metrics(work: Path) -> dict:
    metrics = json.loads((work / RUN / "metrics.json").read_text())
    return {k: v for k, v in metrics.items() if k not in TIMINGS}


@pytest.fixture(scope="module")
def reference(finished, tmp_path_factory):
    """An uninterrupted run."""
    work = copy_prepared(finished.work, tmp_path_factory.mktemp("ref") / "wf")
    write_config(work / "config.yaml", CONFIG)
    snakemake(work, "--cores", "1", f"{RUN}/metrics.json")
    return work


def test_reference_made_its_batches_on_the_device(reference):
    """The digits splits fit the device budget (host memory here): these tests exercise the
    data-on-device path (cnnablate/training/device.py) that training takes by default."""
    log = (reference / "logs/train/r/relu/seed3.log").read_text()
    assert "input: on /CPU:0" in log and "data_on_device: auto" in log
    assert _metrics(reference)["run_config"]["threads"] == 1
    assert _metrics(reference)["partition"]["mode"] == "per_seed"  # the default: seed 3's own


def _tensorboard_steps(log_dir: Path, tag: str) -> list[int]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"tensors": 0})
    acc.Reload()
    return sorted(event.step for event in acc.Tensors(tag))


def _training_process(root: psutil.Process) -> psutil.Process | None:
    for proc in root.children(recursive=True):
        try:
            if any("scripts" in part and "train" in part for part in proc.cmdline()):
                return proc
        except psutil.Error:
            continue
    return None


def test_sigkill_mid_epoch_resumes_at_last_finished_epoch(reference, prepared_copy):
    """Killed after its second epoch, resumed: history and metrics equal the uninterrupted
    reference's. Also a rerun's bit-identity: the killed attempt trained its epochs from
    scratch in a new process, and the resumed run went on from its state."""
    work = prepared_copy
    write_config(work / "config.yaml", CONFIG)
    exe = Path(sys.executable).with_name("snakemake")
    proc = subprocess.Popen(
        [str(exe), "--cores", "1", "-s", str(work / "Snakefile"), "--directory", str(work),
         f"{RUN}/metrics.json"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=work,
    )
    marker = work / RUN / ".resume/backup/training_metadata.json"
    deadline = time.time() + 300
    killed_after = None
    try:
        while time.time() < deadline and proc.poll() is None:
            if marker.exists():
                try:
                    done = json.loads(marker.read_text())["epoch"]
                except (ValueError, KeyError):
                    done = 0
                if done >= 2:
                    trainer = _training_process(psutil.Process(proc.pid))
                    if trainer is not None:
                        trainer.send_signal(signal.SIGKILL)
                        killed_after = done
                        break
            time.sleep(0.05)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert killed_after is not None, "the training job finished before it could be killed"
    assert killed_after < 4
    assert proc.returncode != 0
    assert not (work / RUN / "metrics.json").exists()

    snakemake(work, "--cores", "1", f"{RUN}/metrics.json")
    log = (work / "logs/train/r/relu/seed3.log").read_text()
    assert f"resuming after epoch {killed_after}" in log
    assert "input: on /CPU:0" in log  # the resumed attempt made its batches on the device
    assert _history(work) == _history(reference)
    assert _metrics(work) == _metrics(reference)
    assert not (work / RUN / ".resume").exists()
    # TensorBoard: every epoch once, the killed attempt's unsaved epochs dropped.
    assert _tensorboard_steps(work / RUN / "tensorboard/validation", "epoch_loss") == [0, 1, 2, 3]


def test_diverged_run_is_reported_not_fatal(reference, tmp_path):
    """A variant added beside the reference's run: only it trains (the reference's run is
    the study's other variant), diverges, and the study's tables and report still build."""
    config = json.loads(json.dumps(CONFIG))
    config["studies"]["r"]["variants"]["exploding"] = {
        "activation": "relu", "norm": "none",
        "train": {"learning_rate": 1.0e12, "momentum": 0.0}}
    work = copy_finished(reference, tmp_path / "wf")
    write_config(work / "config.yaml", config)
    assert [j for j in planned_jobs(work) if j[0] == "train"] == [("train", "r", "exploding", "3")]
    snakemake(work, "--cores", "2", "report/index.html")
    bad = json.loads((work / "results/runs/r/exploding/seed3/metrics.json").read_text())
    assert bad["status"] == "diverged" and bad["diverged_epoch"] == 1
    assert bad["epochs_completed"] < 4 or bad["final_val_loss"] is None
    good = json.loads((work / "results/runs/r/relu/seed3/metrics.json").read_text())
    assert good["status"] == "completed"
    with open(work / "results/studies/r/summary.csv") as fh:
        summary = {row["variant"]: row for row in csv.DictReader(fh)}
    assert summary["exploding"]["n"] == "0" and summary["exploding"]["n_diverged"] == "1"
    assert summary["relu"]["n"] == "1"
    html = (work / "report/index.html").read_text()
    assert "diverged" in html
    assert planned_jobs(work) == []
