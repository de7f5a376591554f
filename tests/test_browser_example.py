"""The example app built from epi_dash.panels in real headless Chromium: a bad value is named beside its
field and blocks Start; a walk streams live, stops, resumes, finishes, shows its result and is listed
in the run library with its kind."""

from __future__ import annotations

import json
import re
import time

import pytest
expect = pytest.importorskip("playwright.sync_api").expect

from tests.browser import browser_page, cds_lengths, fill, job_status, open_app, requires_browser, screenshot, serve_apps

pytestmark = [pytest.mark.browser, requires_browser]




def test_example_app_validates_streams_stops_resumes_and_lists_the_run(tmp_path):
    runs = tmp_path / "runs"
    env = {"EPI_DASH_RUNS_DIR": str(runs), "EPI_DASH_TORCH_THREADS": "1"}
    with serve_apps(["apps/example_random_walk.py"], env=env) as base, browser_page() as page:
        open_app(page, f"{base}/example_random_walk")
        start = page.get_by_role("button", name="Start", exact=True)
        fill(page, "Step size", "-1")
        page.get_by_text("must be > 0; got -1").first.wait_for()
        expect(start).to_be_disabled(timeout=15_000)
        fill(page, "Step size", "1")
        expect(start).to_be_enabled(timeout=15_000)
        fill(page, "Walkers", "300")
        fill(page, "Steps", "60")
        fill(page, "Delay", "0.15")
        page.wait_for_timeout(500)
        start.click()
        job_status(page, r"^Running · step [1-9]\d*/60")
        before = sum(cds_lengths(page))
        deadline = time.monotonic() + 20  # plots refresh every 1-6 s (throttled), the counters every second
        while sum(cds_lengths(page)) <= before:
            assert time.monotonic() < deadline, f"the live plot did not grow ({before} rows)"
            page.wait_for_timeout(500)
        page.get_by_role("button", name="Stop").click()
        stopped = job_status(page, r"^Stopped")
        assert int(re.search(r"step (\d+)/", stopped).group(1)) < 60
        page.get_by_role("button", name="Resume").click()
        job_status(page, r"^Finished · step 60/60", timeout=90)
        page.get_by_text("Result", exact=True).click()
        page.get_by_text("Click a walker in the pairplot.").wait_for()
        page.locator(".tabulator-row", has_text="ratio").first.wait_for()  # the result table
        page.wait_for_timeout(1000)
        screenshot(page, "example-random-walk-result")
        page.get_by_text("Runs", exact=True).click()
        page.get_by_role("button", name="Refresh").click()
        row = page.locator(".tabulator-row", has_text="example.random_walk")
        row.first.wait_for()
        assert "finished" in row.first.inner_text()
        assert not page.get_by_text("Traceback").count()
    (meta_file,) = runs.glob("*/run.json")
    meta = json.loads(meta_file.read_text())
    assert meta["kind"] == "example.random_walk" and meta["state"] == "finished" and meta["settings"]["walkers"] == 300
