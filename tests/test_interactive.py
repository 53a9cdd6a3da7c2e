"""The report's interactive figures: their data, and the page in headless Chromium.

The browser tests drive Debian's `chromium` with Playwright (tests/browser.py: it downloads
nothing) on the report of the session's finished tiny workflow (tests/conftest.py), with every
request routed through the test so that none can leave the page.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from cnnablate.reporting import interactive
from tests.browser import chromium_or_skip, report_page
from tests.tiny import TINY_STUDY, TINY_VARIANTS


def _run(root: Path, variant: str, seed: int, status: str, rows: list[tuple]) -> tuple[Path, Path]:
    run = root / variant / f"seed{seed}"
    run.mkdir(parents=True)
    (run / "metrics.json").write_text(json.dumps({"variant": variant, "seed": seed,
                                                  "status": status}))
    lines = ["epoch,loss,accuracy,val_loss,val_accuracy,seconds"]
    lines += [f"{e},1.0,0.5,{vl},{va},1.0" for e, va, vl in rows]
    (run / "history.csv").write_text("\n".join(lines) + "\n")
    return run / "metrics.json", run / "history.csv"


def test_learning_curves_mean_and_band_over_completed_seeds(tmp_path):
    files = [
        _run(tmp_path, "a", 0, "completed", [(1, 0.5, 2.0), (2, 0.7, 1.0)]),
        _run(tmp_path, "a", 1, "completed", [(1, 0.3, 3.0), (2, 0.9, 0.5)]),
        _run(tmp_path, "a", 2, "diverged", [(1, 0.1, "nan")]),  # shown in the PNG only
        _run(tmp_path, "b", 0, "completed", [(1, 0.6, 1.5)]),  # a one-epoch variant
    ]
    curves = interactive.learning_curves([m for m, _ in files], [h for _, h in files],
                                         ["b", "a"])
    assert curves["epochs"] == [1, 2]
    assert [(v["name"], v["n"], v["colour"]) for v in curves["variants"]] == [
        ("b", 1, "#1f77b4"), ("a", 2, "#ff7f0e")]
    a = curves["variants"][1]
    assert a["val_accuracy"] == {"mean": [0.4, 0.8], "lo": [0.3, 0.7], "hi": [0.5, 0.9]}
    assert a["val_loss"] == {"mean": [2.5, 0.75], "lo": [2.0, 0.5], "hi": [3.0, 1.0]}
    assert curves["variants"][0]["val_accuracy"]["mean"] == [0.6, None]


def test_final_metric_leaves_out_variants_without_a_completed_run():
    summary = [
        {"variant": "a", "n": 2, "m_mean": 0.8, "m_ci_low": 0.7, "m_ci_high": 0.9},
        {"variant": "b", "n": 0, "m_mean": float("nan"), "m_ci_low": None, "m_ci_high": None},
        {"variant": "c", "n": 1, "m_mean": 0.6, "m_ci_low": None, "m_ci_high": None},
    ]
    final = interactive.final_metric(summary, "m", "a", ["a", "b", "c"])
    assert final["variants"] == [
        {"name": "a", "n": 2, "colour": "#1f77b4", "mean": 0.8, "lo": 0.7, "hi": 0.9},
        {"name": "c", "n": 1, "colour": "#2ca02c", "mean": 0.6, "lo": None, "hi": None},
    ]


def test_json_in_the_page_cannot_close_its_script_element():
    text = str(interactive.script_json({"name": "</script><b>x</b>&"}))
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"name": "</script><b>x</b>&"}


def test_vendored_library_is_pinned_with_its_licence():
    vendor = interactive.REPORT_DIR / "vendor" / "uplot"
    assert f"(v{interactive.UPLOT_VERSION})" in (vendor / "uPlot.iife.min.js").read_text()[:200]
    assert "MIT License" in (vendor / "LICENSE").read_text()


# --- in headless Chromium ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser_page(finished):
    chromium_or_skip()
    work = finished.work
    with report_page((work / "report" / "index.html").resolve().as_uri()) as opened:
        opened.page.wait_for_function(
            f"document.querySelectorAll('#interactive-{TINY_STUDY} .iplot.drawn').length === 3")
        yield work, opened.page, opened.requests, opened.errors


def _history(work: Path, variant: str) -> list[dict]:
    with open(work / f"results/runs/{TINY_STUDY}/{variant}/seed0/history.csv") as fh:
        return list(csv.DictReader(fh))


CURVES = f"#interactive-{TINY_STUDY} .iplot[data-metric=val_accuracy]"


def test_interactive_figures_render(browser_page):
    _, page, _, errors = browser_page
    assert page.locator(f"#interactive-{TINY_STUDY} .iplot canvas").count() == 3
    for canvas in page.locator(f"#interactive-{TINY_STUDY} .iplot canvas").all():
        box = canvas.bounding_box()
        assert box["width"] > 200 and box["height"] > 100
    shown = page.eval_on_selector_all(
        f"{CURVES} .u-legend .u-series",
        "rows => rows.filter(r => r.style.display !== 'none').map(r => r.innerText.trim())")
    # the epoch row, then one row per variant (its min and max rows are hidden)
    assert [row.split()[0] for row in shown[1:]] == list(TINY_VARIANTS)
    assert errors == []


def test_hover_shows_the_values_of_that_epoch(browser_page):
    work, page, _, _ = browser_page
    over = page.locator(f"{CURVES} .u-over")
    box = over.bounding_box()
    over.hover(position={"x": box["width"] - 2, "y": box["height"] / 2})  # the last epoch
    page.wait_for_function(
        f"document.querySelector('{CURVES} .u-legend .u-series .u-value').innerText === '2'")
    values = page.eval_on_selector_all(
        f"{CURVES} .u-legend .u-series .u-value", "cells => cells.map(c => c.innerText)")
    # One seed per variant: mean = min = max = the run's val_accuracy at epoch 2.
    for i, variant in enumerate(TINY_VARIANTS):
        expected = f"{float(_history(work, variant)[1]['val_accuracy']):.4f}"
        assert values[1 + 3 * i] == f"{expected} [{expected}, {expected}]", variant


def test_clicking_a_variant_hides_it_and_its_band(browser_page):
    _, page, _, _ = browser_page
    rows = page.locator(f"{CURVES} .u-legend .u-series")
    off = "rows => rows.map(r => r.classList.contains('u-off'))"
    before = page.eval_on_selector_all(f"{CURVES} .u-legend .u-series", off)
    assert not any(before)
    rows.nth(4).click()  # the second variant's row (epoch row, then 3 rows per variant)
    after = page.eval_on_selector_all(f"{CURVES} .u-legend .u-series", off)
    assert after == [False, False, False, False, True, True, True]
    rows.nth(4).click()
    assert not any(page.eval_on_selector_all(f"{CURVES} .u-legend .u-series", off))


def test_final_metric_hover(browser_page):
    work, page, _, _ = browser_page
    final = f"#interactive-{TINY_STUDY} .iplot[data-kind=final]"
    over = page.locator(f"{final} .u-over")
    over.hover(position={"x": 2, "y": over.bounding_box()["height"] / 2})  # the first variant
    page.wait_for_function(
        f"document.querySelector('{final} .u-legend .u-series .u-value').innerText !== '–'")
    values = page.eval_on_selector_all(f"{final} .u-legend .u-series .u-value",
                                       "cells => cells.map(c => c.innerText)")
    assert values[0] == TINY_VARIANTS[0]
    best = max(float(r["val_accuracy"]) for r in _history(work, TINY_VARIANTS[0]))
    assert values[1] == f"{best:.4f}"  # one seed: the mean is its best val_accuracy


def test_no_request_leaves_the_page(browser_page):
    _, _, requests, _ = browser_page
    assert requests, "the route saw no request"
    assert [u for u in requests if not u.startswith("file://")] == []
    # the page itself and its PNG figures, nothing fetched for the interactive figures
    assert all(re.search(r"(index\.html|\.png)$", u) for u in requests), requests
