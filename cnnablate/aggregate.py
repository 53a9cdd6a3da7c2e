"""Per-study tables from the runs' metrics.json files (pandas; no TensorFlow).

- runs.csv: one row per run.
- summary.csv: one row per variant: n, diverged count, mean/std/CI of each metric, tied rank.
- paired.csv: every variant against the baseline over the seeds both completed.
Diverged runs are counted and listed, never averaged in.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from cnnablate.atomic import atomic_path
from cnnablate.stats import paired_comparison, t_interval, tied_ranks

RUN_COLUMNS = (
    "study", "variant", "seed", "status", "epochs_completed", "diverged_epoch",
    "best_val_accuracy", "best_epoch", "final_val_accuracy", "final_val_loss",
    "test_accuracy", "parameters", "train_seconds", "seconds_per_epoch",
)
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
    runs = pd.DataFrame(rows, columns=[*RUN_COLUMNS, "data"])
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
            mean, lo, hi = t_interval(values, confidence)
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


def paired_against_baseline(
    runs: pd.DataFrame, baseline: str, metric: str, confidence: float = 0.95,
    order: list[str] | None = None,
) -> pd.DataFrame:
    order = order or list(dict.fromkeys(runs["variant"]))
    done = runs[runs["status"] == "completed"]
    base = done[done["variant"] == baseline].set_index("seed")[metric]
    rows = []
    for variant in order:
        if variant == baseline:
            continue
        other = done[done["variant"] == variant].set_index("seed")[metric]
        seeds = sorted(set(base.index) & set(other.index))
        result = paired_comparison(
            [float(base[s]) for s in seeds], [float(other[s]) for s in seeds], confidence
        )
        rows.append({"variant": variant, "baseline": baseline, "metric": metric, **result})
    columns = ["variant", "baseline", "metric", "n_pairs", "diff_mean", "diff_ci_low",
               "diff_ci_high", "p_value", "test"]
    return pd.DataFrame(rows, columns=columns)


def aggregate_study(
    metrics_files: Iterable[str | Path],
    study: dict,
    out_runs: str | Path,
    out_summary: str | Path,
    out_paired: str | Path,
    confidence: float = 0.95,
) -> None:
    """Write a study's three tables; `study` is `cnnablate.config.study_settings(...)`."""
    runs = load_runs(metrics_files)
    headline = headline_metric(study["eval_split"])
    order = [v for v in study["variant_descriptions"] if v in set(runs["variant"])]
    summary = summarize(runs, order, headline, confidence)
    paired = paired_against_baseline(runs, study["baseline"], headline, confidence, order)
    for frame, path in ((runs, out_runs), (summary, out_summary), (paired, out_paired)):
        with atomic_path(path) as tmp:
            frame.to_csv(tmp, index=False)
