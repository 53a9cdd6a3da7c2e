"""The workflow's paper outputs end to end, on the tiny finished workflow shared with the
whole session (tests/conftest.py's `finished`): table.tex / table.md per study and a PDF beside
every figure, linked from the report; `cnnablate export mlflow` of the real runs' files,
twice."""

from __future__ import annotations

import re

import pytest

from cnnablate.__main__ import main
from cnnablate.base import catalog
from tests.tiny import FINISHED_RUNS, TINY_STUDY, TINY_VARIANTS, TRAIN
from tests.workflow import planned_jobs

pytestmark = pytest.mark.workflow


@pytest.fixture
def work(finished):
    return finished.work  # read only


def test_tables_and_pdfs_are_made_and_linked(work):
    tables = work / "results" / "studies" / TINY_STUDY
    tex, md = (tables / "table.tex").read_text(), (tables / "table.md").read_text()
    for variant in TINY_VARIANTS:
        assert re.search(rf"^{variant}(\$\^\\dagger\$)? & ", tex, re.M), variant
        assert re.search(rf"^\| {variant}( \(baseline\))? \| ", md, re.M), variant
    assert "\\toprule" in tex and "\\bottomrule" in tex
    # the rate the tiny config trains at (tests/tiny.py's TRAIN), from the rule's params
    assert f"Every variant trained at learning rate {TRAIN['learning_rate']:g}." in tex
    html = (work / "report" / "index.html").read_text()
    for name in catalog.FIGURES:
        pdf = work / "report" / "figures" / TINY_STUDY / f"{name}.pdf"
        assert pdf.read_bytes().startswith(b"%PDF-"), name
        assert f'href="figures/{TINY_STUDY}/{name}.pdf"' in html
    for kind in ("tex", "md"):
        assert f'href="../results/studies/{TINY_STUDY}/table.{kind}"' in html
    assert planned_jobs(work) == []  # nothing changed: nothing to rebuild


def test_export_mlflow_of_the_real_runs(work, tmp_path, capsys):
    mlflow = pytest.importorskip("mlflow", reason="pip install -r requirements-mlflow.txt")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"  # not in the shared workflow's folder
    n = len(FINISHED_RUNS)  # every study's runs, the copied ones too
    for expected, create in ((f"{n} new", ["--create"]), (f"{n} unchanged", [])):
        assert main(["export", "mlflow", "--tracking-uri", uri, "-d", str(work), *create]) == 0
        assert expected in capsys.readouterr().out
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=[TINY_STUDY], output_format="list")
    assert sorted(r.data.tags["variant"] for r in runs) == sorted(TINY_VARIANTS)
    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    for run in runs:
        epochs = int(run.data.params["train.epochs"])
        history = client.get_metric_history(run.info.run_id, "val_accuracy")
        assert [m.step for m in history] == list(range(1, epochs + 1))
