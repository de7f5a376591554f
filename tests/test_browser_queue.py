"""The server's training queue in real headless Chromium: with one training slot (EPI_DASH_MAX_CONCURRENT=1),
Start in a second page shows "Queued: position 1 of 1" with Cancel, and Cancel takes it out of the queue
(admission when a slot frees is tested without a browser: tests/test_scheduler.py)."""

from __future__ import annotations

import pytest

expect = pytest.importorskip("playwright.sync_api").expect

from tests.browser import browser_page, open_app, requires_browser, screenshot, serve_apps
from tests.test_browser_workbench import TINY, _start, _status, _wait_status

pytestmark = [pytest.mark.browser, requires_browser]


def test_second_page_waits_in_the_queue_and_can_cancel(tmp_path):
    env = {"EPI_DASH_RUNS_DIR": str(tmp_path / "runs"), "EPI_DASH_TORCH_THREADS": "1",
           "EPI_DASH_MAX_CONCURRENT": "1"}
    with serve_apps(["apps/workbench.py"], env=env) as base, browser_page() as first:
        second = first.context.browser.new_page(viewport={"width": 1500, "height": 1000})
        open_app(first, f"{base}/workbench")
        open_app(second, f"{base}/workbench")
        _start(first, TINY)
        _wait_status(first, r"iteration [1-9]\d*/")
        _start(second, {})  # it never trains: the default settings do
        queued = second.get_by_text("Queued: position 1 of 1")
        expect(queued).to_be_visible(timeout=15_000)
        cancel = second.get_by_role("button", name="Cancel")
        expect(cancel).to_be_visible()
        screenshot(second, "workbench-queued")
        cancel.click()
        _wait_status(second, r"^Cancelled", timeout=15)
        expect(cancel).to_be_hidden()
        assert _status(first).startswith("Running")  # the first page's training goes on
