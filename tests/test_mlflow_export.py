"""`cnnablate export mlflow` against a real SQLite-backed MLflow store, read back with
`mlflow.search_runs` and MLflow's client (no mocks), and against a real `mlflow server` over
http, read back through its REST API; every kind of bad address ends in one line, within
seconds. Run folders are hand-made in the format cnnablate/training/train.py writes
(metrics.json with the resolved run config, history.csv)."""

from __future__ import annotations

import csv
import http.server
import importlib.util
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from cnnablate.__main__ import main
from cnnablate.base.ids import config_hash
from cnnablate.base.layout import Layout
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
    folder = root / Layout().run_dir(*Layout().of(run))  # a tuning run's a level deeper
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
    for create in (["--create"], []):  # a new store is made only when asked for
        assert main(["export", "mlflow", "--tracking-uri", uri, "-d", str(root), *create]) == 0
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


# --- tuning runs: named by their candidate, tagged with their role ---------------------------

TUNED = {
    "datasets": CONFIG["datasets"],
    "studies": {"tuned": {**CONFIG["studies"]["acts"], "seeds": [0],
                          "tune": {"train.learning_rate": [0.01, 0.1], "seeds": [1000]}}},
}


@needs_mlflow
def test_tuning_runs_are_named_by_their_candidate_and_tagged_by_role(store, tmp_path, capsys):
    # the module's store, copied (a new SQLite store costs seconds of migrations); a study of
    # its own, so its own experiment
    root = Path(shutil.copytree(store[0], tmp_path / "wf"))
    (root / "config.yaml").write_text(yaml.safe_dump(TUNED))
    tuning = cnnablate_config.resolve_tuning(TUNED).runs
    deciding = cnnablate_config.resolve_runs(TUNED)
    for i, run in enumerate(tuning + deciding):
        write_run(root, run, [0.5, 0.6], started=1.8e9 + 100 * i)
    uri = f"sqlite:///{root / 'results' / 'mlflow.db'}"
    assert "6 new" in export(root, uri, capsys)
    mlflow.set_tracking_uri(uri)
    found = {r.info.run_name: r.data.tags
             for r in mlflow.search_runs(experiment_names=["tuned"], output_format="list")}
    # expected names, written out: variant / the candidate's value / seed
    # (`lr`: MLflow's run list shows about 20 characters of a name, the value among them)
    assert sorted(found) == sorted([
        "relu/lr=0.01/seed1000", "relu/lr=0.1/seed1000",
        "elu/lr=0.01/seed1000", "elu/lr=0.1/seed1000",
        "relu/seed0", "elu/seed0"])
    assert found["relu/lr=0.1/seed1000"]["role"] == "tuning"
    assert found["relu/lr=0.1/seed1000"]["candidate"] == "learning_rate-0.1"
    assert found["relu/seed0"]["role"] == "deciding" and "candidate" not in found["relu/seed0"]


# --- nothing lost: a failed export keeps the run it would replace ----------------------------

@needs_mlflow
def test_an_export_that_fails_half_way_loses_nothing(store, tmp_path, capsys, monkeypatch):
    root = Path(shutil.copytree(store[0], tmp_path / "wf"))
    uri = f"sqlite:///{root / 'results' / 'mlflow.db'}"
    before = by_run(uri)
    runs = make_workflow(root)
    write_run(root, runs[("relu", 0)], [0.6, 0.75, 0.85], started=1.9e9)  # retrained
    calls = []

    def fail_once(self, *args, **kwargs):  # the store goes away while an artifact is sent
        calls.append(args)
        raise mlflow.exceptions.MlflowException("artifact store unavailable\nsecond line")

    with monkeypatch.context() as patch:
        patch.setattr(mlflow.tracking.MlflowClient, "log_artifact", fail_once)
        assert main(["export", "mlflow", "--tracking-uri", uri, "-d", str(root)]) == 2
    err = capsys.readouterr().err
    assert calls and len(err.strip().splitlines()) == 1
    assert "artifact store unavailable second line" in err
    log = root / "logs" / "export_mlflow.log"
    assert f"details: {log}" in err and "Traceback" in log.read_text()
    # the old relu seed-0 run is still there, whole
    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    old_id = before[("relu", 0)].info.run_id
    assert client.get_run(old_id).info.lifecycle_stage == "active"
    assert [m.value for m in client.get_metric_history(old_id, "val_accuracy")] == [
        0.50, 0.70, 0.80]
    # the next export completes the replacement and clears the half-made run
    assert "0 new, 1 updated, 2 unchanged" in export(root, uri, capsys)
    after = by_run(uri)
    assert len(active(uri)) == 3
    assert [m.value for m in client.get_metric_history(after[("relu", 0)].info.run_id,
                                                       "val_accuracy")] == [0.6, 0.75, 0.85]
    assert client.get_run(old_id).info.lifecycle_stage == "deleted"


# --- bad addresses: one line, within seconds, nothing created --------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def refused(tmp_path: Path, uri: str, capsys, *extra: str) -> str:
    """Export to `uri`: refused with exit status 2 and one line on stderr, within 10 s."""
    make_workflow(tmp_path)
    start = time.monotonic()
    assert main(["export", "mlflow", "--tracking-uri", uri, "-d", str(tmp_path), *extra]) == 2
    assert time.monotonic() - start < 10
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert captured.out == ""
    return lines[0]


@needs_mlflow
def test_a_server_that_is_not_there_fails_at_once(tmp_path, capsys):
    line = refused(tmp_path, f"http://127.0.0.1:{free_port()}", capsys)
    assert "cannot reach the MLflow server at http://127.0.0.1:" in line
    assert "connection refused" in line


@needs_mlflow
def test_an_unknown_scheme_is_named(tmp_path, capsys):
    line = refused(tmp_path, "foo://bar", capsys)
    assert "unknown scheme 'foo'" in line and "sqlite://" in line and "http://" in line


@needs_mlflow
@pytest.mark.parametrize("relative", [True, False])
def test_a_plain_path_says_which_uri_to_write(tmp_path, capsys, monkeypatch, relative):
    monkeypatch.chdir(tmp_path)
    path = "store/mlflow.db" if relative else str(tmp_path / "store" / "mlflow.db")
    line = refused(tmp_path, path, capsys)
    assert f"{path} is a path, not a tracking URI" in line
    assert f"sqlite:///{path}" in line  # relative: three slashes; absolute: four
    assert not (tmp_path / "store").exists()


@needs_mlflow
def test_a_sqlite_file_under_a_file_is_named(tmp_path, capsys):
    line = refused(tmp_path, f"sqlite:///{tmp_path / 'config.yaml' / 'mlflow.db'}", capsys)
    assert f"{tmp_path / 'config.yaml'} is a file, not a folder" in line


@needs_mlflow
def test_a_missing_folder_is_refused_unless_created(tmp_path, capsys):
    typo = tmp_path / "reslts" / "mlflow.db"
    line = refused(tmp_path, f"sqlite:///{typo}", capsys)
    assert f"its folder {typo.parent} does not exist" in line and "--create" in line
    assert not typo.parent.exists()  # no second store made
    # a missing file in an existing folder: the same
    line = refused(tmp_path, f"sqlite:///{tmp_path / 'mlfow.db'}", capsys)
    assert f"there is no {tmp_path / 'mlfow.db'}" in line
    assert main(["export", "mlflow", "--tracking-uri", f"sqlite:///{typo}", "--create",
                 "-d", str(tmp_path)]) == 0
    assert "3 new" in capsys.readouterr().out and typo.is_file()


class OldServer(http.server.BaseHTTPRequestHandler):
    """An MLflow 1.x tracking server as a client of today sees one: `/version` answers, the
    REST endpoints it lacks are Flask's HTML 404 page."""

    def do_GET(self):  # noqa: N802 - http.server's name
        if self.path == "/version":
            self._send(200, "text/plain", b"1.20.2")
        else:
            self._send(404, "text/html", b"<!doctype html>\n<html lang=en>\n<title>404 Not Found"
                       b"</title>\n<h1>Not Found</h1>\n<p>The requested URL was not found on the"
                       b" server.</p>\n")

    do_POST = do_GET

    def _send(self, code: int, kind: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # quiet
        pass


@needs_mlflow
def test_a_server_of_another_version_gives_its_message_in_one_line(tmp_path, capsys):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), OldServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        line = refused(tmp_path, f"http://127.0.0.1:{server.server_address[1]}", capsys)
    finally:
        server.shutdown()
    assert "(MLflow 1.20.2) answered HTTP 404" in line
    assert "Not Found The requested URL was not found on the server." in line
    assert f"this client is MLflow {mlflow.__version__}" in line


# --- a real `mlflow server` over http --------------------------------------------------------

needs_server = pytest.mark.skipif(
    mlflow is None or importlib.util.find_spec("flask") is None,
    reason="the MLflow server is in the full `mlflow` package (requirements-mlflow.txt; make's "
           ".venv has it), not in mlflow-skinny alone")


def rest(url: str, endpoint: str, body: dict | None = None, **query) -> dict:
    """One call to MLflow's REST API, as any HTTP client makes it (not MLflow's client)."""
    address = f"{url}/api/2.0/mlflow/{endpoint}"
    if query:
        address += "?" + urllib.parse.urlencode(query)
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(address, data=data,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`mlflow server` on a free localhost port: SQLite backend, a local artifact folder."""
    folder = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    # The server's job runner (MLflow's GenAI jobs: a second process) is not needed here and
    # would double the start-up time.
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    with open(folder / "server.log", "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server",
             "--backend-store-uri", f"sqlite:///{folder / 'server.db'}",
             "--artifacts-destination", str(folder / "artifacts"),
             "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240  # a busy 2-core machine: ~10 s CPU of imports
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("mlflow server did not start:\n"
                            + (folder / "server.log").read_text()[-3000:])
            time.sleep(0.25)
        yield url, folder
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@needs_server
def test_export_to_a_real_server_over_http(server, tmp_path, capsys):
    url, folder = server
    make_workflow(tmp_path)
    assert "3 new, 0 updated, 0 unchanged" in export(tmp_path, url, capsys)
    out = export(tmp_path, url, capsys)
    assert "0 new, 0 updated, 3 unchanged" in out and f"open {url} in a browser" in out
    # read back through the REST API
    experiment = rest(url, "experiments/get-by-name", experiment_name="acts")["experiment"]
    runs = rest(url, "runs/search", {"experiment_ids": [experiment["experiment_id"]],
                                     "max_results": 100})["runs"]
    names = sorted(r["info"]["run_name"] for r in runs)
    assert names == ["elu/seed0", "relu/seed0", "relu/seed1"]  # each once
    by_name = {r["info"]["run_name"]: r for r in runs}
    params = {p["key"]: p["value"] for p in by_name["relu/seed0"]["data"]["params"]}
    assert params["train.learning_rate"] == "0.05" and params["activation"] == "relu"
    for (variant, seed), values in HISTORIES.items():
        run_id = by_name[f"{variant}/seed{seed}"]["info"]["run_id"]
        history = rest(url, "metrics/get-history", run_id=run_id,
                       metric_key="val_accuracy")["metrics"]
        assert [m["step"] for m in history] == list(range(1, len(values) + 1))
        for metric, value in zip(history, values):
            logged = metric["value"]  # NaN: MLflow's JSON says "NaN" or NaN
            assert math.isnan(float(logged)) if value is None else logged == value
    run_id = by_name["relu/seed1"]["info"]["run_id"]
    listed = rest(url, "artifacts/list", run_id=run_id)["files"]
    assert sorted(f["path"] for f in listed) == ["history.csv", "metrics.json"]
    query = urllib.parse.urlencode({"path": "history.csv", "run_uuid": run_id})
    with urllib.request.urlopen(f"{url}/get-artifact?{query}", timeout=30) as response:
        downloaded = response.read()
    expected = tmp_path / "results/runs/acts/relu/seed1/history.csv"
    assert downloaded == expected.read_bytes()
    # the server keeps them in its local artifact folder
    assert list((folder / "artifacts").rglob("history.csv"))
