"""The report of the session's finished tiny workflow (tests/conftest.py), its folder copied
on its own elsewhere (as a shared zip would be) and opened from disk in headless Chromium
(Playwright, tests/browser.py): every figure loads, every link resolves inside the folder, the
tables have their rows, user markup shows as text, nothing comes from the network, and the page
fits a desktop and a phone screen (no horizontal scrolling of the page; wide tables scroll on
their own).

Full-page screenshots are kept as CI artifacts: artifacts/report.png (desktop, 1280 px wide)
and artifacts/report-phone.png (390 px) at the repo root.
Skips where Chromium is missing, naming the command that installs it (tests install nothing).
"""

from __future__ import annotations

import shutil
import struct
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from cnnablate.base import catalog
from tests.browser import chromium_or_skip, open_page, report_page
from tests.tiny import FINISHED, MARKUP, TINY_STUDY, TINY_VARIANTS
from tests.workflow import ROOT

pytestmark = [pytest.mark.browser, pytest.mark.workflow]

SCREENSHOT = ROOT / "artifacts" / "report.png"
PHONE_SCREENSHOT = ROOT / "artifacts" / "report-phone.png"
PHONE = {"width": 390, "height": 844}  # a common phone's CSS pixels
FIGURES = tuple(catalog.FIGURES)  # the figure registry
STUDIES = tuple(FINISHED["studies"])  # in the report's order
TINY = f"#study-{TINY_STUDY}"  # the browser-check study's section
DRAWN = ("learning_curves", "final_metric")  # drawn interactively: their PNGs are linked
WAIT_FOR_IMAGES = ("Promise.all([...document.images].map(i => i.complete ? null : "
                   "new Promise(r => { i.onload = i.onerror = r; })))")


def _shown(study: str, figure: str) -> bool:
    """Whether the report shows `figure` as an image for a study of FINISHED: not when the page
    draws it, not the activation figure when every variant has the same activation."""
    variants = FINISHED["studies"][study]["variants"].values()
    if figure in DRAWN:
        return False
    return figure != "activation_functions" or len({v["activation"] for v in variants}) > 1


@pytest.fixture(scope="module")
def report(finished, tmp_path_factory) -> Path:
    """The finished report's folder, copied on its own elsewhere: nothing outside it is there."""
    chromium_or_skip()
    moved = tmp_path_factory.mktemp("shared") / "report"
    shutil.copytree(finished.work / "report", moved)
    return moved / "index.html"


@pytest.fixture(scope="module")
def opened(report):
    with report_page(report.resolve().as_uri(), width=1280, height=900) as opened:
        # every <img> finished (loaded or failed) before anything is measured
        opened.page.evaluate(WAIT_FOR_IMAGES)
        # first, so CI keeps it even when a check below fails
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        opened.page.screenshot(path=str(SCREENSHOT), full_page=True)
        yield opened


@pytest.fixture(scope="module")
def phone(opened, report):
    """The same report at a phone's width, in the same browser."""
    on_phone = open_page(opened.browser, report.resolve().as_uri(), **PHONE)
    on_phone.page.evaluate(WAIT_FOR_IMAGES)
    PHONE_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    on_phone.page.screenshot(path=str(PHONE_SCREENSHOT), full_page=True)
    yield on_phone
    on_phone.page.close()


@pytest.fixture(scope="module")
def page(opened):
    return opened.page


def test_every_image_loads(page):
    images = page.evaluate(
        "[...document.images].map(i => ({src: i.getAttribute('src'), complete: i.complete, "
        "width: i.naturalWidth, height: i.naturalHeight, "
        "shown: i.getBoundingClientRect().width}))"
    )
    assert [i["src"] for i in images] == [f"figures/{s}/{f}.png" for s in STUDIES for f in FIGURES
                                          if _shown(s, f)]
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


def test_every_link_resolves_inside_the_folder(page, report):
    """Tables, paper tables, static figures and histories: copied inside the report's folder."""
    folder = report.parent.resolve()
    links = page.evaluate("[...document.querySelectorAll('a[href]')]"
                          ".filter(a => !a.getAttribute('href').startsWith('#')).map(a => a.href)")
    static = page.evaluate("[...document.querySelectorAll('a.static')].map(a => "
                           "a.getAttribute('href'))")
    # each figure the page draws has its PNG linked once per study (and its PDF)
    assert sorted(static) == sorted(f"figures/{s}/{f}.png" for s in STUDIES for f in DRAWN)
    for link in links:
        path = Path(unquote(urlparse(link).path))
        assert link.startswith("file://") and path.is_file(), link
        assert path.resolve().is_relative_to(folder), link
    names = {Path(unquote(urlparse(link).path)).name for link in links}
    assert {"table.tex", "table.md", "summary.csv", "history.csv",
            "learning_curves.pdf"} <= names, names


def _overflow(page) -> dict:
    return page.evaluate(
        "({page: document.documentElement.scrollWidth, screen: window.innerWidth, "
        "wider: [...document.body.querySelectorAll('*')].filter(e => "
        "e.getBoundingClientRect().right > window.innerWidth + 1 && "
        "!e.closest('table')).slice(0, 5).map(e => e.tagName + '.' + e.className)})")


def test_page_fits_a_desktop_screen(page):
    fit = _overflow(page)
    assert fit["page"] <= fit["screen"], fit


def test_page_fits_a_phone_screen_and_wide_tables_scroll(phone):
    page = phone.page
    fit = _overflow(page)
    assert fit["screen"] == PHONE["width"]
    assert fit["page"] <= fit["screen"], fit  # nothing widens the page past the screen
    runs = page.evaluate(f"(t => ({{overflow: getComputedStyle(t).overflowX, "
                         f"inner: t.scrollWidth, outer: t.clientWidth}}))"
                         f"(document.querySelector('{TINY} table.runs'))")
    # the runs table is wider than a phone: it scrolls inside its box, nothing is cut
    assert runs["overflow"] == "auto" and runs["inner"] > runs["outer"], runs
    assert phone.errors == [] and phone.failed == []


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_screenshots_saved(page, phone):
    width, height = _png_size(SCREENSHOT)
    assert width == 1280 and height > 1500
    width, height = _png_size(PHONE_SCREENSHOT)
    assert width == PHONE["width"] and height > 3000


def test_a_missing_chromium_skips_with_the_install_command_and_installs_nothing(monkeypatch):
    import subprocess

    import tests.browser as browser

    monkeypatch.setattr(browser.shutil, "which", lambda name: None)
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail(f"ran {a}"))
    with pytest.raises(pytest.skip.Exception, match="apt-get install --no-install-recommends "
                                                    "chromium"):
        browser.chromium_or_skip()
