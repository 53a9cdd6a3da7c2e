"""The report of the session's finished tiny workflow (tests/conftest.py), opened from disk in
headless Chromium (Playwright, tests/browser.py): every figure loads, the tables have their
rows, user markup shows as text, nothing comes from the network.

A full-page screenshot is kept as a CI artifact: artifacts/report.png at the repo root.
Skips (with the reason) where Chromium is missing and cannot be installed (not root, apt-get
failing or offline).
"""

from __future__ import annotations

import struct
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from cnnablate.base import catalog
from tests.browser import chromium_or_skip, report_page
from tests.tiny import FINISHED, MARKUP, TINY_STUDY, TINY_VARIANTS
from tests.workflow import ROOT

pytestmark = [pytest.mark.browser, pytest.mark.workflow]

SCREENSHOT = ROOT / "artifacts" / "report.png"
FIGURES = tuple(catalog.FIGURES)  # the figure registry
STUDIES = tuple(FINISHED["studies"])  # in the report's order
TINY = f"#study-{TINY_STUDY}"  # the browser-check study's section


@pytest.fixture(scope="module")
def report(finished) -> Path:
    chromium_or_skip()
    return finished.work / "report" / "index.html"


@pytest.fixture(scope="module")
def opened(report):
    with report_page(report.resolve().as_uri(), width=1280, height=900) as opened:
        # every <img> finished (loaded or failed) before anything is measured
        opened.page.evaluate("Promise.all([...document.images].map(i => i.complete ? null : "
                             "new Promise(r => { i.onload = i.onerror = r; })))")
        # first, so CI keeps it even when a check below fails
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        opened.page.screenshot(path=str(SCREENSHOT), full_page=True)
        yield opened


@pytest.fixture(scope="module")
def page(opened):
    return opened.page


def test_every_image_loads(page):
    images = page.evaluate(
        "[...document.images].map(i => ({src: i.getAttribute('src'), complete: i.complete, "
        "width: i.naturalWidth, height: i.naturalHeight, "
        "shown: i.getBoundingClientRect().width}))"
    )
    assert [i["src"] for i in images] == [f"figures/{s}/{f}.png" for s in STUDIES for f in FIGURES]
    for image in images:
        assert image["complete"] and image["width"] > 0 and image["height"] > 0, image
        # readable: shown at its own size or the page width, not shrunk to a thumbnail
        assert image["shown"] >= min(image["width"], 1100) - 2, image


def _rows(page, table: str, scope: str = TINY) -> list[list[str]]:
    return page.evaluate(
        f"[...document.querySelectorAll('{scope} table.{table} tbody tr')].map(tr => "
        "[...tr.cells].map(td => td.innerText.trim()))"
    )


def test_tables_have_a_row_per_variant_and_per_run(page):
    summary = _rows(page, "summary")
    assert [r[0].split()[0] for r in summary] == list(TINY_VARIANTS)  # the study's order
    runs = _rows(page, "runs")
    assert sorted((r[0], r[1], r[2]) for r in runs) == sorted(
        (v, "0", "completed") for v in TINY_VARIANTS)
    assert [r[0] for r in _rows(page, "paired")] == [v for v in TINY_VARIANTS if v != "relu"]
    assert [r[0] for r in _rows(page, "overview", scope="")] == list(STUDIES)
    reference = _rows(page, "reference-values")
    assert [r[:2] for r in reference] == [["relu", "0.9"], ["elu", "0.91"]]


def test_user_markup_shows_as_text(page):
    assert page.evaluate("document.querySelectorAll('b, i').length") == 0
    assert page.evaluate("document.title") == f"cnnablate browser check {MARKUP}"
    description = page.evaluate(f"document.querySelector('{TINY} .description').textContent")
    assert description == f"Does {MARKUP} change anything? (tiny browser-check study)"
    body = page.evaluate("document.body.innerText")
    for shown in (f"the {MARKUP} default", f"Reported by Paper {MARKUP} (not measured here)",
                  f"note {MARKUP}"):
        assert shown in body, shown


def test_dataset_and_provenance_are_shown(page):
    classes = page.evaluate(f"[...document.querySelectorAll('{TINY} ul.classes li')]"
                            ".map(li => li.textContent)")
    assert classes == [str(i) for i in range(10)]
    provenance = page.evaluate("document.getElementById('provenance').innerText")
    for expected in ("config hash", "git commit", "machine (CPU)", "package keras",
                     "dataset digits (sha256)"):
        assert expected in provenance, expected


def test_self_contained_no_network_no_errors(opened, report):
    page, urls = opened.page, opened.requests
    assert urls and all(u.startswith("file://") for u in urls), urls
    assert opened.failed == []
    assert opened.errors == []
    links = page.evaluate(f"[...document.querySelectorAll('{TINY} table.runs a')]"
                          ".map(a => a.href)")
    assert len(links) == len(TINY_VARIANTS)
    for link in links:
        assert Path(unquote(urlparse(link).path)).name == "history.csv"
        assert Path(unquote(urlparse(link).path)).is_file(), link


def test_screenshot_saved(page):
    data = SCREENSHOT.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert width == 1280 and height > 1500
