"""The workflow end to end on a tiny config, in a copy of the repo: the paths contract, the
report, and that only changed experiments rerun."""

from __future__ import annotations

import copy
import csv
import json
import time
from pathlib import Path

import pytest
import yaml

from tests.workflow import ROOT, copy_workflow, planned_jobs, snakemake, write_config

pytestmark = pytest.mark.workflow

TINY = {
    "datasets": {"digits": {"source": "sklearn_digits"}},
    "studies": {
        "acts": {
            "description": "Tiny <b>activation</b> study",
            "dataset": "digits",
            "image_size": 16,
            "model": {"name": "all_cnn_c", "width": 0.125},
            "train": {"epochs": 2, "batch_size": 32, "learning_rate": 0.05,
                      "max_train_images": 192, "max_eval_images": 96},
            "seeds": [0, 1],
            "baseline": "relu",
            "variants": {"relu": {"activation": "relu"}, "elu": {"activation": "elu"}},
        },
        "other": {
            "dataset": "digits",
            "image_size": 16,
            "model": {"name": "nin", "width": 0.125},
            "train": {"epochs": 1, "batch_size": 32, "max_train_images": 128,
                      "max_eval_images": 64},
            "seeds": [0],
            "variants": {"prelu": {"activation": "prelu"}},
        },
    },
}


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    """The tiny config run to the end once; tests below inspect or dry-run on top of it."""
    work = copy_workflow(tmp_path_factory.mktemp("wf"))
    write_config(work / "config.yaml", TINY)
    snakemake(work, "--cores", "2", "report/index.html")
    return work


def test_default_config_plans_one_train_job_per_variant_and_seed(tmp_path):
    work = copy_workflow(tmp_path / "wf")
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    jobs = planned_jobs(work)
    trains = [j for j in jobs if j[0] == "train"]
    from cnnablate.decisions.rounds import round_seeds
    from cnnablate.workflow.config import resolve_runs, run_id

    # adaptive seeds: only the first round's seeds are planned before its decision
    first = {name: set(round_seeds(st["seeds"], 1)) for name, st in config["studies"].items()}
    expected = sorted(("train", s, v, str(n)) for s, v, n in map(run_id, resolve_runs(config))
                      if n in first[s])
    assert trains == expected
    assert len(trains) == len(set(trains))
    assert [j for j in jobs if j[0] == "prepare_dataset"] == [("prepare_dataset", "digits")]


def test_paths_contract(done):
    data = done / "results/data/digits"
    for split in ("train", "val", "test"):
        assert (data / f"{split}_images.npy").exists() and (data / f"{split}_labels.npy").exists()
    meta = json.loads((data / "meta.json").read_text())
    assert meta["class_names"] == [str(i) for i in range(10)] and meta["counts"]["train"] > 1000
    for study, variant, seed in [("acts", "relu", 0), ("acts", "elu", 1), ("other", "prelu", 0)]:
        run = done / f"results/runs/{study}/{variant}/seed{seed}"
        for name in ("history.csv", "metrics.json", "model.keras"):
            assert (run / name).exists(), run / name
        assert not (run / ".resume").exists()
    for study in ("acts", "other"):
        for name in ("runs.csv", "summary.csv", "paired.csv"):
            assert (done / f"results/studies/{study}/{name}").exists()
    assert (done / "report/index.html").exists()
    assert (done / "logs/train/acts/relu/seed0.log").read_text().count("epoch ") >= 2
    assert (done / "results/benchmarks/train/acts/relu/seed0.tsv").exists()


def test_history_and_metrics_contents(done):
    run = done / "results/runs/acts/elu/seed1"
    with open(run / "history.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds"]
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    m = json.loads((run / "metrics.json").read_text())
    for key in ("study", "variant", "seed", "status", "epochs_completed", "best_val_accuracy",
                "best_epoch", "final_val_accuracy", "final_val_loss", "test_accuracy",
                "parameters", "train_seconds", "run_config", "provenance"):
        assert key in m, key
    assert (m["study"], m["variant"], m["seed"], m["status"]) == ("acts", "elu", 1, "completed")
    assert m["epochs_completed"] == 2
    assert m["best_val_accuracy"] == max(float(r["val_accuracy"]) for r in rows)
    assert m["final_val_accuracy"] == float(rows[-1]["val_accuracy"])
    assert 0.0 <= m["test_accuracy"] <= 1.0 and m["parameters"] > 0
    assert m["run_config"]["activation"] == "elu" and m["run_config"]["threads"] == 1
    prov = m["provenance"]
    assert prov["packages"]["keras"] and len(prov["dataset_checksum"]) == 64
    assert prov["config_hash"]
    stats = m["activation_stats"]
    assert stats and all(0 <= s["dead_fraction"] <= 1 for s in stats)


def test_tables(done):
    with open(done / "results/studies/acts/runs.csv") as fh:
        runs = list(csv.DictReader(fh))
    assert sorted((r["variant"], r["seed"]) for r in runs) == [
        ("elu", "0"), ("elu", "1"), ("relu", "0"), ("relu", "1")]
    with open(done / "results/studies/acts/summary.csv") as fh:
        summary = {r["variant"]: r for r in csv.DictReader(fh)}
    assert set(summary) == {"relu", "elu"} and summary["relu"]["n"] == "2"
    values = [float(r["best_val_accuracy"]) for r in runs if r["variant"] == "relu"]
    assert float(summary["relu"]["best_val_accuracy_mean"]) == pytest.approx(sum(values) / 2)


def test_report_shows_tables_figures_and_escapes_user_text(done):
    html = (done / "report/index.html").read_text()
    assert "Tiny &lt;b&gt;activation&lt;/b&gt; study" in html
    assert "<b>activation</b>" not in html
    for study in ("acts", "other"):
        assert f'id="study-{study}"' in html
        for fig in ("learning_curves", "final_metric", "activation_functions",
                    "activation_statistics"):
            png = done / f"report/figures/{study}/{fig}.png"
            assert png.stat().st_size > 5000
            assert f'src="figures/{study}/{fig}.png"' in html
    assert 'href="../results/runs/acts/relu/seed0/history.csv"' in html


def test_second_run_does_nothing(done):
    assert planned_jobs(done) == []


def _edited(done: Path, edit) -> list[tuple]:
    config = copy.deepcopy(TINY)
    edit(config)
    path = write_config(done / "edited.yaml", config)
    return planned_jobs(done, "--configfile", str(path))


DOWNSTREAM_ACTS = [("aggregate", "acts"), ("paper_table", "acts"), ("figures", "acts"),
                   ("report",)]


def test_editing_one_variant_reruns_only_that_variant(done):
    def edit(config):
        config["studies"]["acts"]["variants"]["elu"]["train"] = {"learning_rate": 0.01}

    assert _edited(done, edit) == sorted(
        [("train", "acts", "elu", "0"), ("train", "acts", "elu", "1"), *DOWNSTREAM_ACTS]
    )


def test_editing_a_study_setting_reruns_that_study(done):
    def edit(config):
        config["studies"]["acts"]["train"]["batch_size"] = 16

    assert _edited(done, edit) == sorted(
        [("train", "acts", v, s) for v in ("relu", "elu") for s in ("0", "1")] + DOWNSTREAM_ACTS
    )


def _touch(path: Path) -> None:
    later = time.time() + 5
    path.write_text(path.read_text() + "\nEDITED = 1\n")  # code, not a comment
    import os

    os.utime(path, (later, later))


def _clone(done: Path, tmp_path: Path) -> Path:
    """A copy of the finished run, code and results with their times, to edit code in."""
    import shutil

    return Path(shutil.copytree(done, tmp_path / "wf", symlinks=True))


def test_changing_a_model_reruns_only_its_runs(done, tmp_path):
    work = _clone(done, tmp_path)
    assert planned_jobs(work) == []
    _touch(work / "cnnablate/zoo/models/all_cnn.py")
    trains = [j for j in planned_jobs(work) if j[0] == "train"]
    assert trains == sorted(
        [("train", "acts", v, s) for v in ("relu", "elu") for s in ("0", "1")]
    )


def test_changing_report_code_reruns_only_the_report_side(done, tmp_path):
    work = _clone(done, tmp_path)
    _touch(work / "cnnablate/reporting/report.py")
    assert planned_jobs(work) == [("report",)]


@pytest.mark.parametrize(
    "edit,words",
    [
        (lambda c: c["studies"]["acts"]["variants"]["elu"].update(activation="sleu"),
         ["studies.acts.variants.elu.activation", "'sleu'"]),
        (lambda c: c["studies"]["acts"]["train"].update(epoch=3), ["'epoch'"]),
    ],
    ids=["unknown activation", "misspelled key"],
)
def test_bad_config_stops_snakemake_before_any_job(tmp_path, edit, words):
    work = copy_workflow(tmp_path / "wf")
    config = copy.deepcopy(TINY)
    edit(config)
    write_config(work / "config.yaml", config)
    proc = snakemake(work, "--cores", "1", check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    for word in words:
        assert word in output
    assert not (work / "results").exists() and not (work / "logs").exists()
