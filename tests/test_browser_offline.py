"""``epi-dash serve`` in a lab without internet: every request a page makes goes to the server itself
(fonts and icons included, and they load), and closing pages mid-training logs no traceback."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from epi_dash.closed_pages import closed_page_handler, quiet_closed_pages
from tests.browser import browser_page, free_port, open_app, requires_browser, wait_http

LOCAL_HOSTS = ("127.0.0.1", "localhost")

#: ``epi-dash serve``, except that a session without a page is cleaned up after 0.5 s (Bokeh: 15 s,
#: checked every 17 s): a closed page's clean-up (``on_session_destroyed``) happens within the test, and
#: so does a slow arrival's (a page that connects after its session expired gets one built anew)
QUICK_CLEANUP = ("import functools, panel as pn\n"
                 "pn.serve = functools.partial(pn.serve, check_unused_sessions_milliseconds=500,"
                 " unused_session_lifetime_milliseconds=500)\n")


@contextlib.contextmanager
def _epi_dash_serve(tmp: Path, prelude: str = ""):
    """``epi-dash serve`` (after ``prelude``) on a free port: (base URL, log path, runs dir)."""
    port, log_path, runs = free_port(), tmp / "serve.log", tmp / "runs"
    code = prelude + "import sys\nfrom epi_dash.cli import main\nsys.exit(main(sys.argv[1:]))"
    log = open(log_path, "w")
    proc = subprocess.Popen([sys.executable, "-c", code, "serve", "--port", str(port), "--runs-dir", str(runs)],
                            env={**os.environ, "EPI_DASH_TORCH_THREADS": "1"}, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/", proc, timeout=60)
        yield base, log_path, runs
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        log.close()


def _block_the_internet(context) -> list[str]:
    """Abort every request of ``context`` to a host other than this machine; the list of their URLs."""
    outside: list[str] = []

    def route(r) -> None:
        if urlsplit(r.request.url).hostname in LOCAL_HOSTS:
            r.continue_()
        else:
            outside.append(f"{r.request.url} (from {r.request.frame.url})")
            r.abort()

    context.route("**/*", route)
    return outside


FONT_STATUS = """async () => {
    await Promise.allSettled([...document.fonts].map(face => face.load()));
    return [...document.fonts].map(face => [face.family.replaceAll('"', ''), face.weight, face.status]);
}"""


@requires_browser
@pytest.mark.browser
def test_pages_ask_nothing_of_the_internet_and_their_fonts_and_icons_load(tmp_path):
    with _epi_dash_serve(tmp_path) as (base, _log, _runs), browser_page() as page:
        outside = _block_the_internet(page.context)
        page.goto(f"{base}/")  # the index lists the apps
        assert page.get_by_role("link", name="EPI workbench").is_visible()
        for app in ("workbench", "tutorial"):
            open_app(page, f"{base}/{app}")
            start = page.get_by_role("button", name="Start", exact=True)  # the icon is not in its name
            start.wait_for()
            faces = page.evaluate(FONT_STATUS)
            assert {"Open Sans", "tabler-icons"} <= {family for family, _w, _s in faces}, faces
            assert all(status == "loaded" for _f, _w, status in faces), faces
            icon = start.locator(".ti-player-play")  # Bokeh's TablerIcon, inside the button's shadow root
            assert icon.evaluate("el => getComputedStyle(el, '::before').content") not in ("none", "normal", "")
            assert icon.bounding_box()["width"] > 0
            assert page.evaluate("() => document.fonts.check('16px tabler-icons', '\\ued46')")
        assert outside == [], f"requests that left the machine: {sorted(set(outside))}"


def _problems(log: Path) -> list[str]:
    text = log.read_text()
    return [word for word in ("Traceback", "WebSocketClosedError", "exception was never retrieved") if word in text]


@requires_browser
@pytest.mark.browser
def test_closing_pages_mid_training_logs_no_traceback(tmp_path):
    from playwright.sync_api import expect

    with _epi_dash_serve(tmp_path, QUICK_CLEANUP) as (base, log, runs), browser_page() as first:
        pages = [first, *(first.context.browser.new_page(viewport=first.viewport_size) for _ in range(2))]
        blocked = [_block_the_internet(page.context) for page in pages]
        for page, app in zip(pages, ("workbench", "tutorial", "workbench")):
            open_app(page, f"{base}/{app}")
        first.get_by_role("button", name="Start", exact=True).click()  # the paper's settings: it trains on
        expect(first.get_by_role("button", name="Stop", exact=True)).to_be_enabled()
        first.wait_for_timeout(1000)  # streaming to the page when it closes
        for page in pages:
            page.close()
        deadline = time.monotonic() + 20  # the destroyed session stops its training with a checkpoint
        while not [m for m in runs.glob("*/run.json") if json.loads(m.read_text()).get("state") == "stopped"]:
            assert time.monotonic() < deadline, "the closed page's training was not stopped"
            time.sleep(0.3)
        time.sleep(1)
        assert _problems(log) == [], log.read_text()[-3000:]
    outside = sorted({url for urls in blocked for url in urls})
    assert outside == [], f"a session built anew asked the internet: {outside}"


class _Loop:
    def __init__(self):
        self.reported: list[dict] = []

    def default_exception_handler(self, context: dict) -> None:
        self.reported.append(context)


def test_only_writes_to_closed_pages_are_kept_out_of_the_log():
    from tornado.websocket import WebSocketClosedError

    loop = _Loop()
    closed_page_handler(loop, {"message": "Task exception was never retrieved", "exception": WebSocketClosedError()})
    assert loop.reported == []
    other = {"message": "Task exception was never retrieved", "exception": ValueError("a real bug")}
    closed_page_handler(loop, other)
    closed_page_handler(loop, {"message": "no exception at all"})
    assert loop.reported == [other, {"message": "no exception at all"}]


def test_the_handler_goes_on_the_server_loop_now_or_with_each_session():
    import asyncio

    import panel as pn

    from epi_dash import closed_pages

    before = list(pn.state._on_session_created)
    try:
        quiet_closed_pages()  # before the server starts: with each session
        quiet_closed_pages()
        assert pn.state._on_session_created.count(closed_pages._install) == 1
    finally:
        pn.state._on_session_created[:] = before

    async def in_a_session() -> object:  # an apps/*.py script: on the loop it runs on
        closed_pages._install()
        return asyncio.get_running_loop().get_exception_handler()

    assert asyncio.run(in_a_session()) is closed_page_handler
