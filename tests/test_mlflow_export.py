"""`cnnablate export mlflow` against a real SQLite-backed MLflow store, read back with
`mlflow.search_runs` and MLflow's client (no mocks). Run folders are hand-made in the format
cnnablate/training/train.py writes (metrics.json with the resolved run config, history.csv)."""

from __future__ import annotations

import csv
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cnnablate.__main__ import main
from cnnablate.base.ids import config_hash
from cnnablate.training.train import HISTORY_COLUMNS
from cnnablate.workflow import config as cnnablate_config

try:
    import mlflow
except ImportError:  # optional (requirements-mlflow.txt); make's .venv and CI have it
    mlflow = None
needs_mlflow = pytest.mark.skipif(mlflow is None, reason="pip install -r requirements-mlflow.txt")

ROOT = Path(__file__).resolve().parent.parent
CONFIG = {
    "datasets": {"digits": {"source": "sklearn_digits"}},
    "studies": {
        "acts": {
            "dataset": "digits", "image_size": 16, "model": {"name": "all_cnn_c", "width": 0.25},
            "train": {"epochs": 3, "batch_size": 32, "learning_rate": 0.05},
            "seeds": [0, 1], "baseline": "relu",
            "variants": {"relu": {"activation": "relu"}, "elu": {"activation": "elu"}},
        },
    },
}
# (variant, seed) -> per-epoch val_accuracy; None: the run diverged at that epoch. elu seed 1
# has not finished (no folder): it must be left out.
HISTORIES = {
    ("relu", 0): [0.50, 0.70, 0.80],
    ("relu", 1): [0.55, 0.72, 0.79],
    ("elu", 0): [0.40, None],
}


def write_run(root: Path, run: dict, val_accuracy: list[float | None], started: float) -> Path:
    """A finished run's metrics.json and history.csv, as train_run writes them."""
    folder = root / "results" / "runs" / run["study"] / run["variant"] / f"seed{run['seed']}"
    folder.mkdir(parents=True, exist_ok=True)
    history = [{"epoch": i + 1, "loss": 1.0 / (i + 1) if v is not None else math.nan,
                "accuracy": 0.5 + 0.1 * i, "val_loss": 1.5 - (v or 0),
                "val_accuracy": math.nan if v is None else v, "seconds": 2.0 + i}
               for i, v in enumerate(val_accuracy)]
    with open(folder / "history.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=HISTORY_COLUMNS)
        writer.writeheader()
        writer.writerows(history)
    diverged = any(v is None for v in val_accuracy)
    best = max(v for v in val_accuracy if v is not None)
    metrics = {
        "study": run["study"], "variant": run["variant"], "seed": run["seed"],
        "status": "diverged" if diverged else "completed",
        "epochs_completed": len(history), "best_val_accuracy": best,
        "test_accuracy": None if diverged else best - 0.01, "parameters": 12345,
        "train_seconds": 10.5, "started_at": started, "finished_at": started + 20,
        "run_config": {**run, "threads": 1},
        "provenance": {"git_commit": "0123456789abcdef0123456789abcdef01234567+dirty",
                       "config_hash": config_hash(run),
                       "dataset": "digits", "keras_backend": "tensorflow"},
    }
    (folder / "metrics.json").write_text(json.dumps(metrics))
    (folder / "model.keras").write_bytes(b"not really a model")
    return folder


def make_workflow(root: Path, config: dict = CONFIG) -> dict:
    (root / "config.yaml").write_text(yaml.safe_dump(config))
    runs = {(r["variant"], r["seed"]): r for r in cnnablate_config.resolve_runs(config)}
    for i, (key, values) in enumerate(HISTORIES.items()):
        write_run(root, runs[key], values, started=1.8e9 + 100 * i)
    return runs


def export(root: Path, uri: str, capsys) -> str:
    assert main(["export", "mlflow", "--tracking-uri", uri, "-d", str(root)]) == 0
    return capsys.readouterr().out


def active(uri: str) -> list:
    mlflow.set_tracking_uri(uri)
    return mlflow.search_runs(experiment_names=["acts"], output_format="list")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A workflow folder exported twice to its own SQLite store; the outputs of both."""
    root = tmp_path_factory.mktemp("mlflow") / "wf"
    root.mkdir()
    runs = make_workflow(root)
    uri = f"sqlite:///{root / 'results' / 'mlflow.db'}"
    for _ in range(2):
        assert main(["export", "mlflow", "--tracking-uri", uri, "-d", str(root)]) == 0
    return root, uri, runs


def by_run(uri: str) -> dict:
    return {(r.data.tags["variant"], int(r.data.tags["seed"])): r for r in active(uri)}


@needs_mlflow
def test_exporting_twice_gives_each_finished_run_once(store):
    _, uri, _ = store
    found = active(uri)
    assert sorted((r.data.tags["variant"], r.data.tags["seed"]) for r in found) == [
        ("elu", "0"), ("relu", "0"), ("relu", "1")]
    assert {r.info.run_name for r in found} == {"relu/seed0", "relu/seed1", "elu/seed0"}


@needs_mlflow
def test_params_are_the_flattened_run_config(store):
    _, uri, runs = store
    params = by_run(uri)[("relu", 0)].data.params
    run = runs[("relu", 0)]
    # expected: every leaf of the resolved config under its dotted path, written out here
    expected = {}
    todo = [("", run)]
    while todo:
        prefix, node = todo.pop()
        for key, value in node.items():
            if isinstance(value, dict) and value:
                todo.append((f"{prefix}{key}.", value))
            else:
                expected[f"{prefix}{key}"] = value
    assert set(params) == set(expected)
    assert params["train.learning_rate"] == "0.05"
    assert params["model.name"] == "all_cnn_c" and params["activation"] == "relu"
    assert params["seed"] == "0" and "threads" not in params


@needs_mlflow
def test_history_is_logged_per_epoch_with_its_step(store):
    root, uri, _ = store
    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    for key, values in HISTORIES.items():
        run = by_run(uri)[key]
        logged = client.get_metric_history(run.info.run_id, "val_accuracy")
        assert [m.step for m in logged] == list(range(1, len(values) + 1))
        for metric, value in zip(logged, values):
            assert math.isnan(metric.value) if value is None else metric.value == value
        assert len(client.get_metric_history(run.info.run_id, "loss")) == len(values)
    relu0 = by_run(uri)[("relu", 0)].data.metrics
    assert relu0["best_val_accuracy"] == 0.80 and relu0["test_accuracy"] == pytest.approx(0.79)


@needs_mlflow
def test_tags_and_status(store):
    _, uri, runs = store
    found = by_run(uri)
    tags = found[("elu", 0)].data.tags
    assert {k: tags[k] for k in ("study", "variant", "seed", "status", "commit")} == {
        "study": "acts", "variant": "elu", "seed": "0", "status": "diverged",
        "commit": "0123456789abcdef0123456789abcdef01234567+dirty"}
    assert tags["mlflow.source.git.commit"] == "0123456789abcdef0123456789abcdef01234567"
    assert tags["cnnablate.config_hash"] == config_hash(runs[("elu", 0)])
    assert found[("elu", 0)].info.status == "FAILED"
    assert found[("relu", 0)].info.status == "FINISHED"


@needs_mlflow
def test_run_files_are_artifacts_and_links(store):
    root, uri, _ = store
    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    run = by_run(uri)[("relu", 1)]
    assert sorted(a.path for a in client.list_artifacts(run.info.run_id)) == [
        "history.csv", "metrics.json"]
    folder = root / "results/runs/acts/relu/seed1"
    copied = Path(mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="history.csv", tracking_uri=uri,
        dst_path=str(root / "download")))
    assert copied.read_bytes() == (folder / "history.csv").read_bytes()
    # artifacts live beside the SQLite file, not in the working directory
    assert (root / "results" / "mlflow-artifacts").is_dir()
    assert run.data.tags["cnnablate.model"] == str((folder / "model.keras").resolve())


@needs_mlflow
def test_a_retrained_run_replaces_its_mlflow_run_and_a_new_config_adds_one(store, tmp_path,
                                                                          capsys):
    root = Path(shutil.copytree(store[0], tmp_path / "wf"))
    uri = f"sqlite:///{root / 'results' / 'mlflow.db'}"
    before = by_run(uri)
    runs = make_workflow(root)  # rewrite every run the same way: unchanged
    assert "0 new, 0 updated, 3 unchanged" in export(root, uri, capsys)
    # relu seed 0 retrained with the same config (a code change): new numbers
    write_run(root, runs[("relu", 0)], [0.6, 0.75, 0.85], started=1.9e9)
    assert "0 new, 1 updated, 2 unchanged" in export(root, uri, capsys)
    after = by_run(uri)
    assert len(active(uri)) == 3
    assert after[("relu", 1)].info.run_id == before[("relu", 1)].info.run_id
    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    history = client.get_metric_history(after[("relu", 0)].info.run_id, "val_accuracy")
    assert [(m.step, m.value) for m in history] == [(1, 0.6), (2, 0.75), (3, 0.85)]
    # elu's learning rate edited: a different experiment, the old MLflow run is kept, marked
    changed = yaml.safe_load((root / "config.yaml").read_text())
    changed["studies"]["acts"]["variants"]["elu"]["train"] = {"learning_rate": 0.01}
    (root / "config.yaml").write_text(yaml.safe_dump(changed))
    new_elu = {(r["variant"], r["seed"]): r for r in cnnablate_config.resolve_runs(changed)}[
        ("elu", 0)]
    assert new_elu != runs[("elu", 0)]
    write_run(root, new_elu, HISTORIES[("elu", 0)], started=2.0e9)  # elu seed 0 reran
    assert "1 new, 0 updated, 2 unchanged" in export(root, uri, capsys)
    elu = [r for r in active(uri) if r.data.tags["variant"] == "elu"]
    assert sorted((r.data.params["train.learning_rate"], r.data.tags["cnnablate.current"])
                  for r in elu) == [("0.01", "true"), ("0.05", "false")]


@needs_mlflow
def test_default_store_is_the_results_folders_sqlite_file(tmp_path, capsys, monkeypatch):
    make_workflow(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["export", "mlflow"]) == 0
    out = capsys.readouterr().out
    assert "to sqlite:///results/mlflow.db" in out and "3 new" in out
    assert "1 planned runs are not finished yet" in out
    assert (tmp_path / "results" / "mlflow.db").is_file()


def test_without_mlflow_one_line_names_the_install_command(tmp_path, capsys, monkeypatch):
    make_workflow(tmp_path)
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if not installed: import fails
    assert main(["export", "mlflow", "-d", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "pip install -r requirements-mlflow.txt" in err


def test_the_command_lists_its_commands():
    out = subprocess.run([sys.executable, "-m", "cnnablate", "--help"], capture_output=True,
                         text=True, check=True, cwd=ROOT).stdout
    assert out.startswith("usage: cnnablate ")
    assert "status" in out and "export" in out
    out = subprocess.run([sys.executable, "-m", "cnnablate", "export", "--help"],
                         capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert "mlflow" in out


def test_console_script_is_declared_and_works_where_installed():
    import tomllib

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"cnnablate": "cnnablate.__main__:main"}
    installed = Path(sys.executable).with_name("cnnablate")
    if not installed.exists():
        pytest.skip("this environment has no `pip install -e .` (make's .venv has)")
    out = subprocess.run([str(installed), "--help"], capture_output=True, text=True,
                         check=True).stdout
    assert "status" in out and "export" in out


def test_the_command_and_paper_modules_load_neither_keras_nor_mlflow():
    """`cnnablate status` stays instant: MLflow is imported only when an export runs, and
    nothing here starts TensorFlow."""
    code = ("import sys, cnnablate.__main__, cnnablate.reporting.mlflow_export, "
            "cnnablate.reporting.paper\n"
            "bad = [m for m in ('keras', 'tensorflow', 'mlflow') if m in sys.modules]\n"
            "assert not bad, bad\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
