"""`cnnablate.training.train.summarize` and `history_rows` (pure: no TensorFlow, no Snakemake) and
the
atomic write helper."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cnnablate.base.atomic import atomic_path, write_json_atomic
from cnnablate.training.train import history_rows, summarize


def row(epoch, loss, acc, val_loss, val_acc, seconds=1.0) -> dict:
    return {"epoch": epoch, "loss": loss, "accuracy": acc, "val_loss": val_loss,
            "val_accuracy": val_acc, "seconds": seconds}


def test_completed_run_best_and_last():
    history = [row(1, 2.0, 0.3, 2.1, 0.25, 2.0), row(2, 1.0, 0.6, 1.2, 0.55, 1.0),
               row(3, 0.8, 0.7, 1.3, 0.50, 3.0)]
    s = summarize(history, epochs=3)
    assert s["status"] == "completed" and s["diverged_epoch"] is None
    assert (s["best_epoch"], s["best_val_accuracy"]) == (2, 0.55)
    assert (s["final_val_accuracy"], s["final_val_loss"], s["final_train_accuracy"]) == (
        0.50, 1.3, 0.7)
    assert s["epochs_completed"] == 3 and s["seconds_per_epoch"] == 2.0


def test_first_best_epoch_wins_a_tie():
    s = summarize([row(1, 1, 0.5, 1, 0.4), row(2, 1, 0.5, 1, 0.4)], epochs=2)
    assert s["best_epoch"] == 1


def test_nan_loss_is_a_divergence_at_its_epoch():
    history = [row(1, 2.0, 0.3, 2.1, 0.25), row(2, None, 0.1, None, None)]
    s = summarize(history, epochs=5)
    assert s["status"] == "diverged" and s["diverged_epoch"] == 2
    assert s["best_epoch"] == 1 and s["final_val_accuracy"] is None


def test_stopping_early_without_nan_is_diverged_too():
    s = summarize([row(1, 2.0, 0.3, 2.1, 0.25)], epochs=3)
    assert s["status"] == "diverged" and s["diverged_epoch"] is None


def test_empty_history():
    s = summarize([], epochs=1)
    assert s["status"] == "diverged" and s["best_epoch"] is None
    assert s["epochs_completed"] == 0 and s["seconds_per_epoch"] == 0.0


def test_history_rows_from_csv_logger_text():
    rows = history_rows([{"epoch": "0", "loss": "0.5", "accuracy": "0.9", "val_loss": "nan",
                          "val_accuracy": "inf", "seconds": "1.5"}])
    assert rows == [row(1, 0.5, 0.9, None, None, 1.5)]


def test_summarize_needs_no_tensorflow():
    code = ("import sys; from cnnablate.training.train import summarize; summarize([], 1); "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules")
    root = Path(__file__).resolve().parent.parent
    assert subprocess.run([sys.executable, "-c", code], cwd=root).returncode == 0


def test_atomic_path_renames_on_success_and_cleans_up_on_error(tmp_path):
    target = tmp_path / "out.json"
    write_json_atomic(target, {"b": 1, "a": 2})
    assert target.read_text() == '{\n  "a": 2,\n  "b": 1\n}\n'
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        assert tmp.name.endswith(".out.json") and tmp.parent == tmp_path
        tmp.write_text("partial")
        raise RuntimeError("killed")
    assert target.read_text().startswith('{\n  "a"')  # the old version stays
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]  # no temporary left
