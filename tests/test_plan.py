"""What the Snakefile decides while planning besides the runs (cnnablate/workflow/plan.py): a
missing user archive, smoke mode's SYNTHETIC stand-ins, a dataset's archive, and the advice
after a stop. On hand-made folders and logs: no Snakemake."""

from __future__ import annotations

import os
import time

from cnnablate.base.layout import Layout
from cnnablate.data.archive import ARCHIVES
from cnnablate.workflow import plan

CIFAR = {"source": "cifar10_binary"}
DIGITS = {"source": "sklearn_digits"}


def test_a_missing_user_archive_is_named_with_its_key(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.tar.gz").write_bytes(b"x")
    datasets = {"ok": {**CIFAR, "archive": "mine.tar.gz"}, "digits": DIGITS,
                "bad": {**CIFAR, "archive": "gone.tar.gz"}}
    assert plan.missing_archive(datasets, ["ok", "digits"]) is None
    assert plan.missing_archive(datasets, ["ok", "bad"]) == (
        "datasets.bad.archive: 'gone.tar.gz' is not a file (paths are relative to the directory "
        "snakemake runs in); fix the path, or remove `archive:` to download the official archive")


def test_only_smoke_mode_stands_in_for_absent_data(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no results/: CIFAR is neither prepared nor downloaded
    datasets = {"c10": CIFAR, "digits": DIGITS}
    assert plan.synthetic_datasets(datasets, ["c10", "digits"], smoke=False) == set()
    assert plan.synthetic_datasets(datasets, ["c10", "digits"], smoke=True) == {"c10"}
    (tmp_path / "results/data/c10").mkdir(parents=True)
    (tmp_path / "results/data/c10/meta.json").write_text("{}")  # prepared: the real thing
    assert plan.synthetic_datasets(datasets, ["c10", "digits"], smoke=True) == set()


def test_runs_on_a_stand_in_are_flagged():
    runs = [{"dataset": "c10"}, {"dataset": "digits"}, {"dataset": "c10", "synthetic": True}]
    plan.mark_synthetic(runs, {"c10"})
    assert runs == [{"dataset": "c10", "synthetic": True}, {"dataset": "digits"},
                    {"dataset": "c10", "synthetic": True}]


def test_a_datasets_archive_is_the_users_or_the_download():
    layout = Layout()
    assert plan.archive_of(CIFAR, ARCHIVES, layout) == "results/downloads/cifar-10-binary.tar.gz"
    assert plan.archive_of({**CIFAR, "archive": "/data/c.tgz"}, ARCHIVES, layout) == "/data/c.tgz"
    assert plan.archive_of(DIGITS, ARCHIVES, layout) == []


def test_a_run_is_done_with_all_its_files(tmp_path):
    done, partial = tmp_path / "a", tmp_path / "b"
    for folder, names in ((done, ("history.csv", "metrics.json", "model.keras",
                                  "predictions.npy")),
                          (partial, ("history.csv", "metrics.json"))):
        folder.mkdir()
        for name in names:
            (folder / name).write_text("")
    assert plan.runs_done([done, partial, tmp_path / "never"]) == 1


def test_interrupted_means_a_log_of_this_invocation_ends_on_ctrl_c(tmp_path):
    logs = tmp_path / "logs"
    (logs / "train/s/v").mkdir(parents=True)
    failed = logs / "aggregate.log"
    failed.write_text("Traceback ...\nValueError: x\n")
    start = time.time() - 10
    assert not plan.interrupted(logs, start)
    stopped = logs / "train/s/v/seed0.log"
    stopped.write_text("x" * 5000 + "\ninterrupted (Ctrl-C); rerun the same command to resume\n")
    assert plan.interrupted(logs, start)
    os.utime(stopped, (start - 100, start - 100))  # an earlier invocation's
    assert not plan.interrupted(logs, start)


def test_the_advice_after_a_stop():
    assert plan.failure_advice(3, 8, was_interrupted=True).startswith(
        "cnnablate: interrupted; 3 of 8 runs are complete. Rerun the same command to resume")
    assert plan.failure_advice(3, 8, was_interrupted=False).startswith(
        "cnnablate: a job failed (3 of 8 runs are complete)")
