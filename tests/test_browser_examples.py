"""Finished examples in real headless Chromium: the workbench's "Open example" shows a converged run at
once (state, curves, samples pairplot with the mode), and the tutorial's lesson offers its example."""

from __future__ import annotations

import json
import re
import time

import pytest

pytest.importorskip("playwright.sync_api")

from tests.browser import browser_page, cds_lengths, open_app, requires_browser, screenshot, serve_apps

pytestmark = [pytest.mark.browser, requires_browser]


def _wait_text(page, pattern: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while True:
        texts = page.get_by_text(re.compile(pattern)).all_inner_texts()
        if texts:
            return texts[0]
        assert time.monotonic() < deadline, f"no text matched {pattern!r}"
        page.wait_for_timeout(200)


def test_open_example_shows_the_converged_result_at_once(tmp_path):
    runs = tmp_path / "runs"
    env = {"EPI_DASH_RUNS_DIR": str(runs), "EPI_DASH_TORCH_THREADS": "1"}
    with serve_apps(["apps/workbench.py", "apps/tutorial.py"], env=env) as base, browser_page() as page:
        open_app(page, f"{base}/workbench")
        before = sum(cds_lengths(page))
        page.get_by_label("Open example").select_option(label="lds (lds, ready)")
        t0 = time.monotonic()
        page.get_by_role("button", name="Open example").click()
        status = _wait_text(page, r"^Converged.* iteration 7000/", timeout=15)
        assert "7000" in status
        _wait_text(page, "Opened example")
        meta = json.loads((runs / "lds" / "run.json").read_text())  # copied into the session's runs dir
        assert meta["converged"] is True
        deadline = time.monotonic() + 15  # the entropy and statistic curves fill from the shipped trace
        while sum(cds_lengths(page)) < before + 900:
            assert time.monotonic() < deadline, "the example's curves stayed empty"
            page.wait_for_timeout(300)
        page.get_by_text("Samples & modes", exact=True).click()
        page.get_by_text("★ mode").wait_for(timeout=15_000)  # the pairplot of q's samples with its mode
        opened_in = time.monotonic() - t0
        screenshot(page, "examples-workbench-lds")
        assert opened_in < 20, f"the example took {opened_in:.1f} s to show"
        assert not page.get_by_text("Traceback").count()

        open_app(page, f"{base}/tutorial")  # the lesson's button opens the same example
        page.get_by_role("button", name="Open finished example").click()
        _wait_text(page, r"^Converged.* iteration 7000/", timeout=15)
        assert not (runs / "lds-2").exists(), "reopening the example copied it again"
