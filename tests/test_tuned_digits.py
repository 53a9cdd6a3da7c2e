"""studies/tuned_digits.yaml stays the controlled comparison its measurements describe.

Reads the file as YAML only (no training, no Snakemake): the two studies differ in nothing but
`tune:`, the tuning seeds never decide, the shared learning rate is one of the grid's, and the
benchmark that measured it trains exactly the study's settings. The end-to-end check of the
tuned verdict needs the `tune:` workflow (issue #21) and trains; it is not here.
"""

from __future__ import annotations

import importlib.util

import yaml

from tests.workflow import ROOT

STUDY_FILE = ROOT / "studies" / "tuned_digits.yaml"
SHARED, TUNED = "sgd_momentum_shared_lr", "sgd_momentum_tuned"


def _studies() -> dict:
    return yaml.safe_load(STUDY_FILE.read_text())["studies"]


def _benchmark():
    spec = importlib.util.spec_from_file_location("tuned_digits_bench",
                                                  ROOT / "benchmarks" / "tuned_digits.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_two_studies_differ_only_in_tuning():
    studies = _studies()
    shared, tuned = dict(studies[SHARED]), dict(studies[TUNED])
    assert "tune" not in shared and "tune" in tuned
    tuned.pop("tune")
    for study in (shared, tuned):
        study.pop("description")
    assert shared == tuned


def test_tuning_chooses_on_validation_of_seeds_that_never_decide():
    tuned = _studies()[TUNED]
    tune = tuned["tune"]
    assert tuned["eval_split"] == "test" and tune["metric"] == "best_val_accuracy"
    assert tune["seeds"] and not set(tune["seeds"]) & set(tuned["seeds"])
    grid = tune["train.learning_rate"]
    assert grid == sorted(grid) and len(set(grid)) == len(grid)
    # The untuned study's one rate is a candidate, so its runs are ones tuning could pick.
    assert _studies()[SHARED]["train"]["learning_rate"] in grid


def test_the_measurements_trained_the_study_settings():
    bench = _benchmark()
    tuned = _studies()[TUNED]
    config = bench.measurement_config()
    variants = {v: spec for s in config["studies"].values() for v, spec in s["variants"].items()}
    for study in config["studies"].values():
        for key in ("dataset", "image_size", "model", "activation", "norm", "eval_split"):
            assert study[key] == tuned[key]
        assert {k: v for k, v in study["train"].items() if k != "learning_rate"} == {
            k: v for k, v in tuned["train"].items() if k != "learning_rate"}
    for arm, spec in tuned["variants"].items():
        momentum = spec["train"]["momentum"]
        for lr in tuned["tune"]["train.learning_rate"]:
            assert variants[bench._variant(arm, lr)]["train"] == {
                "momentum": momentum, "learning_rate": lr}
    tuning = set(tuned["tune"]["seeds"])
    assert tuning <= set(config["studies"]["meas_hi"]["seeds"])
    assert set(tuned["seeds"]) | tuning <= set(config["studies"]["meas"]["seeds"])


def test_the_tuned_studys_deciding_runs_are_trained_not_copied_from_the_shared_one(tmp_path):
    # Before its selection a tuned study's deciding runs resolve to the study's own learning
    # rate, the shared study's: they looked identical and were copied from it (issue 22's
    # shared runs), so the "tuned" verdict was the shared one's. They must train.
    from tests.workflow import copy_workflow, planned_jobs

    work = copy_workflow(tmp_path / "wf")
    jobs = planned_jobs(work, "--configfile", str(STUDY_FILE))
    assert not [job for job in jobs if job[0] == "share_run"]
    assert ("train", SHARED, "plain", "0") in jobs
