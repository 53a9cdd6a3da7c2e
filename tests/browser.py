"""Headless Chromium for tests, driven over the Chrome DevTools Protocol (CDP).

No driver package: Chromium speaks CDP over a pair of pipes (`--remote-debugging-pipe`: it
reads commands from fd 3 and writes replies and events to fd 4, each a JSON text ended by a
NUL byte), so the standard library is enough and no chromedriver or Selenium Manager can
download anything.

`chromium_or_skip()` finds Debian's `chromium`; where it is missing and the tests run as root
it installs it with apt-get, and otherwise skips the test with the reason.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
APT_PACKAGES = ("chromium",)  # Debian's; CDP needs no chromedriver
FLAGS = (
    "--headless",
    "--no-sandbox",  # running as root in a container
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--mute-audio",
    "--remote-debugging-pipe",
)


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


class CDPError(RuntimeError):
    pass


_SHIM = ("import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); "
         "os.execv(sys.argv[3], sys.argv[3:])")


def _above_four(fd: int) -> int:
    """`fd` moved to a number above 4 (the original is closed)."""
    if fd > 4:
        return fd
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 5)
    os.close(fd)
    return moved


class Chromium:
    """One headless Chromium with a fresh profile; `open(url)` gives a `Page`.

    with Chromium(path) as browser:
        page = browser.open("file:///.../index.html")
        page.evaluate("document.title")
    """

    def __init__(self, executable: str, width: int = 1280, height: int = 900,
                 timeout: float = 60.0):
        self.executable, self.width, self.height, self.timeout = executable, width, height, timeout
        self._next_id = 0
        self._buffer = b""
        self.events: list[dict] = []

    def __enter__(self) -> Chromium:
        self._profile = tempfile.mkdtemp(prefix="cnnablate-chromium-")
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        # The child's ends must not be fds 3 or 4 themselves, or mapping one onto 3 or 4
        # would clobber the other (pytest's output capture makes low numbers likely).
        to_chrome_r, from_chrome_w = (_above_four(fd) for fd in (to_chrome_r, from_chrome_w))
        # A Python shim maps the two pipe ends onto fds 3 and 4, where Chromium expects them,
        # and execs it (not sh: dash's redirections take single-digit fds only).
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _SHIM, str(to_chrome_r), str(from_chrome_w),
             self.executable, *FLAGS, f"--user-data-dir={self._profile}",
             f"--window-size={self.width},{self.height}", "about:blank"],
            pass_fds=(to_chrome_r, from_chrome_w),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        try:
            self.send("Browser.getVersion")
        except Exception:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        try:
            if self.proc.poll() is None:
                try:
                    self.send("Browser.close", timeout=10)
                except Exception:
                    pass
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=10)
        finally:
            for fd in (self._to_chrome, self._from_chrome):
                try:
                    os.close(fd)
                except OSError:
                    pass
            if self.proc.stderr:
                self.proc.stderr.close()
            shutil.rmtree(self._profile, ignore_errors=True)

    # --- transport -------------------------------------------------------------------------
    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no reply from Chromium over CDP")
            ready, _, _ = select.select([self._from_chrome], [], [], left)
            if not ready:
                continue
            chunk = os.read(self._from_chrome, 1 << 20)
            if not chunk:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                raise CDPError(f"Chromium closed the DevTools pipe:\n{err[-2000:]}")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float | None = None) -> dict:
        self._next_id += 1
        request = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            request["sessionId"] = session
        data = json.dumps(request).encode() + b"\0"
        while data:
            data = data[os.write(self._to_chrome, data):]
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            message = self._read_message(deadline)
            if message.get("id") == request["id"]:
                if "error" in message:
                    raise CDPError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_event(self, method: str, session: str | None = None,
                   timeout: float | None = None) -> dict:
        """The first event `method` (of `session`) not yet consumed, waiting for it."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            for i, event in enumerate(self.events):
                if event.get("method") == method and (session is None
                                                      or event.get("sessionId") == session):
                    return self.events.pop(i)
            self.events.append(self._read_message(deadline))

    # --- pages -----------------------------------------------------------------------------
    def open(self, url: str) -> Page:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget",
                            {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session)
        for domain in ("Page", "Runtime", "Network", "Log"):
            self.send(f"{domain}.enable", session=session)
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": self.width, "height": self.height, "deviceScaleFactor": 1,
                   "mobile": False}, session=session)
        page.navigate(url)
        return page


class Page:
    def __init__(self, browser: Chromium, session: str):
        self.browser, self.session = browser, session

    def _events(self, method: str) -> list[dict]:
        return [e["params"] for e in self.browser.events
                if e.get("method") == method and e.get("sessionId") == self.session]

    def navigate(self, url: str) -> None:
        result = self.browser.send("Page.navigate", {"url": url}, session=self.session)
        if result.get("errorText"):
            raise CDPError(f"cannot open {url}: {result['errorText']}")
        self.browser.wait_event("Page.loadEventFired", self.session)

    def evaluate(self, expression: str):
        """The value of a JavaScript expression (JSON-able), awaiting it if it is a promise."""
        result = self.browser.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            session=self.session,
        )
        if "exceptionDetails" in result:
            raise CDPError(f"{expression!r} raised: {result['exceptionDetails']}")
        return result["result"].get("value")

    def requested_urls(self) -> list[str]:
        """Every URL the page asked for (Network.requestWillBeSent), in order."""
        return [e["request"]["url"] for e in self._events("Network.requestWillBeSent")]

    def failed_requests(self) -> list[str]:
        return [f"{e.get('requestId')}: {e.get('errorText')}"
                for e in self._events("Network.loadingFailed")]

    def errors(self) -> list[str]:
        """Uncaught JavaScript exceptions and console/log entries of level error."""
        found = [e["exceptionDetails"].get("text", "")
                 for e in self._events("Runtime.exceptionThrown")]
        found += [e["entry"].get("text", "") for e in self._events("Log.entryAdded")
                  if e["entry"].get("level") == "error"]
        return found

    def screenshot(self, path: str | Path, full_page: bool = True) -> Path:
        """A PNG of the page; the whole scrollable page unless `full_page` is False."""
        params: dict = {"format": "png"}
        if full_page:
            size = self.browser.send("Page.getLayoutMetrics",
                                     session=self.session)["cssContentSize"]
            params.update(captureBeyondViewport=True, clip={
                "x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1})
        data = self.browser.send("Page.captureScreenshot", params, session=self.session)["data"]
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path


# --- a finished tiny workflow, shared by the browser and the Snakemake-report tests ----------

TINY_STUDY = "tiny"
TINY_VARIANTS = ("relu", "elu", "prelu")
MARKUP = "<b>x</b>"  # user text that must show as text
TINY = {
    "datasets": {"digits": {"source": "sklearn_digits"}},
    "report": {"title": f"cnnablate browser check {MARKUP}"},
    "studies": {
        TINY_STUDY: {
            "description": f"Does {MARKUP} change anything? (tiny browser-check study)",
            "dataset": "digits",
            "image_size": 16,
            "model": {"name": "all_cnn_c", "width": 0.125},
            "train": {"epochs": 2, "batch_size": 32, "learning_rate": 0.05,
                      "max_train_images": 128, "max_eval_images": 64},
            "seeds": [0],
            "baseline": "relu",
            "variants": {
                "relu": {"activation": "relu", "description": f"the {MARKUP} default"},
                "elu": {"activation": "elu"},
                "prelu": {"activation": "prelu"},
            },
            "reference": {"source": f"Paper {MARKUP}", "metric": "validation accuracy",
                          "values": {"relu": 0.9, "elu": 0.91}, "note": f"note {MARKUP}"},
        },
    },
}
_FINISHED: dict[str, Path] = {}


def tiny_workflow(tmp_path_factory) -> Path:
    """The tiny config (three training jobs of two epochs) run to the report, once per test
    session, in a copy of the repo; returns the copy."""
    if "work" not in _FINISHED:
        from tests.workflow import copy_workflow, snakemake, write_config

        work = copy_workflow(tmp_path_factory.mktemp("tiny-report"))
        write_config(work / "config.yaml", TINY)
        snakemake(work, "--cores", "2", "report/index.html")
        _FINISHED["work"] = work
    return _FINISHED["work"]
