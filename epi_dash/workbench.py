"""The EPI workbench: set up a model and property, train in the background, watch it live, inspect
modes and Hessian directions, reopen saved runs. One ``Workbench`` per browser session.

Threading: the trainer thread only queues events (``runner.TrainingRunner``); a per-session periodic
callback drains the queue and hands the batch to the session document's next-tick callback, where
``LiveRun.apply`` updates HoloViews streams and widgets. Nothing here blocks the server's event loop.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
import time
from functools import partial
from pathlib import Path
from typing import Any

import holoviews as hv
import numpy as np
import panel as pn
import param

from core.errors import InputError
from core.runs import load_run, reserve_run_dir

from .config import configure_torch_threads, discover_models, model_path_from_env, runs_dir_from_env
from .explorer import DegeneracyExplorer, direction_options
from .help import HELP
from .library import RunLibrary, pairplot_grid
from .live import LiveRun, run_info
from .runner import TrainingRunner
from .state import SetupState, copy_model, device_choices
from .pairplot import PairplotFigure
from .views import (constraint_legend_html, constraint_view, entropy_view, penalty_view, predictive_view,
                    sensitive_dimensions, statistic_scatter_view, statistic_view, traces_view)

log = logging.getLogger(__name__)

DRAIN_PERIOD_MS = 250
#: live plots refresh at most this often, and never use more than 1 / (1 + REFRESH_DUTY) of the server's
#: time: re-rendering the HoloViews views costs ~40-80 ms each on a busy 2-core machine (measured)
MIN_REFRESH_S = 1.0
MAX_REFRESH_S = 6.0
REFRESH_DUTY = 19.0
#: the progress counters between plot refreshes
COUNTER_PERIOD_S = 1.0
MAX_PAIRPLOT_DIMS = 8
ADVANCED_FLOW = ["num_stages", "num_layers", "num_units", "post_affine", "batch_norm", "init", "init_iters",
                 "abc_samples", "abc_keep"]
ADVANCED_OPT = ["batch_size", "lr", "c0", "gamma", "beta", "num_epochs", "iters_per_epoch", "alpha", "nu",
                "num_test_batches", "reset_optimizer", "stop_early", "seed"]
ERROR_STYLE = {"color": "#b00020", "font-size": "12px"}


def ensure_extensions() -> None:
    """Load the Panel/HoloViews extensions this app needs (idempotent, per session)."""
    configure_torch_threads()
    hv.extension("bokeh", logo=False)
    pn.extension("tabulator", notifications=True)
    pn.config.disconnect_notification = "Connection to the server lost: reload the page."


def _input_widgets(obj: param.Parameterized, names: list[str] | None = None) -> dict[str, Any]:
    """Plain inputs for numeric params (no sliders: they mislabel small values such as lr)."""
    widgets = {}
    for name, p in obj.param.objects("existing").items():
        if names is not None and name not in names:
            continue
        if isinstance(p, param.Integer):
            widgets[name] = pn.widgets.IntInput
        elif isinstance(p, param.Number):
            widgets[name] = {"type": pn.widgets.FloatInput, "format": "0.[00000]"}
    return widgets


def _param_card(obj: param.Parameterized, names: list[str]) -> pn.Param:
    names = [n for n in names if n in obj.param]
    return pn.Param(obj, parameters=names, widgets=_input_widgets(obj, names), show_name=False,
                    sizing_mode="stretch_width")


def epoch_table_height(epochs: int) -> int:
    """Pixel height of the epoch table: its header and rows (29 px each in Tabulator's default theme)
    up to five epochs, then 170 px with a scrollbar; a fixed height left a blank gap under one or two."""
    return min(170, 29 * (epochs + 1) + 2)


def _fmt_time(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Workbench(pn.viewable.Viewer):
    """Per-session app state and layout. ``explain`` adds the tutorial's explanation cards."""

    def __init__(self, runs_dir: str | Path | None = None, model_path: list[str | Path] | None = None,
                 model: str = "lds", explain: bool = False, title: str = "EPI workbench",
                 runner: TrainingRunner | None = None, **params):
        super().__init__(**params)
        self.runs_dir = Path(runs_dir) if runs_dir is not None else runs_dir_from_env()
        self.catalog = discover_models(model_path if model_path is not None else model_path_from_env())
        self.explain, self.title = explain, title
        self.setup = SetupState(self.catalog.specs, model_spec=model)
        self.runner = runner or TrainingRunner()
        self.live: LiveRun | None = None
        self.explorer: DegeneracyExplorer | None = None
        self._doc = pn.state.curdoc
        self._next_refresh = 0.0
        self._notifications = pn.state.notifications
        self._build_setup_widgets()
        self._build_main()
        self._new_live()
        self._refresh_validation()
        self._callback = None
        if self._doc is not None and self._doc.session_context is not None:
            self._callback = pn.state.add_periodic_callback(self.drain, period=DRAIN_PERIOD_MS)
            pn.state.on_session_destroyed(self._on_session_destroyed)

    # ================================================================================== set up
    def _build_setup_widgets(self) -> None:
        s = self.setup
        self.model_select = pn.widgets.Select(label="Model", options=self.catalog.specs, value=s.model_spec)
        self.model_select.param.watch(self._on_model_select, "value")
        self.model_problems = pn.pane.Alert("\n".join(f"- {p}" for p in self.catalog.problems),
                                            alert_type="warning", visible=bool(self.catalog.problems))
        self.model_doc = pn.pane.Markdown("", styles={"font-size": "12px", "color": "#555"})
        self.hyper_area = pn.Column(sizing_mode="stretch_width")
        self.property_area = pn.Column(sizing_mode="stretch_width")
        self.device_select = pn.widgets.Select(label="Device", options=device_choices(), value=s.device)
        self.device_select.link(s, value="device")
        self.device_error = pn.pane.Markdown("", styles=ERROR_STYLE, margin=(0, 10))
        self.advanced = pn.Card(title="Advanced: flow and optimizer (paper defaults per model)",
                                collapsed=True, sizing_mode="stretch_width")
        self.errors_pane = pn.pane.Alert("", alert_type="danger", visible=False)
        self.start_button = pn.widgets.Button(label="Start", color="primary", icon="player-play")
        self.stop_button = pn.widgets.Button(label="Stop", color="danger", icon="player-stop", disabled=True)
        self.resume_button = pn.widgets.Button(label="Resume", color="success", icon="player-skip-forward",
                                               disabled=True)
        self.start_button.on_click(lambda _e: self.start())
        self.stop_button.on_click(lambda _e: self.stop())
        self.resume_button.on_click(lambda _e: self.resume())
        self.progress_bar = pn.indicators.Progress(value=0, max=1, bar_color="primary", sizing_mode="stretch_width")
        self.status = pn.pane.Markdown("**Ready.** Press Start to train.", sizing_mode="stretch_width")
        s.param.watch(lambda _e: self._refresh_validation(), "revision")
        s.param.watch(self._on_model_change, "model")
        self._render_model_widgets()

    def _on_model_change(self, _event=None) -> None:
        """New model: its widgets, and empty views labelled for it (once the page exists)."""
        self._render_model_widgets()
        if hasattr(self, "training_area") and self.setup.model is not None:
            self._new_live()

    def _on_model_select(self, event) -> None:
        if self.runner.running:
            self.notify("warning", "Stop the running training before switching models.")
            return
        self.setup.model_spec = event.new

    def _render_model_widgets(self) -> None:
        """(Re)build the hyperparameter, property and advanced widgets for the current model."""
        model = self.setup.model
        if model is None:
            self.model_doc.object = ""
            self.hyper_area.objects, self.property_area.objects = [], []
            return
        self.model_doc.object = (type(model).__doc__ or "").strip().split("\n")[0]
        hyper = [k for k in model.param if k != "name"]
        self.hyper_area.objects = [pn.pane.Markdown("**Fixed hyperparameters**", margin=(5, 10, 0, 10)),
                                   _param_card(model, hyper)] if hyper else []
        rows = [pn.pane.Markdown("**Emergent property** (target mean and sd of each statistic)",
                                 margin=(5, 10, 0, 10))]
        self._target_errors: dict[str, pn.pane.Markdown] = {}
        #: ("mean" | "std", statistic) -> its input widget
        self.target_inputs: dict[tuple[str, str], pn.widgets.FloatInput] = {}
        for spec in model.statistic_specs():
            unit = f" ({spec.unit})" if spec.unit else ""
            mean = pn.widgets.FloatInput(label=f"mean{unit}", value=self.setup.means[spec.name],
                                         format="0.[0000]", width=150)
            std = pn.widgets.FloatInput(label=f"sd{unit}", value=self.setup.stds[spec.name],
                                        format="0.[0000]", width=150)
            self.target_inputs[("mean", spec.name)], self.target_inputs[("std", spec.name)] = mean, std
            mean.param.watch(partial(self._on_target, "mean", spec.name), "value")
            std.param.watch(partial(self._on_target, "std", spec.name), "value")
            err = pn.pane.Markdown("", styles=ERROR_STYLE, margin=(0, 10))
            self._target_errors[f"mean[{spec.name}]"] = err
            self._target_errors[f"std[{spec.name}]"] = err
            title = pn.pane.Markdown(f"`{spec.name}`" + (f": {spec.doc}" if spec.doc else ""),
                                     margin=(0, 10), styles={"font-size": "12px"})
            rows += [title, pn.Row(mean, std), err]
        self.property_area.objects = rows
        self.advanced.objects = [
            pn.pane.Markdown("**Normalizing flow**"), _param_card(self.setup.flow, ADVANCED_FLOW),
            pn.pane.Markdown("**Augmented Lagrangian optimizer**"), _param_card(self.setup.opt, ADVANCED_OPT)]

    def _on_target(self, kind: str, stat: str, event) -> None:
        value = event.new
        if isinstance(value, float) and math.isnan(value):
            value = None
        self.setup.set_target(kind, stat, value)

    def _refresh_validation(self) -> None:
        errs = self.setup.errors()
        for field, pane in getattr(self, "_target_errors", {}).items():
            if field.startswith("mean["):
                stat = field[5:-1]
                msgs = [errs[k] for k in (f"mean[{stat}]", f"std[{stat}]") if k in errs]
                pane.object = "⚠ " + "; ".join(msgs) if msgs else ""
        self.device_error.object = f"⚠ {errs['device']}" if "device" in errs else ""
        self.errors_pane.object = "**Fix before starting:**\n" + "\n".join(f"- `{k}`: {v}" for k, v in errs.items())
        self.errors_pane.visible = bool(errs)
        self._refresh_buttons()

    def _refresh_buttons(self) -> None:
        running = self.runner.running
        status = self.live.state.status if self.live else "idle"
        has_checkpoint = bool(self.live and self.live.state.run_dir
                              and (Path(self.live.state.run_dir) / "checkpoint.pt").is_file())
        self.start_button.disabled = running or bool(self.setup.errors())
        self.stop_button.disabled = not running or status not in ("starting", "running")
        self.resume_button.disabled = running or not has_checkpoint or status in ("converged", "running")
        self.model_select.disabled = running

    # ================================================================================= actions
    def start(self) -> None:
        """Validate, then train a new q in the background."""
        try:
            model, prop, flow, opt = self.setup.build()
        except InputError as exc:
            self.notify("error", f"{exc.field}: {exc.message}")
            return
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")[:-3]
        safe_name = re.sub(r"[^A-Za-z0-9_.-]+", "_", model.model_name or type(model).__name__)[-40:]
        try:
            run_dir = reserve_run_dir(self.runs_dir, f"{safe_name}-{stamp}")
        except (OSError, InputError) as exc:
            self.notify("error", f"runs_dir: cannot create a run in {self.runs_dir}: {exc}")
            return
        self._new_live(model, prop.mean, prop.std)
        self.live.state.status = "starting"
        self.live.state.run_dir = str(run_dir)
        try:
            self.runner.start(model, prop, flow, opt, run_dir)
        except InputError as exc:
            run_dir.rmdir()
            self.notify("error", f"{exc.field}: {exc.message}")
            return
        self.tabs.active = 0
        self._update_progress()

    def stop(self) -> None:
        """Stop after the current iteration; the trainer writes a checkpoint."""
        if self.runner.running:
            self.runner.stop()
            self.live.state.status = "stopping"
            self._update_progress()

    def resume(self) -> None:
        """Continue the current run from its checkpoint (the curves continue too)."""
        if self.live is None or not self.live.state.run_dir:
            return
        try:
            self.runner.resume(self.live.state.run_dir, device=self.setup.device)
        except InputError as exc:
            self.notify("error", f"{exc.field}: {exc.message}")
            return
        self.live.state.status = "starting"
        self._update_progress()

    def open_run(self, path: str | Path) -> None:
        """Show a saved run: settings, curves and samples now; mode and Hessian when analysed."""
        if self.runner.running:
            self.notify("warning", "Stop the running training before opening another run.")
            return
        try:
            run = load_run(path)
            meta = run.meta
            if meta["model"] not in self.setup.param.model_spec.objects:
                self.setup.param.model_spec.objects = [*self.setup.param.model_spec.objects, meta["model"]]
                self.model_select.options = {**self.model_select.options, meta["model"]: meta["model"]}
            from core.model import load_model
            from core.property import EmergentProperty

            model = load_model(meta["model"], **meta.get("model_params", {}))
            prop = EmergentProperty.from_dict(meta["property"])
            settings = {k: v for k, v in {**meta.get("flow", {}), **meta.get("optimizer", {})}.items()
                        if k not in ("device", "mixing")}
            with param.parameterized.discard_events(self.setup):
                self.setup.model_spec = meta["model"]
            self.setup.apply_model(model, prop, settings)
            self.model_select.param.update(value=meta["model"])
            if self.live is None or self.live.info.parameter_names != model.parameter_names:
                self._new_live(model, prop.mean, prop.std)
            self.live.load_saved(run)
            self.runner.open(path, device=None if self.setup.device == "auto" else self.setup.device)
        except Exception as exc:  # bad run folders become a message, not a traceback
            self.notify("error", f"Could not open {path}: {exc}")
            return
        self.tabs.active = 0
        self._update_progress()
        self.notify("info", f"Opened run {Path(path).name}")

    def notify(self, level: str, text: str) -> None:
        """A toast in the browser (logged when there is no session)."""
        log.info("%s: %s", level, text)
        if self._notifications is not None:
            getattr(self._notifications, level)(text, duration=6000 if level != "error" else 0)

    # ============================================================================ live updates
    def drain(self) -> None:
        """Periodic callback: move queued runner events into the page in one batch (throttled)."""
        training = self.live is not None and self.live.state.status in ("running", "starting", "stopping")
        if time.monotonic() < self._next_refresh and self.runner.running:
            last = self.runner.last_iteration  # cheap: keep the counters moving between plot refreshes
            now = time.monotonic()
            if (training and last is not None and last["iteration"] > self.live.state.iteration
                    and now - getattr(self, "_counter_at", 0.0) >= COUNTER_PERIOD_S):
                self._counter_at = now
                self.live.state.iteration, self.live.state.wall_time = last["iteration"], last["wall_time"]
                self._update_progress()
            return
        events = self.runner.drain()
        if not events:
            if training:
                self._update_progress()
            return
        if self._doc is not None and self._doc.session_context is not None:
            self._next_refresh = time.monotonic() + MIN_REFRESH_S  # one batch in flight at a time
            self._doc.add_next_tick_callback(partial(self.apply_events, events))
        else:
            self.apply_events(events)

    def apply_events(self, events) -> None:
        started = time.monotonic()
        try:
            self._apply_events(events)
        finally:
            spent = time.monotonic() - started
            self._next_refresh = time.monotonic() + min(MAX_REFRESH_S, max(MIN_REFRESH_S, REFRESH_DUTY * spent))

    def _apply_events(self, events) -> None:
        with pn.io.hold():
            for level, text in self.live.apply(events):
                self.notify(level, text)
            if any(e.kind == "analysis" for e in events):
                self._on_analysis()
            if any(e.kind == "finished" for e in events):  # failed runs are saved too (last checkpoint)
                self.library.refresh()
            self._update_progress()

    def _update_progress(self) -> None:
        st = self.live.state
        total = max(st.iterations_total, 1)
        self.progress_bar.max = total
        # a run that converged before its last epoch has done all its work: a full bar
        self.progress_bar.value = total if st.status == "converged" else min(st.iteration, total)
        self.progress_bar.bar_color = {"failed": "danger", "converged": "success"}.get(st.status, "primary")
        last = st.epochs[-1] if st.epochs else None
        if last is None:
            test = "no test yet"
        elif last["converged"]:
            test = f"epoch {last['epoch']}: **converged** ✓"
        else:
            test = f"epoch {last['epoch']}: not converged (min p = {min(last['p_values']):.2g})"
        training = st.status in ("starting", "running", "stopping")
        busy = " · analysing q (mode, Hessian)…" if self.runner.running and not training else ""
        lines = [f"**{st.status.capitalize()}**{busy} · epoch {max(st.epoch, 1) if st.iteration else 0}/{st.num_epochs}"
                 f" · iteration {st.iteration}/{st.iterations_total} · elapsed {_fmt_time(st.wall_time)}",
                 f"Convergence test: {test}"]
        startup = self.runner.startup() if training else None
        if startup:
            lines.insert(1, f"⏳ {startup[0].upper()}{startup[1:]}…")
        if not math.isnan(st.entropy):
            lines.append(f"Entropy H(q) = {st.entropy:.3f} nats")
        if st.message:
            lines.append(f"⚠ {st.message}")
        if st.status == "interrupted":
            lines.append("⚠ Its training process ended without a stop (a killed server?): **Resume** continues "
                         "from the last checkpoint")
        if st.run_dir:
            lines.append(f"Run: `{Path(st.run_dir).name}`")
        self.status.object = "  \n".join(lines)
        shown = (id(self.live), len(st.epochs))
        if getattr(self, "_shown_epochs", None) != shown:
            self._shown_epochs = shown
            self.epoch_table.param.update(value=self._epoch_frame(), height=epoch_table_height(len(st.epochs)))
        self.epoch_table.visible = bool(st.epochs)
        self._refresh_buttons()

    def _epoch_frame(self):
        import pandas as pd

        rows = [{"epoch": r["epoch"], "iter": r["iteration"], "test": r["converged"],
                 "min p": min(r["p_values"]) if r["p_values"] else float("nan"), "c": r["c"],
                 "entropy": r["entropy"]} for r in (self.live.state.epochs if self.live else [])]
        return pd.DataFrame(rows, columns=["epoch", "iter", "test", "min p", "c", "entropy"])

    # ================================================================================== views
    def _new_live(self, model=None, means=None, stds=None) -> None:
        """Fresh streams and views for a new or opened run."""
        model = model or self.setup.model
        if model is None:
            return
        means = means if means is not None else [self.setup.means.get(s, 0.0) for s in model.statistic_names]
        stds = stds if stds is not None else [self.setup.stds.get(s, 1.0) for s in model.statistic_names]
        self.live = LiveRun(run_info(model, means, stds))
        self._pairplot: PairplotFigure | None = None
        self.live.snapshots.add_subscriber(self._on_snapshot)
        self.explorer = DegeneracyExplorer(copy_model(model))
        self._probe_model = model
        self._rebuild_views()

    def _rebuild_views(self) -> None:
        live, info = self.live, self.live.info
        entropy = pn.pane.HoloViews(entropy_view(live.progress, live.epochs), sizing_mode="stretch_width")
        stats = [pn.pane.HoloViews(statistic_view(live.progress, info, k), sizing_mode="stretch_width")
                 for k in range(len(info.statistic_names))]
        c_view, eta_view = penalty_view(live.progress, info)
        # the help column beside each row (tutorial) leaves ~60 % of the width: fewer plots per row there
        if self.explain:
            stat_columns, constraint_columns = 1, 2
            entropy_row = pn.Column(self.status, self.progress_bar, entropy, self.epoch_table,
                                    sizing_mode="stretch_width")
        else:
            stat_columns, constraint_columns = 2, 3
            entropy_row = pn.Row(entropy, pn.Column(self.status, self.progress_bar, self.epoch_table, width=380),
                                 sizing_mode="stretch_width")
        self.training_area.objects = [
            self._explained("entropy", entropy_row),
            self._explained("statistics", pn.GridBox(*stats, ncols=min(stat_columns, len(stats)),
                                                     sizing_mode="stretch_width")),
            self._explained("constraints", pn.Column(
                pn.GridBox(*(pn.pane.HoloViews(v, sizing_mode="stretch_width")
                             for v in (constraint_view(live.progress, info), c_view, eta_view)),
                           ncols=constraint_columns, sizing_mode="stretch_width"),
                pn.pane.HTML(constraint_legend_html(info.constraint_names), sizing_mode="stretch_width"),
                sizing_mode="stretch_width")),
        ]
        names = info.parameter_names
        self.dims_select.param.update(options={n: i for i, n in enumerate(names)},
                                      value=sensitive_dimensions(None, len(names), MAX_PAIRPLOT_DIMS if len(names) <= MAX_PAIRPLOT_DIMS else 6))
        self._render_pairplot()
        probe = self.explorer.trajectories((info.lower + info.upper) / 2)
        if probe is None:
            traces = pn.pane.Markdown("*This model defines no activity traces; the table below shows its statistics.*")
        else:
            traces = pn.pane.HoloViews(traces_view(live.traces, probe.names, probe.time_unit, probe.value_unit),
                                       sizing_mode="stretch_width")
        self.direction_select.options = {}
        explorer = pn.Column(traces, self.direction_select, pn.Row(self.step_slider, self.reset_probe_button),
                             self.probe_table, sizing_mode="stretch_width", min_width=460)
        self.samples_area.objects = [
            self._explained("pairplot", self.pairplot_column),
            self._explained("explorer", explorer)]
        self._arrange_samples()
        # linked_axes=False: Panel links the axes of every pane in a page that carry the same label, so
        # a statistic's predictive histogram (x) and its training curve (y) moved each other's range
        histograms = [pn.pane.HoloViews(v, sizing_mode="stretch_width", linked_axes=False)
                      for v in predictive_view(live.predictive, info)]
        predictive = [pn.GridBox(*histograms, ncols=min(3, len(histograms)), sizing_mode="stretch_width")]
        if len(info.statistic_names) >= 2:
            predictive.append(pn.pane.HoloViews(statistic_scatter_view(live.predictive, info), linked_axes=False))
        self.predictive_area.objects = [self._explained("predictive", pn.Column(*predictive,
                                                                                sizing_mode="stretch_width"))]

    def _explained(self, key: str, view: pn.viewable.Viewable, above: bool = False) -> pn.viewable.Viewable:
        """``view`` with its help note (tutorial only) beside it, or ``above`` it for a view that needs the
        whole width (the runs table)."""
        if not self.explain:
            return view
        note = pn.pane.Markdown(HELP[key], width=None if above else 260,
                                sizing_mode="stretch_width" if above else None,
                                styles={"background": "#f3f7fb", "border-left": "4px solid #1f77b4",
                                        "padding": "4px 10px", "font-size": "13px"})
        if above:
            return pn.Column(note, view, sizing_mode="stretch_width")
        return pn.Row(view, note, sizing_mode="stretch_width")

    def _render_pairplot(self, _event=None) -> None:
        dims = sorted(self.dims_select.value)[:MAX_PAIRPLOT_DIMS]
        if len(dims) < 2:
            self._pairplot = None
            self.pairplot_area.objects = [pn.pane.Markdown("Choose at least two parameters.")]
            return
        self._pairplot = PairplotFigure(self.live.info, dims, on_tap=self._on_tap)
        self._pairplot.update(self.live.snapshot)
        legend = pn.pane.Markdown(
            "Color: log q (yellow = more probable) · ★ mode · arrows at the mode: "
            "<span style='color:#d62728'>■ sensitive</span> / <span style='color:#1f77b4'>■ degenerate</span>"
            " (length 1/√|λ|) · click a dot to simulate it", styles={"font-size": "12px"})
        grid = pairplot_grid(self._pairplot)
        legend.width = max(self._pairplot.width, 420)
        self.pairplot_area.objects = [grid, legend]
        # a fixed width: inside a flex row a Bokeh grid of fixed-size figures otherwise collapses
        self.pairplot_column.width = max(self._pairplot.width, 420) + 20
        self._arrange_samples()

    def _on_snapshot(self, data: dict[str, Any]) -> None:
        if self._pairplot is not None:
            self._pairplot.update(data)

    def _arrange_samples(self) -> None:
        """Pairplot and explorer side by side when the grid is small, stacked when it is wide."""
        views = list(self.samples_area.objects)
        if len(views) == 1 and isinstance(views[0], pn.Row) and len(views[0].objects) == 2:
            views = list(views[0].objects)
        if len(views) != 2:
            return
        side_by_side = len(self.dims_select.value) <= 5 and not self.explain
        self.samples_area.objects = [pn.Row(*views, sizing_mode="stretch_width")] if side_by_side else views

    def _on_tap(self, z: np.ndarray) -> None:
        """Probe a sample clicked in the pairplot."""
        self.explorer.clicked = z
        self._update_probe()

    def _on_analysis(self) -> None:
        analysis = self.live.analysis
        self.explorer.analysis = analysis
        options = direction_options(analysis)
        current = self.direction_select.value
        self.direction_select.options = options
        if current not in options.values():
            self.direction_select.value = 0
        d = len(self.live.info.parameter_names)
        if d > MAX_PAIRPLOT_DIMS and not getattr(self, "_dims_from_hessian", False):
            self._dims_from_hessian = True
            self.dims_select.value = sensitive_dimensions(analysis, d, 6)
        self._update_probe(mode_changed=True)

    def _update_probe(self, _event=None, mode_changed: bool = False) -> None:
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
            self.notify("warning", f"Could not simulate the probe: {exc}")
            return
        self.live.traces.send(data)
        self.probe_table.object = self._probe_markdown(z)

    def _probe_markdown(self, z: np.ndarray | None) -> str:
        if z is None:
            return "*The mode and Hessian appear at each epoch end and when training stops.*"
        info, ex = self.live.info, self.explorer
        stats = ex.statistics(z)
        lines = ["| statistic | at probe | target mean ± sd |", "|---|---|---|"]
        for k, name in enumerate(info.statistic_names):
            lines.append(f"| {info.statistic_label(k)} | {stats[k]:.4g} | {info.means[k]:.4g} ± {info.stds[k]:.3g} |")
        dist = self.runner.latest_distribution
        if dist is not None:
            try:
                log_q = float(dist.log_prob(np.asarray(z, dtype=np.float32)[None]).detach()[0])
                lines.append(f"| **log q(z)** | {log_q:.3f} | mode: {self.live.analysis['log_q_mode']:.3f} |")
            except Exception as exc:  # advisory only
                log.debug("log q at probe failed: %s", exc)
        where = "clicked sample" if ex.clicked is not None else f"mode + {ex.step:+.2f} × direction"
        return f"**Probe:** {where}\n\n" + "\n".join(lines) + self._faces_note()

    def _faces_note(self) -> str:
        """A warning when the mode sits at the box faces, where its Hessian says little about q."""
        faces = (self.live.analysis or {}).get("mode_near_faces") or []
        if not faces:
            return ""
        shown = ", ".join(faces[:4]) + (", ..." if len(faces) > 4 else "")
        return (f"\n\n⚠ **The mode lies at the box faces** in {len(faces)} of {len(self.live.info.parameter_names)} "
                f"parameters ({shown}): log q still rises towards the faces there, so the mode is a point on "
                "the boundary, not an interior peak, and its Hessian mostly measures the support map's "
                "curvature at the face. Click a sample in the pairplot to probe typical parameters.")

    def _build_main(self) -> None:
        # all six columns in the 380 px status column: fitted widths, no sort arrows (rows are in epoch order)
        self.epoch_table = pn.widgets.Tabulator(self._epoch_frame(), disabled=True, layout="fit_columns",
                                                configuration={"columnDefaults": {"headerSort": False}},
                                                show_index=False, height=epoch_table_height(0), sizing_mode="stretch_width",
                                                formatters={"test": {"type": "tickCross"},
                                                            "min p": {"type": "money", "precision": 3},
                                                            "entropy": {"type": "money", "precision": 3}},
                                                visible=False)
        self.training_area = pn.Column(sizing_mode="stretch_width")
        self.dims_select = pn.widgets.MultiChoice(label=f"Parameters in the pairplot (up to {MAX_PAIRPLOT_DIMS})",
                                                  options={}, value=[], max_items=MAX_PAIRPLOT_DIMS, width=420)
        self.dims_select.param.watch(self._render_pairplot, "value")
        self.pairplot_area = pn.Column()
        self.pairplot_column = pn.Column(self.dims_select, self.pairplot_area)
        self.direction_select = pn.widgets.Select(label="Hessian direction", options={}, width=260)
        self.step_slider = pn.widgets.FloatSlider(label="Step from the mode (× 1/√|λ|)", start=-3, end=3,
                                                  step=0.05, value=0.0, sizing_mode="stretch_width")
        self.reset_probe_button = pn.widgets.Button(label="Back to slider", width=130, align="end")
        self.direction_select.param.watch(self._update_probe, "value")
        self.step_slider.param.watch(self._update_probe, "value_throttled")
        self.reset_probe_button.on_click(self._reset_probe)
        self.probe_table = pn.pane.Markdown("*The mode and Hessian appear at each epoch end and when training "
                                            "stops.*", sizing_mode="stretch_width")
        self.samples_area = pn.Column(sizing_mode="stretch_width")
        self.predictive_area = pn.Column(sizing_mode="stretch_width")
        self.library = RunLibrary(self.runs_dir, on_open=self.open_run)
        self.compare_area = self._compare_methods()
        self.tabs = pn.Tabs(("Training", self.training_area), ("Samples & modes", self.samples_area),
                            ("Predictive", self.predictive_area),
                            ("Runs", self._explained("runs", self.library, above=True)),
                            ("Compare methods", self.compare_area), dynamic=True, sizing_mode="stretch_width")

    def _reset_probe(self, _event=None) -> None:
        self.explorer.clicked = None
        self._update_probe()

    def _compare_methods(self) -> pn.viewable.Viewable:
        """The "Compare methods" view when ``epi_dash.compare`` is present, else a placeholder."""
        try:
            from .compare import CompareView
        except ImportError:
            return pn.pane.Markdown("### Compare methods\nThe EPI vs SNPE vs SMC-ABC comparison view is not "
                                    "installed yet (`epi_dash/compare.py`).")
        button = pn.widgets.Button(label="Load comparison for the current set-up", width=320)
        area = pn.Column(button, sizing_mode="stretch_width")

        def load(_event=None) -> None:
            try:
                view = CompareView(self.setup.model_spec, self.setup.model.hyperparameters(),
                                   self.setup.emergent_property().to_dict(), str(self.runs_dir))
                area.objects = [button, view.panel()]
            except Exception as exc:
                area.objects = [button, pn.pane.Alert(f"Comparison view failed: {exc}", alert_type="danger")]

        button.on_click(load)
        return area

    # ================================================================================= layout
    def sidebar(self) -> list[pn.viewable.Viewable]:
        setup = [self.model_select, self.model_problems, self.model_doc, self.hyper_area, self.property_area,
                 self.device_select, self.device_error, self.advanced]
        if self.explain:
            setup.insert(0, pn.pane.Markdown(HELP["setup"], styles={"font-size": "13px"}))
        return [*setup, self.errors_pane, pn.Row(self.start_button, self.stop_button, self.resume_button)]

    def template(self) -> pn.template.FastListTemplate:
        return pn.template.FastListTemplate(
            title=self.title, sidebar=self.sidebar(), main=[self.tabs], sidebar_width=380,
            accent_base_color="#1f77b4", header_background="#1f4e79", theme_toggle=False)

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Row(pn.Column(*self.sidebar(), width=380), self.tabs)

    def _on_session_destroyed(self, _ctx) -> None:
        self.runner.stop()
        if self._callback is not None:
            self._callback.stop()


def create_workbench(runs_dir: str | Path | None = None, model_path: list[str | Path] | None = None,
                     model: str = "lds") -> pn.template.FastListTemplate:
    """The workbench page for one session (``panel serve`` runs this per browser tab)."""
    ensure_extensions()
    return Workbench(runs_dir=runs_dir, model_path=model_path, model=model).template()
