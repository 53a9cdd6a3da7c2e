"""The report of a tuned study (issue #21), from hand-made tuning.csv files and runs (no
training): the tuning figure (PNG and the interactive chart's data), one sentence per variant,
decisions that say what they compare, the cost of tuning; and the one sentence an untuned
study gains. Expected strings and numbers are written by hand."""

from __future__ import annotations

import html as entities
import json
import re
from pathlib import Path

import pytest

from cnnablate.base import catalog
from cnnablate.decisions import sentences
from cnnablate.reporting import tuning
from cnnablate.reporting.aggregate import aggregate_study
from cnnablate.reporting.figures import figure_function, load_study_data
from tests.test_report import render, text, tiny_png
from tests.test_stats import write_run

HEADER = ("variant,train.learning_rate,seed,metric,value,status,selected,at_edge\n")
# relu: 0.03 wins inside the grid (0.1 diverged on one seed); selu: 0.01 wins at the lower
# edge; elu: every candidate diverged. Float noise as a CSV round trip can leave it.
TUNING_CSV = HEADER + """\
relu,0.01,1000,best_val_accuracy,0.90,ok,False,False
relu,0.01,1001,best_val_accuracy,0.92,ok,False,False
relu,0.030000000000000002,1000,best_val_accuracy,0.95,ok,True,False
relu,0.030000000000000002,1001,best_val_accuracy,0.97,ok,True,False
relu,0.1,1000,best_val_accuracy,0.99,ok,False,False
relu,0.1,1001,best_val_accuracy,,diverged,False,False
selu,0.01,1000,best_val_accuracy,0.93,ok,True,True
selu,0.01,1001,best_val_accuracy,0.91,ok,True,True
selu,0.030000000000000002,1000,best_val_accuracy,0.80,ok,False,True
selu,0.030000000000000002,1001,best_val_accuracy,0.84,ok,False,True
selu,0.1,1000,best_val_accuracy,,diverged,False,True
selu,0.1,1001,best_val_accuracy,,diverged,False,True
elu,0.01,1000,best_val_accuracy,,diverged,False,False
elu,0.01,1001,best_val_accuracy,,diverged,False,False
elu,0.030000000000000002,1000,best_val_accuracy,,diverged,False,False
elu,0.030000000000000002,1001,best_val_accuracy,,diverged,False,False
elu,0.1,1000,best_val_accuracy,,diverged,False,False
elu,0.1,1001,best_val_accuracy,,diverged,False,False
"""
TUNE = {"keys": {"train.learning_rate": [0.01, 0.03, 0.1]}, "seeds": [1000, 1001],
        "metric": "best_val_accuracy", "epochs": 3}


def write_csv(path: Path, content: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    return path


# --- sentences ---------------------------------------------------------------------------------

@pytest.mark.parametrize("value, shown", [
    (0.1000000001, "0.1"), (0.030000000000000002, "0.03"), (64.0, "64"), (64, "64"),
    (1e-05, "1e-5"), (0.0003, "0.0003"), (0.0, "0"), ("adam", "adam"), (True, "True"),
])
def test_values_are_written_compactly(value, shown):
    assert sentences.compact(value) == shown


def test_one_sentence_per_variant_from_tuning_csv(tmp_path):
    path = write_csv(tmp_path / "tuning.csv", TUNING_CSV)
    assert tuning.variant_sentences(tuning.read_tuning(path, ["relu", "selu", "elu"])) == [
        "relu: best at learning_rate 0.03 of 0.01, 0.03, 0.1 (0.1 diverged) — inside the grid.",
        "selu: best at learning_rate 0.01 of 0.01, 0.03, 0.1 (0.1 diverged) — at the edge of "
        "the grid (the smallest learning_rate): widen it.",
        "elu: every candidate diverged (learning_rate 0.01, 0.03, 0.1): no setting selected; "
        "add smaller values (e.g. a smaller learning rate).",
    ]


def test_sentence_with_two_tuned_keys_names_the_key_at_the_edge():
    grid = {"train.learning_rate": [0.01, 0.1], "train.weight_decay": [0.0, 0.0005, 0.001]}
    text = sentences.tuning_sentence(
        "gelu", grid, {"train.learning_rate": 0.1, "train.weight_decay": 0.0005}, True,
        [{"train.learning_rate": 0.1, "train.weight_decay": 0.001}])
    assert text == ("gelu: best at learning_rate 0.1 of 0.01, 0.1 and weight_decay 0.0005 of 0, "
                    "0.0005, 0.001 (learning_rate 0.1, weight_decay 0.001 diverged) — at the "
                    "edge of the grid (the largest learning_rate): widen it.")


def test_text_candidates_are_never_an_edge():
    text = sentences.tuning_sentence("relu", {"train.optimizer": ["sgd", "adam"]},
                                     {"train.optimizer": "adam"}, False)
    assert text == "relu: best at optimizer adam of sgd, adam — inside the grid."


def test_decisions_say_what_they_compare_and_what_the_bound_covers():
    assert sentences.compared_at_best(["train.learning_rate"], [1000], "best_val_accuracy",
                                      [0, 1, 2, 3, 7], "test_accuracy", "test") == (
        "Each variant is compared at the best of its listed candidates for learning_rate on "
        "1 tuning seed: chosen on tuning seed 1000 by best_val_accuracy on the validation "
        "split; decided on the deciding seeds 0–3, 7 by test_accuracy on the test split.")
    # a seed column with a row per run names each seed once (and in the singular for one)
    assert "on tuning seed 1000 by" in sentences.compared_at_best(
        ["train.learning_rate"], [1000, 1000, 1000], "m", [0, 0], "m", "val")
    assert "on the deciding seed 0 by" in sentences.compared_at_best(
        ["train.learning_rate"], [1000], "m", [0, 0], "m", "val")
    scope = sentences.tuned_guarantee(0.05)
    assert scope.startswith("In a tuned study the 5% bound holds for the comparison of the "
                            "selected configurations")
    assert "not for an activation, normalisation or initialiser at its best in general" in scope
    assert "docs/statistics.md" in scope


def test_untuned_study_names_the_learning_rate_its_variants_share():
    train = {"relu": {"learning_rate": 0.05, "optimizer": "sgd"},
             "elu": {"learning_rate": 0.05, "optimizer": "sgd"},
             "slow_elu": {"learning_rate": 0.01, "optimizer": "sgd"},
             "adam_elu": {"learning_rate": 0.05, "optimizer": "adam"}}
    assert sentences.shared_setting(train, ["relu", "elu"]) == (
        "All variants share one learning rate, 0.05 (optimizer sgd), so each verdict is partly "
        "a verdict on that setting; a study's tune: key compares each variant at the best of its "
        "listed learning rates instead.")
    assert sentences.shared_setting(train, list(train)).startswith(
        "All variants but slow_elu (learning rate 0.01) and adam_elu (optimizer adam) share one "
        "learning rate, 0.05 (optimizer sgd), so")
    assert sentences.shared_setting({}, ["relu"]) is None  # no run says: no claim


def test_cost_says_runs_epochs_budget_and_share():
    # 6 tuning runs x 3 epochs = 18; 4 deciding runs x 5 epochs = 20; 18 / 38 = 47.4 %
    assert sentences.tuning_cost([3] * 6, [5] * 4, 3) == (
        "Tuning cost: 6 tuning runs of 3 epochs each (tune.epochs: shorter than the deciding "
        "runs' 5), 18 of the study's 38 training epochs (47%; 4 deciding runs train the other "
        "20).")
    # without tune.epochs the tuning runs train as long as the deciding runs: 30 / 50 = 60 %
    assert sentences.tuning_cost([5] * 6, [5] * 4, None) == (
        "Tuning cost: 6 tuning runs of 5 epochs each (the deciding runs' budget), 30 of the "
        "study's 50 training epochs (60%; 4 deciding runs train the other 20).")


def test_cost_of_a_tuning_csv_counts_every_run(tmp_path):
    path = write_csv(tmp_path / "tuning.csv", TUNING_CSV)
    per_variant = tuning.read_tuning(path, ["relu", "selu", "elu"])
    deciding = {"relu": [5, 5], "selu": [5, 5], "elu": [4, 4]}
    # deciding: 5 + 5 + 5 + 5 + 4 + 4 = 28 epochs in 6 runs
    # tune.epochs 3: 18 runs x 3 = 54 of 54 + 28 = 82 epochs: 65.9 %
    text = tuning.cost_sentence(per_variant, TUNE, deciding)
    assert "18 tuning runs of 3 epochs each" in text
    assert "54 of the study's 82 training epochs (66%; 6 deciding runs train the other 28)" in text
    # no tune.epochs: each variant's own budget, 6 x 5 + 6 x 5 + 6 x 4 = 84 of 84 + 28 = 112: 75 %
    text = tuning.cost_sentence(per_variant, {**TUNE, "epochs": None}, deciding)
    assert "18 tuning runs of 4–5 epochs each (the deciding runs' budget)" in text
    assert "84 of the study's 112 training epochs (75%" in text


# --- the figure's data -------------------------------------------------------------------------

@pytest.mark.parametrize("key, candidates, expected", [
    ("train.learning_rate", [0.01, 0.03], {"scale": "log"}),  # a learning rate: always log
    ("train.batch_size", [32, 64, 128], {"scale": "linear"}),  # spans 4x
    ("train.batch_size", [16, 64, 256], {"scale": "log"}),  # spans 16x
    ("train.weight_decay", [0.0, 0.0001, 0.001], {"scale": "asinh", "linthresh": 0.0001}),
    ("train.optimizer", ["sgd", "adam"], {"scale": "category"}),
])
def test_axis_choice(key, candidates, expected):
    assert tuning.axis(key, candidates) == expected


def test_interactive_chart_data_marks_the_selected_point(tmp_path):
    path = write_csv(tmp_path / "tuning.csv", TUNING_CSV)
    data = tuning.chart(tuning.read_tuning(path, ["relu", "selu", "elu"]), "best_val_accuracy",
                        {"relu": "#1f77b4", "selu": "#ff7f0e", "elu": "#2ca02c"})
    (panel,) = data["panels"]
    assert panel["scale"] == "log" and panel["label"] == "learning_rate"
    assert panel["ticks"] == ["0.01", "0.03", "0.1"]
    relu, selu, elu = panel["variants"]
    assert relu["selected"] == 1 and panel["x"][1] == pytest.approx(0.03)
    assert relu["mean"] == pytest.approx([0.91, 0.96, None])  # 0.1 diverged on a seed: no mean
    assert relu["seeds"] == [[0.90, 0.92], [0.95, 0.97], [0.99]]
    assert relu["diverged"] == [0, 0, 1]
    assert selu["selected"] == 0 and selu["mean"][0] == pytest.approx(0.92)
    assert elu["selected"] is None and elu["diverged"] == [2, 2, 2]


def test_two_keys_are_drawn_as_slices_through_the_selected_setting(tmp_path):
    rows = [("relu", lr, wd, v, sel)
            for lr, wd, v, sel in [(0.01, 0.0, 0.90, False), (0.01, 0.001, 0.91, False),
                                   (0.1, 0.0, 0.95, True), (0.1, 0.001, 0.93, False)]]
    body = "".join(f"{v},{lr},{wd},1000,best_val_accuracy,{val},ok,{sel},True\n"
                   for v, lr, wd, val, sel in rows)
    path = write_csv(tmp_path / "tuning.csv",
                     "variant,train.learning_rate,train.weight_decay,seed,metric,value,status,"
                     "selected,at_edge\n" + body)
    lr_panel, wd_panel = tuning.chart(tuning.read_tuning(path), "best_val_accuracy",
                                      {})["panels"]
    # learning rate at the selected weight decay 0; weight decay at the selected rate 0.1
    assert lr_panel["variants"][0]["mean"] == pytest.approx([0.90, 0.95])
    assert wd_panel["variants"][0]["mean"] == pytest.approx([0.95, 0.93])
    assert wd_panel["scale"] == "linear"  # only one positive candidate: no span to show
    assert lr_panel["variants"][0]["selected"] == 1 and wd_panel["variants"][0]["selected"] == 0


def test_tuning_png_through_the_figure_registry(tmp_path):
    assert "tuning" in catalog.TUNING_FIGURES and "tuning" not in catalog.FIGURES
    study = _study(tmp_path, "tuned", tune=TUNE)
    data = load_study_data(study["metrics_files"], study["history_files"], study["summary"],
                           study["settings"], tuning_csv=study["tuning"])
    out = tmp_path / "tuning.png"
    figure_function("tuning")(data, out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000


def test_tuning_figure_code_reruns_only_tuning_figures():
    """Its own job and fingerprint: editing the tuning figure leaves every untuned study's
    figures job as it was."""
    from cnnablate.workflow.fingerprint import Fingerprints

    code = Fingerprints()
    assert "cnnablate/reporting/tuning_figure.py:" in code.tuning_figures()
    assert "cnnablate/reporting/tuning_figure.py" not in code.figures()
    assert "cnnablate/reporting/tuning_figure.py" not in code.report()
    assert "cnnablate/reporting/figures.py:" in code.tuning_figures()  # StudyData, colours


# --- the rendered report -----------------------------------------------------------------------

def _study(root: Path, name: str, tune: dict | None, lr: dict | None = None,
           tuning_csv: str = TUNING_CSV) -> dict:
    """Deciding runs of relu, selu, elu on seeds 0-2 (5 epochs each), their tables, placeholder
    figures, and for a tuned study its tuning.csv, as scripts/report.py hands them over."""
    values = {"relu": [0.95, 0.96, 0.97], "selu": [0.93, 0.94, 0.95], "elu": [0.80, 0.82, 0.81]}
    lr = lr or {}
    runs = [write_run(root, name, v, seed, best, run_config={"train": {
                "epochs": 5, "optimizer": "sgd", "learning_rate": lr.get(v, 0.05)}})
            for v, seeds in values.items() for seed, best in enumerate(seeds)]
    settings = {"name": name, "description": "", "dataset": "digits", "eval_split": "val",
                "baseline": "relu", "model": {"name": "all_cnn_c", "width": 0.25},
                "reference": {}, "variant_descriptions": {v: "" for v in values}, "tune": tune}
    tables = root / "results" / "studies" / name
    tables.mkdir(parents=True, exist_ok=True)
    out = {k: tables / f"{k}.csv" for k in ("runs", "summary", "paired")}
    aggregate_study([r / "metrics.json" for r in runs], settings, out["runs"], out["summary"],
                    out["paired"])
    names = [*catalog.FIGURES, *(catalog.TUNING_FIGURES if tune else ())]
    return {
        "settings": settings, **{k: str(v) for k, v in out.items()},
        "metrics_files": [str(r / "metrics.json") for r in runs],
        "history_files": [str(r / "history.csv") for r in runs],
        "figures": {f: str(tiny_png(root / "report" / "figures" / name / f"{f}.png"))
                    for f in names},
        "tuning": str(write_csv(tables / "tuning.csv", tuning_csv)) if tune else None,
    }


def _embedded(html: str, study: str) -> dict:
    match = re.search(rf'<script type="application/json" id="iplot-data-{study}">(.*?)</script>',
                      html, re.S)
    return json.loads(match.group(1))


def test_tuned_report_has_tuning_section_sentences_cost_and_own_best_wording(tmp_path):
    html = render(tmp_path, [_study(tmp_path, "tuned", tune=TUNE)])
    page = entities.unescape(text(html))
    assert 'id="tuning-tuned"' in html
    assert ("selu: best at learning_rate 0.01 of 0.01, 0.03, 0.1 (0.1 diverged) — at the edge "
            "of the grid (the smallest learning_rate): widen it.") in page
    assert "elu: every candidate diverged (learning_rate 0.01, 0.03, 0.1)" in page
    # 18 tuning runs x 3 epochs = 54; 9 deciding runs x 5 = 45; 54 / 99 = 54.5 %
    assert ("Tuning cost: 18 tuning runs of 3 epochs each (tune.epochs: shorter than the "
            "deciding runs' 5), 54 of the study's 99 training epochs (55%") in page
    assert ("Each variant is compared at the best of its listed candidates for learning_rate "
            "on 2 tuning seeds: chosen on tuning seeds 1000, 1001 by best_val_accuracy on the "
            "validation split; decided on the deciding seeds 0–2 by best_val_accuracy on the "
            "val split.") in page
    assert "holds for the comparison of the selected configurations" in page
    assert "share one learning rate" not in page
    # drawn on the page (the interactive chart's data and its panel); its PNG linked, not shown
    assert html.count('href="figures/tuned/tuning.png"') == 1
    assert 'src="figures/tuned/tuning.png"' not in html
    panel = _embedded(html, "tuned")["tuning"]["panels"][0]
    assert panel["scale"] == "log"
    relu = panel["variants"][0]
    assert relu["name"] == "relu" and panel["ticks"][relu["selected"]] == "0.03"
    assert html.count('data-kind="tuning"') == 1


def test_untuned_report_says_its_variants_share_one_learning_rate(tmp_path):
    html = render(tmp_path, [_study(tmp_path, "plain", tune=None, lr={"elu": 0.01})])
    page = entities.unescape(text(html))
    assert ("All variants but elu (learning rate 0.01) share one learning rate, 0.05 "
            "(optimizer sgd), so each verdict is partly a verdict on that setting") in page
    assert 'id="tuning-' not in html and "tuning" not in _embedded(html, "plain")
    assert "listed candidates" not in page and "Tuning cost" not in page
    assert "tuning.png" not in html


# --- the interactive chart in headless Chromium (offline, from disk) ---------------------------

@pytest.mark.browser
def test_tuning_chart_draws_and_hover_shows_the_seeds(tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    from tests.browser import chromium_or_skip

    # a second study tunes weight decay (0 among its candidates: an asinh axis) and the
    # optimizer (text: a category axis)
    rows = [(v, wd, opt, 0.9 + 0.01 * i, (v, wd, opt) == ("relu", 0.0001, "adam"))
            for v in ("relu", "selu", "elu")
            for i, (wd, opt) in enumerate((w, o) for w in (0.0, 0.0001, 0.001)
                                          for o in ("sgd", "adam"))]
    other = ("variant,train.weight_decay,train.optimizer,seed,metric,value,status,selected,"
             "at_edge\n" + "".join(f"{v},{wd},{opt},7,best_val_accuracy,{val:.2f},ok,{sel},"
                                   "False\n" for v, wd, opt, val, sel in rows))
    render(tmp_path, [_study(tmp_path, "tuned", tune=TUNE),
                      _study(tmp_path, "other", tune={**TUNE, "seeds": [7]}, tuning_csv=other)])
    requests: list[str] = []

    def route(route):
        requests.append(route.request.url)
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            route.abort()  # nothing may leave the page

    chart = "#tuning-interactive-tuned .iplot[data-kind=tuning]"
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_or_skip(), headless=True,
                                    args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.route("**/*", route)
        page.goto((tmp_path / "report" / "index.html").resolve().as_uri())
        page.wait_for_function(f"document.querySelector('{chart}.drawn canvas') !== null")
        page.wait_for_function(  # the other study's two panels: weight decay, optimizer
            "document.querySelectorAll('#tuning-interactive-other .iplot.drawn canvas')"
            ".length === 2")
        axes = page.eval_on_selector_all(
            "#tuning-interactive-other .iplot",
            "els => els.map(e => [e.uplot.axes[0].label, e.uplot.scales.x.distr])")
        over = page.locator(f"{chart} .u-over")
        box = over.bounding_box()
        # 0.03 on a log axis from 0.01 to 0.1 sits at log10(3) = 0.477 of the width
        over.hover(position={"x": box["width"] * 0.477, "y": box["height"] / 2})
        page.wait_for_function(
            f"document.querySelector('{chart} .u-legend .u-series .u-value').innerText "
            "=== '0.03'")
        values = page.eval_on_selector_all(f"{chart} .u-legend .u-series .u-value",
                                           "cells => cells.map(c => c.innerText)")
        log = page.eval_on_selector(chart, "e => [e.uplot.axes[0].label, e.uplot.scales.x.distr]")
        # the tick labels uPlot drew (its axis's _values): every candidate, 0.03 included
        ticks = page.eval_on_selector(chart, "e => e.uplot.axes[0]._values")
        # the budget curves (issue #31): one series per variant, n = 1..3 candidates
        budget = "#budget-interactive-tuned .iplot[data-kind=budget]"
        page.wait_for_function(f"document.querySelector('{budget}.drawn canvas') !== null")
        series = page.eval_on_selector(
            budget, "e => [e.uplot.series.map(s => s.label), e.uplot.data[0]]")
        browser.close()
    assert log == ["learning_rate (log scale)", 3]  # uPlot's distr 3: a log scale
    assert ticks == ["0.01", "0.03", "0.1"]
    assert values[1] == "0.9600 (seeds 0.9500, 0.9700) \u2605 selected"  # relu
    assert values[2] == "0.8200 (seeds 0.8000, 0.8400)"  # selu
    assert values[3] == "–, 2 diverged"  # elu: no mean, both seeds lost
    # uPlot's distr 4 is its asinh scale: linear near 0, logarithmic beyond; 1 is linear
    assert axes == [["weight_decay (log scale beyond 0.0001)", 4], ["optimizer", 1]]
    assert series == [["candidates", "relu (still rising)", "selu (still rising)", "elu"],
                      [1, 2, 3]]
    assert errors == []
    assert [u for u in requests if not u.startswith("file://")] == []
