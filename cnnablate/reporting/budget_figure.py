"""The budget-curve figure of a tuned study (catalog.TUNING_FIGURES, issue #31): per variant the
expected best tuning metric of n candidates, n = 1..N (Dodge et al. 2019 with Tang et al. 2020's
unbiased estimator: cnnablate.decisions.halving.expected_max_curve), from the tuning runs that
trained the whole tuning budget, with the equal-budget point (the fewest candidates any variant
had) marked. Its own module, as the tuning figure: an edit here reruns the tuning figures only."""

from __future__ import annotations

from pathlib import Path

from cnnablate.reporting.tuning import budget_chart, metric_of, read_tuning


def plot_budget(data, path: str | Path) -> None:
    """`data`: cnnablate.reporting.figures.StudyData with `tuning_csv` set."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    from cnnablate.reporting.figures import save_figure, variant_colours

    tuning = read_tuning(data.tuning_csv, data.order)
    colours = variant_colours([*data.order, *(t.variant for t in tuning)])
    metric = metric_of(data.tuning_csv)
    chart = budget_chart(tuning, metric, {})
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    equal = chart["equal_budget"]
    for v in chart["variants"]:
        points = [(n, y) for n, y in enumerate(v["curve"], start=1) if y is not None]
        if not points:
            continue
        label = v["name"] + (" (still rising)" if v["rising"] else "")
        ax.plot(*zip(*points), color=colours[v["name"]], marker="o", markersize=4, label=label)
        at = v["curve"][equal - 1] if equal else None
        if at is not None:
            ax.plot([equal], [at], marker="D", markersize=8, color=colours[v["name"]],
                    markeredgecolor="black", linestyle="none")
    if equal:
        ax.axvline(equal, color="grey", linestyle="--", linewidth=1,
                   label=f"equal budget: {equal} candidate{'s' if equal != 1 else ''}")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("candidates tried (drawn from those that trained the whole tuning budget)")
    ax.set_ylabel(f"expected best {metric}")
    ax.grid(alpha=0.3)
    if chart["variants"]:
        ax.legend(fontsize=8)
    fig.suptitle("budget curves: expected best tuning metric of n candidates", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)  # the PNG, and a vector PDF beside it
    plt.close(fig)
