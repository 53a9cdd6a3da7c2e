"""Matplotlib figures of one study (no TensorFlow): learning curves, final metric with CIs,
the activation functions as used, and per-layer activation statistics."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

DPI = 110


def variant_colours(variants: Iterable[str]) -> dict[str, tuple]:
    """One colour per variant, in the study's order, the same in every figure."""
    cmap = plt.get_cmap("tab10" if len(list(variants)) <= 10 else "tab20")
    return {v: cmap(i % cmap.N) for i, v in enumerate(dict.fromkeys(variants))}


def _save(fig, path: str | Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def learning_curves(histories: pd.DataFrame, order: list[str], path: str | Path) -> None:
    """Validation accuracy and loss per epoch: mean over seeds with a min-max band."""
    colours = variant_colours(order)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, metric, label in (
        (axes[0], "val_accuracy", "validation accuracy"),
        (axes[1], "val_loss", "validation loss"),
    ):
        for variant in order:
            h = histories[histories["variant"] == variant]
            if h.empty:
                continue
            g = h.groupby("epoch")[metric]
            mean, lo, hi = g.mean(), g.min(), g.max()
            n = h["seed"].nunique()
            ax.plot(mean.index, mean.values, color=colours[variant], label=f"{variant} (n={n})")
            ax.fill_between(mean.index, lo.values, hi.values, color=colours[variant], alpha=0.18)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    axes[1].set_title("band: min-max over seeds", fontsize=8)
    _save(fig, path)


def final_metric(summary: pd.DataFrame, metric: str, baseline: str, path: str | Path,
                 label: str) -> None:
    """Mean per variant with its confidence interval; the baseline marked."""
    colours = variant_colours(summary["variant"])
    fig, ax = plt.subplots(figsize=(max(5, 0.8 * len(summary) + 2), 4))
    for i, row in enumerate(summary.itertuples()):
        mean = getattr(row, f"{metric}_mean")
        lo, hi = getattr(row, f"{metric}_ci_low"), getattr(row, f"{metric}_ci_high")
        err = None if not np.isfinite(lo) else [[mean - lo], [hi - mean]]
        marker = "s" if row.variant == baseline else "o"
        ax.errorbar(i, mean, yerr=err, fmt=marker, color=colours[row.variant], capsize=5,
                    markersize=8)
    if baseline in set(summary["variant"]):
        base = summary.loc[summary["variant"] == baseline, f"{metric}_mean"].iloc[0]
        ax.axhline(base, color="grey", linestyle="--", linewidth=1, label=f"baseline: {baseline}")
        ax.legend(fontsize=8)
    ax.set_xticks(range(len(summary)))
    ax.set_xticklabels(summary["variant"], rotation=30, ha="right")
    ax.set_ylabel(label)
    ax.set_title("mean and 95% CI over seeds", fontsize=9)
    ax.grid(alpha=0.3, axis="y")
    _save(fig, path)


def activation_functions(curves: dict[str, dict], order: list[str], path: str | Path) -> None:
    """Each variant's activation and its derivative, as computed by the layer it trained with."""
    colours = variant_colours(order)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for variant in order:
        curve = curves.get(variant)
        if not curve:
            continue
        axes[0].plot(curve["x"], curve["y"], color=colours[variant], label=variant)
        axes[1].plot(curve["x"], curve["dy"], color=colours[variant], label=variant)
    axes[0].set_title("activation f(x)")
    axes[1].set_title("derivative f'(x)")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.axhline(0, color="black", linewidth=0.5)
        ax.axvline(0, color="black", linewidth=0.5)
    axes[0].legend(fontsize=8)
    _save(fig, path)


def activation_statistics(stats: pd.DataFrame, order: list[str], path: str | Path) -> None:
    """Dead-unit fraction and mean activation per layer (depth), mean over seeds."""
    colours = variant_colours(order)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for variant in order:
        s = stats[stats["variant"] == variant]
        if s.empty:
            continue
        g = s.groupby("depth")
        axes[0].plot(g["dead_fraction"].mean(), color=colours[variant], label=variant, marker=".")
        axes[1].plot(g["mean"].mean(), color=colours[variant], label=variant, marker=".")
    axes[0].set_title("fraction of units that never fire")
    axes[1].set_title("mean activation (bias shift)")
    for ax in axes:
        ax.set_xlabel("activation layer (input to output)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    _save(fig, path)


def study_figures(
    metrics_files: list[str], history_files: list[str], summary_csv: str, study: dict,
    outputs: dict[str, str],
) -> None:
    """All figures of a study; `outputs` maps figure name -> PNG path."""
    from cnnablate.aggregate import headline_metric

    summary = pd.read_csv(summary_csv)
    order = list(summary["variant"])
    frames, stats_rows, curves = [], [], {}
    for mpath, hpath in zip(metrics_files, history_files):
        m = json.loads(Path(mpath).read_text())
        h = pd.read_csv(hpath)
        h["variant"], h["seed"] = m["variant"], m["seed"]
        frames.append(h)
        for depth, layer in enumerate(m.get("activation_stats") or []):
            stats_rows.append({"variant": m["variant"], "seed": m["seed"], "depth": depth, **layer})
        if m.get("activation_curve") and m["variant"] not in curves:
            curves[m["variant"]] = m["activation_curve"]
    histories = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["epoch", "val_accuracy", "val_loss", "variant", "seed"])
    learning_curves(histories, order, outputs["learning_curves"])
    metric = headline_metric(study["eval_split"])
    final_metric(summary, metric, study["baseline"], outputs["final_metric"],
                 metric.replace("_", " "))
    activation_functions(curves, order, outputs["activation_functions"])
    activation_statistics(
        pd.DataFrame(stats_rows, columns=["variant", "seed", "depth", "dead_fraction", "mean"]),
        order, outputs["activation_statistics"],
    )
