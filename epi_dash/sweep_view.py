"""The "Sweep" view: launch EPI over property levels x seeds (the paper's X(y), Fig 2E-F) as one background
job (through the server's scheduler: it may wait in the queue, cancellable), follow it, and compare the selected posteriors across levels (marginals side by side, the paper's
comparison statistic with its Welch test)."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import param

from core.errors import InputError
from core.runs import discard_run_dir, load_run, recorded_owner, reserve_run_dir
from core.sweep import compare_levels, level_label, level_samples, load_sweep, parse_vary, sweep_cells, sweep_job

from .config import scheduler_from_env
from .panels.job import cancel_button, queued_markdown
from .panels.pump import session_timer
from .scheduled_job import ScheduledJobRunner
from .users import current_user, may_control, require_control

DRAIN_PERIOD_MS = 500
LEVEL_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]


def parse_settings(text: str) -> dict[str, Any]:
    """``"iters_per_epoch=500, batch_size=200"`` -> dict (numbers parsed), naming the field when malformed."""
    out: dict[str, Any] = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise InputError("settings", f"expected NAME=VALUE, got {item!r}")
        try:
            number = float(value)
            out[name.strip()] = int(number) if number.is_integer() and "." not in value else number
        except ValueError:
            out[name.strip()] = value.strip()
    return out


class SweepSetup(param.Parameterized):
    """What a sweep varies: ``vary`` as FIELD=V1,V2 (several separated by ';'), ``seeds`` per level."""

    model = param.String(default="v1", doc="registered model name or path/to/file.py:Class")
    vary = param.String(default="s_E.mean=5,10", doc="FIELD=V1,V2[; FIELD=...]: STAT.mean, STAT.std or a hyperparameter")
    seeds = param.Integer(default=3, bounds=(1, 20), doc="seeds per level (the converged one of greatest entropy is kept)")
    settings = param.String(default="", doc="flow/optimizer settings for every run, NAME=VALUE, ... (optional)")

    def job_settings(self) -> dict[str, Any]:
        """The sweep job's settings, validated (an InputError naming the field)."""
        vary = parse_vary([v for v in (t.strip() for t in self.vary.split(";")) if v])
        settings = parse_settings(self.settings)
        sweep_cells(self.model, vary, self.seeds, "/nonexistent-validation-only", settings=settings)
        return {"model": self.model, "vary": vary, "seeds": self.seeds, "settings": settings,
                "scheduler": scheduler_from_env()}


def marginals_view(samples: dict[str, np.ndarray], names: list[str]) -> hv.Layout:
    """One panel per parameter: each level's marginal of its selected q (step histograms, one color a level)."""
    panels = []
    for k, name in enumerate(names):
        overlays = [hv.Histogram(np.histogram(z[:, k], bins=30, density=True), kdims=[name], vdims=["density"],
                                 label=label).opts(alpha=0.35, color=LEVEL_COLORS[i % len(LEVEL_COLORS)],
                                                   line_color=None)
                    for i, (label, z) in enumerate(samples.items())]
        panels.append(hv.Overlay(overlays).opts(width=260, height=200, title=name, show_legend=False, toolbar=None))
    return hv.Layout(panels).cols(4).opts(shared_axes=False)


def level_legend_html(labels: list[str]) -> str:
    """One colored swatch per level, in the marginals' colors (a legend inside a panel hid its histogram)."""
    return " &nbsp; ".join(f"<span style='color:{LEVEL_COLORS[i % len(LEVEL_COLORS)]}'>■</span> {label}"
                           for i, label in enumerate(labels))


def cells_frame(manifest: dict[str, Any]) -> pd.DataFrame:
    selected = {v for v in manifest.get("selection", {}).values() if v}
    rows = []
    for cell, outcome in zip(manifest.get("cells", []), manifest.get("outcomes", [])):
        outcome = outcome or {}
        rows.append({"level": level_label(cell["level"]), "seed": cell["seed"], "state": outcome.get("state", "queued"),
                     "converged": bool(outcome.get("converged")), "entropy": outcome.get("entropy", math.nan),
                     "selected": cell["run_dir"] in selected})
    return pd.DataFrame(rows, columns=["level", "seed", "state", "converged", "entropy", "selected"])


class SweepView(pn.viewable.Viewer):
    """Launch, follow and read a sweep; one per session."""

    def __init__(self, runs_dir: str | Path, **params):
        super().__init__(**params)
        self.runs_dir = Path(runs_dir)
        self.user = current_user()  # whose sweeps this session lists and opens (read in the session's thread)
        self.setup = SweepSetup()
        self.runner = ScheduledJobRunner(owner=self.user)
        self.sweep_dir: Path | None = None
        form = pn.Column(
            pn.widgets.TextInput.from_param(self.setup.param.model, label="Sweep model", sizing_mode="stretch_width"),
            pn.widgets.TextInput.from_param(self.setup.param.vary, label="Vary", sizing_mode="stretch_width"),
            pn.widgets.IntInput.from_param(self.setup.param.seeds, label="Seeds per level", sizing_mode="stretch_width"),
            pn.widgets.TextInput.from_param(self.setup.param.settings, label="Settings for every run",
                                            placeholder="e.g. iters_per_epoch=500, batch_size=200",
                                            sizing_mode="stretch_width"),
            sizing_mode="stretch_width")
        self.launch_button = pn.widgets.Button(label="Launch sweep", color="primary", width=140)
        self.stop_button = pn.widgets.Button(label="Stop", color="danger", width=90, disabled=True)
        self.cancel_button = cancel_button("sweep", self.cancel)
        self.open_select = pn.widgets.Select(label="Or open a sweep", options=self._sweep_options(), width=320)
        self.status = pn.pane.Markdown("Set up a sweep and press **Launch sweep**, or open one.",
                                       sizing_mode="stretch_width")
        self.progress = pn.indicators.Progress(value=0, max=1, sizing_mode="stretch_width", visible=False)
        self.cells = pn.widgets.Tabulator(cells_frame({}), disabled=True, show_index=False, height=200,
                                          sizing_mode="stretch_width",
                                          formatters={"converged": {"type": "tickCross"},
                                                      "selected": {"type": "tickCross"},
                                                      "entropy": {"type": "money", "precision": 3}})
        self.results = pn.Column(sizing_mode="stretch_width")
        self.launch_button.on_click(lambda _e: self.launch())
        self.stop_button.on_click(lambda _e: self.runner.stop())
        self.open_select.param.watch(lambda e: e.new and self.open(e.new), "value")
        self._form = form
        self._where = ""
        self._callback = None
        if pn.state.curdoc is not None and pn.state.curdoc.session_context is not None:
            self._callback = session_timer(self.drain, DRAIN_PERIOD_MS)
            # a closed tab takes its waiting sweep out of the queue (a running one goes on: open it again)
            pn.state.on_session_destroyed(lambda _ctx: self.runner.queued and self.runner.stop())

    def _sweep_options(self) -> dict[str, str]:
        found = sorted((f for f in self.runs_dir.glob("**/sweep.json")
                        if may_control(self.user, recorded_owner(f.parent))),
                       key=lambda f: f.stat().st_mtime, reverse=True)
        return {"": "", **{str(f.parent.relative_to(self.runs_dir)): str(f.parent) for f in found}}

    def launch(self) -> None:
        """Validate the set-up and start the sweep job in the background."""
        try:
            settings = self.setup.job_settings()
        except InputError as exc:
            self.status.object = f"⚠ **{exc.field}**: {exc.message}"
            return
        name = f"sweep-{Path(self.setup.model).stem.split(':')[0]}-{time.strftime('%Y%m%d-%H%M%S')}"
        sweep_dir = None
        try:
            sweep_dir = reserve_run_dir(self.runs_dir, name, owner=self.user)
            self.runner.start(sweep_job, settings, sweep_dir, kind="sweep", owner=self.user)
        except InputError as exc:  # a server limit, a sweep running: its reserved folder goes
            if sweep_dir is not None:
                discard_run_dir(sweep_dir)
            self.status.object = f"⚠ **{exc.field}**: {exc.message}"
            return
        self.sweep_dir, self._where = sweep_dir, settings["scheduler"] or "this server process"
        self.progress.param.update(visible=True, value=0, max=1)
        self.launch_button.disabled, self.stop_button.disabled = True, False
        self._show_running()

    def cancel(self) -> None:
        """Take the sweep out of the server's queue while it waits (its owner or an admin)."""
        try:
            self.runner.cancel()
        except InputError as exc:
            self.status.object = f"⚠ **{exc.field}**: {exc.message}"
            return
        self.drain()

    def _show_running(self) -> None:
        """The status line of a launched sweep: its place in the server's queue, or where it runs."""
        queued = self.runner.queue_position()
        self.cancel_button.visible = queued is not None
        if queued is not None:
            self.status.object = queued_markdown(queued, "sweep", self.sweep_dir)
        elif self.progress.value == 0 and self.runner.running:
            self.status.object = f"**Running** sweep `{self.sweep_dir.name}` on {self._where}…"

    def drain(self) -> None:
        """Periodic callback: progress and finished tasks into the page."""
        events = self.runner.drain()
        if self.sweep_dir is not None and self.runner.running:
            self._show_running()  # the queue moves without events
        if not events or self.sweep_dir is None:
            return
        for event in events:
            if event.kind == "progress":
                self.progress.param.update(max=max(event.total, 1), value=event.step)
                self.status.object = f"**Running** sweep `{self.sweep_dir.name}`: {event.step}/{event.total} runs done"
            elif event.kind == "finished":
                self.launch_button.disabled, self.stop_button.disabled = False, True
                self.cancel_button.visible = False
                verdict = {"finished": "**Finished**", "stopped": "**Stopped** (launching the same sweep directory "
                           "again continues it)", "cancelled": f"**Cancelled** ({event.message})"
                           }.get(event.state, f"**Failed**: {event.message}")
                if event.state == "stopped" and event.message:
                    verdict += f" ⚠ {event.message}"
                self.status.object = f"{verdict} · sweep `{self.sweep_dir.name}`"
                self.open_select.options = self._sweep_options()
        self.show(self.sweep_dir)

    def open(self, sweep_dir: str | Path) -> None:
        try:
            require_control(sweep_dir, self.user)
        except InputError as exc:
            self.status.object = f"⚠ **{exc.field}**: {exc.message}"
            return
        self.sweep_dir = Path(sweep_dir)
        self.show(self.sweep_dir)
        self.status.object = f"Opened sweep `{self.sweep_dir.name}`"

    def show(self, sweep_dir: Path) -> None:
        """Tasks table, then (once two levels have a selected run) marginals and the comparison."""
        try:
            manifest = load_sweep(sweep_dir)
        except InputError:
            return
        self.cells.value = cells_frame(manifest)
        samples = level_samples(manifest)
        if len(samples) < 2:
            self.results.objects = [pn.pane.Markdown(
                "*The posteriors across levels appear once at least two levels have a converged run.*")]
            return
        try:
            self._show_levels(manifest, samples)
        except Exception as exc:  # a damaged run among the selected ones: said, never a traceback
            self.results.objects = [pn.pane.Alert(f"Could not show the levels: {type(exc).__name__}: {exc}",
                                                  alert_type="warning")]

    def _show_levels(self, manifest: dict[str, Any], samples: dict[str, np.ndarray]) -> None:
        first = next(run for run in manifest["selection"].values() if run)
        names = [str(n) for n in load_run(first).samples["names"]]  # a level may change the model's size
        model_name = Path(str(manifest["model"])).stem.split(":")[0]
        rows = compare_levels(samples, model_name, names)
        table = pd.DataFrame(rows)[["statistic", "levels", "mean_high", "mean_low", "t", "p"]]
        self.results.objects = [
            pn.pane.Markdown("### Selected q per level (converged run of greatest entropy)"),
            pn.pane.HTML(level_legend_html(list(samples)), styles={"font-size": "13px"}),
            pn.pane.HoloViews(marginals_view(samples, names[:8]), linked_axes=False),
            pn.pane.Markdown("### Across levels (Welch t-test on 2,000 samples of each selected q)"),
            pn.widgets.Tabulator(table, disabled=True, show_index=False, sizing_mode="stretch_width",
                                 formatters={c: {"type": "money", "precision": 4} for c in ("mean_high", "mean_low", "t")}
                                 | {"p": {"type": "plaintext"}}),
        ]

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(
            pn.Row(pn.Column(self._form, pn.Row(self.launch_button, self.stop_button), width=420),
                   pn.Column(self.open_select, self.status, self.cancel_button, self.progress, self.cells, sizing_mode="stretch_width"),
                   sizing_mode="stretch_width"),
            self.results, sizing_mode="stretch_width")
