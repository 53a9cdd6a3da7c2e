"""Finished runs into an MLflow tracking store (`cnnablate export mlflow`; no TensorFlow).

One MLflow experiment per study, one MLflow run per (variant, seed), named `variant/seedN`; a
tuned study's tuning runs per (variant, candidate, seed), named by the candidate's values
(`variant/lr=0.1/seed1000`). Each has the resolved run config (metrics.json's
`run_config`) flattened as params, the per-epoch history as metrics with the epoch as step, the
run's result numbers as metrics, tags study/variant/seed/status/commit and `role` (`deciding`
or `tuning`), the run's metrics.json and history.csv as artifacts (model.keras too with
`copy_models`), and the run folder, model and TensorBoard logs as path tags.

Idempotent: an MLflow run is found by its tag `cnnablate.config_hash` (the hash of the resolved
run config, as in metrics.json's provenance). Exporting again leaves an unchanged run as it is;
a run retrained with the same config (a code change) replaces its MLflow run, because MLflow's
metric histories only grow and re-logging would show each epoch twice; a changed config is a
different run. Runs of the experiment that the export did not see (an old config, a variant
removed) keep their data, tagged `cnnablate.current = false`. Nothing is lost to a failed
export: a replaced run is deleted only once its replacement is complete (its content tag is
the last thing written), and a run left incomplete by an interrupted export is replaced by the
next one.

Before anything is written the store's address is checked (`check_store`), so that a mistake
is one line naming it, within seconds: a plain path, an unknown scheme, a SQLite file under a
file, a store that does not exist yet (made only with `create`: a typo must not start a second
store), a server that does not answer (no retries: MLflow's own would take minutes) or answers
its REST API with an error (its message and version in one line).

MLflow is optional (requirements-mlflow.txt) and imported only here, when an export runs.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cnnablate.base.ids import config_hash
from cnnablate.base.layout import HISTORY, METRICS, MLFLOW_DB, MODEL, tensorboard_dir

INSTALL = "pip install -r requirements-mlflow.txt"
HASH_TAG = "cnnablate.config_hash"
CONTENT_TAG = "cnnablate.content_sha256"
CURRENT_TAG = "cnnablate.current"
HISTORY_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy", "seconds")
RESULT_METRICS = (
    "best_val_accuracy", "best_epoch", "final_val_accuracy", "final_val_loss",
    "final_train_accuracy", "test_accuracy", "test_loss", "parameters", "train_seconds",
    "seconds_per_epoch", "epochs_completed",
)
# What one MLflow log_batch call may carry (MLflow's documented request limits).
BATCH_METRICS, BATCH_PARAMS = 1000, 100
MAX_PARAM_CHARS = 6000  # MLflow's limit on a param value
# Run config keys that describe the job, not the experiment: a tag, never a param or the hash.
JOB_KEYS = ("threads",)
ROLE_TAG = "role"  # "deciding" (a study's comparison runs) or "tuning" (a `tune:` candidate's)
# How long the check of an http(s) store waits for the server (connect and answer), once.
SERVER_TIMEOUT_S = 10.0
# The tracking-URI schemes of MLflow's own stores (plugins may add more: asked of MLflow).
KNOWN_SCHEMES = ("http", "https", "sqlite", "postgresql", "mysql", "mssql", "file",
                 "databricks", "databricks-uc", "uc")
MAX_LINE = 400  # characters of a condensed error message


class ExportError(Exception):
    """A one-line reason the export cannot run (MLflow missing, a bad store address, a server
    that does not answer, a run folder unreadable)."""


def one_line(text: str, limit: int = MAX_LINE) -> str:
    """An error message in one line: whitespace collapsed (an HTML error page's tags dropped),
    cut at `limit` characters."""
    text = " ".join(re.sub(r"<[^>]+>", " ", str(text)).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


@dataclass(frozen=True)
class Outcome:
    study: str
    variant: str
    seed: int
    action: str  # "new", "updated" (replaced after a retrain) or "unchanged"
    run_id: str


def import_mlflow():
    """The mlflow module, or an ExportError naming the install command."""
    try:
        import mlflow
    except ImportError as error:
        raise ExportError(
            f"MLflow is not installed ({error}); install it with: {INSTALL}"
        ) from None
    # Its SQL store's first use prints the schema migrations as INFO lines: not news.
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return mlflow


def sqlite_path(uri: str) -> Path | None:
    """The database file of a `sqlite:///` URI as SQLAlchemy reads it (relative after three
    slashes, absolute after four); None for an in-memory database."""
    path = uri[len("sqlite:///"):].split("?", 1)[0] if uri.startswith("sqlite:///") else ""
    return Path(path) if path and path != ":memory:" else None


def _path_hint(uri: str) -> str:
    path = Path(uri)
    suggestion = (path / MLFLOW_DB) if path.is_dir() else path
    return (f"{uri} is a path, not a tracking URI: for a SQLite file write "
            f"sqlite:///{suggestion.as_posix()} (three slashes, then the path; four for an "
            "absolute one), for a server http://host:port (MLflow 3 takes a folder, "
            "file:///abs/folder, only with MLFLOW_ALLOW_FILE_STORE=true)")


def _existing_ancestor(path: Path) -> Path:
    """The nearest of `path`'s folders that exists (a relative path ends at `.`)."""
    for parent in path.parents:
        if parent.exists():
            return parent
    return Path(".")


def _check_local(uri: str, path: Path, create: bool, kind: str) -> None:
    """A local store (`kind` "file": a SQLite database; "folder": a file:// store): refused
    where a file stands in for a folder, or where nothing exists yet unless `create`."""
    if path.exists():
        if kind == "file" and path.is_dir():
            raise ExportError(f"{uri}: {path} is a folder, not a SQLite file (e.g. "
                              f"sqlite:///{(path / MLFLOW_DB).as_posix()})")
        if kind == "folder" and not path.is_dir():
            raise ExportError(f"{uri}: {path} is a file, not a folder")
        return
    ancestor = _existing_ancestor(path)
    if not ancestor.is_dir():
        raise ExportError(f"{uri}: {ancestor} is a file, not a folder, so {path} cannot be made")
    if not create:
        missing = (f"its folder {path.parent} does not exist" if ancestor != path.parent
                   else f"there is no {path}")
        raise ExportError(f"{uri}: no MLflow store there ({missing}); check the path for a "
                          "typo, or pass --create to start a new store there")
    (path if kind == "folder" else path.parent).mkdir(parents=True, exist_ok=True)


def registered_schemes(mlflow) -> set[str]:
    """The tracking-URI schemes this MLflow has stores for (its own and any plugin's)."""
    try:
        from mlflow.tracking._tracking_service.utils import _tracking_store_registry

        return {s for s in _tracking_store_registry._registry if s}  # noqa: SLF001
    except (ImportError, AttributeError):  # a private registry: MLflow may move it
        return set(KNOWN_SCHEMES)


def check_store(uri: str, *, create: bool = False,
                schemes: Iterable[str] = KNOWN_SCHEMES) -> None:
    """Refuse, in one line, a tracking URI that cannot be the store meant: a plain path, an
    unknown scheme (not in `schemes`), a local store under a file or (without `create`) one
    that does not exist yet. `create` makes a local store's folder. Servers: `check_server`."""
    scheme = urlsplit(uri).scheme.lower()
    if len(scheme) <= 1:  # none, or a Windows drive letter: a path
        raise ExportError(_path_hint(uri))
    base = scheme.split("+", 1)[0]  # postgresql+psycopg2://...
    if base not in set(schemes) | {"sqlite", "file", "http", "https"}:
        known = ", ".join(f"{s}://" for s in sorted(set(schemes)))
        raise ExportError(f"{uri}: unknown scheme {scheme!r}; MLflow takes {known} (a SQLite "
                          f"file: sqlite:///path/{MLFLOW_DB}; a server: http://host:port)")
    if base == "sqlite":
        path = sqlite_path(uri)
        if path is not None:
            _check_local(uri, path, create, "file")
    elif base == "file":
        _check_local(uri, Path(urlsplit(uri).path), create, "folder")


def _unreachable_reason(error: BaseException) -> str:
    text = str(error)
    for pattern, reason in (("refused", "connection refused"),
                            ("timed out|timeout", "no answer"),
                            ("resolve|not known|nodename|getaddrinfo", "unknown host")):
        if re.search(pattern, text, re.I):
            return reason
    return one_line(text, 200)


def _server_message(response) -> str:
    """What a server's error response says: MLflow's JSON error, else its body as text."""
    try:
        body = response.json()
        text = f"{body.get('error_code', '')}: {body.get('message', '')}".strip(": ")
    except (ValueError, AttributeError):
        text = response.text
    return one_line(text or response.reason or "no message", 200)


def check_server(uri: str, client_version: str, timeout: float = SERVER_TIMEOUT_S) -> None:
    """One request to an http(s) store's REST API, no retries (MLflow's own retries to a server
    that is not there take minutes): an ExportError in one line if nothing answers within
    `timeout` seconds, or if the server answers with an error (its message, and its version
    where it tells it: an MLflow too old for this client lacks the endpoint)."""
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request

    creds = get_default_host_creds(uri)
    endpoint = "/api/2.0/mlflow/experiments/search"

    def get(path: str, **params):
        return http_request(creds, path, "GET", max_retries=0, timeout=timeout,
                            raise_on_status=False, params=params)

    try:
        response = get(endpoint, max_results=1)
    except Exception as error:  # noqa: BLE001 - requests' and MLflow's errors alike: no answer
        raise ExportError(
            f"cannot reach the MLflow server at {uri} ({_unreachable_reason(error)}, waited up "
            f"to {timeout:g} s); is `mlflow server` running there, at that host and port?"
        ) from error
    if response.status_code == 200:
        return
    try:
        answer = get("/version")
        version = (f"MLflow {answer.text.strip()}" if answer.status_code == 200
                   and len(answer.text) < 40 else "its version unknown")
    except Exception:  # noqa: BLE001 - only the version is missing from the message
        version = "its version unknown"
    hint = ("; set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, or "
            "MLFLOW_TRACKING_TOKEN" if response.status_code in (401, 403) else
            f"; this client is MLflow {client_version}: use a server of the same major version")
    raise ExportError(f"the MLflow server at {uri} ({version}) answered HTTP "
                      f"{response.status_code} to {endpoint}: {_server_message(response)}{hint}")


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config -> {"train.learning_rate": "0.05", ...}: MLflow params are flat strings.
    Lists and other non-mapping values are JSON (so `[0, 1]` reads as written)."""
    out: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, f"{name}."))
        else:
            text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
            out[name] = text[:MAX_PARAM_CHARS]
    return out


def run_config_hash(metrics: Mapping) -> str:
    """The hash of the run's resolved config, as training recorded it in its provenance
    (`config_hash(run)`), recomputed where an older metrics.json lacks it."""
    recorded = (metrics.get("provenance") or {}).get("config_hash")
    if recorded:
        return str(recorded)
    run = {k: v for k, v in (metrics.get("run_config") or {}).items() if k not in JOB_KEYS}
    return config_hash(run)


def _number(text: str | float | None) -> float | None:
    try:
        return float(text)  # "nan" (a diverged epoch) stays NaN: MLflow stores it as such
    except (TypeError, ValueError):
        return None


def read_run(run_dir: Path) -> tuple[dict, list[dict], str]:
    """(metrics.json, history rows, sha256 of both files) of a finished run folder."""
    try:
        metrics_bytes = (run_dir / METRICS).read_bytes()
        history_bytes = (run_dir / HISTORY).read_bytes()
    except OSError as error:
        raise ExportError(f"{run_dir}: cannot read the run's files ({error})") from None
    metrics = json.loads(metrics_bytes)
    history = list(csv.DictReader(history_bytes.decode().splitlines()))
    digest = hashlib.sha256(metrics_bytes + b"\0" + history_bytes).hexdigest()
    return metrics, history, digest


def _metrics(mlflow, metrics: Mapping, history: list[dict]) -> list:
    """Per-epoch history (step = epoch, 1-based as in history.csv) and the run's results."""
    Metric = mlflow.entities.Metric
    # Deterministic timestamps (the epoch's end, from the run's own record): a re-export
    # writes the same values.
    clock = float(metrics.get("started_at") or 0.0)
    out = []
    for row in history:
        clock += _number(row.get("seconds")) or 0.0
        for key in HISTORY_METRICS:
            value = _number(row.get(key))
            if value is not None:
                out.append(Metric(key, value, int(clock * 1000), int(row["epoch"])))
    end = int(float(metrics.get("finished_at") or clock) * 1000)
    for key in RESULT_METRICS:
        value = _number(metrics.get(key))
        if value is not None:
            out.append(Metric(key, value, end, 0))
    return out


def _setting_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


# Short names of common tuned keys in run names: MLflow's run list shows about 20 characters of
# a name, and `relu/learning_rate=0.` would hide the value that tells two candidates apart.
NAME_ABBREVIATIONS = {"learning_rate": "lr", "batch_size": "bs", "weight_decay": "wd"}


def candidate_label(values: Mapping[str, Any]) -> str:
    """A tuning candidate's values as a run name reads them: `lr=0.1`, several joined by `,`
    (each key's last part, common ones abbreviated: `train.` and `model.` add nothing)."""
    def short(key: str) -> str:
        leaf = key.rsplit(".", 1)[-1]
        return NAME_ABBREVIATIONS.get(leaf, leaf)

    return ",".join(f"{short(key)}={_setting_text(value)}" for key, value in values.items())


def run_name(metrics: Mapping) -> str:
    """`variant/seedN`; a tuning run's `variant/lr=0.1/seedN` (its candidate's values), so
    that a variant's candidates are told apart in MLflow's run list."""
    tuning = (metrics.get("run_config") or {}).get("tuning") or {}
    middle = ""
    if tuning:
        middle = candidate_label(tuning.get("values") or {}) or str(tuning.get("candidate"))
        middle += "/"
    return f"{metrics['variant']}/{middle}seed{metrics['seed']}"


def _tags(metrics: Mapping, run_dir: Path) -> dict[str, str]:
    prov = metrics.get("provenance") or {}
    run_config = metrics.get("run_config") or {}
    commit = prov.get("git_commit") or ""
    tuning = run_config.get("tuning") or {}
    tags = {
        "study": metrics["study"], "variant": metrics["variant"], "seed": str(metrics["seed"]),
        "status": str(metrics.get("status")), "commit": commit,
        ROLE_TAG: "tuning" if tuning else "deciding",
        "dataset": str(prov.get("dataset", "")),
        "keras_backend": str(prov.get("keras_backend", "")),
        "data": "SYNTHETIC" if run_config.get("synthetic") else "real",
        "smoke": str(bool(run_config.get("smoke"))).lower(),
        HASH_TAG: run_config_hash(metrics),
        CURRENT_TAG: "true",
        "cnnablate.run_dir": str(run_dir.resolve()),
        "cnnablate.model": str((run_dir / MODEL).resolve()),
        "cnnablate.tensorboard": str(tensorboard_dir(run_dir).resolve()),
        # What MLflow's UI shows as the run's source version (without the "+dirty" mark).
        "mlflow.source.git.commit": commit.removesuffix("+dirty"),
    }
    if tuning:
        tags["candidate"] = str(tuning.get("candidate"))
    tags.update({f"cnnablate.{k}": str(run_config[k]) for k in JOB_KEYS if k in run_config})
    return tags


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def artifact_root(tracking_uri: str, experiment: str) -> str | None:
    """Where a new experiment's artifacts go: beside a SQLite store's file (so the store and its
    files stay together), else wherever the tracking server or store puts them."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    database = Path(tracking_uri.removeprefix("sqlite:///"))
    return (database.parent / "mlflow-artifacts" / experiment).resolve().as_uri()


def _experiment_id(client, tracking_uri: str, name: str) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        return client.create_experiment(name, artifact_location=artifact_root(tracking_uri, name))
    if experiment.lifecycle_stage == "deleted":
        client.restore_experiment(experiment.experiment_id)
    return experiment.experiment_id


def _existing_runs(mlflow, client, experiment_id: str) -> list:
    """Every active run of the experiment (all pages)."""
    runs, token = [], None
    while True:
        page = client.search_runs(
            [experiment_id], run_view_type=mlflow.entities.ViewType.ACTIVE_ONLY,
            max_results=1000, page_token=token,
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _create_run(mlflow, client, experiment_id: str, run_dir: Path, metrics: dict,
                history: list[dict], digest: str, copy_models: bool) -> str:
    run = client.create_run(
        experiment_id, start_time=int(float(metrics.get("started_at") or 0) * 1000),
        tags=_tags(metrics, run_dir), run_name=run_name(metrics),
    )
    run_id = run.info.run_id
    run_config = {k: v for k, v in (metrics.get("run_config") or {}).items() if k not in JOB_KEYS}
    Param = mlflow.entities.Param
    params = [Param(k, v) for k, v in flatten(run_config).items()]
    for batch in _chunks(params, BATCH_PARAMS):
        client.log_batch(run_id, params=batch)
    for batch in _chunks(_metrics(mlflow, metrics, history), BATCH_METRICS):
        client.log_batch(run_id, metrics=batch)
    for name in (METRICS, HISTORY, *((MODEL,) if copy_models else ())):
        if (run_dir / name).is_file():
            client.log_artifact(run_id, str(run_dir / name))
    finished = metrics.get("status") == "completed"
    client.set_terminated(run_id, status="FINISHED" if finished else "FAILED",
                          end_time=int(float(metrics.get("finished_at") or 0) * 1000))
    # Last: the mark of a complete run (an export stopped before it leaves a run without it,
    # which the next export replaces).
    client.set_tag(run_id, CONTENT_TAG, digest)
    return run_id


def export_runs(run_dirs: Iterable[str | Path], tracking_uri: str, *,
                experiment_suffix: str = "", copy_models: bool = False,
                create: bool = False) -> list[Outcome]:
    """Export the finished runs in `run_dirs` (folders with metrics.json and history.csv) to
    the store at `tracking_uri`; `experiment_suffix` is appended to each study's experiment
    name (smoke mode: " (smoke)"); `create`: a local store that does not exist yet is made
    (else refused: `check_store`). Any failure is an ExportError in one line, its cause
    chained."""
    mlflow = import_mlflow()
    check_store(tracking_uri, create=create, schemes=registered_schemes(mlflow))
    if urlsplit(tracking_uri).scheme.lower() in ("http", "https"):
        check_server(tracking_uri, mlflow.__version__)
    by_study: dict[str, list[tuple[Path, dict, list[dict], str]]] = {}
    for run_dir in map(Path, run_dirs):
        metrics, history, digest = read_run(run_dir)
        by_study.setdefault(metrics["study"], []).append((run_dir, metrics, history, digest))
    try:
        client = mlflow.tracking.MlflowClient(tracking_uri=tracking_uri)
        return [outcome for study, runs in by_study.items()
                for outcome in _export_study(mlflow, client, tracking_uri,
                                             f"{study}{experiment_suffix}", runs, copy_models)]
    except _store_errors(mlflow) as error:
        raise ExportError(f"{tracking_uri}: {one_line(error)}") from error


def _store_errors(mlflow) -> tuple[type[BaseException], ...]:
    """What a store or server raises for a problem of its own (not a bug here)."""
    import requests

    errors: tuple[type[BaseException], ...] = (
        mlflow.exceptions.MlflowException, requests.RequestException, OSError)
    try:
        from sqlalchemy.exc import SQLAlchemyError
    except ImportError:
        return errors
    return (*errors, SQLAlchemyError)


def _export_study(mlflow, client, tracking_uri: str, experiment: str,
                  runs: list[tuple[Path, dict, list[dict], str]],
                  copy_models: bool) -> list[Outcome]:
    experiment_id = _experiment_id(client, tracking_uri, experiment)
    existing: dict[str | None, list] = {}
    for old in _existing_runs(mlflow, client, experiment_id):
        existing.setdefault(old.data.tags.get(HASH_TAG), []).append(old)
    outcomes, seen = [], set()
    for run_dir, metrics, history, digest in runs:
        key = run_config_hash(metrics)
        seen.add(key)
        olds = existing.get(key, [])
        same = next((r for r in olds if r.data.tags.get(CONTENT_TAG) == digest), None)
        if same is not None:
            action, run_id = "unchanged", same.info.run_id
            if same.data.tags.get(CURRENT_TAG) != "true":
                client.set_tag(run_id, CURRENT_TAG, "true")
        else:
            # "updated": a complete run of this config was there (retrained since)
            action = "updated" if any(r.data.tags.get(CONTENT_TAG) for r in olds) else "new"
            run_id = _create_run(mlflow, client, experiment_id, run_dir, metrics, history,
                                 digest, copy_models)
        # Only now that the run is complete: the one it replaces (its history would show each
        # epoch twice if re-logged) and any left incomplete by an export stopped half-way.
        for old in olds:
            if old is not same:
                client.delete_run(old.info.run_id)
        outcomes.append(Outcome(metrics["study"], metrics["variant"], int(metrics["seed"]),
                                action, run_id))
    for key, olds in existing.items():
        for old in olds:
            if key not in seen and old.data.tags.get(CURRENT_TAG) != "false":
                client.set_tag(old.info.run_id, CURRENT_TAG, "false")
    return outcomes


def default_tracking_uri(results: Path) -> str:
    """`sqlite:///results/mlflow.db` (the results folder's own store, a relative path as
    given: SQLAlchemy reads `sqlite:///x` relative to the working directory)."""
    return f"sqlite:///{(results / MLFLOW_DB).as_posix()}"


def summary_line(outcomes: list[Outcome], tracking_uri: str) -> str:
    counts = {a: sum(o.action == a for o in outcomes) for a in ("new", "updated", "unchanged")}
    studies = len({o.study for o in outcomes})
    return (f"cnnablate export mlflow: {len(outcomes)} runs of {studies} "
            f"stud{'y' if studies == 1 else 'ies'} to {tracking_uri}: "
            + ", ".join(f"{n} {a}" for a, n in counts.items())
            + f" (see them: {ui_hint(tracking_uri)})")


def ui_hint(tracking_uri: str) -> str:
    """How to open the runs in MLflow's UI: a server is its own UI; a store needs one."""
    if urlsplit(tracking_uri).scheme.lower() in ("http", "https"):
        return f"open {tracking_uri} in a browser"
    return f"mlflow ui --backend-store-uri {tracking_uri}"
