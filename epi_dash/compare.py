"""The "Compare methods" view: run EPI, SNPE and SMC-ABC on the current model and property as queued
background jobs and show their predictive distributions, samples and timing side by side.

Threads: one worker thread runs the queued (method, seed) races one after the other, each a ``core.jobs``
job (``core.baselines.race.race_job``, kind "compare.race", its own run directory in the comparison's
folder, so the run library lists it), and only puts plain records on a queue; a periodic callback drains
it on the session's event loop. Each race is a job of the server's scheduler like any other: checked
against ``max_runs_per_user``, waiting for a slot in the fair queue (cancellable from the Server queue
card), stopped at ``max_wall_time_s``.
"""

from __future__ import annotations

import queue
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import param

from core.baselines import MethodResult, StepRecord, parse_methods, save_comparison
from core.baselines.race import RACE_KIND, race_job, race_settings
from core.errors import InputError
from core.jobs import run_job
from core.runs import reserve_run_dir
from core.model import load_model
from core.property import EmergentProperty

from .panels.pump import session_timer
from .scheduler import Scheduler, scheduler as process_scheduler, slot_for
from .users import current_user

METHOD_CHOICES = {
    "EPI": "epi",
    "SNPE (bounded MAF)": "snpe",
    "SNPE (sbi default MAF)": "snpe:unbounded",
    "SNPE aggressive": "snpe:aggressive",
    "SMC-ABC (pyabc)": "smc",
}
#: per-method settings of the "quick" budget: a first look in seconds rather than the paper's minutes
QUICK_SETTINGS = {
    "epi": dict(iters_per_epoch=100, batch_size=100, init_iters=50, num_test_batches=20, num_epochs=3),
    "snpe": dict(simulations_per_round=300, max_rounds=3, stop_after_epochs=3, num_atoms=10, num_predictive=300),
    "smc": dict(population_size=100, max_populations=10, num_predictive=300),
}
COLORS = {"epi": "#1f77b4", "snpe": "#d62728", "smc": "#2ca02c"}


class CompareJobs:
    """A FIFO of (method spec, seed) jobs run by one daemon thread; events go to ``events``.

    Events: ("step", StepRecord), ("result", MethodResult), ("started", label), ("failed", message),
    ("idle", None). A job is a dict: spec, seed, model, model_spec, model_params, property, time_limit,
    device, run_dir.
    """

    def __init__(self, scheduler: Scheduler | None = None):
        self.scheduler = scheduler  # None: the process's
        self.events: queue.Queue = queue.Queue()
        self._jobs: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._timed_out = False
        self._thread: threading.Thread | None = None

    def submit(self, job: dict[str, Any]) -> None:
        self._stop.clear()
        self._jobs.put(job)
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._work, name="compare-jobs", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the running job (it reports what it has) and drop the queued ones."""
        while True:  # drop the queue first so the worker cannot pick up another job
            try:
                self._jobs.get_nowait()
            except queue.Empty:
                break
        self._stop.set()

    def _wall_time_up(self, limit: float) -> None:
        """The race ran ``max_wall_time_s``: stop it (it reports what it has)."""
        self._timed_out = True
        self.events.put(("failed", f"stopped at this server's limit of {limit:g} s on one job's wall time "
                                   "(max_wall_time_s)"))
        self._stop.set()

    @property
    def pending(self) -> int:
        return self._jobs.qsize()

    def _work(self) -> None:
        while True:
            try:
                job = self._jobs.get(timeout=0.5)
            except queue.Empty:
                self.events.put(("idle", None))
                return
            spec = job["spec"]
            label = f"{spec.name} seed {job['seed']}"
            try:
                with slot_for(self.scheduler or process_scheduler(), job["owner"], job["run_dir"], self._stop,
                              on_waiting=lambda: self.events.put(("waiting", label))) as ticket:
                    if ticket is None or self._stop.is_set():
                        continue
                    ticket.start_wall_clock(self._wall_time_up)
                    self.events.put(("started", label))
                    settings = race_settings(spec, job["model_spec"], job.get("model_params") or {},
                                             job["property"], job["seed"], job["time_limit"],
                                             job.get("device", "auto"))
                    results: list[MethodResult] = []
                    outcome = run_job(race_job, settings, job["run_dir"], RACE_KIND, stop_event=self._stop,
                                      objects=dict(model=job["model"], property=job["property"],
                                                   stop_event=self._stop, on_result=results.append,
                                                   on_step=lambda r: self.events.put(("step", r))))
            except InputError as exc:  # over the server's max_runs_per_user
                self.events.put(("failed", f"{label}: {exc.field}: {exc.message}"))
                continue
            finally:
                if self._timed_out:  # the server's limit stopped this race, not the user: the next ones run
                    self._timed_out = False
                    self._stop.clear()
            for result in results:
                self.events.put(("result", result))
            if outcome.state == "failed":
                self.events.put(("failed", f"{spec.name} seed {job['seed']}: {outcome.error}"))


class CompareView(param.Parameterized):
    """Race the selected methods on one model + emergent property; results land in
    ``runs_dir/compare/<time>/`` (compare.csv, compare.json, samples)."""

    methods = param.ListSelector(default=["epi", "snpe", "smc"], objects=list(METHOD_CHOICES.values()),
                                 doc="methods to run, each as one queued job per seed")
    time_limit = param.Number(60.0, bounds=(1, None), doc="wall-time limit per run (s)")
    seeds = param.Integer(1, bounds=(1, 10), doc="seeds per method")
    budget = param.Selector(default="quick", objects=["quick", "paper"],
                            doc="quick: small batches/populations for a first look; paper: the paper's settings")
    device = param.Selector(default="auto", objects=["auto", "cpu", "cuda"])
    status = param.String("idle", doc="what the worker is doing")
    results_version = param.Integer(0, doc="bumped whenever results change")

    def __init__(self, model_name: str, model_params: dict[str, Any] | None = None,
                 property: EmergentProperty | dict | None = None, runs_dir: str | Path = "runs", **params):
        super().__init__(**params)
        self.model_name, self.model_params = model_name, dict(model_params or {})
        self.model = load_model(model_name, **self.model_params)
        if isinstance(property, dict):
            property = EmergentProperty.from_dict(property)
        self.property = property if property is not None else EmergentProperty.default_for(self.model)
        self.property.validate(self.model)
        self.runs_dir = Path(runs_dir)
        self.results: list[MethodResult] = []
        self.last_step: StepRecord | None = None
        self.out_dir: Path | None = None
        self.jobs = CompareJobs()
        self._doc = None
        self._callback = None

    # --- control ------------------------------------------------------------------------------
    def run(self, *_events) -> None:
        """Queue one job per (selected method, seed)."""
        try:
            specs = parse_methods(list(self.methods), QUICK_SETTINGS if self.budget == "quick" else None)
        except InputError as exc:
            self.status = f"error: {exc}"
            return
        if self.out_dir is None:
            self.out_dir = self.runs_dir / "compare" / time.strftime("%Y%m%d-%H%M%S")
        owner = current_user()  # here, in the session: the jobs run in a worker thread
        for spec in specs:
            for seed in range(1, self.seeds + 1):
                self.jobs.submit(dict(spec=spec.copy(), seed=seed, owner=owner, model=self.model,
                                      model_spec=self.model_name,
                                      model_params=self.model_params, property=self.property,
                                      time_limit=self.time_limit, device=self.device,
                                      run_dir=reserve_run_dir(self.out_dir, f"{spec.name.replace(':', '-')}-seed{seed}", owner)))
        self.status = f"queued {len(specs) * self.seeds} run(s)"

    def stop(self, *_events) -> None:
        self.jobs.stop()
        self.status = "stopping"

    def drain(self) -> None:
        """Move worker events into the view (call on the event loop; the periodic callback does)."""
        events = []
        while True:
            try:
                events.append(self.jobs.events.get_nowait())
            except queue.Empty:
                break
        if not events:
            return
        if self._doc is not None:
            self._doc.add_next_tick_callback(partial(self._apply, events))
        else:
            self._apply(events)

    def _apply(self, events: list[tuple[str, Any]]) -> None:
        new_results = False
        for kind, payload in events:
            if kind == "waiting":
                self.status = f"waiting for a slot on this server: {payload}"
            elif kind == "started":
                self.status = f"running {payload} ({self.jobs.pending} queued)"
            elif kind == "step":
                self.last_step = payload
                self.status = (f"running {payload.method}: step {payload.step}, {payload.simulations:,} sims, "
                               f"d = {payload.distance:.3f} at {payload.wall_time_s:.1f} s")
            elif kind == "result":
                self.results.append(payload)
                new_results = True
            elif kind == "failed":
                self.status = f"error: {payload}"
            elif kind == "idle":
                self.status = f"done: {len(self.results)} run(s)"
        if new_results:
            if self.out_dir is not None:
                save_comparison(self.results, self.out_dir, self.model, self.property, self.time_limit)
            self.results_version += 1

    # --- derived data -------------------------------------------------------------------------
    def table(self) -> pd.DataFrame:
        rows = [r.row() for r in self.results]
        cols = ["method", "setting", "seed", "converged", "timed_out", "time_to_criterion_s", "wall_time_s",
                "simulations", "distance"]
        if not rows:
            return pd.DataFrame(columns=cols)
        frame = pd.DataFrame(rows)
        extra = [c for c in frame.columns if c.startswith(("mean[", "sd["))]
        return frame[cols + extra + ["error"]]

    def _label(self, r: MethodResult) -> str:
        return f"{r.method} ({r.setting}) s{r.seed}"

    # --- views --------------------------------------------------------------------------------
    def _histogram_range(self, k: int, mu: float, sd: float) -> tuple[float, float]:
        """The target +- 4 sd, widened to the 1st-99th percentiles of every method's predictive."""
        lo, hi = mu - 4 * sd, mu + 4 * sd
        for r in self.results:
            col = r.predictive[:, k][np.isfinite(r.predictive[:, k])] if len(r.predictive) else []
            if len(col):
                lo, hi = min(lo, float(np.percentile(col, 1))), max(hi, float(np.percentile(col, 99)))
        return lo, hi

    def predictive_plot(self, _version: int = 0) -> hv.Layout | hv.Overlay:
        panels = []
        for k, name in enumerate(self.property.statistics):
            mu, sd = self.property.mean[k], self.property.std[k]
            lo, hi = self._histogram_range(k, mu, sd)
            layers = []
            for r in self.results:
                if len(r.predictive):
                    counts, edges = np.histogram(r.predictive[:, k], bins=40, range=(lo, hi), density=True)
                    layers.append(hv.Histogram((edges, counts), kdims=[name], vdims=["density"], label=self._label(r))
                                  .opts(alpha=0.35, color=COLORS.get(r.method), line_color=None))
            layers += [hv.VSpan(mu - sd, mu + sd).opts(color="gray", alpha=0.15),
                       hv.VLine(mu).opts(color="black", line_width=1)]
            panels.append(hv.Overlay(layers).opts(title=f"predictive {name}", width=380, height=260,
                                                  xlabel=name, ylabel="density", legend_position="top_right",
                                                  show_legend=k == 0))
        return hv.Layout(panels).cols(2)

    def samples_plot(self, _version: int = 0) -> hv.Overlay:
        names = self.model.parameter_names
        layers = []
        for r in self.results:
            if len(r.samples):
                z = r.samples[:500]
                layers.append(hv.Scatter((z[:, 0], z[:, 1]), kdims=[names[0]], vdims=[names[1]], label=self._label(r))
                              .opts(color=COLORS.get(r.method), size=3, alpha=0.5))
        if not layers:
            layers = [hv.Scatter([], kdims=[names[0]], vdims=[names[1]])]
        lower, upper = (b.numpy() for b in self.model.bounds())
        return hv.Overlay(layers).opts(title=f"samples ({names[0]}, {names[1]})", width=380, height=320,
                                       xlim=(lower[0], upper[0]), ylim=(lower[1], upper[1]))

    def timing_plot(self, _version: int = 0) -> hv.Bars:
        data = [(self._label(r), r.time_to_criterion_s if r.converged else r.wall_time_s,
                 "converged" if r.converged else "not converged") for r in self.results]
        return hv.Bars(data, kdims=["run"], vdims=["seconds", "outcome"]).opts(
            title="wall time (to criterion, else total)", width=380, height=320, xrotation=30,
            color="outcome", cmap={"converged": "#2ca02c", "not converged": "#7f7f7f"}, tools=["hover"])

    def panel(self) -> pn.viewable.Viewable:
        self._doc = pn.state.curdoc
        if self._doc is not None and self._callback is None:
            self._callback = session_timer(self.drain, 300)
            pn.state.on_session_destroyed(lambda _ctx: self.jobs.stop())
        labels = {v: k for k, v in METHOD_CHOICES.items()}
        methods = pn.widgets.CheckButtonGroup.from_param(
            self.param.methods, options={labels[v]: v for v in METHOD_CHOICES.values()}, label="methods")
        run = pn.widgets.Button(label="Run comparison", color="primary", css_classes=["compare-run"])
        run.on_click(self.run)
        stop = pn.widgets.Button(label="Stop", color="warning", css_classes=["compare-stop"])
        stop.on_click(self.stop)
        target = ", ".join(f"{s} = {m:g} ± {sd:g}" for s, m, sd in
                           zip(self.property.statistics, self.property.mean, self.property.std))
        version = self.param.results_version
        return pn.Column(
            pn.pane.Markdown(f"### Compare methods: {self.model.model_name} (dim {self.model.dim})\n"
                             f"Target: {target}. Shared criterion: ‖E f − μ‖₂ < 0.25 "
                             "(SMC-ABC: a population within ε = 0.5)."),
            methods,
            pn.Row(pn.widgets.FloatInput.from_param(self.param.time_limit, label="time limit (s)", width=130),
                   pn.widgets.IntInput.from_param(self.param.seeds, width=90),
                   pn.widgets.Select.from_param(self.param.budget, width=110),
                   pn.widgets.Select.from_param(self.param.device, width=100), run, stop),
            pn.pane.Markdown(pn.bind(lambda s: f"**Status:** {s}", self.param.status), css_classes=["compare-status"]),
            pn.pane.DataFrame(pn.bind(lambda _v: self.table(), version), index=False, float_format="{:.3f}".format,
                              sizing_mode="stretch_width", css_classes=["compare-table"]),
            pn.pane.HoloViews(pn.bind(self.predictive_plot, version)),
            pn.Row(pn.pane.HoloViews(pn.bind(self.samples_plot, version)),
                   pn.pane.HoloViews(pn.bind(self.timing_plot, version))),
            name="Compare methods",
        )


def compare_methods_area(setup, runs_dir: str | Path) -> pn.viewable.Viewable:
    """The workbench's "Compare methods" tab: a button that loads a ``CompareView`` for the current set-up
    (``setup``: a ``state.SetupState``)."""
    button = pn.widgets.Button(label="Load comparison for the current set-up", width=320)
    area = pn.Column(button, sizing_mode="stretch_width")

    def load(_event=None) -> None:
        try:
            view = CompareView(setup.model_spec, setup.model.hyperparameters(), setup.emergent_property().to_dict(),
                               str(runs_dir))
            area.objects = [button, view.panel()]
        except Exception as exc:
            area.objects = [button, pn.pane.Alert(f"Comparison view failed: {exc}", alert_type="danger")]

    button.on_click(load)
    return area
