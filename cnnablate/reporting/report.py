"""The HTML report (Jinja2, autoescaped; no TensorFlow): an overview of every study, then a
section per study with its dataset, figures, tables, reported reference numbers and runs, then
the provenance of the results.

The page is self-contained: inline CSS and script (cnnablate/reporting/interactive.py), no web
fonts; figures, tables, paper tables and run histories are linked by relative paths inside the
report's folder (files from elsewhere are copied into its `results/`, `Bundle`), so it opens from
disk with no server and no network, and the folder can be zipped and shared on its own.

Each figure appears once: drawn interactively where the page can (`interactive.DRAWN`), its
static PNG and PDF then linked; a figure about one setting (`catalog.Figure.about`) only for a
study whose variants differ in it.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import jinja2
import pandas as pd

from cnnablate.base import catalog
from cnnablate.base.atomic import atomic_path, write_text_atomic
from cnnablate.base.layout import HISTORY, REPORT_BUNDLE
from cnnablate.decisions import scope, sentences
from cnnablate.decisions.decide import Design, design_from_settings
from cnnablate.decisions.grid import resolution
from cnnablate.decisions.stats import METRIC_BOUNDS
from cnnablate.reporting import interactive, tuning
from cnnablate.reporting.aggregate import decide_study, headline_metric

TEMPLATES = Path(__file__).resolve().parents[2] / "report" / "templates"
BUNDLE = REPORT_BUNDLE  # the report folder's copies of the files it links from elsewhere
DECIDED = ("better", "worse", "equivalent")


def interval_min_n(metrics=METRIC_BOUNDS) -> dict[str, int]:
    """Completed seeds from which the report shows a summary interval, per metric: 2 on a
    bounded scale (accuracies: the logit interval stays in [0, 1]), 3 on a log scale (losses,
    seconds: bounded below only). With 2 seeds the t quantile is 12.7, and on the log scale
    that stretches the interval over orders of magnitude (a final loss of [0.0000, 1430913]):
    it would say nothing. The CSVs keep every interval."""
    return {m: 3 if low is not None and high is None else 2
            for m, (low, high) in metrics.items()}


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def _fmt(value, digits: int = 4) -> str:
    if _missing(value):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _int(value) -> str:
    """A count or an epoch: '3', never '3.0' (a CSV column with a gap reads back as float)."""
    if _missing(value) or value == "":
        return "–"
    try:
        return str(int(float(value)))
    except (TypeError, ValueError):
        return str(value)


def _records(frame: pd.DataFrame) -> list[dict]:
    return [
        {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}
        for row in frame.to_dict("records")
    ]


def _names(names: list[str]) -> str:
    return ", ".join(str(n) for n in names)


def verdict(
    summary: pd.DataFrame, paired: pd.DataFrame, baseline: str, metric: str,
    confidence: float = 0.95, alpha: float = Design.alpha,
) -> dict:
    """Winner, or 'no significant difference', from the intervals and the paired tests.

    Higher `metric` is better. A variant wins when its interval overlaps no other variant's,
    or when the paired test against the baseline separates it from every variant it ties
    with: a non-baseline variant significantly better than the baseline while each other tied
    variant is the baseline or significantly worse than it; the baseline when every variant
    tied with it is significantly worse. Otherwise there is no winner and the text names the
    tied variants. Then every decided comparison (better / worse / equivalent in `paired`) the
    text has not named yet: "; decided against before: none worse". Returns {"winner": name or
    None, "text": str}.
    """
    level = f"{round(100 * confidence)}%"
    result = _verdict(summary, paired, baseline, metric, level, alpha)
    # Every decided comparison is named, also those of variants the sentence above leaves out
    # (a variant decided worse at chance behind two tied ones).
    decided = _decided(paired, result.pop("named"))
    return {**result, "text": result["text"] + decided + result.pop("tail")}


def _decided(paired: pd.DataFrame, named: set[str]) -> str:
    """'; decided against before: none worse, after equivalent' for the decided comparisons
    whose variant `named` (already stated) leaves out; '' where none is."""
    if "verdict" not in paired.columns:
        return ""
    rows = paired[paired["verdict"].isin(DECIDED) & ~paired["variant"].isin(named)]
    groups: dict[str, list[str]] = {}
    for row in rows.itertuples():
        against = str(getattr(row, "baseline", "") or "the baseline")
        groups.setdefault(against, []).append(f"{row.variant} {row.verdict}")
    return "".join(f"; decided against {against}: {_names(items)}"
                   for against, items in groups.items())


def _verdict(summary: pd.DataFrame, paired: pd.DataFrame, baseline: str, metric: str,
             level: str, alpha: float) -> dict:
    """verdict() without the decided comparisons: winner, text, tail (variants that never
    completed) and `named`, the variants whose paired verdict the text already states."""
    done = summary[summary["n"] > 0]
    never = list(summary.loc[summary["n"] == 0, "variant"])
    tail = f" ({_names(never)}: no completed run)" if never else ""
    if done.empty:
        return {"winner": None, "text": "no completed runs", "tail": "", "named": set()}
    if len(done) == 1:
        return {"winner": None, "text": f"nothing to compare: only {done['variant'].iloc[0]} "
                                        "completed", "tail": tail, "named": set()}
    best = done.sort_values(f"{metric}_mean", ascending=False, kind="stable").iloc[0]
    name = best["variant"]
    tied = list(done.loc[done["rank"] == 1, "variant"])
    if len(tied) == 1 and best["n"] >= 2:
        return {"winner": name, "text": f"{name} — its {level} interval overlaps no other "
                                        "variant's", "tail": tail, "named": set()}
    if "verdict" in paired.columns:
        # Decisions under the family-wise guarantee (Holm; cnnablate.decisions.decide), not raw p <
        # alpha.
        significant = paired[paired["verdict"].isin(["better", "worse"])]
        significant = significant.assign(p_value=significant["p_holm"])
    else:
        significant = paired[(paired["p_value"] < alpha)]
    better = dict(zip(significant.loc[significant["diff_mean"] > 0, "variant"],
                      significant.loc[significant["diff_mean"] > 0, "p_value"]))
    worse = set(significant.loc[significant["diff_mean"] < 0, "variant"])
    others = [v for v in tied if v != name]
    if name == baseline and others and all(v in worse for v in others):
        return {"winner": name,
                "text": f"{name} (the baseline) — {_names(others)} significantly worse in the "
                        f"paired test (p < {alpha}), though the {level} intervals overlap",
                "tail": tail, "named": set(others)}
    if name in better and all(v == baseline or v in worse for v in others):
        return {"winner": name,
                "text": f"{name} — beats the baseline {baseline} in the paired test "
                        f"(p = {better[name]:.3g}), though the {level} intervals overlap",
                "tail": tail, "named": {name}}
    single = " (single seeds: no intervals)" if (done["n"] < 2).all() else ""
    text = (f"no significant difference: {_names(tied)} tied "
            f"(overlapping {level} intervals){single}")
    beating = [v for v in tied if v in better]
    if beating:
        text += (f"; {_names(beating)} significantly better than the baseline {baseline} "
                 f"(paired p < {alpha})")
    return {"winner": None, "text": text, "tail": tail, "named": set(beating)}


def _machine(mach: dict) -> str:
    parts = [mach.get("platform"), f"CPU {mach.get('cpu')}" if mach.get("cpu") else None,
             f"{mach.get('cpu_count')} cores" if mach.get("cpu_count") else None,
             f"Python {mach.get('python')}" if mach.get("python") else None]
    return f"{mach.get('hostname', '?')}: " + ", ".join(p for p in parts if p)


def collect_provenance(metrics_files: list[str]) -> dict:
    """What produced the runs, merged over all their metrics.json files."""
    packages: dict[str, set] = {}
    commits, machines, devices, backends, hashes = set(), set(), set(), set(), set()
    datasets: dict[str, set] = {}
    smoke = synthetic = 0
    for path in metrics_files:
        m = json.loads(Path(path).read_text())
        smoke += bool((m.get("run_config") or {}).get("smoke"))
        synthetic += bool((m.get("run_config") or {}).get("synthetic"))
        prov = m.get("provenance", {})
        for name, version in prov.get("packages", {}).items():
            packages.setdefault(name, set()).add(str(version))
        commits.add(prov.get("git_commit") or "not a git checkout")
        datasets.setdefault(str(prov.get("dataset")), set()).add(
            str(prov.get("dataset_checksum")))
        machines.add(_machine(prov.get("machine", {})))
        devices.update(m.get("device") or [])
        backends.add(prov.get("keras_backend", "?"))
        if prov.get("config_hash"):
            hashes.add(prov["config_hash"])
    return {
        # More than one version of a package means runs came from different environments.
        "packages": {k: ", ".join(sorted(v)) for k, v in sorted(packages.items())},
        "git_commits": sorted(commits),
        "datasets": {k: ", ".join(sorted(v)) for k, v in sorted(datasets.items())},
        "machines": sorted(machines),
        "devices": sorted(devices),
        "keras_backends": sorted(backends),
        "n_runs": len(metrics_files),
        "n_smoke": smoke,  # runs shrunk by smoke mode: a check of the pipeline, not a result
        "n_synthetic": synthetic,  # smoke runs on generated stand-ins for absent real data
    }


def _dataset_info(name: str, meta_path: str | Path | None) -> dict:
    if not meta_path:
        return {"name": name, "class_names": [], "counts": {}, "origin": "", "checksum": "",
                "image_shape": []}
    meta = json.loads(Path(meta_path).read_text())
    return {
        "name": name,
        "class_names": [str(c) for c in meta.get("class_names", [])],
        "counts": meta.get("counts", {}),
        "origin": meta.get("origin") or meta.get("source") or "",
        "checksum": meta.get("checksum", ""),
        "image_shape": meta.get("image_shape", []),
    }


def render_report(studies: list[dict], out_html: str | Path, title: str,
                  config_hash: str, confidence: float,
                  dataset_meta: dict[str, str | Path] | None = None) -> None:
    """`studies`: per study its settings, table CSVs, figure paths and run files (optional:
    `figure_pdfs`, figure name -> its PDF; `paper_tables`, {"tex": path, "md": path}: linked);
    `dataset_meta`: dataset name -> its prepared meta.json (class names, counts, checksum).
    Linked files outside the report's folder are copied into its `results/` (`Bundle`)."""
    out_html = Path(out_html)
    bundle = Bundle(out_html.parent)
    rel = bundle.link
    dataset_meta = dataset_meta or {}
    all_metrics: list[str] = []
    sections = []
    for s in studies:
        settings = s["settings"]
        metric = headline_metric(settings["eval_split"])
        summary = pd.read_csv(s["summary"])
        paired = pd.read_csv(s["paired"])
        position = {v: i for i, v in enumerate(summary["variant"])}
        paired = paired.sort_values(  # the study's variant order
            "variant", key=lambda col: col.map(position).fillna(len(position)), kind="stable")
        runs = pd.read_csv(s["runs"])
        # Runs in the study's variant order (the summary's), then by seed.
        runs = runs.assign(_order=runs["variant"].map(position).fillna(len(position)))
        runs = runs.sort_values(["_order", "seed"], kind="stable").drop(columns="_order")
        run_rows = _records(runs)
        history_of, train_of, epochs_of, config_of = {}, {}, {}, {}
        for mpath, hpath in zip(s["metrics_files"], s["history_files"]):
            m = json.loads(Path(mpath).read_text())
            history_of[(m["variant"], int(m["seed"]))] = hpath
            config_of.setdefault(m["variant"], m.get("run_config") or {})
            train_of[m["variant"]] = (m.get("run_config") or {}).get("train") or {}
            if train_of[m["variant"]].get("epochs"):
                epochs_of.setdefault(m["variant"], []).append(
                    int(train_of[m["variant"]]["epochs"]))
        name = settings["name"]
        for row in run_rows:
            row["history_link"] = rel(history_of[(row["variant"], int(row["seed"]))], "runs",
                                      name, str(row["variant"]), f"seed{_int(row['seed'])}",
                                      HISTORY)
        all_metrics += list(s["metrics_files"])
        reference = dict(settings.get("reference") or {})
        diverged = runs[runs["status"] != "completed"]
        tuned = _tuning_section(s, settings, list(position), runs, metric, epochs_of, rel)
        alpha = design_from_settings(settings.get("decisions") or {}).alpha  # report.alpha
        shown = {k: v for k, v in s["figures"].items() if k not in catalog.TUNING_FIGURES
                 and _varied(catalog.FIGURES.get(k), config_of)}
        pdfs = s.get("figure_pdfs") or {}
        sections.append({
            "name": settings["name"],
            "description": settings.get("description", ""),
            "dataset": _dataset_info(settings["dataset"], dataset_meta.get(settings["dataset"])),
            "model": settings["model"],
            "baseline": settings["baseline"],
            "metric": metric,
            "eval_split": settings["eval_split"],
            "verdict": verdict(summary, paired, settings["baseline"], metric, confidence, alpha),
            "alpha": alpha,
            "summary": _records(summary),
            "paired": _records(paired),
            "runs": run_rows,
            "backends": sorted({str(r.get("backend") or "tensorflow") for r in run_rows}),
            "n_diverged": len(diverged),
            "diverged_runs": [f"{r.variant} seed {r.seed}" for r in diverged.itertuples()],
            # shown as images: the figures the page does not draw itself
            "figures": {k: rel(v) for k, v in shown.items() if k not in interactive.DRAWN},
            # the static versions of those it draws: links
            "figure_links": _figure_links(shown, pdfs, rel),
            # for papers: each figure as a vector PDF, the study's table as LaTeX and Markdown
            "figure_pdfs": {k: rel(v) for k, v in pdfs.items() if k in shown},
            "paper_tables": {k: rel(v, "studies", name, Path(v).name)
                             for k, v in (s.get("paper_tables") or {}).items()},
            "tables": {k: rel(s[k], "studies", name, f"{k}.csv")
                       for k in ("summary", "paired", "runs")},
            "reference": reference,
            "variant_descriptions": settings.get("variant_descriptions", {}),
            "interactive": interactive.script_json({
                "curves": interactive.learning_curves(
                    s["metrics_files"], s["history_files"], list(position)),
                "final_metric": interactive.final_metric(
                    _records(summary), metric, settings["baseline"], list(position)),
                **({"tuning": tuned["chart"], "budget": tuned["budget"]} if tuned else {}),
            }),
            "tuning": tuned,
            # An untuned study's verdicts are partly verdicts on the setting its variants share.
            "shared_setting": None if tuned else sentences.shared_setting(train_of,
                                                                         list(position)),
            **_decisions_in_words(runs, settings, summary, paired, metric, train_of,
                                  dataset_meta.get(settings["dataset"])),
        })
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,  # study, variant, class names and descriptions are user text
        undefined=jinja2.StrictUndefined,
    )
    env.filters["fmt"] = _fmt
    env.filters["count"] = _int
    env.filters["seeds"] = lambda v: sentences.seeds_text(v) if not _missing(v) else "–"
    env.filters["short_title"] = lambda title: str(title).split(":")[0]
    html = env.get_template("index.html.j2").render(
        title=title, studies=sections, provenance=collect_provenance(all_metrics),
        config_hash=config_hash, confidence=confidence,
        figure_titles=FIGURE_TITLES, interactive_assets=interactive.assets(),
        interval_min_n=interval_min_n(),
        cross_study=sentences.cross_study(sections),
    )
    write_text_atomic(out_html, html)  # concurrent renders never write into each other's file


def _tuning_section(s: dict, settings: dict, order: list[str], runs: pd.DataFrame,
                    metric: str, epochs_of: dict[str, list[int]], rel) -> dict | None:
    """A tuned study's tuning in the report: per-variant sentences, what the decisions compare,
    what the guarantee covers, the cost, the figure; None for an untuned study."""
    if not s.get("tuning"):  # the workflow hands a tuning.csv to tuned studies only
        return None
    tune = settings.get("tune") or {}
    per_variant = tuning.read_tuning(s["tuning"], order)
    tuning_metric = tuning.metric_of(s["tuning"])
    seeds = pd.read_csv(s["tuning"], usecols=["seed"])["seed"]
    names = list(dict.fromkeys([*order, *(t.variant for t in per_variant)]))
    colours = {v: interactive.TAB10[i % len(interactive.TAB10)] for i, v in enumerate(names)}
    return {
        "sentences": tuning.variant_sentences(per_variant),
        "compared": sentences.compared_at_best(
            tuning.all_keys(per_variant), seeds, tuning_metric, runs["seed"], metric,
            settings["eval_split"]),
        "scope": sentences.tuned_guarantee(
            design_from_settings(settings.get("decisions") or {}).alpha),
        "cost": tuning.cost_sentence(per_variant, tune, epochs_of),
        # issue #31: each variant's runs and epochs (unequal grids flagged), and its budget
        # curve, with a sentence where one is still rising at the budget it had
        "effort": tuning.effort_sentence(per_variant, tune, epochs_of),
        "budget_sentences": tuning.budget_sentences(per_variant, tuning_metric),
        "figures": {k: rel(v) for k, v in s["figures"].items()
                    if k in catalog.TUNING_FIGURES and k not in interactive.DRAWN},
        "figure_links": _figure_links(
            {k: v for k, v in s["figures"].items() if k in catalog.TUNING_FIGURES},
            s.get("figure_pdfs") or {}, rel),
        "chart": tuning.chart(per_variant, tuning_metric, colours),
        "budget": tuning.budget_chart(per_variant, tuning_metric, colours),
    }


def _decisions_in_words(runs: pd.DataFrame, settings: dict, summary: pd.DataFrame,
                        paired: pd.DataFrame, metric: str, train_of: dict,
                        meta_path: str | Path | None) -> dict:
    """Sentences per comparison, the guarantee, seeds per variant, variants that did not learn."""
    decisions = settings.get("decisions") or {}
    design = design_from_settings(decisions)
    order = list(summary["variant"])
    result = decide_study(runs, settings, order)
    rows = _records(paired)
    has_verdicts = "verdict" in paired.columns
    n_classes = len(_dataset_info(settings["dataset"], meta_path)["class_names"])
    flags = failure_flags(runs, metric, n_classes)
    tests = list(paired["test"]) if "test" in paired.columns else []
    return {
        "sentences": [_flagged(sentences.comparison_sentence(r, metric, design.min_effect,
                                                             design.adaptive), r, flags)
                      for r in rows] if has_verdicts else [],
        "adaptive": design.adaptive,
        "adjusted_p_label": sentences.adjusted_p_label(design.adaptive),
        "guarantee": sentences.guarantee(design, len(rows), result.n_looks,
                                         bool(settings.get("tuned")), runs["seed"].nunique()),
        "scope": scope.verdict_scope(settings, metric, tests),
        "failure_modes": [scope.flag_sentence(v, flags[v]) for v in order if flags.get(v)],
        "seed_usage": sentences.seed_usage(result, order),
        "did_not_learn": sentences.did_not_learn(_records(summary), metric, n_classes, train_of),
        "tally": {v: sum(1 for r in rows if r.get("verdict") == v)
                  for v in ("better", "worse", "equivalent", "undecided")} if has_verdicts else {},
    }


def failure_flags(runs: pd.DataFrame, metric: str, n_classes: int) -> dict[str, list[str]]:
    """variant -> its runs in a failure mode, in words (cnnablate.decisions.scope)."""
    chance = 1.0 / n_classes if n_classes and "accuracy" in metric else None
    values_of, statuses_of = {}, {}
    for variant, group in runs.groupby("variant", sort=False):
        values_of[str(variant)] = {
            int(r.seed): (None if pd.isna(getattr(r, metric)) or r.status != "completed"
                          else float(getattr(r, metric))) for r in group.itertuples()}
        statuses_of[str(variant)] = {int(r.seed): str(r.status) for r in group.itertuples()}
    pooled = scope.pooled_scale(values_of.values())
    out = {}
    for variant, values in values_of.items():
        step = resolution({"arm": values}) if "accuracy" in metric else 0.0
        modes = scope.failure_modes(values, statuses_of[variant], chance, step, pooled)
        if modes:
            out[variant] = modes
    return out


def _flagged(sentence: str, row: dict, flags: dict[str, list[str]]) -> str:
    """A comparison's sentence, and in words which of its two arms has failed runs."""
    who = [x for x in (row["variant"], row["baseline"]) if flags.get(x)]
    if not who:
        return sentence
    return (f"{sentence} Flagged: {' and '.join(who)} "
            f"ha{'ve' if len(who) > 1 else 's'} runs in a failure mode (below).")


class Bundle:
    """The report's links, all inside its folder: a file already there is linked where it is,
    one from elsewhere (tables, paper tables, run histories under results/) is copied to
    `<folder>/results/<parts>` first (atomically: concurrent renders never see half a copy)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder).resolve()

    def link(self, path: str | Path, *parts: str) -> str:
        """The relative link to `path`, copied to results/`parts` (default: its name) when it
        lies outside the report's folder."""
        path = Path(path).resolve()
        if not path.is_relative_to(self.folder):
            dest = self.folder.joinpath(BUNDLE, *(parts or (path.name,)))
            dest.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(dest) as tmp:
                shutil.copyfile(path, tmp)
            path = dest
        return path.relative_to(self.folder).as_posix()


def _varied(figure: catalog.Figure | None, config_of: dict[str, dict]) -> bool:
    """Whether a study shows `figure`: always, unless the figure is about one run setting
    (`about`) that all the study's variants share (one activation: no activation figure)."""
    about = getattr(figure, "about", None)
    if not about:
        return True
    values = {json.dumps(run.get(about), sort_keys=True, default=str)
              for run in config_of.values()}
    return len(values) > 1


def _figure_links(figures: dict[str, str], pdfs: dict[str, str], rel) -> list[dict]:
    """The static PNG and PDF of each figure the page draws interactively."""
    return [{"name": k, "png": rel(v), "pdf": rel(pdfs[k]) if k in pdfs else None}
            for k, v in figures.items() if k in interactive.DRAWN]


# The line above each figure in the HTML report, from the figure registry.
FIGURE_TITLES = {name: figure.title
                 for name, figure in {**catalog.FIGURES, **catalog.TUNING_FIGURES}.items()}
