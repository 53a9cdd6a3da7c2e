"""Headless Chromium for tests, driven by Playwright (pinned in requirements.txt).

Playwright drives Debian's `chromium` through `executable_path`, so it downloads nothing (no
`playwright install`, no browser of its own). `chromium_or_skip()` finds that executable; where
it is missing it skips the test with the command that installs it (a test installs nothing).
`report_page()` opens a report from disk with every request routed through the test, so that
none can leave the page.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Debian's; Playwright drives it, no chromedriver
INSTALL = "sudo apt-get install --no-install-recommends chromium"


def find_chromium() -> str | None:
    for name in CANDIDATES:
        if path := shutil.which(name):
            return path
    return None


def chromium_or_skip() -> str:
    """The Chromium executable, else skip with the command that installs it: a test never
    installs system packages."""
    if found := find_chromium():
        return found
    pytest.skip(f"headless Chromium is not installed: {INSTALL} (or put one of "
                f"{', '.join(CANDIDATES)} on PATH)")


@dataclass
class ReportPage:
    """A page opened by `report_page`, with what it asked for and what went wrong."""

    page: Any  # playwright.sync_api.Page
    requests: list[str] = field(default_factory=list)  # every URL the page requested
    failed: list[str] = field(default_factory=list)  # requests that failed (not aborted by us)
    errors: list[str] = field(default_factory=list)  # uncaught exceptions, console errors
    browser: Any = None  # playwright.sync_api.Browser: open more pages with `open_page`


@contextlib.contextmanager
def report_page(url: str, width: int = 1280, height: int = 900) -> Iterator[ReportPage]:
    """`url` (a file:// report) in headless Chromium; requests other than file:// are aborted
    (and recorded), so a test can assert that the page needs no network. More pages (another
    screen size) open in the same browser with `open_page(opened.browser, ...)`."""
    sync_api = pytest.importorskip("playwright.sync_api")
    executable = chromium_or_skip()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True,
                                             args=["--no-sandbox"])  # root in a container
        try:
            yield open_page(browser, url, width, height)
        finally:
            browser.close()


def open_page(browser: Any, url: str, width: int, height: int) -> ReportPage:
    """A new page of `browser` at `url`, `width` x `height` CSS pixels, every request recorded
    and only file:// ones let through."""
    page = browser.new_page(viewport={"width": width, "height": height})
    opened = ReportPage(page, browser=browser)
    aborted: set[str] = set()

    def route(route) -> None:
        opened.requests.append(route.request.url)
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            aborted.add(route.request.url)
            route.abort()

    page.on("pageerror", lambda error: opened.errors.append(str(error)))
    page.on("console", lambda message: opened.errors.append(message.text)
            if message.type == "error" else None)
    page.on("requestfailed", lambda request: None if request.url in aborted
            else opened.failed.append(request.url))
    page.route("**/*", route)
    page.goto(url)
    return opened
