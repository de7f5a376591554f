"""First render time of the workbench pairplot (2,000 samples, mode, Hessian arrows) in headless
Chromium at D = 4 and D = 8. Goals: 3 s and 10 s. This machine is shared and has no GPU, so the
test allows twice the goal and writes the measured times to test-artifacts/pairplot-render.json."""

from __future__ import annotations

import json
import textwrap
import time

import pytest

from tests.browser import ARTIFACTS, ROOT, browser_page, requires_browser, screenshot, serve_apps

pytestmark = [pytest.mark.browser, requires_browser]

APP = """
import numpy as np
import panel as pn

from epi_dash.pairplot import PairplotFigure
from epi_dash.views import RunInfo
from epi_dash.library import pairplot_grid

pn.extension()
d = int(pn.state.session_args.get("d", [b"4"])[0])
rng = np.random.default_rng(0)
z = rng.normal(size=(2000, d))
info = RunInfo([f"z{i}" for i in range(d)], ["s"], [0.0], [1.0], np.full(d, -5.0), np.full(d, 5.0), ["Hz"] * d)
vecs, _ = np.linalg.qr(rng.normal(size=(d, d)))
analysis = {"mode": np.zeros(d), "eigenvalues": -np.logspace(2, -2, d), "eigenvectors": vecs,
            "kinds": ["sensitive"] * (d // 2) + ["degenerate"] * (d - d // 2)}
figure = PairplotFigure(info, list(range(d)))
figure.update({"z": z, "log_q": -0.5 * (z ** 2).sum(1), "analysis": analysis})
pairplot_grid(figure).servable()
"""

#: every Bokeh view has painted (BokehJS reports has_finished on each root view)
ALL_PAINTED = """() => { if (!(window.Bokeh && Bokeh.documents.length && Bokeh.index)) return false;
  const views = Object.values(Bokeh.index); return views.length > 0 && views.every(v => v.has_finished()); }"""
GOALS = {4: 3.0, 8: 10.0}
SLACK = 2.0


def test_pairplot_first_render_time(tmp_path):
    app = tmp_path / "pairplot_app.py"
    app.write_text(textwrap.dedent(APP))
    times: dict[int, list[float]] = {4: [], 8: []}
    with serve_apps([app], env={"PYTHONPATH": str(ROOT)}) as base, browser_page() as page:
        page.goto(f"{base}/pairplot_app?d=2")  # warm the server's imports and the browser cache
        page.wait_for_function(ALL_PAINTED, timeout=120_000)
        for _repeat in range(2):
            for d in (4, 8):
                start = time.perf_counter()
                page.goto(f"{base}/pairplot_app?d={d}")
                page.wait_for_function(ALL_PAINTED, timeout=120_000, polling=50)
                times[d].append(time.perf_counter() - start)
                figures = page.evaluate("() => [...Bokeh.documents[0].all_models].filter(m => m.type === 'Figure').length")
                assert figures == d * (d + 1) // 2
        screenshot(page, "pairplot-d8")
    best = {d: min(v) for d, v in times.items()}
    (ARTIFACTS / "pairplot-render.json").write_text(json.dumps({"seconds": times, "best": best, "goals": GOALS}))
    for d, goal in GOALS.items():
        assert best[d] < SLACK * goal, f"D={d}: first render took {best[d]:.1f} s (goal {goal} s)"
