"""The EPI result views of q: the pairplot of samples (mode, Hessian arrows; click a dot to probe it), the
degeneracy explorer (traces and statistics at the mode, along a Hessian direction or at a clicked sample)
and the predictive distribution of the statistics. Each is rebuilt from a ``LiveRun`` and the analysis."""

from __future__ import annotations

import logging
from typing import Any, Callable

import numpy as np
import panel as pn

from core.model import Model

from .explorer import DegeneracyExplorer, direction_options
from .live import LiveRun
from .pairplot import PairplotFigure
from .panels.results import pairplot_grid
from .state import copy_model
from .views import predictive_view, sensitive_dimensions, statistic_scatter_view, traces_view

log = logging.getLogger(__name__)
MAX_PAIRPLOT_DIMS = 8
NO_MODE_YET = "*The mode and Hessian appear at each epoch end and when training stops.*"


class SamplesView:
    """The "Samples & modes" tab (``samples_area``) and the "Predictive" tab (``predictive_area``) of one run.
    ``latest_distribution()``: the newest analysed q (for log q at a probe) or None."""

    def __init__(self, explained: Callable[..., pn.viewable.Viewable], notify: Callable[[str, str], None],
                 latest_distribution: Callable[[], Any], explain: bool = False):
        self._explained, self._notify, self._latest = explained, notify, latest_distribution
        self.explain = explain
        self.live: LiveRun | None = None
        self.explorer: DegeneracyExplorer | None = None
        self._pairplot: PairplotFigure | None = None
        self._renders = 0  # pairplot draws so far: show() draws only if changing the dims did not
        #: the tab has been shown: the pairplot is drawn from then on (before, drawing waits: ~0.4 s a session)
        self.active = False
        self._dims_from_hessian = False
        self.dims_select = pn.widgets.MultiChoice(label=f"Parameters in the pairplot (up to {MAX_PAIRPLOT_DIMS})",
                                                  options={}, value=[], max_items=MAX_PAIRPLOT_DIMS, width=420)
        self.dims_select.param.watch(self.render_pairplot, "value")
        self.pairplot_area = pn.Column()
        self.pairplot_column = pn.Column(self.dims_select, self.pairplot_area)
        self.direction_select = pn.widgets.Select(label="Hessian direction", options={}, width=260)
        self.step_slider = pn.widgets.FloatSlider(label="Step from the mode (× 1/√|λ|)", start=-3, end=3,
                                                  step=0.05, value=0.0, sizing_mode="stretch_width")
        self.reset_probe_button = pn.widgets.Button(label="Back to slider", width=130, align="end")
        self.direction_select.param.watch(self.update_probe, "value")
        self.step_slider.param.watch(self.update_probe, "value_throttled")
        self.reset_probe_button.on_click(self.reset_probe)
        self.probe_table = pn.pane.Markdown(NO_MODE_YET, sizing_mode="stretch_width")
        self.samples_area = pn.Column(sizing_mode="stretch_width")
        self.predictive_area = pn.Column(sizing_mode="stretch_width")

    # ------------------------------------------------------------------------------- building
    def show(self, live: LiveRun, model: Model) -> None:
        """Fresh views of ``live`` (a new or opened run of ``model``)."""
        self.live, self._pairplot, self._dims_from_hessian = live, None, False
        self.explorer = DegeneracyExplorer(copy_model(model))
        live.snapshots.add_subscriber(self.on_snapshot)
        info = live.info
        names = info.parameter_names
        shown = MAX_PAIRPLOT_DIMS if len(names) <= MAX_PAIRPLOT_DIMS else 6
        renders = self._renders
        self.dims_select.param.update(options={n: i for i, n in enumerate(names)},
                                      value=sensitive_dimensions(None, len(names), shown))
        if self._renders == renders:  # the value watcher did not already draw it (drawing costs ~0.8 s)
            self.render_pairplot()
        probe = self.explorer.trajectories((info.lower + info.upper) / 2)
        if probe is None:
            traces = pn.pane.Markdown("*This model defines no activity traces; the table below shows its statistics.*")
        else:
            traces = pn.pane.HoloViews(traces_view(live.traces, probe.names, probe.time_unit, probe.value_unit),
                                       sizing_mode="stretch_width")
        self.direction_select.options = {}
        explorer = pn.Column(traces, self.direction_select, pn.Row(self.step_slider, self.reset_probe_button),
                             self.probe_table, sizing_mode="stretch_width", min_width=460)
        self.samples_area.objects = [self._explained("pairplot", self.pairplot_column), self._explained("explorer", explorer)]
        self.arrange()
        # linked_axes=False: Panel links the axes of every pane in a page that carry the same label, so
        # a statistic's predictive histogram (x) and its training curve (y) moved each other's range
        histograms = [pn.pane.HoloViews(v, sizing_mode="stretch_width", linked_axes=False)
                      for v in predictive_view(live.predictive, info)]
        predictive = [pn.GridBox(*histograms, ncols=min(3, len(histograms)), sizing_mode="stretch_width")]
        if len(info.statistic_names) >= 2:
            predictive.append(pn.pane.HoloViews(statistic_scatter_view(live.predictive, info), linked_axes=False))
        self.predictive_area.objects = [self._explained("predictive", pn.Column(*predictive,
                                                                                sizing_mode="stretch_width"))]

    def activate(self) -> None:
        """The tab is shown: draw the pairplot now (once; later runs redraw it at once)."""
        if not self.active:
            self.active = True
            if self.live is not None:
                self.render_pairplot()

    def render_pairplot(self, _event=None) -> None:
        self._renders += 1
        dims = sorted(self.dims_select.value)[:MAX_PAIRPLOT_DIMS]
        if not self.active:
            self._pairplot = None
            self.pairplot_area.objects = []
            return
        if len(dims) < 2:
            self._pairplot = None
            self.pairplot_area.objects = [pn.pane.Markdown("Choose at least two parameters.")]
            return
        self._pairplot = PairplotFigure(self.live.info, dims, on_tap=self.on_tap)
        self._pairplot.update(self.live.snapshot)
        legend = pn.pane.Markdown(
            "Color: log q (yellow = more probable) · ★ mode · arrows at the mode: "
            "<span style='color:#d62728'>■ sensitive</span> / <span style='color:#1f77b4'>■ degenerate</span>"
            " (length 1/√|λ|) · click a dot to simulate it", styles={"font-size": "12px"})
        legend.width = max(self._pairplot.width, 420)
        self.pairplot_area.objects = [pairplot_grid(self._pairplot), legend]
        # a fixed width: inside a flex row a Bokeh grid of fixed-size figures otherwise collapses
        self.pairplot_column.width = max(self._pairplot.width, 420) + 20
        self.arrange()

    def arrange(self) -> None:
        """Pairplot and explorer side by side when the grid is small, stacked when it is wide."""
        views = list(self.samples_area.objects)
        if len(views) == 1 and isinstance(views[0], pn.Row) and len(views[0].objects) == 2:
            views = list(views[0].objects)
        if len(views) != 2:
            return
        side_by_side = len(self.dims_select.value) <= 5 and not self.explain
        self.samples_area.objects = [pn.Row(*views, sizing_mode="stretch_width")] if side_by_side else views

    # ------------------------------------------------------------------------------- events
    def on_snapshot(self, data: dict[str, Any]) -> None:
        if self._pairplot is not None:
            self._pairplot.update(data)

    def on_tap(self, z: np.ndarray) -> None:
        """Probe a sample clicked in the pairplot."""
        self.explorer.clicked = z
        self.update_probe()

    def on_analysis(self) -> None:
        """A new mode and Hessian: directions to choose from, arrows, the probe at the mode."""
        analysis = self.live.analysis
        self.explorer.analysis = analysis
        options = direction_options(analysis)
        current = self.direction_select.value
        self.direction_select.options = options
        if current not in options.values():
            self.direction_select.value = 0
        d = len(self.live.info.parameter_names)
        if d > MAX_PAIRPLOT_DIMS and not self._dims_from_hessian:
            self._dims_from_hessian = True
            self.dims_select.value = sensitive_dimensions(analysis, d, 6)
        self.update_probe(mode_changed=True)

    def reset_probe(self, _event=None) -> None:
        self.explorer.clicked = None
        self.update_probe()

    def update_probe(self, _event=None, mode_changed: bool = False) -> None:
        ex = self.explorer
        if ex is None:
            return
        if _event is not None:  # the slider or the direction moved: back from a clicked sample
            ex.clicked = None
        ex.param.update(direction=int(self.direction_select.value or 0), step=float(self.step_slider.value))
        z = ex.probe()
        data = dict(self.live.traces.data or {})
        try:
            if mode_changed or data.get("mode") is None:
                data["mode"] = ex.trajectories(ex.mode())
            data["probe"] = ex.trajectories(z)
        except Exception as exc:
            self._notify("warning", f"Could not simulate the probe: {exc}")
            return
        self.live.traces.send(data)
        self.probe_table.object = self.probe_markdown(z)

    # ------------------------------------------------------------------------------- tables
    def probe_markdown(self, z: np.ndarray | None) -> str:
        """The probe's statistics against the targets, log q there, and the box-faces warning."""
        if z is None:
            return NO_MODE_YET
        info, ex = self.live.info, self.explorer
        stats = ex.statistics(z)
        lines = ["| statistic | at probe | target mean ± sd |", "|---|---|---|"]
        for k, name in enumerate(info.statistic_names):
            lines.append(f"| {info.statistic_label(k)} | {stats[k]:.4g} | {info.means[k]:.4g} ± {info.stds[k]:.3g} |")
        dist = self._latest()
        if dist is not None:
            try:
                log_q = float(dist.log_prob(np.asarray(z, dtype=np.float32)[None]).detach()[0])
                lines.append(f"| **log q(z)** | {log_q:.3f} | mode: {self.live.analysis['log_q_mode']:.3f} |")
            except Exception as exc:  # advisory only
                log.debug("log q at probe failed: %s", exc)
        where = "clicked sample" if ex.clicked is not None else f"mode + {ex.step:+.2f} × direction"
        return f"**Probe:** {where}\n\n" + "\n".join(lines) + self.faces_note()

    def faces_note(self) -> str:
        """A warning when the mode sits at the box faces, where its Hessian says little about q."""
        faces = (self.live.analysis or {}).get("mode_near_faces") or []
        if not faces:
            return ""
        shown = ", ".join(faces[:4]) + (", ..." if len(faces) > 4 else "")
        return (f"\n\n⚠ **The mode lies at the box faces** in {len(faces)} of {len(self.live.info.parameter_names)} "
                f"parameters ({shown}): log q still rises towards the faces there, so the mode is a point on "
                "the boundary, not an interior peak, and its Hessian mostly measures the support map's "
                "curvature at the face. Click a sample in the pairplot to probe typical parameters.")
