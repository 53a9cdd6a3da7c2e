"""docs/extending.md's examples, executed: a new activation, model, dataset source and figure
added to a copy of the repository exactly as the page shows, then a dry run (the job counts) and
one tiny run of the page's study to its report."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.test_architecture import backward, cycles, subpackage_edges
from tests.workflow import ROOT, copy_workflow, planned_jobs, snakemake

pytestmark = pytest.mark.workflow

DOC = ROOT / "docs" / "extending.md"
BLOCK = re.compile(r"^```\w+ (file|append)=(\S+)\n(.*?)^```$", re.S | re.M)


def blocks() -> list[tuple[str, str, str]]:
    """(action, path, text) of every executable block of the page, in order."""
    return BLOCK.findall(DOC.read_text())


def apply(work: Path) -> None:
    """Apply the page's blocks to the copy at `work`."""
    for action, path, text in blocks():
        target = work / path
        if action == "file":
            assert not target.exists(), f"{path} exists already"
            target.write_text(text)
        else:
            target.write_text(target.read_text() + "\n" + text)


def test_each_extension_touches_only_its_module_and_registry():
    assert {path for _, path, _ in blocks()} == {
        # activation: a factory line and a registry entry
        "cnnablate/zoo/activations.py", "cnnablate/base/catalog.py",
        # model, dataset source, figure: a module each (+ the figure's caption)
        "cnnablate/zoo/models/tiny_cnn.py", "cnnablate/data/stripes.py",
        "cnnablate/reporting/figure_seconds.py", "report/captions/seconds_per_epoch.rst",
        # the example study
        "studies/extending_example.yaml",
    }


@pytest.fixture(scope="module")
def extended(tmp_path_factory) -> Path:
    work = copy_workflow(tmp_path_factory.mktemp("ext") / "wf")
    apply(work)
    return work


def test_the_extensions_keep_the_floors(extended):
    """Each new module lives in its stage's subpackage and imports only from lower floors."""
    edges = subpackage_edges(extended / "cnnablate")
    assert backward(edges) == [] and cycles(edges) == []


def test_the_example_study_plans_every_stage(extended):
    jobs = planned_jobs(extended, "--configfile", "studies/extending_example.yaml")
    assert jobs == sorted([
        ("prepare_dataset", "stripes"),
        ("train", "extending_example", "relu", "0"),
        ("train", "extending_example", "softsign", "0"),
        ("aggregate", "extending_example"),
        ("paper_table", "extending_example"),
        ("figures", "extending_example"),
        ("report",),
    ])


def test_a_wrong_model_option_is_refused_with_the_new_models_options(extended):
    config = extended / "studies" / "extending_example.yaml"
    bad = extended / "bad.yaml"
    bad.write_text(config.read_text().replace("dropout: false", "dropuot: false"))
    proc = snakemake(extended, "-n", "--configfile", str(bad), check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "studies.extending_example.model.dropuot" in out and "'tiny_cnn'" in out


def test_the_example_study_runs_to_its_report(extended):
    snakemake(extended, "--cores", "2", "--configfile", "studies/extending_example.yaml")
    meta = json.loads((extended / "results/data/stripes/meta.json").read_text())
    assert meta["class_names"] == ["horizontal", "vertical"] and meta["image_shape"] == [8, 8, 1]
    for variant in ("relu", "softsign"):
        metrics = json.loads(
            (extended / f"results/runs/extending_example/{variant}/seed0/metrics.json").read_text()
        )
        assert metrics["status"] == "completed" and metrics["run_config"]["model"]["name"] == (
            "tiny_cnn")
    figure = extended / "report/figures/extending_example/seconds_per_epoch.png"
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert figure.with_suffix(".pdf").read_bytes().startswith(b"%PDF-")  # saved by save_figure
    html = (extended / "report/index.html").read_text()
    assert 'src="figures/extending_example/seconds_per_epoch.png"' in html
    assert "Seconds per training epoch, mean over seeds and epochs" in html
    # A second run has nothing to do.
    assert planned_jobs(extended, "--configfile", "studies/extending_example.yaml") == []
