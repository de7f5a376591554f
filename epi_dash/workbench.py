"""The EPI workbench: set up a model and property, train in the background, watch it live, inspect
modes and Hessian directions, reopen saved runs. One ``Workbench`` per browser session.

A layout of panels: the set-up form (``epi_setup``), the job controls and event pump (``panels``), the
Training tab (``epi_training``), the Samples and Predictive tabs (``epi_samples``) and the run library.
Training is a ``core.jobs`` job run by ``runner.TrainingRunner``; its thread only queues events, and the
pump applies them in the session document's next tick (throttled). The parts' widgets are reachable as
attributes of the workbench (``wb.start_button``, ``wb.probe_table``, ...).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from pathlib import Path

import panel as pn

from core.errors import InputError
from core.runs import discard_run_dir, load_run, reserve_run_dir

from .compare import compare_methods_area
from .config import (configure_torch_threads, discover_models, executor_from_env, model_path_from_env,
                     runs_dir_from_env)
from .epi_samples import SamplesView
from .epi_setup import EPISetupForm
from .examples_view import ExamplePicker
from .epi_training import TrainingView
from .help import explained
from .library import RunLibrary
from .live import LiveRun, run_info
from .panels import EventPump, JobControls, app_template, load_extensions
from .panels.pump import frozen_models
from .preflight_view import PreflightPanel
from .queue_view import QueueView
from .runner import TrainingRunner
from .state import SetupState
from .sweep_view import SweepView
from .users import current_user, require_control

log = logging.getLogger(__name__)
TRAINING = ("running", "starting", "stopping")


def ensure_extensions() -> None:
    """Load the Panel/HoloViews extensions this app needs (idempotent, per session)."""
    configure_torch_threads()
    load_extensions()
    pn.config.disconnect_notification = "Connection to the server lost: reload the page."


def attached_at_once(template: pn.template.BaseTemplate) -> pn.template.BaseTemplate:
    """``template`` whose ``server_doc`` adds its roots (one per sidebar item, ~18) to the session's
    document with Bokeh's model graph frozen: one recomputation of the document's models instead of one
    per root (~0.8 s less server time for each arriving session of the workbench)."""
    original = template.server_doc

    def server_doc(doc=None, title=None, location=True):
        doc = doc if doc is not None else pn.state.curdoc
        if doc is None:
            return original(doc, title, location)
        with frozen_models(doc):
            return original(doc, title, location)

    template.server_doc = server_doc
    return template


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
        self.live: LiveRun | None = None
        self._notifications = pn.state.notifications
        self.runner = runner or TrainingRunner(executor=self._executor())
        self.controls = JobControls(self.start, self.stop, self.resume, ready="**Ready.** Press Start to train.")
        self.form = EPISetupForm(self.setup, self.catalog, busy=lambda: self.runner.running,
                                 on_refused=lambda text: self.notify("warning", text),
                                 on_validated=self._refresh_buttons, explain=explain)
        self.training = TrainingView(self._explained, explain, on_cancel=self.stop)
        self.samples = SamplesView(self._explained, self.notify, lambda: self.runner.latest_distribution, explain)
        self.library = RunLibrary(self.runs_dir, on_open=self.open_run)
        self.preflight = PreflightPanel(self.setup)
        self.examples = ExamplePicker(self.open_example)
        #: the server's queue, under the Runs tab's table (a collapsed card, filled when first opened)
        self.queue_view = QueueView(notify=self.notify)
        #: the Training tab: the status line until the first run starts or opens, then the curves
        self.training_tab = pn.Column(self._before_first_run(), sizing_mode="stretch_width")
        self.tabs = pn.Tabs(("Training", self.training_tab), ("Samples & modes", self.samples.samples_area),
                            ("Predictive", self.samples.predictive_area),
                            ("Runs", pn.Column(self._explained("runs", self.library, above=True), self.queue_view,
                                               sizing_mode="stretch_width")),
                            ("Compare methods", compare_methods_area(self.setup, self.runs_dir)),
                            *([] if explain else [("Sweep", SweepView(self.runs_dir))]),
                            dynamic=True, sizing_mode="stretch_width")
        self.tabs.param.watch(self._on_tab, "active")
        self.setup.param.watch(lambda _e: self._new_live() if self.setup.model is not None else None, "model")
        self._new_live()
        self.form.validate()
        self.pump = EventPump(self.runner.drain, self._apply_events, busy=lambda: self.runner.running,
                              between=self._move_counters, idle=self._idle)
        if self.pump.callback is not None:
            pn.state.on_session_destroyed(self._on_session_destroyed)

    def __getattr__(self, name: str):
        """The parts' widgets and views as the workbench's own (``wb.start_button``, ``wb.probe_table``)."""
        for part in ("controls", "form", "training", "samples"):
            obj = self.__dict__.get(part)
            if obj is not None and name in dir(obj):
                return getattr(obj, name)
        raise AttributeError(name)

    def _executor(self):
        """Where this session trains: the server process, or the Dask scheduler ``serve --scheduler`` named
        (one that cannot be reached is said, and the session trains in the server process)."""
        try:
            return executor_from_env()
        except InputError as exc:
            self.notify("warning", f"{exc.field}: {exc.message}; this session trains in the server process")
            return None

    # ================================================================================= actions
    def start(self) -> None:
        """Validate, then train a new q in the background."""
        try:
            model, prop, flow, opt = self.setup.build()
        except InputError as exc:
            return self.notify("error", f"{exc.field}: {exc.message}")
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")[:-3]
        safe_name = re.sub(r"[^A-Za-z0-9_.-]+", "_", model.model_name or type(model).__name__)[-40:]
        try:
            run_dir = reserve_run_dir(self.runs_dir, f"{safe_name}-{stamp}", owner=current_user())
        except (OSError, InputError) as exc:
            return self.notify("error", f"runs_dir: cannot create a run in {self.runs_dir}: {exc}")
        self._new_live(model, prop.mean, prop.std)
        self._show_curves()
        self.live.state.status, self.live.state.run_dir = "starting", str(run_dir)
        try:
            self.runner.start(model, prop, flow, opt, run_dir, model_spec=self.setup.model_spec)
        except InputError as exc:  # e.g. over a server limit: said in the status line and a notice
            discard_run_dir(run_dir)  # it holds only the run.json naming its owner
            self.live.state.status, self.live.state.message = "refused", f"{exc.field}: {exc.message}"
            self._update_progress()
            return self.notify("error", f"{exc.field}: {exc.message}")
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
            require_control(self.live.state.run_dir)  # another user's run: refused naming "run"
            self.runner.resume(self.live.state.run_dir, device=self.setup.device)
        except InputError as exc:
            return self.notify("error", f"{exc.field}: {exc.message}")
        self.live.state.status = "starting"
        self._show_curves()
        self._update_progress()

    def open_run(self, path: str | Path) -> None:
        """Show a saved run: settings, curves and samples now; mode and Hessian when analysed."""
        if self.runner.running:
            return self.notify("warning", "Stop the running training before opening another run.")
        try:
            meta = load_run(path).meta
            model, prop = self.setup.apply_run(meta)
            if meta["model"] not in self.form.model_select.options.values():
                self.form.model_select.options = {**self.form.model_select.options, meta["model"]: meta["model"]}
            self.form.model_select.param.update(value=meta["model"])
            if self.live is None or self.live.info.parameter_names != model.parameter_names:
                self._new_live(model, prop.mean, prop.std)
            self.live.load_saved(load_run(path))
            self._show_curves()
            self.runner.open(path, device=None if self.setup.device == "auto" else self.setup.device)
        except Exception as exc:  # bad run folders become a message, not a traceback
            return self.notify("error", f"Could not open {path}: {exc}")
        self.tabs.active = 0
        self._update_progress()
        self.notify("info", f"Opened run {Path(path).name}")

    def open_example(self, name: str) -> str:
        """Open the finished example ``name`` (``core.examples``): a shipped one is copied into this
        session's runs directory (the package is never written) and opened at once; one that is not
        shipped is trained there now, in the background with progress. Returns a line for the page."""
        from core.examples import fetch, locate, training_meta

        try:
            ex = locate(name)
            if self.runner.running:
                return "⚠️ A training or an analysis is running: wait for it or press Stop, then open the example."
            if ex.shipped:
                path = fetch(name, self.runs_dir, reuse=True, owner=current_user())  # theirs to resume
                self.open_run(path)
                self.library.refresh()
                return f"Opened example **{name}** (a finished run, copied to `{path}`)."
            meta = training_meta(ex)
            self.setup.apply_run(meta)
            if meta["model"] not in self.form.model_select.options.values():
                self.form.model_select.options = {**self.form.model_select.options, meta["model"]: meta["model"]}
            self.form.model_select.param.update(value=meta["model"])
        except (InputError, OSError) as exc:
            field = getattr(exc, "field", "example")
            self.notify("error", f"{field}: {getattr(exc, 'message', exc)}")
            return f"⚠️ Could not open example {name}: {getattr(exc, 'message', exc)}"
        self.start()
        self.notify("info", f"Example {name} is not shipped: it is being built now (Training tab).")
        return (f"⏳ Example **{name}** is not shipped with this installation: it is **being built now** in the "
                f"background (progress in the *Training* tab; `{ex.meta.get('command')}`). It will be in *Runs*.")

    def notify(self, level: str, text: str) -> None:
        """A toast in the browser (logged when there is no session)."""
        log.info("%s: %s", level, text)
        if self._notifications is not None:
            getattr(self._notifications, level)(text, duration=6000 if level != "error" else 0)

    # ============================================================================ live updates
    def drain(self) -> None:
        """Periodic callback: move queued runner events into the page in one batch (throttled)."""
        self.pump.pump()

    def _move_counters(self) -> bool:
        moved = self.live.catch_up(self.runner.last_iteration)
        if moved:
            self._update_progress()
        return moved

    def _idle(self) -> None:
        if self.live is not None and self.live.state.status in TRAINING:
            self._update_progress()

    def _apply_events(self, events) -> None:
        with pn.io.hold():
            for level, text in self.live.apply(events):
                self.notify(level, text)
            if any(e.kind == "analysis" for e in events):
                self.samples.on_analysis()
            if any(e.kind == "finished" for e in events):  # failed runs are saved too (last checkpoint)
                self.library.refresh()
            self._update_progress()

    def _update_progress(self) -> None:
        training = self.live.state.status in TRAINING
        self.training.show_state(self.live, self.controls, analysing=self.runner.running and not training,
                                 startup=self.runner.startup() if training else None,
                                 queued=self.runner.queue_position())
        self._refresh_buttons()

    def _refresh_buttons(self) -> None:
        running, st = self.runner.running, self.live.state if self.live else None
        status = st.status if st else "idle"
        has_checkpoint = bool(st and st.run_dir and (Path(st.run_dir) / "checkpoint.pt").is_file())
        self.controls.enable(start=not running and not self.setup.errors(),
                             stop=running and status in ("starting", "running"),
                             resume=not running and has_checkpoint and status not in ("converged", "running"))
        self.form.model_select.disabled = running

    def _probe_markdown(self, z):
        return self.samples.probe_markdown(z)

    # ================================================================================= layout
    def _new_live(self, model=None, means=None, stds=None) -> None:
        """Fresh streams and views for a new or opened run."""
        model = model or self.setup.model
        if model is None:
            return
        means = means if means is not None else [self.setup.means.get(s, 0.0) for s in model.statistic_names]
        stds = stds if stds is not None else [self.setup.stds.get(s, 1.0) for s in model.statistic_names]
        self.live = LiveRun(run_info(model, means, stds))
        self.training.show(self.live, self.controls.status, self.controls.progress_bar)
        self.samples.show(self.live, model)

    def _before_first_run(self) -> pn.viewable.Viewable:
        """The Training tab until a run starts or opens: the status line and where the curves will be
        (empty curves would tell nothing, and drawing them cost every arriving session ~1 s of server time)."""
        note = pn.pane.Markdown("*The training curves appear here when a training starts or a run is opened: "
                                "entropy, each statistic against its target, the constraints, the penalty c and "
                                "the multipliers.*", sizing_mode="stretch_width")
        parts = [self.controls.status, self.controls.progress_bar, note]
        if self.explain:
            parts += [self._explained(key, pn.pane.Markdown(f"**{title}**: (curves once training starts)"), above=True)
                      for key, title in (("entropy", "Entropy"), ("statistics", "Statistics"),
                                         ("constraints", "Constraints"))]
        return pn.Column(*parts, sizing_mode="stretch_width", max_width=900)

    def _show_curves(self) -> None:
        """From the first run started or opened on, the Training tab shows the live curves."""
        if self.training_tab.objects != [self.training.training_area]:
            self.training_tab.objects = [self.training.training_area]

    def _on_tab(self, event) -> None:
        """Draw a tab's heavy views the first time it is shown (the pairplot: ~0.4 s of server time)."""
        if self.tabs[event.new] is self.samples.samples_area:
            self.samples.activate()

    def _explained(self, key: str, view: pn.viewable.Viewable, above: bool = False) -> pn.viewable.Viewable:
        return explained(key, view, self.explain, above)

    def sidebar(self) -> list[pn.viewable.Viewable]:
        return [pn.Card(self.examples, title="Finished examples", collapsed=False, sizing_mode="stretch_width"),
                *self.form.widgets(), self.controls.buttons, self.preflight]

    def template(self) -> pn.template.FastListTemplate:
        return attached_at_once(app_template(
            title=self.title, sidebar=self.sidebar(), main=[self.tabs], sidebar_width=380,
            accent_base_color="#1f77b4", header_background="#1f4e79", theme_toggle=False))

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Row(pn.Column(*self.sidebar(), width=380), self.tabs)

    def _on_session_destroyed(self, _ctx) -> None:
        self.runner.stop()
        self.pump.stop()


def create_workbench(runs_dir: str | Path | None = None, model_path: list[str | Path] | None = None,
                     model: str = "lds") -> pn.template.FastListTemplate:
    """The workbench page for one session (``panel serve`` runs this per browser tab)."""
    ensure_extensions()
    return Workbench(runs_dir=runs_dir, model_path=model_path, model=model).template()
