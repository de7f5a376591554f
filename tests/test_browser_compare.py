"""The "Compare methods" view in real headless Chromium: run a tiny race (LDS, quick budgets) from the
page and check that every method's row, predictive histograms, samples and timing bars show up."""

from __future__ import annotations

import json
import textwrap
import time

import pytest

from tests.browser import ROOT, browser_page, cds_lengths, open_app, requires_browser, screenshot, serve_apps

pytestmark = [pytest.mark.browser, requires_browser]

APP = """
import holoviews as hv
import panel as pn
import torch

from epi_dash.compare import CompareView

torch.set_num_threads(1)
hv.extension("bokeh", logo=False)
pn.extension()
view = CompareView("lds", {{}}, None, {runs_dir!r}, time_limit=5, methods=["epi", "snpe", "smc"],
                   budget="quick", device="cpu")
view.panel().servable(title="compare")
"""


def _text(page, css_class: str) -> str:
    """Text of a pane with ``css_class`` (Panel renders its content inside a shadow root)."""
    return page.locator(f".{css_class}").first.evaluate("e => (e.shadowRoot || e).textContent")


def _status(page) -> str:
    return _text(page, "compare-status")


def test_compare_view_runs_a_tiny_race_from_the_page(tmp_path):
    app = tmp_path / "compare_app.py"
    app.write_text(textwrap.dedent(APP.format(runs_dir=str(tmp_path / "runs"))))
    with serve_apps([app], env={"PYTHONPATH": str(ROOT)}) as base, browser_page() as page:
        open_app(page, f"{base}/compare_app")
        assert "Status: idle" in _status(page), _status(page)
        cds_before = sum(cds_lengths(page))
        page.get_by_role("button", name="Run comparison").click()
        deadline = time.monotonic() + 150
        while "done: 3 run(s)" not in _status(page):
            assert time.monotonic() < deadline, f"race did not finish; status: {_status(page)}"
            page.wait_for_timeout(1000)
        page.wait_for_timeout(1500)  # let the last re-render arrive
        table = _text(page, "compare-table")
        for method in ("epi", "snpe", "smc"):
            assert method in table
        assert "paper" in table and "pyabc" in table and "bounded/reference" in table
        # histograms (2 statistics x 3 runs), scatter and bars now carry data in the browser
        assert sum(cds_lengths(page)) > cds_before + 3 * 40
        screenshot(page, "compare-view")
    saved = list((tmp_path / "runs" / "compare").glob("*/compare.json"))
    assert len(saved) == 1
    runs = json.loads(saved[0].read_text())["runs"]
    assert sorted(r["method"] for r in runs) == ["epi", "smc", "snpe"]
    assert all(r["wall_time_s"] < 5 + 30 for r in runs)
