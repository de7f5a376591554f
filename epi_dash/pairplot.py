"""Lower-triangle pairplot of q(z) samples drawn with Bokeh directly (no panel import).

Why not HoloViews here: a HoloViews overlay per panel cost ~0.25 s of server time each (D = 8: 36
panels, 8-9 s before the browser saw anything; measured). Plain Bokeh figures share *one*
ColumnDataSource of samples (``z0 .. z{d-1}, log_q``), one of the mode, and one Range1d per parameter,
so building the grid takes milliseconds, the page carries each sample once, and a new snapshot is a
single ``source.data`` update. Feed it from the run's HoloViews ``Pipe`` with ``Pipe.add_subscriber``.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
from bokeh.layouts import gridplot
from bokeh.models import ColumnDataSource, LinearColorMapper, Range1d, TapTool
from bokeh.palettes import Viridis256
from bokeh.plotting import figure

from .views import KIND_COLORS, RunInfo, axis_limits, direction_segments

MAX_POINTS = 2000
#: each axis shows this fraction of its span beyond the data limits on both sides, so a tick at a
#: parameter bound (e.g. -1 and 1) does not sit on the panel edge, where its label ran into the label
#: of the neighbouring panel
DISPLAY_MARGIN = 0.06


def panel_size(n: int) -> int:
    return 170 if n <= 3 else 120 if n <= 5 else 105


def _with_margin(lo: float, hi: float) -> tuple[float, float]:
    pad = DISPLAY_MARGIN * (hi - lo)
    return lo - pad, hi + pad


def ticks_per_axis(size: int) -> int:
    """Tick labels such as "-0.50" need ~40 px each, so small panels get fewer than Bokeh's default 5."""
    return max(2, min(5, size // 45))


class PairplotFigure:
    """Pairplot of the parameter indices ``dims``: scatter colored by log q below the diagonal,
    marginal histograms on it, the mode as a star and Hessian directions as segments.

    ``on_tap(z)`` is called with the full z: (d,) of a clicked sample.
    """

    def __init__(self, info: RunInfo, dims: list[int], on_tap: Callable[[np.ndarray], None] | None = None,
                 size: int | None = None):
        self.info, self.dims, self.on_tap = info, list(dims), on_tap
        n, size = len(dims), size or panel_size(len(dims))
        #: pixel size of the whole grid (axes and the merged toolbar included)
        self.width, self.height = n * size + 50 + 40, n * size + 40
        cols = {f"z{i}": [] for i in self.dims}
        self.source = ColumnDataSource({**cols, "log_q": [], "index": []})
        self.mode_source = ColumnDataSource(dict(cols))
        self.mapper = LinearColorMapper(palette=Viridis256, low=0.0, high=1.0)
        self.ranges = {i: Range1d(*_with_margin(float(info.lower[i]), float(info.upper[i]))) for i in self.dims}
        self.arrow_sources: dict[tuple[int, int], ColumnDataSource] = {}
        self.hist_sources: dict[int, ColumnDataSource] = {}
        self.hist_ranges: dict[int, Range1d] = {}
        self._z = np.zeros((0, len(info.parameter_names)))
        rows = []
        #: figure of each grid cell (row, col), None above the diagonal
        self.cells: list[list] = rows
        for r, i in enumerate(self.dims):
            row = []
            for c, j in enumerate(self.dims):
                if c > r:
                    row.append(None)
                    continue
                show_x, show_y = r == n - 1, c == 0
                y_range = self.ranges[i] if c != r else Range1d(0, 1)
                fig = figure(width=size + (50 if show_y else 0), height=size + (40 if show_x else 0),
                             x_range=self.ranges[j], y_range=y_range,
                             tools="pan,wheel_zoom,box_zoom,reset,save", toolbar_location=None,
                             min_border=4, output_backend="canvas")
                fig.xaxis.visible, fig.yaxis.visible = show_x, show_y and c != r
                fig.xaxis.axis_label = info.parameter_label(j) if show_x else None
                fig.yaxis.axis_label = info.parameter_label(i) if show_y and c != r else None
                fig.grid.visible = False
                fig.xaxis.ticker.desired_num_ticks = fig.yaxis.ticker.desired_num_ticks = ticks_per_axis(size)
                if c == r:
                    self._marginal(fig, i)
                else:
                    self._scatter(fig, i, j)
                row.append(fig)
            rows.append(row)
        self.layout = gridplot(rows, toolbar_location="right", merge_tools=True)
        self.source.selected.on_change("indices", self._tapped)

    # --- glyphs -------------------------------------------------------------------------------------
    def _scatter(self, fig, i: int, j: int) -> None:
        color = {"field": "log_q", "transform": self.mapper}
        pts = fig.scatter(f"z{j}", f"z{i}", source=self.source, size=3, fill_color=color, line_color=None,
                          fill_alpha=0.6, nonselection_fill_alpha=0.6, selection_fill_color="red",
                          selection_line_color="black")
        fig.add_tools(TapTool(renderers=[pts]))
        arrows = ColumnDataSource(dict(x0=[], y0=[], x1=[], y1=[], color=[]))
        self.arrow_sources[(i, j)] = arrows
        fig.segment("x0", "y0", "x1", "y1", source=arrows, line_color="color", line_width=3)
        fig.scatter(f"z{j}", f"z{i}", source=self.mode_source, marker="star", size=16, fill_color="black",
                    line_color="white")

    def _marginal(self, fig, i: int) -> None:
        hist = ColumnDataSource(dict(left=[], right=[], top=[]))
        self.hist_sources[i] = hist
        self.hist_ranges[i] = fig.y_range
        fig.quad(left="left", right="right", bottom=0, top="top", source=hist, fill_color="#9ecae1",
                 line_color="#3182bd")
        fig.ray(f"z{i}", 0, source=self.mode_source, angle=np.pi / 2, length=0, line_color="black", line_width=2)

    # --- data ---------------------------------------------------------------------------------------
    def update(self, snapshot: dict[str, Any]) -> None:
        """Show ``snapshot`` = {"z": (n, d), "log_q": (n,), "analysis": dict | None}."""
        z, log_q = np.asarray(snapshot["z"]), np.asarray(snapshot["log_q"])
        if len(z) > MAX_POINTS:
            z, log_q = z[:MAX_POINTS], log_q[:MAX_POINTS]
        self._z = z
        view = {"z": z}
        self.source.selected.indices = []
        self.source.data = {**{f"z{i}": z[:, i] for i in self.dims}, "log_q": log_q, "index": np.arange(len(z))}
        finite = log_q[np.isfinite(log_q)]
        if len(finite):
            lo, hi = np.percentile(finite, [2, 98])
            self.mapper.update(low=float(lo), high=float(max(hi, lo + 1e-6)))
        for i in self.dims:
            lo, hi = axis_limits(self.info, view, i)
            start, end = _with_margin(lo, hi)
            self.ranges[i].update(start=start, end=end)
            edges = np.linspace(lo, hi, 31)
            top = np.histogram(z[:, i], bins=edges, density=True)[0] if len(z) else np.zeros(30)
            self.hist_sources[i].data = dict(left=edges[:-1], right=edges[1:], top=top)
            self.hist_ranges[i].update(start=0.0, end=float(top.max() * 1.05) if top.max() > 0 else 1.0)
        analysis = snapshot.get("analysis")
        mode = np.asarray(analysis["mode"]) if analysis else None
        self.mode_source.data = {f"z{i}": [float(mode[i])] if mode is not None else [] for i in self.dims}
        for (i, j), src in self.arrow_sources.items():
            segs = direction_segments(analysis, i, j)
            src.data = dict(x0=segs["x0"].to_numpy(float), y0=segs["y0"].to_numpy(float),
                            x1=segs["x1"].to_numpy(float), y1=segs["y1"].to_numpy(float),
                            color=[KIND_COLORS[k] for k in segs["kind"]])

    def _tapped(self, _attr, _old, new: list[int]) -> None:
        if new and self.on_tap is not None and new[0] < len(self._z):
            self.on_tap(self._z[new[0]].copy())


def share_ranges(figures: list[PairplotFigure]) -> None:
    """Give pairplots of the same parameters one range per parameter (the union of theirs), so two runs
    compare by eye: each run's own limits made a narrower q look as wide as a broad one."""
    for i in set.intersection(*(set(f.ranges) for f in figures)):
        start = min(f.ranges[i].start for f in figures)
        end = max(f.ranges[i].end for f in figures)
        for f in figures:
            f.ranges[i].update(start=start, end=end)
