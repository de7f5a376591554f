"""Result pieces, each a function of state: tables that fit their rows, a pairplot grid with a tap
callback, and trace plots. Nothing here knows which system produced the data."""

from __future__ import annotations

from typing import Any, Callable

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn

ROW_PX = 29  # a Tabulator row (and its header) in the default theme


def table_height(rows: int, max_height: int = 170) -> int:
    """Pixel height of a table with ``rows`` rows and a header, up to ``max_height`` (then it scrolls):
    a fixed height leaves a blank gap under one or two rows."""
    return min(max_height, ROW_PX * (rows + 1) + 2)


def fitted_table(frame: pd.DataFrame, formatters: dict[str, Any] | None = None, **kw: Any) -> pn.widgets.Tabulator:
    """A read-only table whose columns fit its width (no sort arrows: rows stay in their order) and whose
    height fits its rows (``set_table`` keeps it so)."""
    return pn.widgets.Tabulator(frame, disabled=True, layout="fit_columns", show_index=False,
                                configuration={"columnDefaults": {"headerSort": False}},
                                height=table_height(len(frame)), sizing_mode="stretch_width",
                                formatters=formatters or {}, **kw)


def set_table(table: pn.widgets.Tabulator, frame: pd.DataFrame, max_height: int = 170) -> None:
    """New rows and the height that fits them, in one update (set one after the other, Tabulator dropped
    a row)."""
    table.param.update(value=frame, height=table_height(len(frame), max_height))


def pairplot_grid(figure: Any) -> pn.GridBox:
    """A pairplot's figures (``figure.cells``: rows of Bokeh figures, None above the diagonal;
    ``figure.dims``), one Bokeh pane each, in a Panel grid (a Bokeh GridPlot inside Panel's flex layout
    collapsed its fixed-size figures to zero width in Chromium)."""
    cells = [pn.pane.Bokeh(fig, width=fig.width, height=fig.height, margin=0) if fig is not None
             else pn.Spacer(width=10, height=10, margin=0) for row in figure.cells for fig in row]
    return pn.GridBox(*cells, ncols=len(figure.dims), margin=(5, 10))


def pairplot(names: list[str], lower: np.ndarray, upper: np.ndarray, samples: np.ndarray,
             weights: np.ndarray | None = None, on_tap: Callable[[np.ndarray], None] | None = None,
             dims: list[int] | None = None, units: list[str] | None = None) -> pn.GridBox:
    """Pairplot of ``samples``: (n, d) in the box ``lower``/``upper``: (d,), colored by ``weights``: (n,)
    (e.g. log density); ``on_tap(z)`` gets the full row z: (d,) of a clicked point."""
    from ..pairplot import PairplotFigure
    from ..views import RunInfo

    d = len(names)
    info = RunInfo(list(names), [], [], [], np.asarray(lower, float), np.asarray(upper, float),
                   list(units or [""] * d))
    figure = PairplotFigure(info, dims if dims is not None else list(range(min(d, 8))), on_tap=on_tap)
    samples = np.asarray(samples, float)
    figure.update({"z": samples, "log_q": np.zeros(len(samples)) if weights is None else np.asarray(weights, float),
                   "analysis": None})
    grid = pairplot_grid(figure)
    grid.figure = figure  # for callers that update it later
    return grid


def trace_plot(times: np.ndarray, values: dict[str, np.ndarray], time_unit: str = "s", value_unit: str = "",
               title: str = "") -> hv.Overlay:
    """One curve per named trace over ``times``: (T,); ``values[name]``: (T,)."""
    ylabel = f"value ({value_unit})" if value_unit else "value"
    curves = [hv.Curve((times, np.asarray(v)), f"time ({time_unit})", ylabel, label=name)
              for name, v in values.items()]
    return hv.Overlay(curves).opts(title=title, responsive=True, height=240, show_grid=True,
                                   legend_position="top_right")


def key_value_table(values: dict[str, Any], key: str = "name", value: str = "value") -> pn.widgets.Tabulator:
    """A two-column table of ``values`` (a result dict)."""
    frame = pd.DataFrame({key: list(values), value: [str(v) if not isinstance(v, (int, float)) else v
                                                      for v in values.values()]})
    return fitted_table(frame)
