"""The Conductances app in real headless Chromium: generate input spike trains from (g_s, g_u), run the
pipeline with a tiny trained network, see the density, conductance, violin and trace plots; then a target
outside the DIC range and a one-spike file give messages naming the field, and the page keeps working."""

from __future__ import annotations

import pytest

expect = pytest.importorskip("playwright.sync_api").expect

from core.conductance import simulate_dataset, train_density  # noqa: E402
from core.conductance.dataset import dataset_settings  # noqa: E402
from core.conductance.training import training_settings  # noqa: E402
from core.jobs import run_job  # noqa: E402
from tests.browser import browser_page, cds_lengths, fill, open_app, requires_browser, screenshot, serve_apps  # noqa: E402

pytestmark = [pytest.mark.browser, requires_browser]


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    base = root / "dic" / "stg"
    run_job(simulate_dataset, dataset_settings(model="stg", n=24, chunk=24, duration=300.0, transient=150.0),
            base / "dataset", kind="conductance.dataset").raise_for_state()
    run_job(train_density, training_settings(dataset=str(base / "dataset"), epochs=2, batch_size=12),
            base / "network", kind="conductance.density").raise_for_state()
    return root



def test_conductances_app_end_to_end(runs_dir, tmp_path):
    with serve_apps(["apps/conductances.py"], env={"EPI_DASH_RUNS_DIR": str(runs_dir)}) as base:
        with browser_page() as page:
            open_app(page, f"{base}/conductances", timeout=120_000)
            for label, value in (("input neurons", "2"), ("neurons to generate", "6"), ("duration (ms)", "300"),
                                 ("transient (ms)", "100"), ("g_s", "-8"), ("g_u", "6")):
                fill(page, label, value)
            before = sum(cds_lengths(page))
            page.get_by_role("button", name="Run").click()
            expect(page.get_by_text("neurons generated in")).to_be_visible(timeout=240_000)
            expect(page.get_by_text("regime").first).to_be_visible()
            # density image, points, boxes and traces arrive (the run computes in a worker thread, the plots
            # may follow its message by a tick)
            page.wait_for_function(
                "n => [...Bokeh.documents[0].all_models].filter(m => m.type === 'ColumnDataSource')"
                ".map(m => m.get_length() || 0).reduce((a, b) => a + b, 0) > n", arg=before + 100, timeout=30_000)
            screenshot(page, "conductances-result")

            fill(page, "g_s", "50")
            page.get_by_role("button", name="Run").click()
            expect(page.locator("#main").get_by_text("dic: g_s = 50 is outside the STG model's DIC range")).to_be_visible(timeout=60_000)

            # a one-spike file: the message names the unit; the page still runs afterwards
            bad = tmp_path / "one.csv"
            bad.write_text("unit,time\ncell7,12.0\n")
            page.get_by_label("source", exact=True).select_option("file")
            page.locator("input[type=file]").set_input_files(str(bad))
            page.wait_for_timeout(1000)
            page.get_by_role("button", name="Run").click()
            expect(page.locator("#main").get_by_text("spikes[cell7]: 1 spike")).to_be_visible(timeout=60_000)
            page.get_by_label("source", exact=True).select_option("dic")
            fill(page, "g_s", "8")
            page.get_by_role("button", name="Run").click()
            expect(page.get_by_text("neurons generated in")).to_be_visible(timeout=240_000)
            screenshot(page, "conductances-recovered")
