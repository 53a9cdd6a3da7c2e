"""The HTML report (Jinja2, autoescaped; no TensorFlow): an overview of every study, then a
section per study with its figures, tables, reported reference numbers and runs."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import jinja2
import pandas as pd

from cnnablate.aggregate import headline_metric

TEMPLATES = Path(__file__).resolve().parent.parent / "report" / "templates"
ALPHA = 0.05


def _fmt(value, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _records(frame: pd.DataFrame) -> list[dict]:
    return [
        {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}
        for row in frame.to_dict("records")
    ]


def verdict(
    summary: pd.DataFrame, paired: pd.DataFrame, baseline: str, metric: str,
    confidence: float = 0.95,
) -> dict:
    """Winner, or 'no significant difference', from the intervals and the paired tests."""
    done = summary[summary["n"] > 0]
    if done.empty:
        return {"winner": None, "text": "no completed runs"}
    best = done.sort_values(f"{metric}_mean", ascending=False).iloc[0]
    alone = int((done["rank"] == 1).sum()) == 1 and best["n"] >= 2
    sig = paired[(paired["p_value"] < ALPHA) & (paired["diff_mean"] > 0)]
    if alone:
        return {"winner": best["variant"],
                "text": f"{best['variant']} — its interval overlaps no other variant's"}
    if best["variant"] != baseline and best["variant"] in set(sig["variant"]):
        p = sig.loc[sig["variant"] == best["variant"], "p_value"].iloc[0]
        return {"winner": best["variant"],
                "text": f"{best['variant']} beats the baseline {baseline} (paired p = {p:.3g}); "
                        f"intervals of {int((done['rank'] == 1).sum())} variants overlap"}
    tied = list(done.loc[done["rank"] == 1, "variant"])
    return {"winner": None,
            "text": f"no significant difference: {', '.join(tied)} tied "
                    f"(overlapping {round(100 * confidence)}% intervals)"}


def collect_provenance(metrics_files: list[str]) -> dict:
    packages, commits, datasets, machines, devices, backends = {}, set(), {}, set(), set(), set()
    for path in metrics_files:
        m = json.loads(Path(path).read_text())
        prov = m.get("provenance", {})
        packages.update(prov.get("packages", {}))
        commits.add(prov.get("git_commit") or "not a git checkout")
        datasets[prov.get("dataset")] = prov.get("dataset_checksum")
        mach = prov.get("machine", {})
        machines.add(
            f"{mach.get('hostname')} ({mach.get('platform')}, {mach.get('cpu_count')} CPUs)"
        )
        devices.update(m.get("device") or [])
        backends.add(prov.get("keras_backend", "?"))
    return {
        "packages": dict(sorted(packages.items())),
        "git_commits": sorted(commits),
        "datasets": datasets,
        "machines": sorted(machines),
        "devices": sorted(devices),
        "keras_backends": sorted(backends),
    }


def render_report(studies: list[dict], out_html: str | Path, title: str,
                  config_hash: str, confidence: float) -> None:
    """`studies`: per study its settings, table CSVs, figure paths and run files."""
    out_html = Path(out_html)
    base = out_html.parent
    rel = lambda p: os.path.relpath(Path(p).resolve(), base.resolve())  # noqa: E731
    all_metrics: list[str] = []
    sections = []
    for s in studies:
        settings = s["settings"]
        metric = headline_metric(settings["eval_split"])
        summary = pd.read_csv(s["summary"])
        paired = pd.read_csv(s["paired"])
        runs = pd.read_csv(s["runs"])
        run_rows = _records(runs)
        history_of = {}
        for mpath, hpath in zip(s["metrics_files"], s["history_files"]):
            m = json.loads(Path(mpath).read_text())
            history_of[(m["variant"], int(m["seed"]))] = hpath
        for row in run_rows:
            row["history_link"] = rel(history_of[(row["variant"], int(row["seed"]))])
        all_metrics += list(s["metrics_files"])
        reference = settings.get("reference") or {}
        sections.append({
            "name": settings["name"],
            "description": settings.get("description", ""),
            "dataset": settings["dataset"],
            "model": settings["model"],
            "baseline": settings["baseline"],
            "metric": metric,
            "eval_split": settings["eval_split"],
            "verdict": verdict(summary, paired, settings["baseline"], metric, confidence),
            "summary": _records(summary),
            "paired": _records(paired),
            "runs": run_rows,
            "n_diverged": int((runs["status"] == "diverged").sum()),
            "figures": {k: rel(v) for k, v in s["figures"].items()},
            "reference": reference,
            "variant_descriptions": settings.get("variant_descriptions", {}),
        })
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,  # study, variant and class names are user text
        undefined=jinja2.StrictUndefined,
    )
    env.filters["fmt"] = _fmt
    html = env.get_template("index.html.j2").render(
        title=title, studies=sections, provenance=collect_provenance(all_metrics),
        config_hash=config_hash, confidence=confidence, alpha=ALPHA,
    )
    tmp = out_html.with_name(f".{out_html.name}.tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(out_html)
