"""Paper-ready tables of one study (pandas; no TensorFlow): `table.tex` (LaTeX with booktabs
rules) and `table.md` (the same as a Markdown table), from the study's runs, summary and
paired tables.

One row per variant: the headline metric's mean and its interval (summary.csv), the number
of completed seeds, the verdict against the baseline as a marker (paired.csv), the highest
mean in bold. The caption states what was measured over which seeds, the marker legend and the
study's guarantee, in the words the HTML report uses (cnnablate.decisions.sentences), and the
settings the variants trained at: a tuned study's selected values per variant (tuning.csv),
"at the selected settings"; an untuned study's shared learning rate.

table.tex fits one column of a two-column paper (the article class's two-column A4 column,
221 pt, is the narrowest of the usual ones): a narrow layout at `\\small` (the metric's name over
the mean and interval columns, the baseline marked with a dagger) that fits there at its
natural width for variant names of up to about 14 characters; a table with longer names is
shrunk to `\\columnwidth` by LaTeX itself (measured in a box; needs `\\usepackage{graphicx}`),
so it never overflows. For a full-width float, change `table` to `table*`: the shrinking then
never happens in a two-column paper's text width.

Written by hand rather than with pandas' `Styler.to_latex`: every cell needs its own treatment
(escaped user text, math-mode markers, bold for the best mean, a caption that is escaped text
too), which with the Styler takes more code than the few lines below, and the Markdown table
(pandas' `to_markdown` needs the `tabulate` package) is written the same way.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from cnnablate.base.atomic import write_text_atomic
from cnnablate.decisions import scope, sentences
from cnnablate.decisions.decide import design_from_settings
from cnnablate.decisions.sentences import compact, key_label
from cnnablate.reporting.aggregate import decide_study, headline_metric
from cnnablate.reporting.tuning import read_tuning

# LaTeX's ten special characters, each as text-mode LaTeX (the order of the keys does not
# matter: the replacement is one pass over the text).
_LATEX_SPECIALS = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
}
_LATEX_PATTERN = re.compile("|".join(re.escape(c) for c in _LATEX_SPECIALS))
_MARKDOWN_PATTERN = re.compile(r"([\\`*_{}\[\]<>|#+!~])")

# Decimals shown: accuracies in percent to 0.01 points (finer than one image in 10,000), other
# metrics to 4 decimals.
DIGITS = {True: 2, False: 4}

# Verdict against the baseline -> (LaTeX marker, Markdown marker); undecided stays unmarked.
MARKERS = {
    "better": (r"$\uparrow$", "↑"),
    "worse": (r"$\downarrow$", "↓"),
    "equivalent": (r"$\approx$", "≈"),
}


def latex_escape(text: str) -> str:
    """`text` as LaTeX text: each of ``\\ & % $ # _ { } ~ ^`` shown as itself."""
    return _LATEX_PATTERN.sub(lambda m: _LATEX_SPECIALS[m.group(0)], str(text))


def markdown_escape(text: str) -> str:
    """`text` as Markdown table text: no emphasis, links, HTML or cell breaks from it."""
    return _MARKDOWN_PATTERN.sub(r"\\\1", str(text))


@dataclass(frozen=True)
class Row:
    """One variant's line of the table, numbers in the table's unit (percent for accuracy)."""

    variant: str
    baseline: bool
    mean: float | None
    low: float | None
    high: float | None
    n: int
    n_diverged: int
    verdict: str | None  # against the baseline; None for the baseline itself
    best: bool


@dataclass(frozen=True)
class PaperTable:
    study: str
    metric: str
    baseline: str
    percent: bool  # accuracies are shown in percent
    confidence: float
    rows: list[Row]
    seeds: str  # which seeds, in words
    guarantee: str  # sentences.guarantee
    min_effect: float | None
    effort: str = ""  # a tuned study's tuning effort per variant (sentences.tuning_effort)
    settings: str = ""  # what the variants trained at, in words (settings_in_words)
    scope: str = ""  # what the verdicts are about (cnnablate.decisions.scope.verdict_scope)

    @property
    def digits(self) -> int:
        return DIGITS[self.percent]

    @property
    def metric_label(self) -> str:
        return self.metric.replace("_", " ") + (" (%)" if self.percent else "")


def _value(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _scaled(value, scale: float) -> float | None:
    number = _value(value)
    return None if number is None else number * scale


def table_rows(summary: pd.DataFrame, paired: pd.DataFrame, baseline: str, metric: str,
               scale: float, digits: int) -> list[Row]:
    """The rows in the summary's (the study's) order; the verdicts from paired.csv's rows
    against `baseline` (with `all_pairs`, paired.csv also holds the other pairs). Bold: every
    mean that reads as the highest at `digits` decimals (what the reader sees ties)."""
    against = paired[paired["baseline"] == baseline] if "verdict" in paired else paired.iloc[:0]
    verdicts = dict(zip(against["variant"], against["verdict"]))
    means = [_scaled(m, scale) for m in summary[f"{metric}_mean"]]
    shown = [None if m is None else round(m, digits) for m in means]
    top = max((m for m in shown if m is not None), default=None)
    rows = []
    for record, mean, rounded in zip(summary.to_dict("records"), means, shown):
        variant = str(record["variant"])
        rows.append(Row(
            variant=variant, baseline=variant == baseline, mean=mean,
            low=_scaled(record[f"{metric}_ci_low"], scale),
            high=_scaled(record[f"{metric}_ci_high"], scale),
            n=int(record["n"]), n_diverged=int(record["n_diverged"]),
            verdict=None if variant == baseline else verdicts.get(variant, "undecided"),
            best=rounded is not None and rounded == top,
        ))
    return rows


def seeds_in_words(runs: pd.DataFrame) -> str:
    """Which seeds the table's numbers come from: one list shared by every variant, or each
    variant's count where adaptive seeds gave them different numbers."""
    by_variant = {v: sorted(int(s) for s in g["seed"]) for v, g in runs.groupby("variant",
                                                                                sort=False)}
    lists = {tuple(seeds) for seeds in by_variant.values()}
    if len(lists) == 1:
        seeds = next(iter(lists))
        return f"seed{'s' if len(seeds) != 1 else ''} {', '.join(map(str, seeds))} per variant"
    counts = sorted(len(s) for s in by_variant.values())
    return (f"{counts[0]} to {counts[-1]} seeds per variant (adaptive seeds: more only where a "
            "comparison was undecided)")


def tuning_effort(tuning_csv: str | Path, study: Mapping, runs: pd.DataFrame,
                  order: list[str]) -> str:
    """A tuned study's effort sentence from its tuning.csv, variants in the study's `order`:
    each variant's tuning runs and epochs, a variant given a larger grid flagged
    (cnnablate.reporting.tuning.effort)."""
    from cnnablate.reporting import tuning

    per_variant = tuning.read_tuning(tuning_csv, order)
    # each variant's deciding runs' budget, for tuning runs trained to it (no tune.epochs)
    done = runs.dropna(subset=["epochs_completed"])
    deciding = {v: [int(e) for e in rows["epochs_completed"]]
                for v, rows in done.groupby("variant", sort=False)}
    return tuning.effort_sentence(per_variant, study.get("tune") or {}, deciding)


def _by_variant(label: str, values: Mapping[str, str]) -> str:
    """`label 0.05` when every variant has the same value, else `label: a 0.05, b 0.1`."""
    distinct = set(values.values())
    if len(distinct) == 1:
        return f"{label} {next(iter(distinct))}"
    return f"{label}: " + ", ".join(f"{v} {value}" for v, value in values.items())


def settings_in_words(order: list[str], learning_rates: Mapping[str, Any] | None,
                      tuning_csv: str | Path | None) -> str:
    """The settings the table's runs trained at. Tuned (tuning.csv): each variant's selected
    values, "at the selected settings"; else the learning rate, shared or per variant."""
    if tuning_csv is not None:
        selected = {t.variant: t.selected_values() for t in read_tuning(tuning_csv, order)}
        keys = list(dict.fromkeys(k for values in selected.values() for k in values or {}))
        parts = [_by_variant(key_label(key).replace("_", " "),
                             {v: compact(values[key]) if values and key in values else "--"
                              for v, values in selected.items()})
                 for key in keys]
        return ("Each variant at its selected settings (tuned on its own tuning seeds, which "
                "are not in the numbers): " + "; ".join(parts) + ".")
    if not learning_rates:
        return ""
    rates = {v: compact(learning_rates[v]) for v in order if v in learning_rates}
    if not rates:
        return ""
    if len(set(rates.values())) == 1:
        return f"Every variant trained at learning rate {next(iter(rates.values()))}."
    return _by_variant("Learning rate per variant", rates) + "."


def paper_table(runs: pd.DataFrame, summary: pd.DataFrame, paired: pd.DataFrame,
                study: Mapping, confidence: float = 0.95,
                learning_rates: Mapping[str, Any] | None = None,
                tuning_csv: str | Path | None = None) -> PaperTable:
    """A study's table from its three tables and its settings (`study_settings`);
    `learning_rates` (variant -> its runs' learning rate) or, for a tuned study, its
    tuning.csv (the selection) say what the variants trained at; a tuned study's caption also
    states each variant's tuning effort (from `tuning_csv`)."""
    metric = headline_metric(study["eval_split"])
    percent = "accuracy" in metric
    baseline = study["baseline"]
    design = design_from_settings(study.get("decisions") or {})
    order = list(summary["variant"])
    decisions = decide_study(runs, dict(study), order)
    # a tuned study's verdicts are about the selected settings (its tuning.csv, or the flag
    # study_settings gives a study with `tune:` anywhere)
    tuned = bool(study.get("tuned")) or tuning_csv is not None
    return PaperTable(
        study=study["name"], metric=metric, baseline=baseline, percent=percent,
        confidence=confidence,
        rows=table_rows(summary, paired, baseline, metric, 100.0 if percent else 1.0,
                        DIGITS[percent]),
        seeds=seeds_in_words(runs),
        guarantee=sentences.guarantee(design, len(paired), decisions.n_looks, tuned,
                                      runs["seed"].nunique()),
        min_effect=design.min_effect,
        effort=tuning_effort(tuning_csv, study, runs, order) if tuning_csv else "",
        settings=settings_in_words(order, learning_rates, tuning_csv),
        scope=scope.verdict_scope({**study, "tuned": tuned}, metric,
                                  list(paired["test"]) if "test" in paired.columns else []),
    )


def _number(value: float | None, digits: int) -> str:
    return "--" if value is None else f"{value:.{digits}f}"


def _interval(row: Row, digits: int) -> str:
    if row.low is None or row.high is None:
        return "--"
    return f"[{row.low:.{digits}f}, {row.high:.{digits}f}]"


def _caption(table: PaperTable, latex: bool) -> str:
    """Caption text: what is shown, over which seeds, the marker legend, the guarantee."""
    level = f"{round(100 * table.confidence)}%"
    unit = " points" if table.percent else ""
    scale = 100.0 if table.percent else 1.0
    up, down, same = (MARKERS[v][0 if latex else 1] for v in ("better", "worse", "equivalent"))
    esc = latex_escape if latex else markdown_escape
    plus_minus = r"$\pm$" if latex else "±"
    within = (f" within {plus_minus}{table.min_effect * scale:g}{unit}"
              if table.min_effect else "")
    diverged = [f"{esc(r.variant)} ({r.n_diverged})" for r in table.rows if r.n_diverged]
    dagger = r"$^\dagger$" if latex else ""
    text = [
        f"{esc(table.study)}: {esc(table.metric.replace('_', ' '))}, mean and {esc(level)} "
        f"confidence interval over {esc(table.seeds)}; n = completed seeds; bold: highest mean "
        "(by itself no significant difference).",
        f"Against the baseline {esc(table.baseline)}{dagger}: {up} better, {down} worse, "
        f"{same} equivalent{within}, no mark: undecided.",
        *([esc(table.settings)] if table.settings else []),
        esc(table.guarantee),
    ]
    if table.scope:
        text.append(esc(table.scope))
    if diverged:
        text.append(f"Diverged runs, left out of every number: {', '.join(diverged)}.")
    if table.effort:
        text.append(esc(table.effort))
    return " ".join(text)


def _label(study: str) -> str:
    return "tab:" + re.sub(r"[^A-Za-z0-9.:-]", "-", study)


# The LaTeX that sets the tabular at its natural width, or shrunk to the column where that is
# wider (long variant names); \cnnablatebox is made once however many tables a paper inputs.
_FIT_BOX = r"\ifdefined\cnnablatebox\else\newsavebox{\cnnablatebox}\fi"
_FIT_USE = (r"\ifdim\wd\cnnablatebox>\columnwidth\resizebox{\columnwidth}{!}"
            r"{\usebox{\cnnablatebox}}\else\usebox{\cnnablatebox}\fi")
TABCOLSEP_PT = 3.5  # the space each side of a column (LaTeX's default: 6 pt)


def latex_body(table: PaperTable) -> list[str]:
    """The tabular's header and body rows, as table.tex has them (tests measure these)."""
    d = table.digits
    level = f"{round(100 * table.confidence)}\\%"
    lines = [
        f" & \\multicolumn{{2}}{{c}}{{{latex_escape(table.metric_label)}}} & & vs. \\\\",
        "\\cmidrule(lr){2-3}",
        f"Variant & mean & {level} CI & $n$ & base \\\\",
    ]
    rows = []
    for row in table.rows:
        mean = _number(row.mean, d)
        name = latex_escape(row.variant) + (r"$^\dagger$" if row.baseline else "")
        marker = "--" if row.baseline else MARKERS.get(row.verdict or "", ("", ""))[0]
        shown = f"\\textbf{{{mean}}}" if row.best else mean
        rows.append(f"{name} & {shown} & {_interval(row, d)} & {row.n} & {marker} \\\\")
    return [*lines, "\\midrule", *rows]


def to_latex(table: PaperTable) -> str:
    """The table as a LaTeX `table` float with booktabs rules, one column wide (needs
    `\\usepackage{booktabs}` and `\\usepackage{graphicx}`)."""
    lines = [
        "% Made by cnnablate (cnnablate/reporting/paper.py) from the study's summary.csv and",
        "% paired.csv; needs \\usepackage{booktabs} and \\usepackage{graphicx}. Fits one column",
        "% of a two-column paper: at its natural size, or shrunk to \\columnwidth if wider.",
        "% For a float across both columns, change table to table*.",
        "\\begin{table}[tbp]",
        "\\centering",
        "\\small",
        f"\\setlength{{\\tabcolsep}}{{{TABCOLSEP_PT}pt}}",
        f"\\caption{{{_caption(table, latex=True)}}}",
        f"\\label{{{_label(table.study)}}}",
        _FIT_BOX,
        "\\sbox{\\cnnablatebox}{%",
        "\\begin{tabular}{@{}lrrrc@{}}",
        "\\toprule",
        *latex_body(table),
        "\\bottomrule",
        "\\end{tabular}}%",
        _FIT_USE,
        "\\end{table}",
    ]
    return "\n".join(lines) + "\n"


def to_markdown(table: PaperTable) -> str:
    """The same table in Markdown (GitHub's tables), its caption as a paragraph below."""
    d = table.digits
    level = f"{round(100 * table.confidence)}%"
    lines = [
        f"| variant | {markdown_escape(table.metric_label)} | {level} CI | n | "
        f"vs. {markdown_escape(table.baseline)} |",
        "|:---|---:|---:|---:|:---:|",
    ]
    for row in table.rows:
        mean = _number(row.mean, d)
        name = markdown_escape(row.variant) + (" (baseline)" if row.baseline else "")
        marker = "–" if row.baseline else MARKERS.get(row.verdict or "", ("", ""))[1]
        shown = f"**{mean}**" if row.best else mean
        lines.append(f"| {name} | {shown} | "
                     f"{_interval(row, d)} | {row.n} | {marker} |")
    return "\n".join(lines) + f"\n\n{_caption(table, latex=False)}\n"


def write_paper_tables(runs_csv: str | Path, summary_csv: str | Path, paired_csv: str | Path,
                       study: Mapping, out_tex: str | Path, out_md: str | Path,
                       confidence: float = 0.95,
                       learning_rates: Mapping[str, Any] | None = None,
                       tuning_csv: str | Path | None = None) -> PaperTable:
    """Write a study's table.tex and table.md from its tables (the workflow's paper_table)."""
    table = paper_table(pd.read_csv(runs_csv), pd.read_csv(summary_csv),
                        pd.read_csv(paired_csv), study, confidence,
                        learning_rates=learning_rates, tuning_csv=tuning_csv)
    write_text_atomic(out_tex, to_latex(table))
    write_text_atomic(out_md, to_markdown(table))
    return table
