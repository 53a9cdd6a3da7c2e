"""The tuning stages' checkpoints (cnnablate.decisions.stages) on hand-made metrics files, and
when a kept resume state is continued (cnnablate.training.train._resume_epoch): no training."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from cnnablate.decisions import stages
from cnnablate.decisions.selection import TuningFailed
from cnnablate.training.train import BACKUP_STATE, _resume_epoch
from cnnablate.workflow.config import candidate_name

KEY = "train.learning_rate"
GRID = [0.001, 0.01, 0.1, 1.0]


def _spec(grid=GRID, seeds=(1000, 1001), rungs=(1, 2, 5), zoom=0) -> dict:
    return {"keys": {KEY: list(grid)}, "seeds": list(seeds), "metric": "best_val_accuracy",
            "epochs": None, "schedule": "halving", "rungs": list(rungs), "keep": 0.5,
            "zoom": zoom,
            "candidates": [{"name": f"learning_rate-{lr}", "values": {KEY: lr}} for lr in grid]}


def _metrics(tmp: Path, variant: str, lr: float, seed: int, value: float | None,
             epochs: int, budget: int = 5) -> Path:
    name = candidate_name({KEY: lr})
    path = tmp / variant / name / str(seed) / str(epochs) / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    metrics = {
        "status": "completed" if value is not None else "diverged",
        "best_val_accuracy": value,
        "run_config": {"variant": variant, "seed": seed, "train": {"epochs": budget},
                       "tuning": {"candidate": name, "values": {KEY: lr}}},
    }
    if epochs < budget:
        metrics["rung_epochs"] = epochs
    path.write_text(json.dumps(metrics))
    return path


def test_a_rung_promotes_the_best_means_over_seeds_and_never_a_diverged_one(tmp_path):
    # means: 0.001 -> 0.5, 0.01 -> 0.8, 0.1 -> diverged on one seed, 1.0 -> 0.6
    values = {0.001: (0.4, 0.6), 0.01: (0.9, 0.7), 0.1: (0.95, None), 1.0: (0.6, 0.6)}
    files = [_metrics(tmp_path, "relu", lr, s, v, 1)
             for lr, pair in values.items() for s, v in zip((1000, 1001), pair)]
    state = stages.write_rung(files, "st", {"relu": _spec()}, 1, tmp_path / "rung1.json",
                              log=lambda _: None)
    relu = state["variants"]["relu"]
    # 4 candidates keep ceil(4 * 0.5) = 2: 0.01 (0.8) and 1.0 (0.6); 0.1 diverged on a seed
    assert relu["promoted"] == ["learning_rate-0.01", "learning_rate-1.0"]
    assert relu["means"]["learning_rate-0.1"] is None
    assert relu["means"]["learning_rate-0.001"] == pytest.approx(0.5)
    assert json.loads((tmp_path / "rung1.json").read_text()) == state


def test_a_rung_where_every_candidate_diverged_stops_the_study(tmp_path):
    files = [_metrics(tmp_path, "elu", lr, 1000, None, 1) for lr in GRID]
    with pytest.raises(TuningFailed, match="every tuning candidate of elu diverged on some "
                                           "tuning seed by rung 1"):
        stages.write_rung(files, "st", {"elu": _spec(seeds=(1000,))}, 1,
                          tmp_path / "rung1.json", log=lambda _: None)
    assert not (tmp_path / "rung1.json").exists()


def test_the_final_selection_takes_the_best_that_trained_the_whole_budget(tmp_path):
    spec = _spec(seeds=(1000,))
    files = [
        # rung 1 (all four), rung 2 (0.01, 0.1), the last rung (0.01); 0.1 led at rung 1 and
        # never trained the whole budget: it cannot be selected
        _metrics(tmp_path, "relu", 0.001, 1000, 0.2, 1),
        _metrics(tmp_path, "relu", 0.01, 1000, 0.5, 1),
        _metrics(tmp_path, "relu", 0.1, 1000, 0.6, 1),
        _metrics(tmp_path, "relu", 1.0, 1000, 0.1, 1),
        _metrics(tmp_path, "relu", 0.01, 1000, 0.7, 2),
        _metrics(tmp_path, "relu", 0.1, 1000, 0.65, 2),
        _metrics(tmp_path, "relu", 0.01, 1000, 0.85, 5),
        # a zoom candidate between 0.01 and 0.1, better still
        _metrics(tmp_path, "relu", 0.032, 1000, 0.9, 5),
    ]
    state = stages.write_stages_selection(files, "st", {"relu": spec}, tmp_path / "sel.json",
                                          tmp_path / "tuning.csv", log=lambda _: None)
    chosen = state["variants"]["relu"]
    assert chosen["candidate"] == "learning_rate-0.032" and chosen["epochs"] == 5
    assert chosen["values"] == {KEY: 0.032} and not chosen["at_edge"]
    # effort: 5 runs; the furthest epochs each trained (a resumed epoch counts once):
    # 0.001: 1, 0.01: 5, 0.1: 2, 1.0: 1, the zoom's 0.032: 5
    assert state["effort"]["relu"] == {"runs": 5, "epochs": 1 + 5 + 2 + 1 + 5}
    with open(tmp_path / "tuning.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(float(r[KEY]), r["value"], r["epochs"], r["stage"], r["selected"]) for r in rows] \
        == [(0.001, "0.2", "1", "grid", "False"), (0.01, "0.85", "5", "grid", "False"),
            (0.1, "0.65", "2", "grid", "False"), (1.0, "0.1", "1", "grid", "False"),
            (0.032, "0.9", "5", "zoom", "True")]


def test_the_zoom_stage_names_new_candidates_around_the_finalists_pick(tmp_path):
    spec = _spec(seeds=(1000,), zoom=1)
    files = [_metrics(tmp_path, "relu", lr, 1000, v, 5) for lr, v in ((0.01, 0.8), (0.1, 0.7))]
    files.append(_metrics(tmp_path, "relu", 0.001, 1000, 0.99, 2))  # stopped: not eligible
    state = stages.write_zoom(files, "st", {"relu": spec}, tmp_path / "zoom.json",
                              candidate_name, log=lambda _: None)
    relu = state["variants"]["relu"]
    assert relu["picked"] == "learning_rate-0.01"
    # the geometric midpoints to its grid neighbours, 2 significant digits:
    # sqrt(0.001 * 0.01) = 0.00316 -> 0.0032, sqrt(0.01 * 0.1) = 0.0316 -> 0.032
    assert [c["values"][KEY] for c in relu["candidates"]] == [0.0032, 0.032]
    assert [c["name"] for c in relu["candidates"]] == ["learning_rate-0.0032",
                                                       "learning_rate-0.032"]


def _state(work: Path, epoch: int, lineage: str | None, backend: str = "tensorflow") -> None:
    (work / "backup").mkdir(parents=True, exist_ok=True)
    extra = {"lineage": lineage} if lineage else {}
    np.savez(work / "backup" / BACKUP_STATE, epoch=epoch, backend=backend, v0=np.zeros(2),
             **extra)


def test_a_kept_state_continues_only_its_own_run_and_never_backwards(tmp_path):
    _state(tmp_path, 2, "abc")
    assert _resume_epoch(tmp_path, "tensorflow", "abc", target=5) == 2
    assert _resume_epoch(tmp_path, "tensorflow", "other", target=5) == 0  # config/code changed
    assert _resume_epoch(tmp_path, "tensorflow", "abc", target=1) == 0  # cannot go back
    assert _resume_epoch(tmp_path, "jax", "abc", target=5) == 0
    _state(tmp_path, 3, None)  # a backup from before lineages: as before
    assert _resume_epoch(tmp_path, "tensorflow", "abc", target=5) == 3
