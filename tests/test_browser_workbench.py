"""The workbench in real headless Chromium: set a mean, train the LDS, watch the entropy plot grow,
stop, find the saved run in the library, reopen it, and see the message for a bad value."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
expect = pytest.importorskip("playwright.sync_api").expect

from epi_dash.live import CURVE_POINTS
from tests.browser import (browser_page, cds_lengths, free_port, open_app, requires_browser, screenshot, serve_apps,
                           wait_http)

pytestmark = [pytest.mark.browser, requires_browser]

#: long enough that Stop interrupts it on any machine (the LDS runs ~1-2 ms/it; a fast one finished
#: 5,000 iterations before Stop), cheap enough to start within seconds
ITERS = 50_000
TINY = {"Iters per epoch": str(ITERS), "Num epochs": "1", "Init iters": "10", "Num test batches": "10",
        "Batch size": "100"}


def _fill(page, label: str, value: str) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(value)
    box.press("Enter")


def _start(page, settings: dict[str, str]) -> None:
    """Fill the advanced flow/optimizer fields (label -> text) and press Start."""
    page.get_by_text("Advanced: flow and optimizer").click()
    for label, value in settings.items():
        _fill(page, label, value)
    page.wait_for_timeout(500)
    page.get_by_role("button", name="Start", exact=True).click()


def _status(page) -> str:
    return page.get_by_text(re.compile(r"· iteration \d+/")).first.inner_text()


def _wait_status(page, pattern: str, timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    while not re.search(pattern, text := _status(page)):
        assert time.monotonic() < deadline, f"status never matched {pattern!r}: {text}"
        page.wait_for_timeout(300)
    return text


def test_train_stop_reopen_and_bad_input(tmp_path):
    runs = tmp_path / "runs"
    env = {"EPI_DASH_RUNS_DIR": str(runs), "EPI_DASH_TORCH_THREADS": "1"}
    with serve_apps(["apps/workbench.py"], env=env) as base, browser_page() as page:
        open_app(page, f"{base}/workbench")
        assert page.get_by_text("Ready.").is_visible()
        page.get_by_label("mean (1/s)").fill("0.2")  # real(lambda_1) target
        page.get_by_label("mean (1/s)").press("Enter")
        _start(page, TINY)
        _wait_status(page, rf"iteration [1-9]\d*/{ITERS}")
        before = sum(cds_lengths(page))
        deadline = time.monotonic() + 20  # plots refresh every 1-4 s (throttled), counters every 0.25 s
        while (after := sum(cds_lengths(page))) <= before:
            assert time.monotonic() < deadline, f"the live plots did not grow ({before} rows)"
            page.wait_for_timeout(500)
        page.wait_for_timeout(2000)
        assert sum(cds_lengths(page)) >= after
        screenshot(page, "workbench-training")

        page.get_by_role("button", name="Stop").click()
        stopped = _wait_status(page, r"^Stopped")
        stopped_at = int(re.search(r"iteration (\d+)/", stopped).group(1))
        assert 0 < stopped_at < ITERS

        run_dirs = [p.parent for p in runs.glob("*/run.json")]
        assert len(run_dirs) == 1 and (run_dirs[0] / "checkpoint.pt").is_file()
        meta = json.loads((run_dirs[0] / "run.json").read_text())
        assert meta["state"] == "stopped" and meta["property"]["mean"][0] == pytest.approx(0.2)

        page.get_by_text("Runs", exact=True).click()
        row = page.locator(".tabulator-row", has_text=run_dirs[0].name)
        row.wait_for()
        assert "lds" in row.inner_text()
        page.get_by_label("mean (1/s)").fill("0")  # edit the set-up; opening the run must restore it
        page.get_by_label("mean (1/s)").press("Enter")
        row.locator("input[type=checkbox]").first.click()
        page.get_by_role("button", name="Open run").click()
        _wait_status(page, rf"^Stopped.* iteration {stopped_at}/{ITERS}")
        assert page.get_by_label("mean (1/s)").input_value() == "0.2"
        page.get_by_text("Training", exact=True).click()
        page.wait_for_timeout(1500)
        stride = ITERS // CURVE_POINTS  # long runs plot every stride-th iteration
        assert sum(cds_lengths(page)) >= stopped_at // stride, "the reopened run's curves are empty"
        page.get_by_text("Samples & modes", exact=True).click()
        page.get_by_text("★ mode").wait_for()
        page.wait_for_timeout(4000)
        screenshot(page, "workbench-reopened-samples")

        page.get_by_label("sd (rad/s)").fill("-1")
        page.get_by_label("sd (rad/s)").press("Enter")
        page.get_by_text("standard deviation must be > 0").first.wait_for()
        screenshot(page, "workbench-bad-input")
        expect(page.get_by_role("button", name="Start", exact=True)).to_be_disabled(timeout=15_000)
        assert not page.get_by_text("Traceback").count()


def _epoch_table_rows(page) -> tuple[list[str], float]:
    """Rows of the epoch table (the Tabulator with an "epoch" column) and its height in px."""
    return page.evaluate("""() => { const found = [];
        (function walk(root) { for (const el of root.querySelectorAll('*')) {
            if (el.classList.contains('tabulator') &&
                [...el.querySelectorAll('.tabulator-col-title')].some(t => t.textContent.trim() === 'epoch'))
                found.push([[...el.querySelectorAll('.tabulator-row')].map(r => r.innerText.replace(/\\s+/g, ' ')),
                            el.getBoundingClientRect().height]);
            if (el.shadowRoot) walk(el.shadowRoot); } })(document);
        return found[0] || [[], 0]; }""")


def test_epoch_table_shows_every_finished_epoch_and_fits_its_rows(tmp_path):
    env = {"EPI_DASH_RUNS_DIR": str(tmp_path / "runs"), "EPI_DASH_TORCH_THREADS": "1"}
    with serve_apps(["apps/workbench.py"], env=env) as base, browser_page(1366, 900) as page:
        open_app(page, f"{base}/workbench")
        _start(page, {**TINY, "Iters per epoch": "150", "Num epochs": "2"})
        _wait_status(page, r"^(Finished|Converged)", timeout=120)
        deadline = time.monotonic() + 15
        while len((table := _epoch_table_rows(page))[0]) < 2:
            assert time.monotonic() < deadline, f"the epoch table never showed both epochs: {table}"
            page.wait_for_timeout(300)
        rows, height = table
        assert [r.split()[:2] for r in rows] == [["1", "150"], ["2", "300"]]
        assert 29 * 3 <= height <= 29 * 3 + 6, f"{height} px for a header and two rows"


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_several_server_processes_serve_train_and_stop_with_a_checkpoint(tmp_path):
    """`epi-dash serve --num-procs 2`: two workers share the port; pages open and train in either; SIGTERM
    to the supervising process ends both workers cleanly, and the running training keeps a checkpoint."""
    runs = tmp_path / "runs"
    port = free_port()
    cmd = [sys.executable, "-m", "epi_dash.cli", "serve", "--port", str(port), "--num-procs", "2",
           "--runs-dir", str(runs)]
    log = open(tmp_path / "serve.log", "w")
    server = subprocess.Popen(cmd, env={**os.environ, "EPI_DASH_TORCH_THREADS": "1"}, stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}/workbench"
        wait_http(url, server, timeout=60)
        workers = _children(server.pid)
        assert len(workers) == 2
        with browser_page() as page:
            for _ in range(3):  # new sessions land on either worker (the kernel picks)
                open_app(page, url)
                page.get_by_text("Ready.").wait_for()
            _start(page, TINY)
            _wait_status(page, rf"iteration [1-9]\d*/{ITERS}")
            server.send_signal(signal.SIGTERM)
            assert server.wait(60) == 0
        deadline = time.monotonic() + 30
        while alive := [w for w in workers if Path(f"/proc/{w}").exists()]:
            assert time.monotonic() < deadline, f"workers {alive} outlived the supervisor"
            time.sleep(0.2)
        run_dirs = [p.parent for p in runs.glob("*/run.json")]
        assert len(run_dirs) == 1 and (run_dirs[0] / "checkpoint.pt").is_file()
        meta = json.loads((run_dirs[0] / "run.json").read_text())
        assert meta["state"] == "stopped" and 0 < meta["iterations"] < ITERS
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        log.close()
