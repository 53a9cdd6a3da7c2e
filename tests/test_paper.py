"""Paper outputs: table.tex / table.md against the study's CSV numbers, booktabs, escaping;
every figure also as a PDF; both linked from the report. Built from hand-made runs (no
training)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

from cnnablate.base import catalog
from cnnablate.reporting import figures
from cnnablate.reporting.paper import (
    PaperTable,
    Row,
    latex_escape,
    markdown_escape,
    to_latex,
    write_paper_tables,
)
from cnnablate.workflow.config import expand_variants
from tests.test_report import make_study, render

ROOT = Path(__file__).resolve().parent.parent

SPECIAL = "a_b&c%d#e$f{g}h~i^j\\k"  # every LaTeX special in one variant name
# Five seeds: `good` beats the baseline on every seed (better), `bad` diverges once and trails
# (worse), the special-named variant is close to the baseline (undecided).
VALUES = {
    "relu": [0.80, 0.81, 0.82, 0.80, 0.81],
    "good": [0.90, 0.91, 0.93, 0.90, 0.92],
    SPECIAL: [0.81, 0.80, 0.83, 0.79, 0.82],
    "bad": [0.50, 0.52, None, 0.51, 0.50],
}
LATEX_MARK = {"better": r"$\uparrow$", "worse": r"$\downarrow$", "equivalent": r"$\approx$",
              "undecided": ""}
MD_MARK = {"better": "↑", "worse": "↓", "equivalent": "≈", "undecided": ""}
DAGGER = r"$^\dagger$"  # the baseline's mark in table.tex


@pytest.fixture
def study(tmp_path):
    made = make_study(tmp_path, "acts", VALUES, baseline="relu")
    made["settings"]["decisions"] = {"alpha": 0.05, "min_effect": 0.02,
                                     "seeds": [0, 1, 2, 3, 4]}
    tex, md = tmp_path / "table.tex", tmp_path / "table.md"
    write_paper_tables(made["runs"], made["summary"], made["paired"], made["settings"], tex, md)
    return made, tex.read_text(), md.read_text()


def latex_rows(tex: str) -> list[list[str]]:
    """The body rows' cells, split at unescaped `&`."""
    body = tex.split("\\midrule\n")[1].split("\\bottomrule")[0]
    return [[c.strip() for c in re.split(r"(?<!\\)&", line.removesuffix("\\\\").strip())]
            for line in body.strip().splitlines()]


def unlatex(text: str) -> str:
    """Undo the escaping of LaTeX's specials (written out here, not by the code under test)."""
    for escaped, plain in ((r"\textbackslash{}", "\\"), (r"\textasciitilde{}", "~"),
                           (r"\textasciicircum{}", "^"), (r"\&", "&"), (r"\%", "%"),
                           (r"\$", "$"), (r"\#", "#"), (r"\_", "_"), (r"\{", "{"),
                           (r"\}", "}")):
        text = text.replace(escaped, plain)
    return text


def interval(cell: str) -> tuple[float, float]:
    low, high = cell.strip("[]").split(",")
    return float(low), float(high)


def test_latex_numbers_are_the_csv_numbers(study):
    made, tex, _ = study
    summary = pd.read_csv(made["summary"]).set_index("variant")
    paired = pd.read_csv(made["paired"]).set_index("variant")
    rows = latex_rows(tex)
    assert len(rows) == len(VALUES)
    best = summary["best_val_accuracy_mean"].max()
    for (name, mean, ci, n, marker), variant in zip(rows, VALUES):
        assert unlatex(name.removesuffix(DAGGER)) == variant
        expected = summary.loc[variant]
        bold = mean.startswith(r"\textbf{")
        shown = float(mean.removeprefix(r"\textbf{").removesuffix("}"))
        assert shown == pytest.approx(100 * expected["best_val_accuracy_mean"], abs=0.005)
        low, high = interval(ci)
        assert low == pytest.approx(100 * expected["best_val_accuracy_ci_low"], abs=0.005)
        assert high == pytest.approx(100 * expected["best_val_accuracy_ci_high"], abs=0.005)
        assert int(n) == expected["n"] == sum(v is not None for v in VALUES[variant])
        assert bold == (expected["best_val_accuracy_mean"] == best)
        if variant == "relu":
            assert marker == "--" and name.endswith(DAGGER)  # the caption's mark of it
        else:
            assert marker == LATEX_MARK[paired.loc[variant, "verdict"]]
    # the hand-made data decides these, so each marker kind is exercised
    assert paired.loc["good", "verdict"] == "better" and paired.loc["bad", "verdict"] == "worse"
    assert paired.loc[SPECIAL, "verdict"] == "undecided"


def test_latex_is_a_booktabs_table(study):
    _, tex, _ = study
    lines = tex.splitlines()
    rules = [lines.index(r) for r in ("\\toprule", "\\midrule", "\\bottomrule")]
    assert rules == sorted(rules)
    assert "\\hline" not in tex
    spec = re.search(r"\\begin\{tabular\}\{@\{\}(\w+)@\{\}\}", tex).group(1)
    top, rule, header = lines[rules[0] + 1:rules[1]]  # the metric's name over two columns
    assert rule == "\\cmidrule(lr){2-3}"
    assert "\\multicolumn{2}{c}{best val accuracy (\\%)}" in top
    assert len(re.split(r"(?<!\\)&", top)) == len(spec) - 1
    for row in [header, *lines[rules[1] + 1:rules[2]]]:
        assert row.endswith("\\\\")
        assert len(re.split(r"(?<!\\)&", row)) == len(spec)
    assert tex.index("\\begin{table}") < tex.index("\\caption{") < tex.index("\\end{table}")
    assert "\\label{tab:acts}" in tex


def test_latex_escapes_every_special_character(study):
    _, tex, _ = study
    name = latex_rows(tex)[2][0]
    assert name == (r"a\_b\&c\%d\#e\$f\{g\}h\textasciitilde{}i\textasciicircum{}j"
                    r"\textbackslash{}k")
    # outside commands, no special is left bare in the row
    bare = re.sub(r"\\(textasciitilde|textasciicircum|textbackslash)\{\}|\\[&%$#_{}]", "", name)
    assert not set(bare) & set("\\&%$#_{}~^")
    assert unlatex(latex_escape(SPECIAL)) == SPECIAL


def test_caption_states_seeds_markers_guarantee_and_diverged_runs(study):
    _, tex, md = study
    caption = re.search(r"\\caption\{(.*)\}\n", tex).group(1)
    for expected in ("best val accuracy, mean and 95\\% confidence interval",
                     "seeds 0, 1, 2, 3, 4 per variant",
                     r"$\uparrow$ better, $\downarrow$ worse, $\approx$ equivalent within "
                     r"$\pm$2 points",
                     "at most 5\\% (Holm over its 3 comparisons)",
                     "Diverged runs, left out of every number: bad (1)"):
        assert expected in caption, expected
    assert "at most 5% (Holm over its 3 comparisons)" in md
    assert "↑ better, ↓ worse, ≈ equivalent within ±2 points" in md


def test_markdown_table_has_the_same_rows(study):
    made, tex, md = study
    lines = md.splitlines()
    assert lines[1] == "|:---|---:|---:|---:|:---:|"
    body = lines[2:2 + len(VALUES)]
    paired = pd.read_csv(made["paired"]).set_index("variant")
    for line, latex_row, variant in zip(body, latex_rows(tex), VALUES):
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        assert len(cells) == 5
        name = re.sub(r"\\(.)", r"\1", cells[0]).removesuffix(" (baseline)")
        assert name == variant
        assert cells[1].strip("*") == latex_row[1].removeprefix(r"\textbf{").removesuffix("}")
        assert cells[1].startswith("**") == latex_row[1].startswith(r"\textbf")
        assert cells[2:4] == latex_row[2:4]
        if variant != "relu":
            assert cells[4] == MD_MARK[paired.loc[variant, "verdict"]]
    assert markdown_escape("a|b_c*d") == r"a\|b\_c\*d"


def test_adaptive_seeds_are_described_per_variant(tmp_path):
    made = make_study(tmp_path, "ad", {"a": [0.8, 0.81], "b": [0.8, 0.82, 0.79, 0.81]},
                      baseline="a")
    made["settings"]["decisions"] = {"seeds": {"initial": 2, "max": 4, "step": 2}}
    tex = tmp_path / "t.tex"
    write_paper_tables(made["runs"], made["summary"], made["paired"], made["settings"], tex,
                       tmp_path / "t.md")
    assert "2 to 4 seeds per variant (adaptive seeds" in tex.read_text()
    assert "Pocock-type alpha spending over 2 looks" in tex.read_text()


# --- one column of a two-column paper ------------------------------------------------------

# The article class's two-column column on A4 (`\documentclass[twocolumn,a4paper]{article}`:
# 221.0 pt, measured with pdflatex), the narrowest of the usual two-column classes (letter
# paper 229.5 pt, IEEEtran 252 pt, acmart 241 pt).
COLUMN_PT = 221.0
TABCOLSEP_PT = 3.5  # table.tex's \tabcolsep
# Advance widths (pt) of Computer Modern at \small (9 pt: cmr9, cmbx9), from TeX Live 2022's
# tftopl of cmr9.tfm and cmbx9.tfm; anything else counts as one em (9.25 pt, generous).
_GLYPHS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,()[]-+=:/;!?*@"
_CMR9 = [4.62, 5.14, 4.11, 5.14, 4.11, 2.83, 4.62, 5.14, 2.57, 2.83, 4.88, 2.57, 7.71, 5.14,
         4.62, 5.14, 4.88, 3.62, 3.65, 3.6, 5.14, 4.88, 6.68, 4.88, 4.88, 4.11, 6.94, 6.55, 6.68,
         7.07, 6.29, 6.04, 7.26, 6.94, 3.34, 4.75, 7.19, 5.78, 8.48, 6.94, 7.19, 6.29, 7.19, 6.81,
         5.14, 6.68, 6.94, 6.94, 9.51, 6.94, 6.94, 5.65] + [4.62] * 10 + [
         2.57, 2.57, 3.6, 3.6, 2.57, 2.57, 3.08, 7.19, 7.19, 2.57, 4.62, 2.57, 2.57, 4.37, 4.62,
         7.19]
_CMBX9 = [5.18, 5.92, 4.73, 5.92, 4.89, 3.25, 5.32, 5.92, 2.96, 3.25, 5.62, 2.96, 8.87, 5.92,
          5.32, 5.92, 5.62, 4.39, 4.2, 4.14, 5.92, 5.62, 7.69, 5.62, 5.62, 4.73, 8.04, 7.57, 7.69,
          8.16, 6.99, 6.69, 8.37, 8.32, 4.02, 5.5, 8.33, 6.4, 10.09, 8.32, 8.0, 7.27, 8.0, 7.98,
          5.92, 7.41, 8.18, 8.04, 10.99, 8.04, 8.04, 6.51] + [5.32] * 10 + [
          2.96, 2.96, 4.14, 4.14, 2.96, 2.96, 3.55, 8.28, 8.28, 2.96, 5.32, 2.96, 3.24, 5.03,
          5.32, 8.28]
ROMAN, BOLD = dict(zip(_GLYPHS, _CMR9)), dict(zip(_GLYPHS, _CMBX9))
EM, SPACE = 9.25, 3.08
# What LaTeX sets for each markup of a cell (cmr9/cmsy9 at \small; script size for ^\dagger).
MARKUP_PT = {
    r"\textbackslash{}": 4.62, r"\textasciitilde{}": 4.62, r"\textasciicircum{}": 4.62,
    r"\_": 3.33, r"\&": 7.19, r"\%": 7.71, r"\$": 4.62, r"\#": 7.71, r"\{": 4.62,
    r"\}": 4.62, r"$^\dagger$": 3.0, r"$\uparrow$": 4.62, r"$\downarrow$": 4.62,
    r"$\approx$": 7.19, "$n$": 5.55, "--": 4.62, "vs.": 11.82,
}


def cell_pt(cell: str) -> float:
    """The width of a cell's text as LaTeX sets it at \\small (kerning left out)."""
    cell = cell.strip()
    font = ROMAN
    if cell.startswith(r"\textbf{"):
        cell, font = cell.removeprefix(r"\textbf{").removesuffix("}"), BOLD
    width = 0.0
    while cell:
        markup = next((m for m in MARKUP_PT if cell.startswith(m)), None)
        if markup:
            width, cell = width + MARKUP_PT[markup], cell[len(markup):]
        else:
            width += SPACE if cell[0] == " " else font.get(cell[0], EM)
            cell = cell[1:]
    return width


def natural_width_pt(tex: str) -> float:
    """The tabular's width at its natural size: its columns' widest cells, the metric's name
    over columns 2 and 3 (widening them if it is wider), the space between the columns."""
    rows = latex_table_lines(tex)
    spans = re.match(r" & \\multicolumn\{2\}\{c\}\{(.*)\} & & (.*) \\\\$", rows[0])
    cells = [[c for c in re.split(r"(?<!\\)&", r.removesuffix("\\\\"))] for r in rows[1:]]
    widths = [max(cell_pt(row[i]) for row in cells) for i in range(5)]
    widths[4] = max(widths[4], cell_pt(spans.group(2)))
    over = cell_pt(spans.group(1)) - (widths[1] + widths[2] + 2 * TABCOLSEP_PT)
    return sum(widths) + max(over, 0.0) + 4 * 2 * TABCOLSEP_PT


def latex_table_lines(tex: str) -> list[str]:
    """The header and body rows of table.tex's tabular (no rules)."""
    body = tex.split("\\toprule\n")[1].split("\\bottomrule")[0]
    return [line for line in body.strip("\n").splitlines()
            if not line.startswith(("\\midrule", "\\cmidrule"))]


def widest_table(study: str, variants: list[str], baseline: str) -> str:
    """table.tex of a study with these variants and the widest numbers an accuracy can show
    (100.00 [100.00, 100.00], n = 10, every mean bold, the widest marker)."""
    rows = [Row(v, v == baseline, 100.0, 100.0, 100.0, 10, 0,
                None if v == baseline else "equivalent", True) for v in variants]
    return to_latex(PaperTable(study, "best_val_accuracy", baseline, True, 0.95, rows,
                               "seeds 0, 1, 2, 3, 4 per variant", "Guarantee.", 0.02))


def shipped_studies() -> list[tuple[str, list[str], str]]:
    """(study, variants, baseline) of every study in config.yaml and studies/*.yaml."""
    out = []
    for path in [ROOT / "config.yaml", *sorted((ROOT / "studies").glob("*.yaml"))]:
        for name, study in (yaml.safe_load(path.read_text()).get("studies") or {}).items():
            variants = list(expand_variants(name, study))
            out.append((name, variants, study.get("baseline") or variants[0]))
    return out


def test_every_shipped_studys_table_fits_a_column_at_its_natural_size():
    """Estimated from the cells' glyph widths (TeX's own font metrics), no TeX needed."""
    studies = shipped_studies()
    assert {"initializers", "sgd_momentum_tuned"} <= {s for s, _, _ in studies}
    for study, variants, baseline in studies:
        width = natural_width_pt(widest_table(study, variants, baseline))
        assert width <= COLUMN_PT, (study, round(width, 1))


def test_a_wider_table_is_shrunk_to_the_column_by_latex(study):
    """Long variant names: wider than a column at natural size, so table.tex's box is set
    at \\columnwidth (LaTeX measures it: the `\\ifdim` below; compiled where TeX is)."""
    _, tex, _ = study
    assert natural_width_pt(tex) > COLUMN_PT  # the 21-character special-character name
    lines = tex.splitlines()
    assert lines[lines.index("\\end{tabular}}%") + 1] == (
        r"\ifdim\wd\cnnablatebox>\columnwidth\resizebox{\columnwidth}{!}"
        r"{\usebox{\cnnablatebox}}\else\usebox{\cnnablatebox}\fi")
    assert "\\sbox{\\cnnablatebox}{%" in lines
    assert lines[lines.index("\\sbox{\\cnnablatebox}{%") + 1].startswith("\\begin{tabular}")


TWO_COLUMN_PAPER = r"""\documentclass[twocolumn,a4paper]{article}
\usepackage{booktabs}
\usepackage{graphicx}
\AddToHook{env/table/end}{\typeout{CNNABLATE-TABLE natural=\the\wd\cnnablatebox}}
\begin{document}
%s
Text.
\end{document}
"""


@pytest.mark.skipif(shutil.which("pdflatex") is None,
                    reason="no pdflatex (apt-get install texlive-latex-base "
                           "texlive-latex-recommended); the width estimate above runs always")
def test_tables_compile_in_a_two_column_paper_without_overflow(study, tmp_path):
    """pdflatex on a two-column article with a shrunk table and every shipped study's: no
    overfull box, no error; the estimate above agrees with TeX's measure."""
    _, wide, _ = study
    tables = {"wide": wide} | {s: widest_table(s, v, b) for s, v, b in shipped_studies()}
    for name, tex in tables.items():
        (tmp_path / f"{name}.tex").write_text(tex)
    (tmp_path / "paper.tex").write_text(
        TWO_COLUMN_PAPER % "\n".join(f"\\input{{{name}.tex}}" for name in tables))
    proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error",
                           "paper.tex"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    log = (tmp_path / "paper.log").read_text(errors="replace")
    assert proc.returncode == 0, log[-3000:]
    assert "Overfull \\hbox" not in log and "LaTeX Warning: Float too large" not in log
    measured = [float(w) for w in re.findall(r"CNNABLATE-TABLE natural=([\d.]+)pt", log)]
    assert len(measured) == len(tables)
    for (name, tex), width in zip(tables.items(), measured):
        assert natural_width_pt(tex) == pytest.approx(width, rel=0.04), name


# --- what the variants trained at ---------------------------------------------------------

def test_an_untuned_table_gives_the_shared_learning_rate(tmp_path):
    made = make_study(tmp_path, "acts", {"relu": [0.8, 0.81, 0.82], "elu": [0.8, 0.8, 0.81]},
                      baseline="relu")
    tex, md = tmp_path / "t.tex", tmp_path / "t.md"
    write_paper_tables(made["runs"], made["summary"], made["paired"], made["settings"], tex, md,
                       learning_rates={"relu": 0.05, "elu": 0.05})
    assert "Every variant trained at learning rate 0.05." in tex.read_text()
    assert "Every variant trained at learning rate 0.05." in md.read_text()
    write_paper_tables(made["runs"], made["summary"], made["paired"], made["settings"], tex, md,
                       learning_rates={"relu": 0.05, "elu": 0.1})
    assert "Learning rate per variant: relu 0.05, elu 0.1." in tex.read_text()


def test_a_tuned_table_gives_each_variants_selected_values(tmp_path):
    made = make_study(tmp_path, "tuned", {"relu": [0.8, 0.81, 0.82], "elu": [0.8, 0.8, 0.81]},
                      baseline="relu")
    tuning = tmp_path / "tuning.csv"  # as the selection step writes it: relu took 0.1, elu 1
    tuning.write_text(
        "variant,train.learning_rate,seed,metric,value,status,selected,at_edge\n"
        "relu,0.01,1000,best_val_accuracy,0.5,ok,False,False\n"
        "relu,0.1,1000,best_val_accuracy,0.8,ok,True,False\n"
        "relu,1.0,1000,best_val_accuracy,0.7,ok,False,False\n"
        "elu,0.01,1000,best_val_accuracy,0.4,ok,False,False\n"
        "elu,0.1,1000,best_val_accuracy,0.6,ok,False,False\n"
        "elu,1.0,1000,best_val_accuracy,0.7,ok,True,True\n")
    tex, md = tmp_path / "t.tex", tmp_path / "t.md"
    write_paper_tables(made["runs"], made["summary"], made["paired"], made["settings"], tex, md,
                       learning_rates={"relu": 0.05, "elu": 0.05}, tuning_csv=tuning)
    for text in (tex.read_text(), md.read_text()):
        assert "Each variant at its selected settings" in text
        assert "learning rate: relu 0.1, elu 1." in text
        assert "learning rate 0.05" not in text  # the configured rate was not used


# --- vector figures ------------------------------------------------------------------------

def test_every_figure_is_also_a_pdf(tmp_path):
    made = make_study(tmp_path, "acts", {"relu": [0.8, 0.82], "elu": [0.81, 0.79]},
                      baseline="relu")
    out = {name: str(tmp_path / "figs" / f"{name}.png") for name in catalog.FIGURES}
    (tmp_path / "figs").mkdir()
    args = (made["metrics_files"], made["history_files"], made["summary"], made["settings"])
    figures.study_figures(*args, out)
    first = {}
    for name, png in out.items():
        pdf = Path(png).with_suffix(".pdf")
        assert Path(png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        first[name] = pdf.read_bytes()
        assert first[name].startswith(b"%PDF-")
    figures.study_figures(*args, out)  # the same figure gives the same PDF (no date in it)
    assert {n: Path(p).with_suffix(".pdf").read_bytes() for n, p in out.items()} == first
    for name, pdf in first.items():
        # Type 42: TrueType outlines (/FontFile2), as a simple /TrueType font or a CID-keyed
        # /Type0 font over a /CIDFontType2; never matplotlib's default, /Type3
        assert pdf_font_types(pdf) <= {"TrueType", "Type0", "CIDFontType2"}, name
        assert b"/FontFile2" in pdf, name


def pdf_font_types(pdf: bytes) -> set[str]:
    """The /Subtype of every font object in a PDF (matplotlib writes font dictionaries
    uncompressed)."""
    fonts = re.findall(rb"/Type\s*/Font\b(.*?)>>", pdf, re.S)
    assert fonts, "no font in the PDF"
    return {re.search(rb"/Subtype\s*/(\w+)", f).group(1).decode() for f in fonts}


def png_only(data, path):
    """A figure that forgets its PDF (for the check below)."""
    Path(path).write_bytes(b"\x89PNG\r\n\x1a\n")


def test_a_figure_without_its_pdf_is_an_error(tmp_path, monkeypatch):
    made = make_study(tmp_path, "acts", {"relu": [0.8, 0.82]}, baseline="relu")
    monkeypatch.setitem(catalog.FIGURES, "png_only",
                        catalog.Figure("tests.test_paper:png_only", "x.rst", "PNG only"))
    out = {name: str(tmp_path / f"{name}.png") for name in catalog.FIGURES}
    with pytest.raises(RuntimeError, match="figure png_only .* wrote no PDF beside its PNG"):
        figures.study_figures(made["metrics_files"], made["history_files"], made["summary"],
                              made["settings"], out)


def test_report_links_the_pdfs_and_tables_relatively(tmp_path):
    made = make_study(tmp_path, "acts", {"relu": [0.8, 0.82], "elu": [0.81, 0.79]},
                      baseline="relu")
    pdfs = {}
    for name, png in made["figures"].items():
        pdfs[name] = str(Path(png).with_suffix(".pdf"))
        Path(pdfs[name]).write_bytes(b"%PDF-1.4\n")
    tables = {kind: str(tmp_path / "results/studies/acts" / f"table.{kind}")
              for kind in ("tex", "md")}
    write_paper_tables(made["runs"], made["summary"], made["paired"], made["settings"],
                       tables["tex"], tables["md"])
    html = render(tmp_path, [{**made, "figure_pdfs": pdfs, "paper_tables": tables}])
    links = re.findall(r'href="([^"#][^"]*)"', html)
    assert [link for link in links if link.endswith(".pdf")] == [
        f"figures/acts/{name}.pdf" for name in catalog.FIGURES]
    assert "results/studies/acts/table.tex" in links
    assert "results/studies/acts/table.md" in links
    for link in links:
        assert (tmp_path / "report" / link).is_file(), link
