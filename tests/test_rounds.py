"""Adaptive seeds in the real workflow (a copy of the repo): the seed plan (one schedule for the
rounds and the sequential test's looks), the walk over the rounds' decisions, smoke mode's one
round, `snakemake -n` before and between rounds, bad configs refused, and (marked workflow) a
tiny adaptive study end to end with a stop between rounds."""

from __future__ import annotations

import copy
import json
import time

import pytest

from cnnablate.base import rounds
from cnnablate.base.rounds import all_seeds, n_rounds, round_seeds
from cnnablate.decisions.decide import Design
from cnnablate.workflow.config import ConfigError, load_schema, resolve_runs, study_settings
from cnnablate.workflow.config import validate as validate_config
from tests import tiny
from tests.workflow import copy_workflow, planned_jobs, snakemake, write_config

ADAPTIVE = {
    **tiny.config(ada=tiny.study(
        {"epochs": 1, "batch_size": 32, "learning_rate": 0.05, "max_train_images": 128,
         "max_eval_images": 64},
        seeds={"initial": 3, "max": 6, "step": 3}, min_effect=0.02, baseline="relu",
        variants={"relu": {"activation": "relu"}, "elu": {"activation": "elu"},
                  "dead": {"activation": "relu", "train": {"learning_rate": 1e-6}}},
    )),
}


def test_seed_plan():
    spec = {"initial": 3, "max": 10, "step": 4}
    assert all_seeds(spec) == list(range(10))
    assert n_rounds(spec) == 3
    assert [round_seeds(spec, k) for k in (1, 2, 3)] == [[0, 1, 2], [3, 4, 5, 6], [7, 8, 9]]
    assert n_rounds([4, 7]) == 1 and round_seeds([4, 7], 1) == [4, 7]
    # every potential run up to max resolves (the train rule's params need each one)
    runs = resolve_runs(copy.deepcopy(ADAPTIVE))
    assert sorted({r["seed"] for r in runs}) == list(range(6)) and len(runs) == 18


def test_the_sequential_looks_are_the_rounds_seed_counts():
    # 3 seeds, then 4 more, then the last 3 up to max 10 (and 2, 4, 5 for max 5, step 2)
    assert Design(initial=3, max=10, step=4).look_sizes() == [3, 7, 10]
    assert rounds.look_sizes({"initial": 3, "max": 10, "step": 4}) == [3, 7, 10]
    assert Design(initial=2, max=5, step=2).look_sizes() == [2, 4, 5]
    assert Design().look_sizes(4) == [4]  # the fixed design: one look


def test_the_default_step_is_the_schemas():
    seeds = load_schema()["definitions"]["study"]["properties"]["seeds"]
    (adaptive,) = [s for s in seeds["oneOf"] if s.get("type") == "object"]
    assert adaptive["properties"]["step"]["default"] == rounds.DEFAULT_STEP
    step = rounds.DEFAULT_STEP
    assert rounds.round_seeds({"initial": 1, "max": 9}, 2) == list(range(1, 1 + step))


def test_walk_follows_each_decision_and_waits_for_undecided_ones():
    spec = {"initial": 2, "max": 8, "step": 2}  # four rounds
    decisions = {1: ["a", "b", "c"], 2: ["a"], 3: []}
    asked = []

    def continuing(k):
        asked.append(k)
        return decisions.get(k)

    assert list(rounds.walk(spec, ["a", "b", "c", "d"], continuing)) == [
        (1, ["a", "b", "c", "d"]), (2, ["a", "b", "c"]), (3, ["a"])]
    assert asked == [1, 2, 3]
    # an undecided round narrows nothing: every variant still running may go on
    assert list(rounds.walk(spec, ["a", "b"], lambda k: None)) == [
        (k, ["a", "b"]) for k in (1, 2, 3, 4)]
    # a fixed seed list is one round and asks for no decision
    assert list(rounds.walk([0, 1], ["a"], lambda k: pytest.fail("asked"))) == [(1, ["a"])]


def test_smoke_mode_keeps_one_round_of_adaptive_seeds_and_its_decision():
    config = validate_config({**copy.deepcopy(ADAPTIVE), "smoke": True,
                              "smoke_settings": {"seeds": 2}})
    runs = resolve_runs(config)
    assert sorted({r["seed"] for r in runs}) == [0, 1]
    seeds = study_settings(config, "ada")["decisions"]["seeds"]
    assert rounds.is_adaptive(seeds) and rounds.n_rounds(seeds) == 1
    assert rounds.round_seeds(seeds, 1) == [0, 1]


def test_smoke_dry_run_plans_the_first_rounds_decision(tmp_path):
    work = copy_workflow(tmp_path / "wf")
    jobs = planned_jobs(work, "--config", "smoke=true")  # the default config
    assert ("decide_round", "bn_placement", "1") in jobs
    assert [j for j in jobs if j[0] == "train" and j[1] == "bn_placement"] == [
        ("train", "bn_placement", v, "0") for v in ("after", "before", "none")]


@pytest.mark.parametrize("path, value, key", [
    (("studies", "ada", "seeds"), {"initial": 4, "max": 3, "step": 1}, "studies.ada.seeds.max"),
    (("studies", "ada", "seeds"), {"initial": 3, "max": 6, "step": 0}, "studies.ada.seeds.step"),
    (("studies", "ada", "min_effect"), -0.01, "studies.ada.min_effect"),
    (("report", "alpha"), 1.5, "report.alpha"),
    (("report", "alpha"), 0, "report.alpha"),
])
def test_bad_statistics_config_is_refused_with_its_key(path, value, key):
    config = copy.deepcopy(ADAPTIVE)
    target = config
    for part in path[:-1]:
        target = target.setdefault(part, {})
    target[path[-1]] = value
    with pytest.raises(ConfigError) as err:
        resolve_runs(config)
    assert key in str(err.value)




def _fake_metrics(work, study, variant, seed, value):
    d = work / "results" / "runs" / study / variant / f"seed{seed}"
    d.mkdir(parents=True, exist_ok=True)
    (d / "history.csv").write_text("epoch,loss,accuracy,val_loss,val_accuracy,seconds\n")
    (d / "model.keras").write_text("")
    (d / "metrics.json").write_text(json.dumps({
        "study": study, "variant": variant, "seed": seed, "status": "completed",
        "best_val_accuracy": value, "test_accuracy": value, "final_val_accuracy": value,
        "final_val_loss": 1 - value, "epochs_completed": 1, "seconds_per_epoch": 1.0,
    }))


def test_dry_run_before_and_between_rounds(prepared_copy):
    work = prepared_copy  # the digits are prepared
    write_config(work / "config.yaml", ADAPTIVE)
    jobs = planned_jobs(work, "results/studies/ada/rounds/round1.json")
    trains = sorted(j[1:] for j in jobs if j[0] == "train")
    # before round 1: every variant's first three seeds, and the first decision
    assert trains == sorted((s, v, str(k)) for v in ("relu", "elu", "dead") for s in ["ada"]
                            for k in range(3))
    assert ("decide_round", "ada", "1") in jobs
    # round 1's runs (written here, not trained): dead far below, elu close to relu
    for seed, (relu, elu, dead) in enumerate([(0.90, 0.93, 0.10), (0.91, 0.89, 0.11),
                                              (0.92, 0.915, 0.10)]):
        for variant, value in (("relu", relu), ("elu", elu), ("dead", dead)):
            _fake_metrics(work, "ada", variant, seed, value)
    time.sleep(1)
    snakemake(work, "--cores", "1", "results/studies/ada/rounds/round1.json")
    state = json.loads((work / "results/studies/ada/rounds/round1.json").read_text())
    assert state["continuing"] == ["relu", "elu"]
    assert state["verdicts"]["dead vs relu"] == "worse"
    # between rounds: only the undecided comparison's arms run the next three seeds
    jobs = planned_jobs(work, "results/studies/ada/paired.csv")
    trains = sorted(j[1:] for j in jobs if j[0] == "train")
    assert trains == sorted(("ada", v, str(k)) for v in ("relu", "elu") for k in (3, 4, 5))


# End to end, small: two seeds, then one more, of relu and the variant that cannot learn (a
# first round of two seeds decides nothing, so both go on: test_dry_run_before_and_between_rounds
# has a round that stops a variant)
SMALL_ROUNDS = copy.deepcopy(ADAPTIVE)
SMALL_ROUNDS["studies"]["ada"]["seeds"] = {"initial": 2, "max": 3, "step": 1}
del SMALL_ROUNDS["studies"]["ada"]["variants"]["elu"]


@pytest.mark.workflow
def test_tiny_adaptive_study_end_to_end_with_a_stop_between_rounds(prepared_copy):
    work = prepared_copy  # the digits are prepared
    write_config(work / "config.yaml", SMALL_ROUNDS)
    # stop after round 1's decision (as if killed between rounds) ...
    snakemake(work, "--cores", "2", "results/studies/ada/rounds/round1.json")
    state = json.loads((work / "results/studies/ada/rounds/round1.json").read_text())
    runs = work / "results/runs/ada"
    round1 = {p: p.stat().st_mtime for p in runs.glob("*/seed*/metrics.json")}
    assert len(round1) == 4
    assert state["continuing"], "round 1 decided everything: no round to resume"
    # ... and resume: no finished seed is redone, only the continuing variants get seed 2
    snakemake(work, "--cores", "2", "report/index.html")
    for path, mtime in round1.items():
        assert path.stat().st_mtime == mtime
    ran = sorted(p.parent.parent.name + "/" + p.parent.name
                 for p in (work / "results/runs/ada").glob("*/seed*/metrics.json"))
    expected = {f"{v}/seed{k}" for v in ("relu", "dead") for k in range(2)}
    expected |= {f"{v}/seed2" for v in state["continuing"]}
    assert set(ran) == expected
    paired = (work / "results/studies/ada/paired.csv").read_text()
    assert "verdict" in paired.splitlines()[0]
    html = (work / "report/index.html").read_text()
    assert "did not learn" in html  # dead stays at chance (lr 1e-6)
    # the same config again: nothing to do
    assert [j for j in planned_jobs(work) if j[0] == "train"] == []
