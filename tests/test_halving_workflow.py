"""Successive halving and the zoom stage (issue #31) end to end through Snakemake: every
candidate trains to the first rung, the rung checkpoint promotes the best, a promoted candidate
continues its own run (bit-identical to a run trained straight through), the zoom checkpoint adds
candidates around the pick, the final selection takes the best of what trained the whole budget;
`snakemake -n` shows the rung plan, `status` the rungs, and adding a candidate trains only what
it must. Plus the config's one-line refusals of bad schedules (no training)."""

from __future__ import annotations

import copy
import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from cnnablate.workflow import config as cnnablate_config
from tests import tiny
from tests.workflow import (
    ROOT,
    copy_finished,
    copy_prepared,
    planned_jobs,
    snakemake,
    write_config,
)

STUDY = "halved"
# Two candidates (each costs a training job's start-up: the suite's time) at two learning rates
# a zoom step beyond either stays trainable (0.33 or 0.009): both train 1 epoch, the better one
# continues to 2 (ceil(2 * 0.5)), then one zoom stage around the pick, trained the whole 2
# epochs (test_halving.py has the zoom's midpoints inside a grid)
GRID = [0.03, 0.1]
HALVED = tiny.config(**{STUDY: tiny.tuning_study(
    tune={"train.learning_rate": list(GRID), "seeds": [1000], "schedule": "halving",
          "rungs": [1, 2], "keep": 0.5, "zoom": 1},
)})
STUDY_DIR = f"results/studies/{STUDY}"
SELECTION = f"{STUDY_DIR}/tuning/selection.json"
TIMINGS = {"train_seconds", "seconds_per_epoch", "started_at", "finished_at"}


def _run_dir(work: Path, lr: float) -> Path:
    return work / f"results/runs/{STUDY}/relu/tune-learning_rate-{lr}/seed1000"


def _history(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(fh)]


def _metrics(path: Path) -> dict:
    return {k: v for k, v in json.loads(path.read_text()).items() if k not in TIMINGS}


def _sig2(value: float) -> float:
    """`value` to 2 significant digits (the zoom's new values are shown so)."""
    return float(f"{value:.1e}")


@pytest.fixture(scope="module")
def done(tmp_path_factory, finished):
    """The tiny halving + zoom study planned (dry run kept) and run to its selection, on the
    data the session's finished workflow prepared."""
    work = copy_prepared(finished.work, tmp_path_factory.mktemp("halved") / "wf")
    write_config(work / "config.yaml", HALVED)
    dry = snakemake(work, "-n", SELECTION)
    snakemake(work, "--cores", "2", SELECTION)
    return work, dry.stdout + dry.stderr


@pytest.mark.workflow
def test_dry_run_shows_the_rung_plan_and_cost(done):
    _, dry = done
    # 2 candidates x 1 epoch, then 1 of them 1 more epoch: 3 of the grid's 2 x 2 = 4
    assert ("cnnablate: halved: successive halving, rungs at 1, 2 epochs, keep 0.5: candidates "
            "per rung relu 2 -> 1; 3 tuning epochs instead of the grid's 4 (75%)") in dry
    assert "cnnablate: halved: zoom 1: after the last rung" in dry
    rung_jobs = sorted(line.split(": ", 1)[1].split(" (log")[0] for line in dry.splitlines()
                       if line.startswith("Job ") and ": train_rung " in line)
    assert rung_jobs == [
        f"train_rung study=halved variant=relu candidate=learning_rate-{lr} seed=1000 rung=1"
        for lr in GRID]
    assert "tuning_rung study=halved rung=1" in dry
    assert ": train_tuning " not in dry  # who continues is known only after the rung


@pytest.mark.workflow
def test_the_rung_promotes_the_better_half_by_its_own_values(done):
    work, _ = done
    values = {lr: json.loads((_run_dir(work, lr) / "rung-1/metrics.json").read_text())
              for lr in GRID}
    for metrics in values.values():
        assert metrics["rung_epochs"] == 1 and metrics["epochs_completed"] == 1
        assert metrics["run_config"]["train"]["epochs"] == 2  # the run's, not the rung's
    # the better 1 of 2 (ties: the one listed first), recomputed from the snapshots
    ranked = sorted(GRID, key=lambda lr: (-values[lr]["best_val_accuracy"], GRID.index(lr)))
    rung = json.loads((work / f"{STUDY_DIR}/tuning/rung1.json").read_text())
    relu = rung["variants"]["relu"]
    assert relu["trained"] == [f"learning_rate-{lr}" for lr in GRID]
    assert relu["promoted"] == [f"learning_rate-{lr}" for lr in ranked[:1]]
    for lr in GRID:  # the promoted continued their own runs; the other stopped at rung 1
        assert (_run_dir(work, lr) / "metrics.json").exists() == (lr in ranked[:1])
    for lr in ranked[:1]:
        log = (work / f"logs/train/{STUDY}/relu/tune-learning_rate-{lr}/seed1000.log").read_text()
        assert "resuming after epoch 1" in log
        full = _history(_run_dir(work, lr) / "history.csv")
        assert len(full) == 2 and full[:1] == _history(_run_dir(work, lr) / "rung-1/history.csv")


@pytest.mark.workflow
def test_a_promoted_run_equals_one_trained_straight_through(done, finished, tmp_path):
    """The finalist trained 1 epoch, stopped, and resumed to 2: the same history and metrics
    as the same run trained 2 epochs at once (the grid's), its config hash included."""
    work, _ = done
    promoted = json.loads((work / f"{STUDY_DIR}/tuning/rung1.json").read_text())[
        "variants"]["relu"]["promoted"][0]
    lr = float(promoted.removeprefix("learning_rate-"))
    straight = copy_prepared(finished.work, tmp_path / "wf")
    config = copy.deepcopy(HALVED)
    config["studies"][STUDY]["tune"] = {"train.learning_rate": list(GRID), "seeds": [1000]}
    write_config(straight / "config.yaml", config)
    target = f"results/runs/{STUDY}/relu/tune-{promoted}/seed1000/metrics.json"
    snakemake(straight, "--cores", "1", target)
    assert "resuming" not in (straight / f"logs/train/{STUDY}/relu/tune-{promoted}/"
                              "seed1000.log").read_text()
    assert _history(_run_dir(work, lr) / "history.csv") == _history(
        _run_dir(straight, lr) / "history.csv")
    halved, grid = _metrics(_run_dir(work, lr) / "metrics.json"), _metrics(
        _run_dir(straight, lr) / "metrics.json")
    assert halved["provenance"]["config_hash"] == grid["provenance"]["config_hash"]
    for key in ("best_val_accuracy", "test_accuracy", "test_loss", "final_val_loss",
                "epochs_completed", "status", "activation_stats", "run_config"):
        assert halved[key] == grid[key], key


@pytest.mark.workflow
def test_zoom_adds_candidates_around_the_pick_and_selects_the_best_of_all(done):
    work, _ = done
    zoom = json.loads((work / f"{STUDY_DIR}/tuning/zoom.json").read_text())["variants"]["relu"]
    finalists = json.loads((work / f"{STUDY_DIR}/tuning/rung1.json").read_text())[
        "variants"]["relu"]["promoted"]
    best = {n: json.loads((_run_dir(work, float(n.split("-", 1)[1])) / "metrics.json")
                          .read_text())["best_val_accuracy"] for n in finalists}
    picked = max(finalists, key=lambda n: (best[n], -finalists.index(n)))
    assert zoom["picked"] == picked
    p = float(picked.split("-", 1)[1])
    i = GRID.index(p)
    # by hand: the geometric midpoints to its neighbours; at an end, the grid's step beyond it
    if i == 0:
        expected = [_sig2(p * p / GRID[1])]
    elif i == len(GRID) - 1:
        expected = [_sig2(p * p / GRID[-2])]
    else:
        expected = [_sig2(math.sqrt(p * GRID[i - 1])), _sig2(math.sqrt(p * GRID[i + 1]))]
    new = [c["values"]["train.learning_rate"] for c in zoom["candidates"]]
    assert new == pytest.approx(sorted(expected))
    for candidate in zoom["candidates"]:  # trained straight through: no rung of their own
        run = work / f"results/runs/{STUDY}/relu/tune-{candidate['name']}/seed1000"
        assert (run / "metrics.json").is_file() and not (run / "rung-1").exists()
    with open(work / f"{STUDY_DIR}/tuning.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [float(r["train.learning_rate"]) for r in rows] == pytest.approx([*GRID, *new])
    assert [r["stage"] for r in rows] == ["grid"] * len(GRID) + ["zoom"] * len(new)
    # every finalist and zoom candidate trained the 2 epochs; the stopped one 1
    assert [int(r["epochs"]) for r in rows] == [
        2 if f"learning_rate-{lr}" in finalists else 1 for lr in GRID] + [2] * len(new)
    full = [r for r in rows if r["epochs"] == "2"]
    winner = max(full, key=lambda r: (float(r["value"]), -rows.index(r)))
    assert [r["selected"] == "True" for r in rows] == [r is winner for r in rows]
    chosen = json.loads((work / SELECTION).read_text())
    assert chosen["variants"]["relu"]["values"]["train.learning_rate"] == pytest.approx(
        float(winner["train.learning_rate"]))
    # the effort: every tuning run and the epochs each trained
    assert chosen["effort"]["relu"] == {"runs": len(rows),
                                        "epochs": sum(int(r["epochs"]) for r in rows)}


@pytest.mark.workflow
def test_nothing_reruns_and_status_shows_the_rungs(done):
    work, _ = done
    assert planned_jobs(work, SELECTION) == []
    out = subprocess.run(
        [sys.executable, "-m", "cnnablate", "status", "--directory", str(work)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    assert "stopped at rung 1: not promoted" in out
    assert "rungs: rung 1 (1 epochs) 1 of 2 candidates promoted" in out
    zoom = json.loads((work / f"{STUDY_DIR}/tuning/zoom.json").read_text())["variants"]["relu"]
    for candidate in zoom["candidates"]:  # the zoom's runs are listed too
        assert f"relu/tune-{candidate['name']}/seed1000" in out


@pytest.mark.workflow
def test_adding_a_candidate_trains_only_what_it_must(done, tmp_path):
    """Run to the new rung (its one training job), then the plan: a finalist promoted before
    and after keeps its run (the rest of the plan, the continuations and the zoom, is the
    first run's machinery, tested above)."""
    work = copy_finished(done[0], tmp_path / "wf")
    rung_before = json.loads((work / f"{STUDY_DIR}/tuning/rung1.json").read_text())
    snapshots = {lr: (_run_dir(work, lr) / "rung-1/metrics.json").stat().st_mtime_ns
                 for lr in GRID}
    config = copy.deepcopy(HALVED)
    config["studies"][STUDY]["tune"]["train.learning_rate"].append(0.01)
    write_config(work / "config.yaml", config)
    # before the new candidate's first rung nobody knows the promotions: it and the rung show
    assert planned_jobs(work, SELECTION) == [
        ("select_tuning", STUDY),
        ("train_rung", STUDY, "relu", "learning_rate-0.01", "1000", "1"),
        ("tuning_rung", STUDY, "1"),
    ]
    snakemake(work, "--cores", "1", f"{STUDY_DIR}/tuning/rung1.json")
    for lr in GRID:  # the old candidates' first rung was not trained again
        assert (_run_dir(work, lr) / "rung-1/metrics.json").stat().st_mtime_ns == snapshots[lr]
    after = json.loads((work / f"{STUDY_DIR}/tuning/rung1.json").read_text())[
        "variants"]["relu"]["promoted"]
    assert len(after) == 2  # 3 candidates keep 2
    kept = set(rung_before["variants"]["relu"]["promoted"]) & set(after)
    continuing = {job[3] for job in planned_jobs(work, SELECTION) if job[0] == "train_tuning"}
    # each new finalist continues its rung's run; one promoted before and after trains nothing
    assert continuing == set(after) - kept


# --- the config's refusals (no training) ------------------------------------------------------
def _refusal(**tune) -> str:
    config = copy.deepcopy(HALVED)
    config["studies"][STUDY]["tune"].update(tune)
    with pytest.raises(cnnablate_config.ConfigError) as err:
        cnnablate_config.resolve_tuning(config)
    return str(err.value)


def test_bad_schedules_are_refused_in_one_line_naming_key_and_value():
    assert _refusal(rungs=[2, 1]) == (
        "studies.halved.tune.rungs: [2, 1] must increase (epochs at which each rung decides, "
        "e.g. [1, 2, 5])")
    assert _refusal(rungs=[1, 3]).startswith(
        "studies.halved.tune.rungs: [1, 3] ends beyond the tuning runs' 2 epochs")
    for keep in (0, 1, 1.5):
        assert _refusal(keep=keep).startswith(f"studies.halved.tune.keep: {keep} must lie "
                                              "strictly between 0 and 1")
    assert _refusal(schedule="grid").startswith(
        "studies.halved.tune.rungs: [1, 2] needs schedule: halving")
    config = copy.deepcopy(HALVED)
    tune = config["studies"][STUDY]["tune"]
    tune.pop("train.learning_rate")
    tune.update({"train.optimizer": ["sgd", "adam"], "schedule": "grid"})
    tune.pop("rungs")
    with pytest.raises(cnnablate_config.ConfigError) as err:
        cnnablate_config.resolve_tuning(config)
    assert str(err.value) == (
        "studies.halved.tune.zoom: 1 refines a numeric key around its pick, and no tuned key is "
        "numeric (train.optimizer: ['sgd', 'adam']); remove zoom")
    assert "studies.halved.tune.schedule: 'sometimes' is not one of" in _refusal(
        schedule="sometimes")
    config = copy.deepcopy(HALVED)
    config["studies"][STUDY]["variants"]["relu"]["tune"] = {"zoom": 2}
    with pytest.raises(cnnablate_config.ConfigError, match=r"variants\.relu\.tune\.zoom: set it "
                       r"on the study's `tune:`"):
        cnnablate_config.resolve_tuning(config)
    for line in (_refusal(rungs=[2, 1]), _refusal(keep=0)):
        assert "\n" not in line


def test_schedule_defaults_and_the_grid_unchanged():
    config = copy.deepcopy(HALVED)
    tune = config["studies"][STUDY]["tune"]
    for key in ("rungs", "keep", "zoom"):
        tune.pop(key)
    tune["train.learning_rate"] = [0.003, 0.03, 0.1]
    tune["epochs"] = None
    config["studies"][STUDY]["train"]["epochs"] = 5
    spec = cnnablate_config.resolve_tuning(config).specs[STUDY]["relu"]
    # 3 candidates, 5 epochs: no rungs reach half the grid's 15 epochs; the cheapest, [1, 2, 5]
    # (3 + 2 + 3 = 8; test_halving.py has the default rungs themselves), no zoom
    assert (spec["schedule"], spec["rungs"], spec["keep"], spec["zoom"]) == (
        "halving", [1, 2, 5], 0.5, 0)
    tune.pop("schedule")
    spec = cnnablate_config.resolve_tuning(config).specs[STUDY]["relu"]
    assert (spec["schedule"], spec["rungs"], spec["zoom"]) == ("grid", [5], 0)
    # smoke mode's 1-epoch budget: one rung, every candidate trained straight
    config["smoke"] = True
    tune.update(schedule="halving", rungs=[1, 2, 5])
    spec = cnnablate_config.resolve_tuning(config).specs[STUDY]["relu"]
    assert spec["rungs"] == [1]


def test_default_rungs_are_the_studys_when_the_variants_grids_differ():
    """Every variant is tuned on the same rungs; with grids of 4 and 2 candidates at 5 epochs,
    the study's default keeps both together within half their grid's 30 epochs."""
    config = copy.deepcopy(HALVED)
    study = config["studies"][STUDY]
    study["train"]["epochs"] = 5
    study["tune"] = {"train.learning_rate": [0.001, 0.01, 0.1, 1.0], "seeds": [1000],
                     "schedule": "halving"}
    study["variants"] = {"relu": {}, "elu": {"activation": "elu",
                                             "tune": {"train.learning_rate": [0.01, 0.1]}}}
    specs = cnnablate_config.resolve_tuning(config).specs[STUDY]
    # alone: 4 candidates [1, 3, 5] (4 + 4 + 2 = 10 of 20); 2 candidates nothing under half,
    # the cheapest [1, 5] (2 + 4 = 6 of 10). Together over [r1, r2, 5]: (4 r1 + 2 (r2 - r1) +
    # 5 - r2) + (2 r1 + (5 - r1)) = 3 r1 + r2 + 10 <= 15 leaves r1 = 1, r2 = 2
    assert specs["relu"]["rungs"] == specs["elu"]["rungs"] == [1, 2, 5]
