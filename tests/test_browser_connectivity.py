"""The Connectivity app in real headless Chromium: a missing data path is named beside its field and
blocks Start; a quick teacher inference streams, finishes and shows the loading pairplot (teacher vs
inferred vs gradient descent), the phase portrait and network traces; the run is listed with its kind."""

from __future__ import annotations

import json
import re

import pytest
expect = pytest.importorskip("playwright.sync_api").expect

from tests.browser import browser_page, cds_lengths, job_status, open_app, requires_browser, screenshot, serve_apps

pytestmark = [pytest.mark.browser, requires_browser]



def test_connectivity_app_validates_infers_and_shows_results(tmp_path):
    runs = tmp_path / "runs"
    env = {"EPI_DASH_RUNS_DIR": str(runs), "EPI_DASH_TORCH_THREADS": "1"}
    with serve_apps(["apps/connectivity.py"], env=env) as base, browser_page() as page:
        open_app(page, f"{base}/connectivity")
        start = page.get_by_role("button", name="Start", exact=True)
        page.get_by_label("Source", exact=True).select_option("data")
        page.get_by_text("give a file path (or upload a file)").first.wait_for()
        expect(start).to_be_disabled(timeout=15_000)
        box = page.get_by_label("Data", exact=True)
        box.fill(str(tmp_path / "missing.npz"))
        box.press("Enter")
        expect(start).to_be_enabled(timeout=15_000)
        start.click()
        page.get_by_text(re.compile(r"data: file not found")).first.wait_for(timeout=15_000)
        page.get_by_label("Source", exact=True).select_option("teacher")
        page.get_by_label("Teacher", exact=True).select_option("cycle")
        page.locator(".bk-Checkbox", has_text="Quick").locator("input[type=checkbox]").check()
        page.wait_for_timeout(500)
        start.click()
        job_status(page, r"^Finished", timeout=240)
        page.get_by_text("Result", exact=True).click()
        page.get_by_text("Loadings (teacher, inferred, gradient descent)").wait_for(timeout=60_000)
        page.locator(".tabulator-row", has_text="constraint_error").first.wait_for(timeout=30_000)
        page.wait_for_timeout(1500)
        assert sum(cds_lengths(page)) > 2000  # pairplot points, field and traces are on the page
        screenshot(page, "connectivity-result")
        page.get_by_text("Runs", exact=True).click()
        page.get_by_role("button", name="Refresh").click()
        row = page.locator(".tabulator-row", has_text="connectivity.infer")
        row.first.wait_for()
        assert "finished" in row.first.inner_text()
        assert not page.get_by_text("Traceback").count()
    metas = [json.loads(f.read_text()) for f in runs.glob("*/run.json")]
    done = [m for m in metas if m["state"] == "finished"]
    assert len(done) == 1 and done[0]["kind"] == "connectivity.infer" and done[0]["settings"]["teacher"] == "cycle"
