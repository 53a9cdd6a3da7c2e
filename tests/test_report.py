"""The HTML report rendered from synthetic runs (no training): verdicts, reported reference
numbers, escaping of user text, dataset facts and provenance; and, on a finished tiny
workflow, Snakemake's own `--report`."""

from __future__ import annotations

import html as entities
import json
import re
import shutil
import struct
import zipfile
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from cnnablate.base import catalog
from cnnablate.reporting.aggregate import aggregate_study
from cnnablate.reporting.paper import write_paper_tables
from cnnablate.reporting.report import render_report, verdict
from tests.test_stats import write_run

MARKUP = "<b>x</b>"
ESCAPED = "&lt;b&gt;x&lt;/b&gt;"
FIGURES = tuple(catalog.FIGURES)  # the figure registry


def tiny_png(path: Path) -> Path:
    """A valid 1x1 grey PNG, written with the standard library."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0,
                                                                          0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\x00\x80")) + chunk(b"IEND", b""))
    return path


def make_study(root: Path, name: str, values: dict[str, list[float | None]], baseline: str,
               description: str = "", reference: dict | None = None,
               variant_descriptions: dict | None = None,
               activations: dict[str, str] | None = None, decisions: dict | None = None) -> dict:
    """Runs (a None value = a diverged run), the study's tables and placeholder figures, as
    scripts/report.py hands them to render_report. Each variant trains with the activation
    `activations` gives it (default: one of its own, named like it)."""
    runs = [
        write_run(root, name, variant, seed, 0.99 if value is None else value,
                  status="diverged" if value is None else "completed",
                  run_config={"activation": (activations or {}).get(variant, variant)})
        for variant, seeds in values.items() for seed, value in enumerate(seeds)
    ]
    settings = {
        "name": name, "description": description, "dataset": "digits", "eval_split": "val",
        "baseline": baseline, "model": {"name": "all_cnn_c", "width": 0.125},
        "reference": reference or {},
        "variant_descriptions": {v: (variant_descriptions or {}).get(v, "") for v in values},
        **({"decisions": decisions} if decisions else {}),
    }
    tables = root / "results" / "studies" / name
    tables.mkdir(parents=True, exist_ok=True)
    out = {k: tables / f"{k}.csv" for k in ("runs", "summary", "paired")}
    aggregate_study([r / "metrics.json" for r in runs], settings, out["runs"], out["summary"],
                    out["paired"])
    return {
        "settings": settings,
        **{k: str(v) for k, v in out.items()},
        "metrics_files": [str(r / "metrics.json") for r in runs],
        "history_files": [str(r / "history.csv") for r in runs],
        "figures": {f: str(tiny_png(root / "report" / "figures" / name / f"{f}.png"))
                    for f in FIGURES},
    }


def write_meta(root: Path, class_names: list[str]) -> Path:
    path = root / "results" / "data" / "digits" / "meta.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "name": "digits", "origin": "sklearn.datasets.load_digits", "checksum": "ab" * 32,
        "class_names": class_names, "num_classes": len(class_names),
        "counts": {"train": 30, "val": 10, "test": 10}, "image_shape": [8, 8, 1],
    }))
    return path


def render(root: Path, studies: list[dict], title: str = "Ablations",
           class_names: list[str] | None = None) -> str:
    meta = write_meta(root, class_names or [str(i) for i in range(10)])
    out = root / "report" / "index.html"
    render_report(studies, out, title=title, config_hash="c0ffee1234567890", confidence=0.95,
                  dataset_meta={"digits": str(meta)})
    return out.read_text()


class Tables(HTMLParser):
    """Rows of each <table class=...> and every element's tag name, from the HTML."""

    def __init__(self):
        super().__init__()
        self.rows: dict[str, list[list[str]]] = {}
        self.tags: list[str] = []
        self._table: list[str | None] = []
        self._in_body = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        attrs = dict(attrs)
        if tag == "table":
            self._table.append(attrs.get("class"))
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body and self._table and self._table[-1]:
            self.rows.setdefault(self._table[-1], []).append([])
        elif tag == "td" and self._in_body and self._table and self._table[-1]:
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "table":
            self._table.pop()
        elif tag == "tbody":
            self._in_body = False
        elif tag == "td" and self._cell is not None:
            self.rows[self._table[-1]][-1].append(" ".join(" ".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def parse(html: str) -> Tables:
    parser = Tables()
    parser.feed(html)
    return parser


def text(html: str) -> str:
    """The page's text with tags dropped, whitespace collapsed, entities kept."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


# --- verdicts ------------------------------------------------------------------------------

def test_clear_winner(tmp_path):
    study = make_study(tmp_path, "clear", {"a": [0.90, 0.91, 0.92], "b": [0.50, 0.51, 0.52]},
                       baseline="b")
    html = render(tmp_path, [study])
    assert "a — its 95% interval overlaps no other variant&#39;s" in html
    assert "no significant difference" not in html
    rows = parse(html).rows
    assert [r[0] for r in rows["summary"]] == ["a", "b baseline"]
    assert [r[1] for r in rows["summary"]] == ["1", "2"]  # rank


def test_overlapping_intervals_are_no_significant_difference(tmp_path):
    study = make_study(tmp_path, "tied", {"a": [0.80, 0.82, 0.84], "b": [0.83, 0.79, 0.84]},
                       baseline="a")
    html = render(tmp_path, [study])
    assert "no significant difference: a, b tied (overlapping 95% intervals)" in html
    rows = parse(html).rows
    assert [r[1] for r in rows["summary"]] == ["1", "1"]


def test_verdict_from_the_paired_test_when_intervals_overlap(tmp_path):
    # elu is 0.009-0.011 above relu on every seed: intervals overlap, the paired test
    # separates them (differences 0.011, 0.009, 0.011: t = 15.5, p = 1 - 15.5/sqrt(15.5^2 + 2)
    # = 0.0041)
    study = make_study(tmp_path, "paired",
                       {"relu": [0.80, 0.82, 0.84], "elu": [0.811, 0.829, 0.851]},
                       baseline="relu")
    summary, paired = pd.read_csv(study["summary"]), pd.read_csv(study["paired"])
    assert list(summary["rank"]) == [1, 1]
    v = verdict(summary, paired, "relu", "best_val_accuracy")
    assert v["winner"] == "elu"
    assert v["text"].startswith("elu — beats the baseline relu in the paired test (p = 0.00414)")
    # the mirror image: the baseline wins when the variant is significantly worse
    study = make_study(tmp_path / "2", "paired2",
                       {"relu": [0.811, 0.829, 0.851], "elu": [0.80, 0.82, 0.84]},
                       baseline="relu")
    v = verdict(pd.read_csv(study["summary"]), pd.read_csv(study["paired"]), "relu",
                "best_val_accuracy")
    assert v["winner"] == "relu" and "elu significantly worse" in v["text"]


def test_the_configured_alpha_is_the_one_the_report_and_paper_table_say(tmp_path):
    """`report.alpha: 0.1` (the study's decisions.alpha): every alpha the report and the paper
    table print is 0.1; the report's verdict and legend used to say 0.05 whatever it was."""
    # the mirror image above: relu (the baseline) beats elu on every seed, paired p = 0.0041
    study = make_study(tmp_path, "a10", {"relu": [0.811, 0.829, 0.851], "elu": [0.80, 0.82, 0.84]},
                       baseline="relu", decisions={"alpha": 0.1, "seeds": [0, 1, 2]})
    html = render(tmp_path, [study])
    assert "elu significantly worse in the paired test (p &lt; 0.1)" in html
    assert "at most 10% (Holm over its 1 comparison)" in html
    tex, md = tmp_path / "table.tex", tmp_path / "table.md"
    write_paper_tables(study["runs"], study["summary"], study["paired"], study["settings"], tex,
                       md)
    for text in (html, tex.read_text(), md.read_text()):
        assert not re.search(r"(?<![\d.])0\.05(?!\d)|(?<![\d.])5(\\)?%", text)
    assert "at most 10%" in md.read_text()


def test_single_seeds_never_give_a_winner(tmp_path):
    study = make_study(tmp_path, "one", {"a": [0.9], "b": [0.5], "c": [0.7]}, baseline="a")
    v = verdict(pd.read_csv(study["summary"]), pd.read_csv(study["paired"]), "a",
                "best_val_accuracy")
    assert v["winner"] is None
    assert v["text"] == ("no significant difference: a, b, c tied (overlapping 95% intervals) "
                         "(single seeds: no intervals)")


def test_diverged_runs_are_shown_not_averaged(tmp_path):
    study = make_study(tmp_path, "div", {"a": [0.80, 0.82, None], "b": [None, None]},
                       baseline="a")
    html = render(tmp_path, [study])
    tables = parse(html).rows
    assert len(tables["runs"]) == 5
    statuses = [r[2] for r in tables["runs"]]
    assert statuses.count("diverged (epoch 2)") == 3
    assert "3 runs diverged (a seed 2, b seed 0, b seed 1)" in html
    summary = {r[0]: r for r in tables["summary"]}
    assert summary["a baseline"][2:4] == ["2", "1"]  # n, diverged
    assert summary["b"][2:4] == ["0", "2"]
    assert summary["a baseline"][4].startswith("0.8100 [")  # (0.80 + 0.82) / 2, not 0.87
    assert "nothing to compare: only a completed (b: no completed run)" in html
    assert '(3 diverged)' in html  # overview


# --- reference numbers, escaping, dataset, provenance ----------------------------------------

@pytest.fixture
def page(tmp_path):
    study = make_study(
        tmp_path, "acts", {"relu": [0.80, 0.82, 0.84], "v<i>": [0.83, 0.79, 0.84]},
        baseline="relu", description=f"Does {MARKUP} help?",
        reference={"source": f"Paper {MARKUP}", "metric": "validation accuracy",
                   "values": {"relu": 0.91, "v<i>": 0.925}, "note": f"note {MARKUP}"},
        variant_descriptions={"v<i>": f"desc {MARKUP}"},
    )
    html = render(tmp_path, [study], title=f"Title {MARKUP}",
                  class_names=[MARKUP, "cat & dog", "2"])
    return tmp_path, html


def test_reference_values_are_labelled_reported_by_their_source(page):
    _, html = page
    assert f"Reported by Paper {ESCAPED} (not measured here)" in html
    rows = parse(html).rows["reference-values"]
    assert rows[0][:2] == ["relu", "0.91"] and rows[0][2].startswith("0.8200 [")
    assert rows[1][:2] == ["v<i>", "0.925"]  # parsed: entities decoded
    assert f"reported by Paper {ESCAPED}" in html  # the column header
    assert f"note {ESCAPED}" in html


def test_user_text_is_escaped(page):
    _, html = page
    for shown in (f"Title {ESCAPED}", f"Does {ESCAPED} help?", f"desc {ESCAPED}",
                  f"Paper {ESCAPED}", f"<li>{ESCAPED}</li>", "<li>cat &amp; dog</li>",
                  "v&lt;i&gt;"):
        assert shown in html, shown
    assert MARKUP not in html and "v<i>" not in html
    tags = set(parse(html).tags)
    assert "b" not in tags and "i" not in tags  # no element made from user text


def test_dataset_class_names_and_provenance(page):
    root, html = page
    assert "classes (3)" in html
    assert "sklearn.datasets.load_digits" in html
    prov = text(html.split('id="provenance"')[1])
    for expected in ("config hash c0ffee1234567890",
                     "git commit 0123456789abcdef0123456789abcdef01234567",
                     "package keras 3.15.1", "package numpy 2.4.6",
                     f"dataset digits (sha256) {'ab' * 32}",
                     "box: Linux-x86_64, CPU x86_64, 2 cores, Python 3.11.7",
                     "devices (GPU) CPU", "Keras backend tensorflow"):
        assert expected in prov, expected


def test_figures_and_history_links_are_relative_and_exist(page):
    root, html = page
    report = root / "report"
    srcs = re.findall(r'<img src="([^"]+)"', html)
    drawn = ("learning_curves", "final_metric")  # drawn on the page: linked, not shown again
    assert srcs == [f"figures/acts/{f}.png" for f in FIGURES if f not in drawn]
    links = re.findall(r'href="([^"#][^"]*)"', html)
    assert sorted(links) == sorted(
        [f"figures/acts/{f}.png" for f in drawn]
        + [f"results/studies/acts/{t}.csv" for t in ("summary", "paired", "runs")]
        + [f"results/runs/acts/{v}/seed{s}/history.csv" for v in ("relu", "v&lt;i&gt;")
           for s in range(3)])
    for link in srcs + links:
        assert not re.match(r"^[a-z]+:", link) and (report / link.replace("&lt;", "<")
                                                    .replace("&gt;", ">")).exists(), link
    # nothing from the network (the inlined uPlot names its home in its licence banner)
    html = html.replace("/*! https://github.com/leeoniya/uPlot (v1.6.32) */", "")
    assert "http://" not in html and "https://" not in html


# --- Snakemake's own report ------------------------------------------------------------------

@pytest.mark.workflow
def test_snakemake_report_zip(finished, tmp_path):
    from tests.tiny import TINY_STUDY
    from tests.workflow import snakemake

    work = finished.work  # read only: the zip is written elsewhere
    snakemake(work, "--report", str(tmp_path / "report.zip"), timeout=300)
    with zipfile.ZipFile(tmp_path / "report.zip") as zf:
        names = zf.namelist()
        (page,) = [n for n in names if n.endswith("/report.html")]
        html = zf.read(page).decode()
    tables = [f"results/studies/{TINY_STUDY}/{t}.csv" for t in ("paired", "runs", "summary")]
    figures = [f"report/figures/{TINY_STUDY}/{f}.png" for f in sorted(FIGURES)]
    for path in tables + figures:  # each result is packed, under a hashed folder
        assert any(n.endswith("/" + Path(path).name) for n in names), (path, names)
    # grouped by study (category), then tables / figures (subcategory), with the captions
    assert f'"{TINY_STUDY}": {{"tables": {json.dumps(tables)}' in html
    assert f'"figures": {json.dumps(figures)}' in html
    assert f"Study <strong>{TINY_STUDY}</strong>, one row per variant" in html


def test_smoke_runs_are_flagged(tmp_path):
    study = make_study(tmp_path, "s", {"a": [0.8, 0.9], "b": [0.7, 0.6]}, baseline="a")
    assert "Smoke run:" not in render(tmp_path, [study])
    for path in study["metrics_files"][:3]:
        m = json.loads(Path(path).read_text())
        m["run_config"] = {"smoke": True}
        Path(path).write_text(json.dumps(m))
    assert "Smoke run:</strong> 3 of 4 runs were" in render(tmp_path, [study])


# --- what the page shows once, and only where it says something (issue 33) -------------------

def test_verdict_names_every_decided_comparison(tmp_path):
    # bn_placement's case: before and after tie at the top, none sits at chance. none is decided
    # worse (differences -0.70, -0.71, -0.73: p_holm < 0.05), so the overview must say so,
    # not only that before and after tie.
    study = make_study(tmp_path, "bn", {"before": [0.80, 0.82, 0.84],
                                         "after": [0.81, 0.83, 0.82],
                                         "none": [0.10, 0.11, 0.11]}, baseline="before")
    paired = pd.read_csv(study["paired"]).set_index("variant")
    assert paired.loc["none", "verdict"] == "worse"  # the premise
    assert paired.loc["after", "verdict"] == "undecided"
    v = verdict(pd.read_csv(study["summary"]), pd.read_csv(study["paired"]), "before",
                "best_val_accuracy")
    assert v["winner"] is None
    assert v["text"] == ("no significant difference: before, after tied (overlapping 95% "
                         "intervals); decided against before: none worse")
    rows = parse(render(tmp_path, [study])).rows
    assert rows["overview"][0][5].startswith(v["text"])


def test_a_winners_sentence_does_not_repeat_what_it_names(tmp_path):
    study = make_study(tmp_path, "p", {"relu": [0.811, 0.829, 0.851], "elu": [0.80, 0.82, 0.84]},
                       baseline="relu")
    v = verdict(pd.read_csv(study["summary"]), pd.read_csv(study["paired"]), "relu",
                "best_val_accuracy")
    assert v["text"].startswith("relu (the baseline) — elu significantly worse")
    assert "decided" not in v["text"]


def test_intervals_of_losses_and_seconds_need_three_seeds(tmp_path):
    two = make_study(tmp_path / "2", "two", {"a": [0.80, 0.90], "b": [0.70, 0.75]},
                     baseline="a")
    cells = parse(render(tmp_path / "2", [two])).rows["summary"][0]
    # variant, rank, n, diverged, headline, std, final val acc, final val loss, test acc, s/epoch
    assert "[" in cells[4] and "[" in cells[6] and "[" in cells[8]  # accuracies: logit, bounded
    assert cells[7] == "0.1500" and cells[9] == "1.00"  # loss and seconds: the mean alone
    three = make_study(tmp_path / "3", "three", {"a": [0.80, 0.90, 0.85], "b": [0.7, 0.75, 0.8]},
                       baseline="a")
    cells = parse(render(tmp_path / "3", [three])).rows["summary"][0]
    assert cells[7].startswith("0.1500 [") and cells[9].startswith("1.00 [")


def test_activation_figure_only_where_the_activation_varies(tmp_path):
    varied = make_study(tmp_path, "acts", {"relu": [0.8, 0.9], "elu": [0.7, 0.8]},
                        baseline="relu")
    fixed = make_study(tmp_path, "inits", {"he": [0.8, 0.9], "glorot": [0.7, 0.8]},
                       baseline="he", activations={"he": "relu", "glorot": "relu"})
    html = render(tmp_path, [varied, fixed])
    assert 'src="figures/acts/activation_functions.png"' in html
    assert "figures/inits/activation_functions" not in html
    assert 'src="figures/inits/activation_statistics.png"' in html  # about any study


def test_report_folder_works_when_moved_on_its_own(page, tmp_path_factory):
    """Every link of the page resolves inside the report's folder: zipped or moved alone, it
    still works (tables, paper tables and histories are copied in)."""
    root, _ = page
    moved = tmp_path_factory.mktemp("elsewhere") / "shared-report"
    shutil.move(root / "report", moved)
    shutil.rmtree(root / "results")  # nothing left behind to resolve against
    html = (moved / "index.html").read_text()
    links = re.findall(r'(?:href|src)="([^"#][^"]*)"', html)
    assert links
    for link in links:
        path = (moved / entities.unescape(link)).resolve()
        assert path.is_file() and path.is_relative_to(moved.resolve()), link
    assert (moved / "results" / "studies" / "acts" / "summary.csv").is_file()
