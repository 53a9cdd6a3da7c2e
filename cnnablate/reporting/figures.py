"""Matplotlib figures of one study (no TensorFlow): learning curves, final metric with CIs,
the activation functions as used, and per-layer activation statistics."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from cnnablate.base import catalog  # noqa: E402

DPI = 110
PDF_FONTS = {"pdf.fonttype": 42, "ps.fonttype": 42}  # embedded TrueType (save_figure)
LINESTYLES = ("-", "--", "-.", ":")


def variant_colours(variants: Iterable[str]) -> dict[str, tuple]:
    """One colour per variant, in the study's order, the same in every figure.

    tab10 up to ten variants, tab20 up to twenty, then tab20 + tab20b + tab20c (60 colours).
    """
    names = list(dict.fromkeys(variants))  # once: `variants` may be a one-shot iterator
    if len(names) <= 10:
        palette = list(plt.get_cmap("tab10").colors)
    elif len(names) <= 20:
        palette = list(plt.get_cmap("tab20").colors)
    else:
        palette = [c for name in ("tab20", "tab20b", "tab20c") for c in plt.get_cmap(name).colors]
    return {v: tuple(palette[i % len(palette)]) for i, v in enumerate(names)}


def vector_path(path: str | Path) -> Path:
    """Where the vector (PDF) copy of the figure at PNG `path` goes: beside it, as .pdf."""
    return Path(path).with_suffix(".pdf")


def save_figure(fig, path: str | Path) -> None:
    """Write `fig` as the PNG at `path` (for the report) and as a PDF beside it (vector, for a
    paper), then close it. Every registered figure saves through this."""
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    # No creation date in the PDF: the same figure gives the same bytes. Fonts as Type 42
    # (TrueType), not matplotlib's default Type 3, which publishers' PDF checks reject.
    with plt.rc_context(PDF_FONTS):
        fig.savefig(vector_path(path), metadata={"CreationDate": None})
    plt.close(fig)


_save = save_figure  # the name the figures of this module use


def learning_curves(histories: pd.DataFrame, order: list[str], path: str | Path) -> None:
    """Validation accuracy and loss per epoch: mean over the completed seeds with a min-max
    band; each diverged run drawn on its own as a dotted line (up to where it diverged), so it
    is shown but not averaged in. `histories` has a `status` column per run (default:
    completed)."""
    colours = variant_colours(order)
    if "status" not in histories.columns:
        histories = histories.assign(status="completed")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, metric, label in (
        (axes[0], "val_accuracy", "validation accuracy"),
        (axes[1], "val_loss", "validation loss"),
    ):
        for variant in order:
            h = histories[histories["variant"] == variant]
            if h.empty:
                continue
            done = h[h["status"] == "completed"]
            failed = h[h["status"] != "completed"]
            n, n_failed = done["seed"].nunique(), failed["seed"].nunique()
            name = f"{variant} (n={n}" + (f", {n_failed} diverged)" if n_failed else ")")
            if not done.empty:
                g = done.groupby("epoch")[metric]
                mean, lo, hi = g.mean(), g.min(), g.max()
                ax.plot(mean.index, mean.values, color=colours[variant], label=name)
                ax.fill_between(mean.index, lo.values, hi.values, color=colours[variant],
                                alpha=0.18)
                name = None
            for _, run in failed.groupby("seed"):
                run = run.sort_values("epoch")
                ax.plot(run["epoch"], run[metric], color=colours[variant], linestyle=":",
                        linewidth=1.2, marker="x", markersize=4, label=name)
                name = None
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    if axes[0].lines:
        axes[0].legend(fontsize=8)
    axes[0].set_title("validation accuracy (band: min-max over seeds)", fontsize=10)
    axes[1].set_title("validation loss (dotted: diverged runs, not averaged)", fontsize=10)
    _save(fig, path)


def _number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def final_metric(summary: pd.DataFrame, metric: str, baseline: str, path: str | Path,
                 label: str, confidence: float = 0.95) -> None:
    """Mean per variant with its confidence interval; the baseline marked."""
    colours = variant_colours(summary["variant"])
    fig, ax = plt.subplots(figsize=(max(5.5, 0.9 * len(summary) + 2), 4.2))
    labels = []
    for i, row in enumerate(summary.itertuples()):
        mean = _number(getattr(row, f"{metric}_mean"))
        lo = _number(getattr(row, f"{metric}_ci_low"))
        hi = _number(getattr(row, f"{metric}_ci_high"))
        n, n_div = int(row.n), int(row.n_diverged)
        labels.append(f"{row.variant}\nn={n}" + (f", {n_div} diverged" if n_div else ""))
        if not np.isfinite(mean):
            # No completed run: say so where the point would be, rather than leave a gap.
            ax.annotate("no completed run", (i, 0.03), xycoords=("data", "axes fraction"),
                        rotation=90, ha="center", va="bottom", fontsize=8, color="#b00")
            continue
        err = None if not (np.isfinite(lo) and np.isfinite(hi)) else [[mean - lo], [hi - mean]]
        marker = "s" if row.variant == baseline else "o"
        ax.errorbar(i, mean, yerr=err, fmt=marker, color=colours[row.variant], capsize=5,
                    markersize=8)
    if baseline in set(summary["variant"]):
        base = _number(summary.loc[summary["variant"] == baseline, f"{metric}_mean"].iloc[0])
        if np.isfinite(base):
            ax.axhline(base, color="grey", linestyle="--", linewidth=1,
                       label=f"baseline: {baseline}")
            ax.legend(fontsize=8)
    many = len(summary) > 5
    ax.set_xticks(range(len(summary)))
    ax.set_xticklabels(labels, rotation=30 if many else 0, ha="right" if many else "center",
                       fontsize=8)
    ax.set_xlim(-0.6, len(summary) - 0.4)
    ax.margins(y=0.15)
    ax.set_ylabel(label)
    ax.set_title(f"mean and {round(100 * confidence)}% CI over seeds "
                 "(no bar: fewer than two runs)", fontsize=9)
    ax.grid(alpha=0.3, axis="y")
    _save(fig, path)


def activation_functions(curves: dict[str, dict], order: list[str], path: str | Path) -> None:
    """Each variant's activation and its derivative, as computed by the layer it trained with."""
    colours = variant_colours(order)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for i, variant in enumerate(order):
        curve = curves.get(variant)
        if not curve:
            continue
        # Several variants often share a curve (relu, relu6 for x < 6, ...): vary the dashes
        # so one line does not hide another.
        style = {"color": colours[variant], "label": variant, "linestyle": LINESTYLES[i % 4],
                 "linewidth": 1.8}
        axes[0].plot(curve["x"], curve["y"], **style)
        axes[1].plot(curve["x"], curve["dy"], **style)
    axes[0].set_title("activation f(x)")
    axes[1].set_title("derivative f'(x)")
    for ax in axes:
        ax.set_xlabel("x")
        ax.grid(alpha=0.3)
        ax.axhline(0, color="black", linewidth=0.5)
        ax.axvline(0, color="black", linewidth=0.5)
    if axes[0].lines:
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
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    if axes[0].lines:
        axes[0].legend(fontsize=8)
    _save(fig, path)


@dataclass(frozen=True)
class StudyData:
    """What a study's figures are drawn from (read once per figures job)."""

    study: dict  # the study's settings (cnnablate.workflow.config.study_settings)
    summary: pd.DataFrame  # summary.csv: one row per variant
    order: list[str]  # variants in the summary's order
    histories: pd.DataFrame  # every run's history.csv rows, with variant, seed and status
    activation_stats: pd.DataFrame  # per run and activation layer: dead_fraction, mean
    activation_curves: dict[str, dict]  # variant -> {x, y, dy} of its activation
    confidence: float
    tuning_csv: str | None = None  # a tuned study's tuning.csv (cnnablate.reporting.tuning)


def load_study_data(
    metrics_files: list[str], history_files: list[str], summary_csv: str, study: dict,
    confidence: float = 0.95, tuning_csv: str | None = None,
) -> StudyData:
    summary = pd.read_csv(summary_csv)
    frames, stats_rows, curves = [], [], {}
    for mpath, hpath in zip(metrics_files, history_files):
        m = json.loads(Path(mpath).read_text())
        h = pd.read_csv(hpath)
        h["variant"], h["seed"], h["status"] = m["variant"], m["seed"], m.get("status")
        frames.append(h)
        for depth, layer in enumerate(m.get("activation_stats") or []):
            stats_rows.append({"variant": m["variant"], "seed": m["seed"], "depth": depth, **layer})
        if m.get("activation_curve") and m["variant"] not in curves:
            curves[m["variant"]] = m["activation_curve"]
    histories = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["epoch", "val_accuracy", "val_loss", "variant", "seed", "status"])
    stats = pd.DataFrame(stats_rows, columns=["variant", "seed", "depth", "dead_fraction", "mean"])
    return StudyData(study, summary, list(summary["variant"]), histories, stats, curves,
                     confidence, tuning_csv)


# The registered figures (cnnablate.base.catalog.FIGURES): each draws one PNG from a StudyData.
def plot_learning_curves(data: StudyData, path: str | Path) -> None:
    learning_curves(data.histories, data.order, path)


def plot_final_metric(data: StudyData, path: str | Path) -> None:
    from cnnablate.reporting.aggregate import headline_metric

    metric = headline_metric(data.study["eval_split"])
    final_metric(data.summary, metric, data.study["baseline"], path, metric.replace("_", " "),
                 data.confidence)


def plot_activation_functions(data: StudyData, path: str | Path) -> None:
    activation_functions(data.activation_curves, data.order, path)


def plot_activation_statistics(data: StudyData, path: str | Path) -> None:
    activation_statistics(data.activation_stats, data.order, path)


def figure_function(name: str) -> Callable[[StudyData, str | Path], None]:
    """The function of registered figure `name` ("module:function"), its module imported."""
    figure = catalog.FIGURES.get(name) or catalog.TUNING_FIGURES[name]
    module, _, function = figure.function.partition(":")
    return getattr(importlib.import_module(module), function)


def study_figures(
    metrics_files: list[str], history_files: list[str], summary_csv: str, study: dict,
    outputs: dict[str, str], confidence: float = 0.95, tuning_csv: str | None = None,
) -> None:
    """The registered figures named in `outputs` (figure name -> PNG path): every study's
    (catalog.FIGURES) from one job, a tuned study's own (catalog.TUNING_FIGURES) from another.
    Each one's PDF goes beside its PNG (`vector_path`)."""
    data = load_study_data(metrics_files, history_files, summary_csv, study, confidence,
                           tuning_csv)
    for name, path in outputs.items():
        figure_function(name)(data, path)
        if not vector_path(path).is_file():
            figure = catalog.FIGURES.get(name) or catalog.TUNING_FIGURES[name]
            raise RuntimeError(
                f"figure {name} ({figure.function}) wrote no PDF beside its PNG: "
                "save it with cnnablate.reporting.figures.save_figure(fig, path)"
            )
