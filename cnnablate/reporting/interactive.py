"""The report's interactive figures: data per study, and the inlined chart library.

The learning curves (mean over the completed seeds per epoch, with a min-max band) and the
headline metric per variant (mean and confidence interval) are drawn in the page by uPlot
(report/vendor/uplot/, MIT, pinned below), inlined with our own report/interactive.js, so the
page still opens from disk with no network. Hovering shows the values, clicking a legend entry
hides or shows a variant. The matplotlib PNGs stay (Snakemake's --report, printing).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable
from pathlib import Path

from markupsafe import Markup

REPORT_DIR = Path(__file__).resolve().parents[2] / "report"
UPLOT_VERSION = "1.6.32"  # npm pack uplot@1.6.32: dist/uPlot.iife.min.js, dist/uPlot.min.css
ASSETS = (
    REPORT_DIR / "vendor" / "uplot" / "uPlot.iife.min.js",
    REPORT_DIR / "vendor" / "uplot" / "uPlot.min.css",
    REPORT_DIR / "interactive.js",
)
# matplotlib's tab10, as figures.py uses for up to ten variants (then repeated).
TAB10 = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
         "#7f7f7f", "#bcbd22", "#17becf")
CURVE_METRICS = ("val_accuracy", "val_loss")
# The registered figures (cnnablate.base.catalog) the page draws itself: the report links
# their static PNG and PDF instead of showing the same figure twice.
DRAWN = frozenset({"learning_curves", "final_metric", "tuning"})


def _number(text) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def learning_curves(metrics_files: Iterable[str | Path], history_files: Iterable[str | Path],
                    order: list[str]) -> dict:
    """Per variant and metric: mean, min and max over the completed seeds at each epoch
    (None where no completed seed has that epoch). Diverged runs are left out, as in the
    means of the PNG (which draws them dotted, each on its own)."""
    values: dict[str, dict[str, dict[int, list[float]]]] = {}
    seeds: dict[str, int] = {}
    last_epoch = 0
    for mpath, hpath in zip(metrics_files, history_files, strict=True):
        metrics = json.loads(Path(mpath).read_text())
        if metrics.get("status") != "completed":
            continue
        variant = metrics["variant"]
        seeds[variant] = seeds.get(variant, 0) + 1
        with open(hpath, newline="") as fh:
            for row in csv.DictReader(fh):
                epoch = int(row["epoch"])
                last_epoch = max(last_epoch, epoch)
                for metric in CURVE_METRICS:
                    if (value := _number(row.get(metric))) is not None:
                        per_metric = values.setdefault(variant, {}).setdefault(metric, {})
                        per_metric.setdefault(epoch, []).append(value)
    epochs = list(range(1, last_epoch + 1))
    variants = []
    for i, name in enumerate(order):
        if name not in seeds:
            continue
        entry: dict = {"name": name, "n": seeds[name], "colour": TAB10[i % len(TAB10)]}
        for metric in CURVE_METRICS:
            per_epoch = values.get(name, {}).get(metric, {})
            entry[metric] = {
                key: [_round(fn(per_epoch[e])) if e in per_epoch else None for e in epochs]
                for key, fn in (("mean", lambda v: sum(v) / len(v)), ("lo", min), ("hi", max))
            }
        variants.append(entry)
    return {"epochs": epochs, "variants": variants}


def final_metric(summary: list[dict], metric: str, baseline: str, order: list[str]) -> dict:
    """Per variant with a completed run: mean and confidence interval of the headline metric."""
    colour = {name: TAB10[i % len(TAB10)] for i, name in enumerate(order)}
    rows = [r for r in summary if (r.get("n") or 0) > 0]
    return {
        "metric": metric,
        "baseline": baseline,
        "variants": [
            {"name": r["variant"], "n": int(r["n"]), "colour": colour.get(r["variant"], "#333"),
             "mean": _round(_number(r.get(f"{metric}_mean"))),
             "lo": _round(_number(r.get(f"{metric}_ci_low"))),
             "hi": _round(_number(r.get(f"{metric}_ci_high")))}
            for r in rows
        ],
    }


def script_json(payload: dict) -> Markup:
    """JSON safe inside <script type="application/json">: no '<' can close the element."""
    text = json.dumps(payload, separators=(",", ":"), allow_nan=False)
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def assets() -> dict[str, Markup]:
    """The chart library and our drawing code, to inline: {'js': ..., 'css': ...}."""
    uplot_js, uplot_css, ours = (path.read_text(encoding="utf-8") for path in ASSETS)
    for name, text in (("uPlot", uplot_js), ("interactive.js", ours)):
        if "</script" in text.lower():
            raise ValueError(f"{name} contains '</script': it cannot be inlined as it is")
    return {"js": Markup(f"{uplot_js}\n{ours}"), "css": Markup(uplot_css)}
