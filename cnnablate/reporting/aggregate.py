"""Per-study tables from the runs' metrics.json files (pandas; no TensorFlow).

- runs.csv: one row per run.
- summary.csv: one row per variant: n, diverged count, mean/std/CI of each metric, tied rank.
- paired.csv: every variant against the baseline over the seeds both completed.
Diverged runs are counted and listed, never averaged in.

Where the headline split is fixed (an official test split, or a dataset with `split: fixed`),
each run folder holds `predictions.npy` (int16, the predicted class of every image of that
split in the prepared data's order) and the dataset's `{split}_labels.npy` the labels: the
per-image correctness vectors then let the decisions count the images as a sample as well as
the seeds (cnnablate.decisions.crossed). Runs without predictions keep the test over seeds.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from cnnablate.base.atomic import atomic_path, write_json_atomic
from cnnablate.base.layout import PREDICTIONS
from cnnablate.decisions.decide import PAIRED_COLUMNS, Decisions, decide, design_from_settings
from cnnablate.decisions.grid import snap_values
from cnnablate.decisions.stats import METRIC_BOUNDS, bounded_interval, tied_ranks

RUN_COLUMNS = (
    "study", "variant", "seed", "status", "epochs_completed", "diverged_epoch",
    "best_val_accuracy", "best_epoch", "final_val_accuracy", "final_val_loss",
    "test_accuracy", "parameters", "train_seconds", "seconds_per_epoch",
)
ACCURACY_COLUMNS = ("best_val_accuracy", "final_val_accuracy", "test_accuracy")
log = logging.getLogger(__name__)
SUMMARY_METRICS = (
    "best_val_accuracy", "final_val_accuracy", "final_val_loss", "test_accuracy",
    "seconds_per_epoch",
)


def headline_metric(eval_split: str) -> str:
    """The metric a study is ranked by: best validation accuracy, or test accuracy."""
    return "test_accuracy" if eval_split == "test" else "best_val_accuracy"


def load_runs(metrics_files: Iterable[str | Path]) -> pd.DataFrame:
    rows = []
    for path in metrics_files:
        metrics = json.loads(Path(path).read_text())
        rows.append({col: metrics.get(col) for col in RUN_COLUMNS})
        # Smoke mode's generated stand-in data, where the real data was absent.
        rows[-1]["data"] = ("SYNTHETIC" if (metrics.get("run_config") or {}).get("synthetic")
                            else "real")
        # The Keras backend that trained it (runs from before backends: TensorFlow's only).
        rows[-1]["backend"] = (metrics.get("provenance") or {}).get("keras_backend",
                                                                     "tensorflow")
    runs = pd.DataFrame(rows, columns=[*RUN_COLUMNS, "data", "backend"])
    # Image counts recorded through float32: on their grid before any statistic (grid.py),
    # each variant on its own (a variant may be evaluated on fewer images: issue #30).
    for col in ACCURACY_COLUMNS:
        for _, index in runs.groupby("variant", sort=False).groups.items():
            runs.loc[index, col] = snap_values(runs.loc[index, col].tolist())
    return runs.sort_values(["variant", "seed"], kind="stable").reset_index(drop=True)


def _first_count(values: pd.Series) -> int | None:
    known = pd.to_numeric(values, errors="coerce").dropna()
    return int(known.iloc[0]) if len(known) else None


def summarize(
    runs: pd.DataFrame, variant_order: list[str], headline: str, confidence: float = 0.95
) -> pd.DataFrame:
    rows = []
    for variant in variant_order:
        group = runs[runs["variant"] == variant]
        done = group[group["status"] == "completed"]
        row: dict = {
            "variant": variant,
            "n": len(done),
            "n_diverged": int((group["status"] == "diverged").sum()),
            "parameters": _first_count(group["parameters"]),
        }
        for metric in SUMMARY_METRICS:
            values = pd.to_numeric(done[metric], errors="coerce").dropna().tolist()
            # Intervals stay inside the metric's range (accuracies in [0, 1], losses >= 0).
            bounds = METRIC_BOUNDS.get(metric, (None, None))
            mean, lo, hi = bounded_interval(values, confidence, bounds)
            row[f"{metric}_mean"] = mean
            row[f"{metric}_std"] = float(pd.Series(values).std(ddof=1)) if len(values) > 1 else None
            row[f"{metric}_ci_low"] = lo
            row[f"{metric}_ci_high"] = hi
        rows.append(row)
    summary = pd.DataFrame(rows)
    summary["rank"] = tied_ranks(
        summary[f"{headline}_mean"].tolist(),
        summary[f"{headline}_ci_low"].tolist(),
        summary[f"{headline}_ci_high"].tolist(),
    )
    summary["tied_with_best"] = summary["rank"] == 1
    return summary


def study_results(runs: pd.DataFrame, metric: str) -> dict[str, dict[int, float | None]]:
    """variant -> seed -> headline value; a run that did not complete counts as run (None)."""
    out: dict[str, dict[int, float | None]] = {}
    for row in runs.itertuples():
        value = getattr(row, metric) if row.status == "completed" else None
        value = None if value is None or pd.isna(value) else float(value)
        out.setdefault(row.variant, {})[int(row.seed)] = value
    return out


def load_correct(metrics_files: Iterable[str | Path], labels: str | Path | None
                 ) -> dict[str, dict[int, np.ndarray]]:
    """variant -> seed -> per-image correctness (bool) on the headline split, from each run's
    predictions.npy and the split's labels; {} without labels. A run without predictions, or
    with a count that is not the labels', is left out (its comparisons test over seeds)."""
    if not labels or not Path(labels).exists():
        return {}
    truth = np.load(labels)
    out: dict[str, dict[int, np.ndarray]] = {}
    for path in metrics_files:
        predictions = Path(path).with_name(PREDICTIONS)
        if not predictions.exists():
            continue
        metrics = json.loads(Path(path).read_text())
        predicted = np.load(predictions)
        if predicted.shape != truth.shape:
            log.warning("%s: %d predictions for %d labels; its comparisons test over seeds only",
                        predictions, predicted.size, truth.size)
            continue
        out.setdefault(metrics["variant"], {})[int(metrics["seed"])] = predicted == truth
    return out


def decide_study(runs: pd.DataFrame, study: dict, order: list[str] | None = None,
                 correct: dict[str, dict[int, np.ndarray]] | None = None) -> Decisions:
    """The study's decisions (cnnablate.decisions.decide) from its runs table (and, on a fixed
    headline split, its runs' per-image correctness: `load_correct`)."""
    metric = headline_metric(study["eval_split"])
    order = order or [v for v in study["variant_descriptions"] if v in set(runs["variant"])]
    design = design_from_settings(study.get("decisions") or {})
    return decide(study_results(runs, metric), study["baseline"], design, order, metric,
                  correct=correct)


def paired_against_baseline(
    runs: pd.DataFrame, baseline: str, metric: str, confidence: float = 0.95,
    order: list[str] | None = None, decisions: dict | None = None,
    correct: dict[str, dict[int, np.ndarray]] | None = None,
) -> pd.DataFrame:
    """One row per comparison with its decision (cnnablate.decisions.decide; fixed design by
    default)."""
    order = order or list(dict.fromkeys(runs["variant"]))
    design = design_from_settings({**(decisions or {}), "confidence": confidence})
    result = decide(study_results(runs, metric), baseline, design, order, metric,
                    correct=correct)
    frame = pd.DataFrame(result.rows, columns=list(PAIRED_COLUMNS))
    # a count, or empty where not applicable (never "14.0")
    frame["seeds_needed"] = pd.to_numeric(frame["seeds_needed"]).astype("Int64")
    return frame


def aggregate_study(
    metrics_files: Iterable[str | Path],
    study: dict,
    out_runs: str | Path,
    out_summary: str | Path,
    out_paired: str | Path,
    confidence: float = 0.95,
    labels: str | Path | None = None,
) -> None:
    """Write a study's three tables; `study` is `cnnablate.workflow.config.study_settings(...)`;
    `labels`: the headline split's labels (`{split}_labels.npy`), read with the runs'
    predictions where they have them."""
    metrics_files = list(metrics_files)
    runs = load_runs(metrics_files)
    headline = headline_metric(study["eval_split"])
    order = [v for v in study["variant_descriptions"] if v in set(runs["variant"])]
    summary = summarize(runs, order, headline, confidence)
    paired = paired_against_baseline(runs, study["baseline"], headline, confidence, order,
                                     study.get("decisions"), load_correct(metrics_files, labels))
    for frame, path in ((runs, out_runs), (summary, out_summary), (paired, out_paired)):
        with atomic_path(path) as tmp:
            frame.to_csv(tmp, index=False)


def write_round_state(
    metrics_files: Iterable[str | Path], study: dict, round_no: int, out: str | Path,
    labels: str | Path | None = None,
) -> dict:
    """The decision after round `round_no` of adaptive seeds, as JSON: the variants that run
    the next round's seeds (empty: the study is finished), and every comparison's verdict."""
    metrics_files = list(metrics_files)
    runs = load_runs(metrics_files)
    decisions = decide_study(runs, study, correct=load_correct(metrics_files, labels))
    if decisions.look != round_no:
        raise RuntimeError(
            f"study {study['name']}: round {round_no}'s runs allow look {decisions.look}; "
            "a run of this round is missing"
        )
    state = {
        "study": study["name"], "round": round_no, "looks": decisions.n_looks,
        "continuing": decisions.continuing,
        "seeds_used": decisions.seeds_used, "stop_reason": decisions.stop_reason,
        "verdicts": {f"{r['variant']} vs {r['baseline']}": r["verdict"] for r in decisions.rows},
    }
    write_json_atomic(out, state)
    return state
