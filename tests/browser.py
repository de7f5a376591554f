"""Shared helpers for real-browser tests (headless Debian Chromium through Python playwright).

Stable API (other test files import it; keep it small):

``requires_browser``                pytest mark: skips when /usr/bin/chromium or playwright is missing
``free_port() -> int``               a free TCP port on 127.0.0.1
``wait_http(url, proc, timeout)``    wait until ``url`` answers 200 (fails if the server ``proc`` exits)
``serve_apps(paths, env=None, timeout=60) -> ContextManager[str]``
                                    runs ``panel serve <paths> --address 127.0.0.1 --port <free>`` in a
                                    subprocess (own process group, killed on exit; stdout+stderr in
                                    ``test-artifacts/panel-serve-<port>.log``); yields the base URL
                                    ``http://127.0.0.1:<port>``; ``env`` is added to os.environ (e.g.
                                    ``{"EPI_DASH_RUNS_DIR": str(tmp_path)}``)
``browser_page(width=1500, height=1000) -> ContextManager[Page]``
                                    a fresh headless Chromium page (default timeout 30 s)
``open_app(page, url, timeout=60_000)`` goto + wait until Bokeh has rendered the document
``cds_lengths(page) -> list[int]``  row counts of every ColumnDataSource in the page
``screenshot(page, name) -> Path``  full-page PNG under ``test-artifacts/``
``fill(page, label, value)``        type ``value`` into the input labelled ``label`` and press Enter
``job_status(page, pattern, timeout=60) -> str``
                                    wait until a job panel's status line (``... · step N/M``) matches
                                    the regular expression ``pattern``; returns it
``ARTIFACTS``                       the ``test-artifacts`` folder (gitignored)

Never call ``playwright install``: the Debian ``chromium`` package is used via ``executable_path``.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run", "--disable-quic"]


def _browser_available() -> bool:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return Path(CHROMIUM).is_file()


requires_browser = pytest.mark.skipif(not _browser_available(),
                                      reason="needs /usr/bin/chromium and python playwright")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"panel serve exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


@contextlib.contextmanager
def served(cmd: list[str], ready_path: str, port: int, log, env: dict[str, str] | None = None,
           timeout: float = 60, stop_timeout: float = 10) -> Iterator[subprocess.Popen]:
    """Run a server command (its own process group) until ``ready_path`` answers; stop the group after."""
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env if env is not None else dict(os.environ), stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_http(f"http://127.0.0.1:{port}{ready_path}", proc, timeout)
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(stop_timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@contextlib.contextmanager
def serve_apps(paths: list[str | Path], env: dict[str, str] | None = None, timeout: float = 60) -> Iterator[str]:
    """``panel serve`` the given app scripts on a free localhost port; yields the base URL."""
    port = free_port()
    ARTIFACTS.mkdir(exist_ok=True)
    cmd = [sys.executable, "-m", "panel", "serve", *map(str, paths), "--address", "127.0.0.1",
           "--port", str(port), "--allow-websocket-origin", f"127.0.0.1:{port}", "--liveness"]
    with open(ARTIFACTS / f"panel-serve-{port}.log", "w") as log:
        # GET /liveness: a GET on an app would build a whole session
        with served(cmd, "/liveness", port, log, {**os.environ, **(env or {})}, timeout):
            yield f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def browser_page(width: int = 1500, height: int = 1000):
    """A headless Chromium page; closed (with its browser) on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(30_000)
            yield page
        finally:
            browser.close()


def open_app(page, url: str, timeout: int = 60_000) -> None:
    """Load ``url`` and wait until the Bokeh document exists and has rendered roots."""
    page.goto(url, timeout=timeout)
    page.wait_for_function("() => window.Bokeh && Bokeh.documents.length > 0 && "
                           "Bokeh.documents[0].roots().length > 0", timeout=timeout)


def cds_lengths(page) -> list[int]:
    return page.evaluate("() => [...Bokeh.documents[0].all_models].filter(m => m.type === 'ColumnDataSource')"
                         ".map(m => m.get_length() || 0)")


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def fill(page, label: str, value: str) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(value)
    box.press("Enter")


def job_status(page, pattern: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while True:
        texts = page.get_by_text(re.compile(r"· step \d+/")).all_inner_texts()
        if texts and re.search(pattern, texts[0]):
            return texts[0]
        assert time.monotonic() < deadline, f"status never matched {pattern!r}: {texts}"
        page.wait_for_timeout(250)
