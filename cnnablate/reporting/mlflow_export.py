"""Finished runs into an MLflow tracking store (`cnnablate export mlflow`; no TensorFlow).

One MLflow experiment per study, one MLflow run per (variant, seed): the resolved run config
(metrics.json's `run_config`) flattened as params, the per-epoch history as metrics with the
epoch as step, the run's result numbers as metrics, tags study/variant/seed/status/commit, the
run's metrics.json and history.csv as artifacts (model.keras too with `copy_models`), and the
run folder, model and TensorBoard logs as path tags.

Idempotent: an MLflow run is found by its tag `cnnablate.config_hash` (the hash of the resolved
run config, as in metrics.json's provenance). Exporting again leaves an unchanged run as it is;
a run retrained with the same config (a code change) replaces its MLflow run, because MLflow's
metric histories only grow and re-logging would show each epoch twice; a changed config is a
different run. Runs of the experiment that the export did not see (an old config, a variant
removed) keep their data, tagged `cnnablate.current = false`.

MLflow is optional (requirements-mlflow.txt) and imported only here, when an export runs.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnablate.base.ids import config_hash

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


class ExportError(Exception):
    """A one-line reason the export cannot run (MLflow missing, a run folder unreadable)."""


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
        metrics_bytes = (run_dir / "metrics.json").read_bytes()
        history_bytes = (run_dir / "history.csv").read_bytes()
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


def _tags(metrics: Mapping, run_dir: Path, digest: str) -> dict[str, str]:
    prov = metrics.get("provenance") or {}
    run_config = metrics.get("run_config") or {}
    commit = prov.get("git_commit") or ""
    tags = {
        "study": metrics["study"], "variant": metrics["variant"], "seed": str(metrics["seed"]),
        "status": str(metrics.get("status")), "commit": commit,
        "dataset": str(prov.get("dataset", "")),
        "keras_backend": str(prov.get("keras_backend", "")),
        "data": "SYNTHETIC" if run_config.get("synthetic") else "real",
        "smoke": str(bool(run_config.get("smoke"))).lower(),
        HASH_TAG: run_config_hash(metrics),
        CONTENT_TAG: digest,
        CURRENT_TAG: "true",
        "cnnablate.run_dir": str(run_dir.resolve()),
        "cnnablate.model": str((run_dir / "model.keras").resolve()),
        "cnnablate.tensorboard": str((run_dir / "tensorboard").resolve()),
        # What MLflow's UI shows as the run's source version (without the "+dirty" mark).
        "mlflow.source.git.commit": commit.removesuffix("+dirty"),
    }
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
    tags = _tags(metrics, run_dir, digest)
    run = client.create_run(
        experiment_id, start_time=int(float(metrics.get("started_at") or 0) * 1000),
        tags=tags, run_name=f"{metrics['variant']}/seed{metrics['seed']}",
    )
    run_id = run.info.run_id
    run_config = {k: v for k, v in (metrics.get("run_config") or {}).items() if k not in JOB_KEYS}
    Param = mlflow.entities.Param
    params = [Param(k, v) for k, v in flatten(run_config).items()]
    for batch in _chunks(params, BATCH_PARAMS):
        client.log_batch(run_id, params=batch)
    for batch in _chunks(_metrics(mlflow, metrics, history), BATCH_METRICS):
        client.log_batch(run_id, metrics=batch)
    for name in ("metrics.json", "history.csv", *(("model.keras",) if copy_models else ())):
        if (run_dir / name).is_file():
            client.log_artifact(run_id, str(run_dir / name))
    finished = metrics.get("status") == "completed"
    client.set_terminated(run_id, status="FINISHED" if finished else "FAILED",
                          end_time=int(float(metrics.get("finished_at") or 0) * 1000))
    return run_id


def export_runs(run_dirs: Iterable[str | Path], tracking_uri: str, *,
                experiment_suffix: str = "", copy_models: bool = False) -> list[Outcome]:
    """Export the finished runs in `run_dirs` (folders with metrics.json and history.csv) to
    the store at `tracking_uri`; `experiment_suffix` is appended to each study's experiment
    name (smoke mode: " (smoke)")."""
    mlflow = import_mlflow()
    client = mlflow.tracking.MlflowClient(tracking_uri=tracking_uri)
    by_study: dict[str, list[tuple[Path, dict, list[dict], str]]] = {}
    for run_dir in map(Path, run_dirs):
        metrics, history, digest = read_run(run_dir)
        by_study.setdefault(metrics["study"], []).append((run_dir, metrics, history, digest))
    outcomes = []
    for study, runs in by_study.items():
        experiment_id = _experiment_id(client, tracking_uri, f"{study}{experiment_suffix}")
        existing = {r.data.tags.get(HASH_TAG): r for r in
                    _existing_runs(mlflow, client, experiment_id)}
        seen = set()
        for run_dir, metrics, history, digest in runs:
            key = run_config_hash(metrics)
            seen.add(key)
            old = existing.get(key)
            if old is not None and old.data.tags.get(CONTENT_TAG) == digest:
                action, run_id = "unchanged", old.info.run_id
                if old.data.tags.get(CURRENT_TAG) != "true":
                    client.set_tag(run_id, CURRENT_TAG, "true")
            else:
                if old is not None:
                    client.delete_run(old.info.run_id)  # retrained: its history is replaced
                action = "new" if old is None else "updated"
                run_id = _create_run(mlflow, client, experiment_id, run_dir, metrics, history,
                                     digest, copy_models)
            outcomes.append(Outcome(study, metrics["variant"], int(metrics["seed"]), action,
                                    run_id))
        for key, run in existing.items():
            if key not in seen and run.data.tags.get(CURRENT_TAG) != "false":
                client.set_tag(run.info.run_id, CURRENT_TAG, "false")
    return outcomes


def default_tracking_uri(results: Path) -> str:
    """`sqlite:///results/mlflow.db` (the results folder's own store, a relative path as
    given: SQLAlchemy reads `sqlite:///x` relative to the working directory)."""
    return f"sqlite:///{(results / 'mlflow.db').as_posix()}"


def summary_line(outcomes: list[Outcome], tracking_uri: str) -> str:
    counts = {a: sum(o.action == a for o in outcomes) for a in ("new", "updated", "unchanged")}
    studies = len({o.study for o in outcomes})
    return (f"cnnablate export mlflow: {len(outcomes)} runs of {studies} "
            f"stud{'y' if studies == 1 else 'ies'} to {tracking_uri}: "
            + ", ".join(f"{n} {a}" for a, n in counts.items())
            + f" (see them: mlflow ui --backend-store-uri {tracking_uri})")
