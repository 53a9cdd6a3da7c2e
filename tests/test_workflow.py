"""The workflow end to end on the session's finished tiny workflow (tests/tiny.py, the
`finished` fixture of tests/conftest.py): the paths contract, the report, runs shared between
studies, a dry run that writes nothing, and that only changed experiments rerun."""

from __future__ import annotations

import copy
import csv
import json
import os
import shutil
from pathlib import Path

import pytest
import yaml

from tests.tiny import FINISHED, FINISHED_RUNS, FINISHED_SHARED, TINY_STUDY
from tests.workflow import ROOT, copy_workflow, planned_jobs, snakemake, write_config

pytestmark = pytest.mark.workflow

STUDIES = ("acts", TINY_STUDY, "other")


@pytest.fixture
def done(finished) -> Path:
    """The finished tiny workflow (read only)."""
    return finished.work


def test_default_config_plans_one_train_job_per_variant_and_seed(tmp_path):
    work = copy_workflow(tmp_path / "wf")
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    jobs = planned_jobs(work)
    from cnnablate.base.ids import run_id
    from cnnablate.base.rounds import round_seeds
    from cnnablate.workflow.config import resolve_runs

    # adaptive seeds: only the first round's seeds are planned before its decision
    first = {name: set(round_seeds(st["seeds"], 1)) for name, st in config["studies"].items()}
    planned = [run_id(r) for r in resolve_runs(config) if r["seed"] in first[r["study"]]]
    # initializers' he_normal is activations' relu (init auto is he_normal for relu): the same
    # model, data, settings and seeds, trained once and copied
    shared = {("initializers", "he_normal", 0), ("initializers", "he_normal", 1)}
    assert sorted(j for j in jobs if j[0] == "train") == sorted(
        ("train", s, v, str(n)) for s, v, n in planned if (s, v, n) not in shared)
    assert sorted(j for j in jobs if j[0] == "share_run") == [
        ("share_run", f"{s}/{v}/seed{n}") for s, v, n in sorted(shared)]
    assert [j for j in jobs if j[0] == "prepare_dataset"] == [("prepare_dataset", "digits")]


def test_paths_contract(done):
    data = done / "results/data/digits"
    for split in ("train", "val", "test"):
        assert (data / f"{split}_images.npy").exists() and (data / f"{split}_labels.npy").exists()
    meta = json.loads((data / "meta.json").read_text())
    assert meta["class_names"] == [str(i) for i in range(10)] and meta["counts"]["train"] > 1000
    for study, variant, seed in FINISHED_RUNS:
        run = done / f"results/runs/{study}/{variant}/seed{seed}"
        for name in ("history.csv", "metrics.json", "model.keras", "predictions.npy"):
            assert (run / name).exists(), run / name
        assert not (run / ".resume").exists()
    for study in STUDIES:
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


def test_a_run_shared_between_studies_is_trained_once_and_copied(done, finished):
    out = finished.stdout + finished.stderr
    for (study, variant, seed), source in FINISHED_SHARED.items():
        copy_dir = done / f"results/runs/{study}/{variant}/seed{seed}"
        source_dir = done / "results/runs/{}/{}/seed{}".format(*source)
        assert not (done / f"logs/train/{study}/{variant}/seed{seed}.log").exists()
        assert f"study={study} variant={variant} seed={seed}" not in out  # no train job
        for name in ("history.csv", "model.keras", "predictions.npy"):
            assert (copy_dir / name).read_bytes() == (source_dir / name).read_bytes()
        copied = json.loads((copy_dir / "metrics.json").read_text())
        trained = json.loads((source_dir / "metrics.json").read_text())
        assert (copied["study"], copied["variant"]) == (study, variant)
        assert copied["trained_as"] == "results/runs/{}/{}/seed{}".format(*source)
        assert copied["run_config"]["study"] == study
        labels = {"study", "variant", "trained_as", "run_config"}
        assert {k: v for k, v in copied.items() if k not in labels} == {
            k: v for k, v in trained.items() if k not in labels}
        # both studies' tables hold the one run's numbers
        with open(done / f"results/studies/{study}/runs.csv") as fh:
            row = next(r for r in csv.DictReader(fh) if (r["variant"], r["seed"]) == (
                variant, str(seed)))
        # (runs.csv has it on its count grid: the float32 value within its rounding)
        assert float(row["best_val_accuracy"]) == pytest.approx(trained["best_val_accuracy"],
                                                                abs=1e-7)


def test_a_copied_run_carries_its_tensorboard_events(done):
    """`tensorboard --logdir results/runs/<study>` shows a copied run as well: its folder holds
    the trained run's event files, byte for byte."""
    for (study, variant, seed), source in FINISHED_SHARED.items():
        copied = done / f"results/runs/{study}/{variant}/seed{seed}/tensorboard"
        trained = done / "results/runs/{}/{}/seed{}/tensorboard".format(*source)
        events = sorted(p.relative_to(trained) for p in trained.rglob("*") if p.is_file())
        assert any("tfevents" in p.name for p in events), events
        assert sorted(p.relative_to(copied) for p in copied.rglob("*") if p.is_file()) == events
        for rel in events:
            assert (copied / rel).read_bytes() == (trained / rel).read_bytes()


def test_report_shows_tables_figures_and_escapes_user_text(done):
    html = (done / "report/index.html").read_text()
    assert "Tiny &lt;b&gt;activation&lt;/b&gt; study" in html
    assert "<b>activation</b>" not in html
    for study in STUDIES:
        assert f'id="study-{study}"' in html
        for fig in ("learning_curves", "final_metric", "activation_functions",
                    "activation_statistics"):
            png = done / f"report/figures/{study}/{fig}.png"
            assert png.stat().st_size > 5000
        # drawn on the page, so linked; the rest shown (the activation figure only where the
        # variants' activations differ: `other` has one variant)
        for fig in ("learning_curves", "final_metric"):
            assert f'href="figures/{study}/{fig}.png"' in html
        assert f'src="figures/{study}/activation_statistics.png"' in html
        assert (f'src="figures/{study}/activation_functions.png"' in html) == (study != "other")
    # inside the report's folder: a copy of the run's history
    assert 'href="results/runs/acts/relu/seed0/history.csv"' in html
    assert ((done / "report/results/runs/acts/relu/seed0/history.csv").read_bytes()
            == (done / "results/runs/acts/relu/seed0/history.csv").read_bytes())


def test_each_job_is_a_line_or_two_without_its_code_inputs(finished):
    """What the user sees of the finished run: a line per job, naming its log."""
    out = (finished.stdout + finished.stderr).splitlines()
    for variant in ("relu", "elu"):
        described = [line for line in out if f"study=acts variant={variant} seed=0" in line]
        assert len(described) == 1, described
        assert f"logs/train/acts/{variant}/seed0.log" in described[0]
    assert not any("cnnablate/training/train.py" in line for line in out)  # no code inputs listed
    assert not any(line.strip().startswith(("input:", "output:")) for line in out)
    assert "Traceback" not in finished.stdout + finished.stderr


def test_second_run_does_nothing(done):
    assert planned_jobs(done) == []


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under `root` with its size and modification time."""
    out = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            stat = path.lstat()
            out[str(path.relative_to(root))] = (stat.st_size, stat.st_mtime_ns)
    return out


def test_dry_run_leaves_the_tree_as_it_found_it(finished_copy):
    """Even where results are missing under built ones (the stale case, which plans a marker
    for the study), `snakemake -n` writes nothing: not the marker, not a log."""
    shutil.rmtree(finished_copy / "results/runs/acts/elu/seed1")
    before = _tree(finished_copy)
    jobs = planned_jobs(finished_copy)
    assert ("train", "acts", "elu", "1") in jobs and ("mark_stale", "acts") in jobs
    after = _tree(finished_copy)
    assert {k: v for k, v in after.items() if not k.startswith(".snakemake")} == {
        k: v for k, v in before.items() if not k.startswith(".snakemake")}


def _edited(done: Path, tmp_path: Path, edit) -> list[tuple]:
    config = copy.deepcopy(FINISHED)
    edit(config)
    path = write_config(tmp_path / "edited.yaml", config)
    return planned_jobs(done, "--configfile", str(path))


DOWNSTREAM_ACTS = [("aggregate", "acts"), ("paper_table", "acts"), ("figures", "acts"),
                   ("report",)]


def test_editing_one_variant_reruns_only_that_variant(done, tmp_path):
    def edit(config):
        config["studies"]["acts"]["variants"]["elu"]["train"] = {"learning_rate": 0.01}

    # tiny's elu was acts's elu seed 0, copied; now that they differ it trains on its own
    assert _edited(done, tmp_path, edit) == sorted(
        [("train", "acts", "elu", "0"), ("train", "acts", "elu", "1"), *DOWNSTREAM_ACTS,
         ("train", TINY_STUDY, "elu", "0"), ("aggregate", TINY_STUDY),
         ("paper_table", TINY_STUDY), ("figures", TINY_STUDY)]
    )


def test_editing_a_study_setting_reruns_that_study(done, tmp_path):
    def edit(config):
        config["studies"]["other"]["train"]["batch_size"] = 16

    assert _edited(done, tmp_path, edit) == sorted(
        [("train", "other", "prelu", "0"), ("aggregate", "other"), ("paper_table", "other"),
         ("figures", "other"), ("report",)])


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
    config = copy.deepcopy(FINISHED)
    edit(config)
    write_config(work / "config.yaml", config)
    proc = snakemake(work, "--cores", "1", check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    for word in words:
        assert word in output
    assert not (work / "results").exists() and not (work / "logs").exists()
