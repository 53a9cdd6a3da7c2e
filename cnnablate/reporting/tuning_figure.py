"""The tuning figure (a tuned study's, catalog.TUNING_FIGURES): its own module so that the report,
which reads the tuning table and sentences from `cnnablate.reporting.tuning`, does not import
the figure code (an edit here reruns the tuning figures only)."""

from __future__ import annotations

from pathlib import Path

from cnnablate.decisions.sentences import compact
from cnnablate.reporting.tuning import chart, metric_of, read_tuning


def plot_tuning(data, path: str | Path) -> None:
    """The tuning metric against each tuned key's candidates, one panel per key and a series per
    variant: a dot per tuning seed, the mean line, a star on the selected candidate, an x at the
    bottom per diverged run. With several keys, each panel is the slice through the variant's
    selected setting. `data`: cnnablate.reporting.figures.StudyData with `tuning_csv` set."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.transforms import blended_transform_factory

    from cnnablate.reporting.figures import save_figure, variant_colours

    tuning = read_tuning(data.tuning_csv, data.order)
    colours = variant_colours([*data.order, *(t.variant for t in tuning)])
    metric = metric_of(data.tuning_csv)
    panels = chart(tuning, metric, {})["panels"]
    fig, axes = plt.subplots(1, max(1, len(panels)), figsize=(5.5 * max(1, len(panels)), 4.2),
                             squeeze=False)
    for ax, panel in zip(axes[0], panels):
        bottom = blended_transform_factory(ax.transData, ax.transAxes)
        for k, v in enumerate(panel["variants"]):
            colour = colours[v["name"]]
            xs = panel["x"]
            for x, seeds, n_div in zip(xs, v["seeds"], v["diverged"]):
                ax.scatter([x] * len(seeds), seeds, color=colour, s=16, alpha=0.6)
                if n_div:  # one row of x's per variant, so that none hides another
                    ax.plot([x], [0.04 + 0.05 * k], marker="x", color=colour,
                            transform=bottom, markersize=8, linestyle="none")
            line = [(x, m) for x, m in zip(xs, v["mean"]) if m is not None]
            if line:
                ax.plot(*zip(*line), color=colour, marker="o", markersize=4)
            if v["selected"] is not None and v["mean"][v["selected"]] is not None:
                ax.plot(xs[v["selected"]], v["mean"][v["selected"]], marker="*",
                        markersize=16, color=colour, markeredgecolor="black", linestyle="none")
        _x_axis(ax, panel)
        ax.set_ylabel(f"{metric} (tuning seeds)")
        ax.grid(alpha=0.3)
    shown = [t for t in tuning if any(t.variant == v["name"] for p in panels
                                      for v in p["variants"])]
    handles = [Line2D([], [], color=colours[t.variant], marker="o", markersize=4,
                      label=t.variant if t.selected is not None
                      else f"{t.variant} (nothing selected)") for t in shown]
    handles += [Line2D([], [], marker="*", color="grey", markeredgecolor="black", markersize=12,
                       linestyle="none", label="selected"),
                Line2D([], [], marker="x", color="grey", linestyle="none",
                       label="diverged run")]
    axes[0][0].legend(handles=handles, fontsize=8)
    several = " (other keys at the selected setting)" if len(panels) > 1 else ""
    fig.suptitle(f"tuning: mean over the tuning seeds, a dot per seed{several}", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)  # the PNG, and a vector PDF beside it
    plt.close(fig)


def _x_axis(ax, panel: dict) -> None:
    scale = panel["scale"]
    if scale == "log":
        ax.set_xscale("log")
    elif scale == "asinh":
        ax.set_xscale("symlog", linthresh=panel["linthresh"])
    if scale == "category" or len(panel["x"]) <= 8:
        ax.set_xticks(panel["x"])
        ax.set_xticklabels(panel["ticks"])
        ax.minorticks_off()
    how = {"log": ", log scale", "asinh": ", log scale beyond "
           f"{compact(panel.get('linthresh'))}"}.get(scale, "")
    ax.set_xlabel(f"{panel['label']}{how}")
