"""HoloViews views of an EPI run (no panel import). Each function takes streams (``Buffer`` of
per-iteration rows, ``Pipe`` of snapshots) and returns DynamicMaps, so a live run and a run opened
from disk use the same code: a saved run just sends its data once.

Column names of the progress frame (one row per iteration) are index-based so any statistic name
is safe: ``iteration, epoch, entropy, c, mean_k, sd_k`` (k < m) and ``R_k, eta_k`` (k < 2m).
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import holoviews as hv
import numpy as np
import pandas as pd

from core.model import Trajectories

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22"]
KIND_COLORS = {"sensitive": "#d62728", "degenerate": "#1f77b4", "positive": "#7f7f7f"}
TOOLS = ["hover"]


@dataclass
class RunInfo:
    """Names, units, bounds and targets that label every view."""

    parameter_names: list[str]
    statistic_names: list[str]
    means: list[float]
    stds: list[float]
    lower: np.ndarray
    upper: np.ndarray
    parameter_units: list[str] = field(default_factory=list)
    statistic_units: list[str] = field(default_factory=list)
    time_unit: str = "s"

    @property
    def constraint_names(self) -> list[str]:
        return [f"E[{s}]" for s in self.statistic_names] + [f"Var[{s}]" for s in self.statistic_names]

    def parameter_label(self, i: int) -> str:
        unit = self.parameter_units[i] if i < len(self.parameter_units) else ""
        return f"{self.parameter_names[i]} ({unit})" if unit else self.parameter_names[i]

    def statistic_label(self, k: int) -> str:
        unit = self.statistic_units[k] if k < len(self.statistic_units) else ""
        return f"{self.statistic_names[k]} ({unit})" if unit else self.statistic_names[k]


# --- the progress frame ---------------------------------------------------------------------------
def progress_columns(m: int) -> list[str]:
    return (["iteration", "epoch", "entropy", "c"] + [f"mean_{k}" for k in range(m)]
            + [f"sd_{k}" for k in range(m)] + [f"R_{k}" for k in range(2 * m)]
            + [f"eta_{k}" for k in range(2 * m)])


def empty_progress(m: int) -> pd.DataFrame:
    return pd.DataFrame({c: np.zeros(0) for c in progress_columns(m)})


def progress_frame(records: list[dict[str, Any]], m: int) -> pd.DataFrame:
    """Iteration records (dicts of an ``IterationRecord``) -> progress frame."""
    if not records:
        return empty_progress(m)
    rows = np.array([[r["iteration"], r["epoch"], r["entropy"], r["c"], *r["f_mean"], *r["f_std"],
                      *r["R"], *r["eta"]] for r in records], dtype=float)
    return pd.DataFrame(rows, columns=progress_columns(m))


def progress_from_trace(trace: pd.DataFrame, statistics: list[str], constraints: list[str]) -> pd.DataFrame:
    """A saved ``trace.csv`` (columns ``R:<constraint>``, ``mean:<stat>``, ...) -> progress frame."""
    m = len(statistics)
    if trace.empty:
        return empty_progress(m)
    names = (["iteration", "epoch", "entropy", "c"] + [f"mean:{s}" for s in statistics]
             + [f"std:{s}" for s in statistics] + [f"R:{c}" for c in constraints]
             + [f"eta:{c}" for c in constraints])
    frame = trace.reindex(columns=names).astype(float)
    frame.columns = progress_columns(m)
    return frame


# --- training curves ------------------------------------------------------------------------------
def _epoch_lines(data: pd.DataFrame) -> hv.VLines:
    data = data[["iteration"]] if len(data) else pd.DataFrame({"iteration": np.zeros(0)})
    return hv.VLines(data, kdims=["iteration"]).opts(color="#999999", line_dash="dashed", line_width=1)


def entropy_view(progress: hv.streams.Buffer, epochs: hv.streams.Pipe) -> hv.Overlay:
    """Entropy H(q) vs iteration, dashed lines at augmented-Lagrangian epoch ends."""
    curve = hv.DynamicMap(
        lambda data: hv.Curve(data, "iteration", hv.Dimension("entropy", label="entropy H(q) (nats)")),
        streams=[progress],
    ).opts(color=PALETTE[0], line_width=2, tools=TOOLS, framewise=True)
    lines = hv.DynamicMap(_epoch_lines, streams=[epochs])
    return (curve * lines).opts(hv.opts.Overlay(title="Entropy of q(z)", responsive=True, height=280,
                                                show_grid=True))


def statistic_view(progress: hv.streams.Buffer, info: RunInfo, k: int) -> hv.DynamicMap:
    """Batch mean of statistic k with a +-1 sd band vs its target mean (line) and sd (band)."""
    mean, std = info.means[k], info.stds[k]
    # the axis always spans the target band, even before the first batch arrives
    y = hv.Dimension(f"mean_{k}", label=info.statistic_label(k), soft_range=(mean - std, mean + std))

    def render(data: pd.DataFrame) -> hv.Overlay:
        band = hv.HSpan(mean - std, mean + std).opts(color="#ff7f0e", alpha=0.15)
        target = hv.HLine(mean).opts(color="#ff7f0e", line_width=2, line_dash="dashed")
        spread = hv.Spread(data, "iteration", [y, f"sd_{k}"]).opts(color=PALETTE[0], alpha=0.25, line_width=0)
        curve = hv.Curve(data, "iteration", y).opts(color=PALETTE[0], line_width=1.5, tools=TOOLS)
        return band * target * spread * curve

    return hv.DynamicMap(render, streams=[progress]).opts(hv.opts.Overlay(
        title=f"{info.statistic_names[k]}: mean ± sd vs target", responsive=True, height=240,
        show_grid=True, framewise=True, xlabel="iteration", ylabel=info.statistic_label(k)))


def _curves(data: pd.DataFrame, prefix: str, label: str, names: list[str]) -> hv.Overlay:
    return hv.Overlay([
        hv.Curve(data, "iteration", hv.Dimension(f"{prefix}_{k}", label=label), label=name).opts(
            color=PALETTE[k % len(PALETTE)], line_width=1.5, tools=TOOLS)
        for k, name in enumerate(names)])


def constraint_legend_html(names: list[str]) -> str:
    """One legend (HTML) for the R and eta plots, whose curves share ``PALETTE`` colors by constraint: a
    Bokeh legend inside each ~200 px wide plot covered most of its curves, and one below it was cut off."""
    items = "".join(
        f'<span style="white-space:nowrap;margin-right:14px"><span style="display:inline-block;width:18px;'
        f'height:3px;vertical-align:middle;background:{PALETTE[k % len(PALETTE)]}"></span> {html.escape(name)}</span> '
        for k, name in enumerate(names))
    return f'<div style="font-size:12px">Constraints (R and eta): {items}</div>'


def constraint_view(progress: hv.streams.Buffer, info: RunInfo) -> hv.DynamicMap:
    """Constraint violations R_k = E[T_k] - mu_k vs iteration (zero = satisfied)."""
    names = info.constraint_names
    render = lambda data: hv.HLine(0).opts(color="black", line_width=1) * _curves(data, "R", "R", names)  # noqa: E731
    return hv.DynamicMap(render, streams=[progress]).opts(hv.opts.Overlay(
        title="Violations R = E_q[T] - mu", responsive=True, height=260, show_grid=True, show_legend=False,
        framewise=True, xlabel="iteration", ylabel="R"))


def penalty_view(progress: hv.streams.Buffer, info: RunInfo) -> tuple[hv.DynamicMap, hv.DynamicMap]:
    """Penalty coefficient c (log scale) and multipliers eta vs iteration."""
    def render_c(data: pd.DataFrame) -> hv.Curve:
        # explicit limits: a constant c (all of epoch 1) would get a linear +-padding, which reaches <= 0
        # on the log axis (a warning per update and an axis spanning decades around a flat line)
        c_values = data["c"].to_numpy() if len(data) else np.ones(1)
        limits = (float(c_values.min()) / 2, float(c_values.max()) * 2)
        return hv.Curve(data, "iteration", hv.Dimension("c", label="penalty c (log scale)")).opts(ylim=limits)

    c = hv.DynamicMap(render_c, streams=[progress]).opts(color="black", line_width=2, logy=True, tools=TOOLS,
                                               responsive=True, height=260, title="Penalty coefficient c",
                                               show_grid=True, framewise=True)
    names = info.constraint_names
    eta = hv.DynamicMap(lambda data: _curves(data, "eta", "eta", names), streams=[progress]).opts(
        hv.opts.Overlay(title="Multipliers eta", responsive=True, height=260, show_grid=True, show_legend=False,
                        framewise=True, xlabel="iteration", ylabel="eta"))
    return c, eta


# --- samples of q -----------------------------------------------------------------------------------
def empty_snapshot(d: int) -> dict[str, Any]:
    return {"z": np.zeros((0, d)), "log_q": np.zeros(0), "analysis": None}


def sensitive_dimensions(analysis: dict[str, Any] | None, d: int, k: int = 6) -> list[int]:
    """The k parameters loading most on the sensitive Hessian directions (default for large D)."""
    if d <= k:
        return list(range(d))
    if not analysis:
        return list(range(k))
    vecs, kinds = np.asarray(analysis["eigenvectors"]), analysis["kinds"]
    cols = [i for i, kind in enumerate(kinds) if kind == "sensitive"] or [0]
    loading = (vecs[:, cols] ** 2).sum(1)
    return sorted(np.argsort(-loading)[:k].tolist())


def direction_segments(analysis: dict[str, Any] | None, i: int, j: int, max_arrows: int = 2) -> pd.DataFrame:
    """Hessian eigenvectors at the mode projected on (z_j, z_i), as segments of length 1/sqrt(|lambda|)
    through the mode: the most sensitive and the most degenerate directions."""
    cols = ["x0", "y0", "x1", "y1", "kind", "eigenvalue"]
    if not analysis:
        return pd.DataFrame(columns=cols)
    mode, vals, vecs = analysis["mode"], np.asarray(analysis["eigenvalues"]), np.asarray(analysis["eigenvectors"])
    kinds = analysis["kinds"]
    sensitive = [n for n, kind in enumerate(kinds) if kind == "sensitive"][:max_arrows]
    degenerate = [n for n, kind in enumerate(kinds) if kind == "degenerate"][::-1][:max_arrows]
    rows = []
    for n in sensitive + degenerate:
        scale = 1.0 / np.sqrt(max(abs(vals[n]), 1e-12))
        dx, dy = vecs[j, n] * scale, vecs[i, n] * scale
        rows.append((mode[j] - dx, mode[i] - dy, mode[j] + dx, mode[i] + dy, kinds[n], float(vals[n])))
    return pd.DataFrame(rows, columns=cols)


def axis_limits(info: RunInfo, snapshot: dict[str, Any], i: int) -> tuple[float, float]:
    """Axis range: the samples' spread (padded) inside the parameter's bounds."""
    z = snapshot["z"]
    lo, hi = float(info.lower[i]), float(info.upper[i])
    if len(z) == 0:
        return lo, hi
    q = np.nanpercentile(z[:, i], [0.5, 99.5])
    pad = 0.15 * max(q[1] - q[0], 1e-3 * (hi - lo))
    return max(lo, q[0] - pad), min(hi, q[1] + pad)


# --- activity and predictions -----------------------------------------------------------------------
def traces_view(traces: hv.streams.Pipe, names: list[str], time_unit: str = "s", value_unit: str = "") -> hv.DynamicMap:
    """x(t) of each population ``names`` at the mode (solid) and at the probed point (dashed).
    Pipe data: {"mode": Trajectories | None, "probe": Trajectories | None}. Every frame has the same
    curves (empty when a trajectory is missing): BokehJS cannot follow a legend that changes shape.
    Mode and probe curves share their population's label: one legend entry per population."""

    def render(data: dict[str, Any]) -> hv.Overlay:
        curves = []
        for key, dash in (("mode", "solid"), ("probe", "dashed")):
            traj: Trajectories | None = data.get(key)
            for p, name in enumerate(names):
                xy = (traj.t, traj.x[0, :, p]) if traj is not None and p < traj.x.shape[2] else ([], [])
                curves.append(hv.Curve(xy, "t", "x", label=name, group=key.title()).opts(
                    color=PALETTE[p % len(PALETTE)], line_dash=dash, line_width=2))
        return hv.Overlay(curves)

    y_label = f"activity ({value_unit})" if value_unit else "activity"
    return hv.DynamicMap(render, streams=[traces]).opts(
        hv.opts.Curve(xlabel=f"time ({time_unit})", ylabel=y_label, tools=TOOLS, framewise=True),
        hv.opts.Overlay(title="Activity x(t): mode (solid), probe (dashed)", responsive=True,
                        height=300, legend_position="right", show_grid=True, framewise=True))


def _predictive_panel(data: dict[str, Any], info: RunInfo, k: int) -> hv.Overlay:
    f = data.get("predictive")
    mean, std = info.means[k], info.stds[k]
    label = info.statistic_label(k)
    values = np.asarray(f)[:, k] if f is not None and len(f) else np.zeros(0)
    values = values[np.isfinite(values)]
    lo = min(mean - 4 * std, *(np.percentile(values, 1),) if len(values) else (mean - 4 * std,))
    hi = max(mean + 4 * std, *(np.percentile(values, 99),) if len(values) else (mean + 4 * std,))
    edges = np.linspace(lo, hi, 41)
    counts = np.histogram(values, bins=edges, density=True)[0] if len(values) else np.zeros(40)
    xd = hv.Dimension(f"f{k}", label=label)
    hist = hv.Histogram((edges, counts), kdims=[xd], vdims=["density"]).opts(color="#9ecae1", line_color="#3182bd")
    grid = np.linspace(lo, hi, 200)
    pdf = np.exp(-0.5 * ((grid - mean) / std) ** 2) / (std * np.sqrt(2 * np.pi))
    target = hv.Curve((grid, pdf), xd, "density", label="target N(mean, sd²)").opts(color="#ff7f0e", line_width=2)
    return (hist * target).opts(title=info.statistic_names[k], show_legend=k == 0)


def predictive_view(predictive: hv.streams.Pipe, info: RunInfo) -> list[hv.DynamicMap]:
    """One histogram per statistic of predictive draws f(x; z), z ~ q, against its target Gaussian."""
    return [hv.DynamicMap(partial(_predictive_panel, info=info, k=k), streams=[predictive]).opts(
        hv.opts.Overlay(responsive=True, height=260, framewise=True, show_grid=True, legend_position="top_right"))
        for k in range(len(info.statistic_names))]


def statistic_scatter_view(predictive: hv.streams.Pipe, info: RunInfo, a: int = 0, b: int = 1) -> hv.DynamicMap:
    """Statistic space: f_a vs f_b of predictive draws, with the target's +-2 sd ellipse (Fig 4C)."""

    def render(data: dict[str, Any]) -> hv.Overlay:
        f = data.get("predictive")
        f = np.asarray(f) if f is not None else np.zeros((0, len(info.statistic_names)))
        xd, yd = hv.Dimension(f"f{a}", label=info.statistic_label(a)), hv.Dimension(f"f{b}", label=info.statistic_label(b))
        pts = hv.Points((f[:, a], f[:, b]) if len(f) else ([], []), [xd, yd]).opts(
            size=3, alpha=0.4, color=PALETTE[0])
        ellipse = hv.Ellipse(info.means[a], info.means[b], (4 * info.stds[a], 4 * info.stds[b])).opts(
            color="#ff7f0e", line_width=2)
        target = hv.Points([(info.means[a], info.means[b])], [xd, yd]).opts(marker="x", size=14, color="#ff7f0e")
        return pts * ellipse * target

    return hv.DynamicMap(render, streams=[predictive]).opts(
        hv.opts.Overlay(title="Statistic space: predictive draws vs target (±2 sd)", width=420, height=360,
                        show_grid=True, framewise=True))
