"""Past one machine, in real headless Chromium: a workbench whose trainings run on a Dask LocalCluster
streams one live and stops it; the Sweep tab launches a sweep and shows the posteriors across levels."""

from __future__ import annotations

import json
import os
import time

import pytest

from tests.browser import browser_page, cds_lengths, open_app, requires_browser, screenshot, serve_apps
from tests.test_browser_workbench import ITERS, TINY, _start, _wait_status

pytestmark = [pytest.mark.browser, requires_browser]


@pytest.fixture(scope="module")
def local_cluster():
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        yield cluster


def test_a_training_on_a_dask_worker_streams_live_in_the_workbench_and_stops(tmp_path, local_cluster):
    runs = tmp_path / "runs"
    env = {"EPI_DASH_RUNS_DIR": str(runs), "EPI_DASH_TORCH_THREADS": "1",
           "EPI_DASH_SCHEDULER": local_cluster.scheduler_address}
    with serve_apps(["apps/workbench.py"], env=env) as base, browser_page() as page:
        open_app(page, f"{base}/workbench")
        _start(page, TINY)
        _wait_status(page, rf"iteration [1-9]\d*/{ITERS}", timeout=120)
        before = sum(cds_lengths(page))
        deadline = time.monotonic() + 30
        while sum(cds_lengths(page)) <= before:
            assert time.monotonic() < deadline, "the live plots did not grow"
            page.wait_for_timeout(500)
        screenshot(page, "workbench-dask-training")
        page.get_by_role("button", name="Stop").click()
        stopped = _wait_status(page, r"^Stopped", timeout=60)
        assert "iteration" in stopped and not page.get_by_text("Traceback").count()
    run_dirs = [p.parent for p in runs.glob("*/run.json")]
    assert len(run_dirs) == 1
    meta = json.loads((run_dirs[0] / "run.json").read_text())
    from distributed import Client

    with Client(local_cluster) as client:
        worker_pids = set(client.run(os.getpid).values())
    assert meta["state"] == "stopped" and meta["kind"] == "epi" and (run_dirs[0] / "checkpoint.pt").is_file()
    assert meta["process"]["pid"] in worker_pids  # it trained on the Dask worker, not in the server


def test_the_sweep_tab_launches_a_sweep_and_shows_levels_side_by_side(tmp_path):
    env = {"EPI_DASH_RUNS_DIR": str(tmp_path / "runs"), "EPI_DASH_TORCH_THREADS": "1"}
    with serve_apps(["apps/workbench.py"], env=env) as base, browser_page() as page:
        open_app(page, f"{base}/workbench")
        page.get_by_text("Sweep", exact=True).click()
        for label, value in (("Sweep model", "rnn"), ("Vary", "N=2; real_lambda1.mean=0.4,0.6"),
                             ("Seeds per level", "1"), ("Settings for every run", "health=warn")):
            box = page.get_by_label(label, exact=True)
            box.fill(value)
            box.press("Enter")
        page.wait_for_timeout(500)
        page.get_by_role("button", name="Launch sweep").click()
        page.get_by_text("Finished").first.wait_for(timeout=180_000)
        page.get_by_text("Across levels (Welch t-test").wait_for(timeout=30_000)
        page.wait_for_timeout(2000)
        screenshot(page, "workbench-sweep")
        for level in ("N=2,real_lambda1.mean=0.4", "N=2,real_lambda1.mean=0.6"):
            assert page.get_by_text(level, exact=True).count() >= 1
        assert page.get_by_text("u1_1").count() >= 1  # a marginal and a comparison row per parameter
        assert not page.get_by_text("Traceback").count() and not page.get_by_text("Could not show").count()
        sweeps = list((tmp_path / "runs").glob("sweep-rnn-*/sweep.json"))
        assert len(sweeps) == 1
        manifest = json.loads(sweeps[0].read_text())
        assert all(manifest["selection"].values()), manifest["selection"]  # both levels converged and chosen
