"""Paper outputs: table.tex / table.md against the study's CSV numbers, booktabs, escaping;
every figure also as a PDF; both linked from the report. Built from hand-made runs (no
training)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from cnnablate.base import catalog
from cnnablate.reporting import figures
from cnnablate.reporting.paper import latex_escape, markdown_escape, write_paper_tables
from tests.test_report import make_study, render

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
        assert unlatex(name.removesuffix(" (baseline)")) == variant
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
            assert marker == "--" and name.endswith("(baseline)")
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
    spec = re.search(r"\\begin\{tabular\}\{(\w+)\}", tex).group(1)
    header = lines[rules[0] + 1]
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
    assert "../results/studies/acts/table.tex" in links
    assert "../results/studies/acts/table.md" in links
    for link in links:
        assert (tmp_path / "report" / link).is_file(), link
