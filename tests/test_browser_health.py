"""A user's model in real headless Chromium: the Pre-flight check says its statistic is flat before any
training, and the health watch's notice and stop show in the page when it is trained anyway."""

from __future__ import annotations

import json
import re

import pytest

from tests.browser import ROOT, browser_page, open_app, requires_browser, screenshot, serve_apps
from tests.test_browser_workbench import _start, _wait_status

pytestmark = [pytest.mark.browser, requires_browser]

SETTINGS = {"Iters per epoch": "60", "Num epochs": "4", "Init iters": "10", "Num test batches": "10",
            "Batch size": "100"}


def test_preflight_catches_a_flat_statistic_and_the_health_watch_stops_it_with_a_notice(tmp_path):
    runs = tmp_path / "runs"
    env = {"EPI_DASH_RUNS_DIR": str(runs), "EPI_DASH_TORCH_THREADS": "1",
           "EPI_DASH_MODEL_PATH": str(ROOT / "tests" / "data")}
    with serve_apps(["apps/workbench.py"], env=env) as base, browser_page() as page:
        open_app(page, f"{base}/workbench")
        page.get_by_label("Model", exact=True).select_option(label="Dead (preflight_models.py)")
        page.get_by_text("rate = relu(z1 - 2)").first.wait_for()
        page.get_by_role("button", name="Pre-flight check").click()
        page.get_by_text(re.compile(r"rate is flat \(zero gradient\) on 100 % of the box")).wait_for(timeout=60_000)
        assert page.get_by_text("unreachable", exact=True).count() >= 1
        screenshot(page, "workbench-preflight")
        _start(page, SETTINGS)
        _wait_status(page, r"^Unhealthy", timeout=120)
        page.get_by_text(re.compile(r"Health: the gradient of rate vanishes")).first.wait_for(timeout=30_000)
        screenshot(page, "workbench-health-stop")
        assert not page.get_by_text("Traceback").count()
    (run_dir,) = [p.parent for p in runs.glob("*/run.json")]
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["state"] == "unhealthy" and meta["health"][-1]["stop"] and (run_dir / "checkpoint.pt").is_file()
