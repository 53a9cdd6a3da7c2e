"""Headless Chromium for tests, driven by Playwright (pinned in requirements.txt).

Playwright drives Debian's `chromium` through `executable_path`, so it downloads nothing (no
`playwright install`, no browser of its own). `chromium_or_skip()` finds that executable; where
it is missing and the tests run as root it installs it with apt-get, and otherwise skips the
test with the reason. `report_page()` opens a report from disk with every request routed through
the test, so that none can leave the page.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
APT_PACKAGES = ("chromium",)  # Debian's; Playwright drives it, no chromedriver
def find_chromium() -> str | None:
    for name in CANDIDATES:
        if path := shutil.which(name):
            return path
    return None


def _apt(*args: str, timeout: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(["apt-get", *args], capture_output=True, text=True, timeout=timeout,
                          env=env)


def chromium_or_skip() -> str:
    """The Chromium executable; installed with apt-get when missing (root only), else skip."""
    if found := find_chromium():
        return found
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("headless Chromium is not installed and the tests do not run as root to "
                    "install it (apt-get install chromium)")
    if not shutil.which("apt-get"):
        pytest.skip("headless Chromium is not installed and there is no apt-get to install it")
    try:
        install = _apt("install", "-y", "--no-install-recommends", *APT_PACKAGES, timeout=900)
        if install.returncode != 0:  # stale or missing package lists: update, then retry
            update = _apt("update", timeout=300)
            if update.returncode != 0:
                pytest.skip("cannot install Chromium: apt-get update failed (offline?): "
                            + update.stderr.strip()[-300:])
            install = _apt("install", "-y", "--no-install-recommends", *APT_PACKAGES,
                           timeout=900)
    except subprocess.TimeoutExpired:
        pytest.skip("cannot install Chromium: apt-get timed out (offline?)")
    if install.returncode != 0:
        pytest.skip("cannot install Chromium: apt-get install failed: "
                    + install.stderr.strip()[-300:])
    if found := find_chromium():
        return found
    pytest.skip("apt-get installed Chromium but no chromium executable is on PATH")


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
