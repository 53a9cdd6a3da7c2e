"""Only what changed reruns, by content: each job's code fingerprint
(cnnablate/workflow/fingerprint.py).

One tiny real run of two studies (All-CNN-C and NIN on digits, 2 runs each), then code edits in
copies of it and dry runs. Expected job lists are written out by hand.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from cnnablate.workflow import fingerprint
from tests.workflow import copy_workflow, planned_jobs, snakemake, write_config

TRAIN = {"epochs": 1, "batch_size": 32, "max_train_images": 64, "max_eval_images": 32}
MIXED = {
    "datasets": {"digits": {"source": "sklearn_digits"}},
    "studies": {
        "cnn": {
            "dataset": "digits", "image_size": 16, "model": {"name": "all_cnn_c", "width": 0.1},
            "train": TRAIN, "seeds": [0],
            "variants": {"relu": {"activation": "relu"}, "elu": {"activation": "elu"}},
        },
        "net": {
            "dataset": "digits", "image_size": 16, "model": {"name": "nin", "width": 0.1},
            "train": TRAIN, "seeds": [0],
            "variants": {"relu": {"activation": "relu"}, "elu": {"activation": "elu"}},
        },
    },
}

NIN_RUNS = [("train", "net", "elu", "0"), ("train", "net", "relu", "0")]
CNN_RUNS = [("train", "cnn", "elu", "0"), ("train", "cnn", "relu", "0")]
TABLES = [("aggregate", "cnn"), ("aggregate", "net")]
FIGURES = [("figures", "cnn"), ("figures", "net")]
PAPER = [("paper_table", "cnn"), ("paper_table", "net")]  # made from the tables


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    work = copy_workflow(tmp_path_factory.mktemp("fp") / "wf")
    write_config(work / "config.yaml", MIXED)
    snakemake(work, "--cores", "2", "report/index.html")
    return work


@pytest.fixture
def work(done, tmp_path) -> Path:
    """A copy of the finished run (code and results, times kept) to edit code in."""
    return Path(shutil.copytree(done, tmp_path / "wf", symlinks=True))


def python_files(work: Path) -> list[Path]:
    return sorted([*(work / "cnnablate").rglob("*.py"), *(work / "scripts").glob("*.py")])


def later(path: Path) -> None:
    stamp = time.time() + 10
    os.utime(path, (stamp, stamp))


def add_code(path: Path) -> None:
    """A real change of the module's code (a new module-level statement)."""
    path.write_text(path.read_text() + "\nFINGERPRINT_TEST_CHANGE = 1\n")
    later(path)


def test_nothing_changed_plans_nothing(done):
    assert planned_jobs(done) == []


def test_touching_every_module_plans_nothing(work):
    for path in python_files(work):
        later(path)
    assert planned_jobs(work) == []


def test_comments_and_docstrings_plan_nothing(work):
    for path in python_files(work):
        text = path.read_text()
        assert text.startswith('"""'), path  # every module has a docstring to edit
        path.write_text('"""Edited docstring. ' + text[3:] + "\n# an added comment\n")
        later(path)
    assert planned_jobs(work) == []


def test_editing_nin_reruns_only_nin_runs_and_their_study(work):
    add_code(work / "cnnablate/zoo/models/nin.py")
    assert planned_jobs(work) == sorted(
        [*NIN_RUNS, ("aggregate", "net"), ("figures", "net"), ("report",)]
    )
    assert len(planned_jobs(work)) == 5


def test_dry_run_names_the_changed_module(work):
    add_code(work / "cnnablate/zoo/models/nin.py")
    proc = snakemake(work, "-n")
    text = proc.stdout + proc.stderr
    assert "Params have changed since last execution" in text
    assert "cnnablate/zoo/models/nin.py:" in text
    changed = snakemake(work, "--list-changes", "params").stdout.split()
    assert sorted(p for p in changed if p.endswith("metrics.json")) == [
        "results/runs/net/elu/seed0/metrics.json", "results/runs/net/relu/seed0/metrics.json"]


def test_editing_stats_reruns_only_tables_figures_and_report(work):
    add_code(work / "cnnablate/decisions/stats.py")
    assert planned_jobs(work) == sorted([*TABLES, *PAPER, *FIGURES, ("report",)])
    assert len(planned_jobs(work)) == 7


def test_editing_figure_code_reruns_figures_and_report(work):
    add_code(work / "cnnablate/reporting/figures.py")
    assert planned_jobs(work) == sorted([*FIGURES, ("report",)])


@pytest.mark.parametrize(
    "module", ["training/train.py", "zoo/models/layers.py", "zoo/activations.py"]
)
def test_editing_code_every_run_executes_reruns_every_run(work, module):
    add_code(work / "cnnablate" / module)
    assert planned_jobs(work) == sorted([*CNN_RUNS, *NIN_RUNS, *TABLES, *PAPER, *FIGURES,
                                         ("report",)])
    assert len(planned_jobs(work)) == 11


@pytest.mark.parametrize(
    "module",
    ["workflow/smk.py", "workflow/provenance.py", "training/gpu.py", "mobilenet_v2"],
)
def test_editing_code_no_run_executes_for_its_results_plans_nothing(work, module):
    path = work / "cnnablate" / (module if module.endswith(".py") else f"zoo/models/{module}.py")
    add_code(path)
    assert planned_jobs(work) == []


def test_editing_a_resource_coefficient_plans_nothing(work):
    path = work / "cnnablate/workflow/catalog.py"
    text = path.read_text()
    assert 'images_per_s={"cpu": 8.0, "gpu": 800.0}' in text
    path.write_text(text.replace('images_per_s={"cpu": 8.0, "gpu": 800.0}',
                                 'images_per_s={"cpu": 9.0, "gpu": 900.0}'))
    later(path)
    assert planned_jobs(work) == []


def test_changing_an_activation_default_reruns_only_its_runs(work):
    path = work / "cnnablate/workflow/catalog.py"
    text = path.read_text()
    assert '"elu": {"alpha": 1.0},' in text
    path.write_text(text.replace('"elu": {"alpha": 1.0},', '"elu": {"alpha": 0.5},'))
    later(path)
    assert planned_jobs(work) == sorted(
        [("train", "cnn", "elu", "0"), ("train", "net", "elu", "0"), *TABLES, *PAPER, *FIGURES,
         ("report",)]
    )


# Unit level: the closure is derived from imports, the digest ignores docstrings and comments.

def test_closure_of_a_nin_run_covers_nin_and_shared_layers_only():
    files = {p.relative_to(fingerprint.ROOT).as_posix()
             for p in fingerprint.closure([fingerprint.ROOT / "scripts/train.py",
                                           fingerprint.module_file("cnnablate.zoo.models.nin")])}
    assert {"cnnablate/zoo/models/nin.py", "cnnablate/zoo/models/layers.py",
            "cnnablate/training/train.py", "cnnablate/zoo/activations.py",
            "cnnablate/zoo/initializers.py"} <= files
    assert not {"cnnablate/zoo/models/mobilenet_v2.py", "cnnablate/zoo/models/all_cnn.py",
                "cnnablate/workflow/smk.py", "cnnablate/workflow/provenance.py",
                "cnnablate/workflow/config.py",
                "cnnablate/training/gpu.py", "cnnablate/decisions/stats.py"} & files


def test_digest_ignores_docstrings_comments_and_layout(tmp_path):
    a, b, c = tmp_path / "a.py", tmp_path / "b.py", tmp_path / "c.py"
    a.write_text('"""Doc."""\ndef f(x):\n    """Doc."""\n    return x + 1\n')
    b.write_text('"""Other."""\n# comment\ndef f(x):\n\n    return (x +\n            1)  # why\n')
    c.write_text("def f(x):\n    return x + 2\n")
    assert fingerprint.source_digest(a) == fingerprint.source_digest(b)
    assert fingerprint.source_digest(a) != fingerprint.source_digest(c)
