"""The amortized-inference app in real headless Chromium: a bad build setting is named and blocks Start;
a tiny build job runs to the end and its data set becomes selectable; inference fills the posterior,
check and geometry tabs; a malformed uploaded spike file is a message naming the field, not a traceback."""

from __future__ import annotations

import re

import pytest
expect = pytest.importorskip("playwright.sync_api").expect

from epi_dash.cli import main
from tests.browser import browser_page, fill, job_status, open_app, requires_browser, screenshot, serve_apps

pytestmark = [pytest.mark.browser, requires_browser]




def test_amortized_app_builds_infers_and_reports_bad_files(tmp_path):
    runs = tmp_path / "runs"
    assert main(["amortized", "build", "--out", str(runs / "tiny"), "--budget", "40", "--heldout", "3",
                 "--chunk-size", "20", "--neurons", "30", "--duration", "0.5", "--max-epochs", "5",
                 "--scheduler", "sync", "--quiet"]) == 0
    bad = tmp_path / "bad.csv"
    bad.write_text("cell,when\n1,0.1\n")
    env = {"EPI_DASH_RUNS_DIR": str(runs), "EPI_DASH_TORCH_THREADS": "1"}
    with serve_apps(["apps/amortized.py"], env=env) as base, browser_page() as page:
        open_app(page, f"{base}/amortized")
        start = page.get_by_role("button", name="Start", exact=True)
        fill(page, "Budget", "0")
        page.get_by_text("must be at least 1 simulation; got 0").first.wait_for()
        expect(start).to_be_disabled(timeout=15_000)
        for label, value in (("Budget", "20"), ("Heldout", "2"), ("Chunk size", "10"), ("N neurons", "30"),
                             ("Duration", "0.5"), ("Max epochs", "3"), ("Scheduler", "sync")):
            fill(page, label, value)
        expect(start).to_be_enabled(timeout=15_000)
        page.wait_for_timeout(500)
        start.click()
        job_status(page, r"^Finished", timeout=180)
        # inference on the pre-built data set
        fill(page, "posterior samples", "200")
        fill(page, "re-simulated samples", "3")
        page.get_by_role("button", name="Infer").click()
        page.get_by_text(re.compile(r"\d+ posterior samples in [\d.]+ s")).first.wait_for(timeout=120_000)
        page.get_by_text("Check", exact=True).click()
        page.get_by_text("Posterior-predictive check:").first.wait_for()
        page.locator(".tabulator-row", has_text="overall (RMS)").first.wait_for()
        page.get_by_text("Geometry", exact=True).click()
        page.get_by_text(re.compile("participation ratio")).first.wait_for()
        screenshot(page, "amortized-geometry")
        # a malformed spike file: a message naming the field
        page.locator("input[type=file]").set_input_files(str(bad))
        page.wait_for_timeout(1500)
        page.get_by_role("button", name="Infer").click()
        page.get_by_text(re.compile(r"target: no unit column")).first.wait_for(timeout=30_000)
        assert not page.get_by_text("Traceback").count()
