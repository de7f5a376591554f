"""Job panel: start, stop and resume one kind of ``core.jobs`` job and watch it: a status line, a progress
bar, a live plot of its named scalar series and a table of its steps, all driven by the job's events.

    panel = JobPanel(simulate, "toy.walk", runs_dir, settings=form.settings, can_start=lambda: form.valid)
    panel.subscribe(lambda events, panel: ...)   # e.g. redraw a result view once "finished" arrives
    panel.start(); panel.stop(); panel.resume(); panel.open(run_dir)

``JobControls`` (buttons, progress bar, status) is the part a custom live view (the EPI workbench) reuses.
Every start and resume goes through the server's scheduler (``epi_dash.scheduled_job``): refused naming the
limit, or waiting in the queue ("Queued: position P of N" with a Cancel button) until it may run.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from pathlib import Path
from typing import Callable

import holoviews as hv
import pandas as pd
import panel as pn
import param

from core.errors import InputError
from core.jobs import FINISHED_STATES, JobEvent, JobFunction, read_events
from core.runs import discard_run_dir, read_run_json, reserve_run_dir, run_state

from ..scheduled_job import ScheduledJobRunner
from ..users import current_user
from .pump import EventPump
from .results import fitted_table, set_table

log = logging.getLogger(__name__)
#: plotted points per series (older ones roll over) and table rows kept
PLOT_POINTS = 5_000
TABLE_ROWS = 200


def format_duration(seconds: float) -> str:
    """``h:mm:ss``."""
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def notify(level: str, text: str) -> None:
    """A toast in the browser ("info", "success", "warning", "error"), logged outside a session."""
    log.info("%s: %s", level, text)
    if pn.state.curdoc is not None and pn.state.notifications is not None:
        getattr(pn.state.notifications, level)(text, duration=6000 if level != "error" else 0)


def queued_markdown(queued: tuple[int, int], what: str = "job", run_dir: str | Path | None = None) -> str:
    """The status line of a job that waits for one of the server's slots: ``queued`` (position, number
    waiting), ``what`` it is ("training", "sweep"), its run directory."""
    return "  \n".join([f"**Queued: position {queued[0]} of {queued[1]}** · this {what} starts when one of this "
                        "server's jobs ends (Cancel takes it out of the queue)",
                        *([f"Run: `{Path(run_dir).name}`"] if run_dir else [])])


def cancel_button(what: str = "job", on_cancel: Callable[[], None] | None = None) -> pn.widgets.Button:
    """The Cancel button of a job waiting in the server's queue (hidden until it waits)."""
    button = pn.widgets.Button(label="Cancel", color="warning", icon="x", visible=False,
                               description=f"take this {what} out of the server's queue")
    if on_cancel is not None:
        button.on_click(lambda _e: on_cancel())
    return button


class JobControls(pn.viewable.Viewer):
    """Start / Stop / Resume buttons, a progress bar and a status line, and a Cancel button while the job
    waits in the server's queue (``show_queued``); the owner decides what they do."""

    def __init__(self, on_start: Callable[[], None], on_stop: Callable[[], None], on_resume: Callable[[], None],
                 ready: str = "**Ready.** Press Start.", on_cancel: Callable[[], None] | None = None, **params):
        super().__init__(**params)
        # (not ``cancel_button``: the workbench reaches its parts' widgets by name, and its Training tab has one)
        self.cancel_queued_button = cancel_button("job", on_cancel)
        self.start_button = pn.widgets.Button(label="Start", color="primary", icon="player-play")
        self.stop_button = pn.widgets.Button(label="Stop", color="danger", icon="player-stop", disabled=True)
        self.resume_button = pn.widgets.Button(label="Resume", color="success", icon="player-skip-forward",
                                               disabled=True)
        self.start_button.on_click(lambda _e: on_start())
        self.stop_button.on_click(lambda _e: on_stop())
        self.resume_button.on_click(lambda _e: on_resume())
        self.progress_bar = pn.indicators.Progress(value=0, max=1, bar_color="primary", sizing_mode="stretch_width")
        self.status = pn.pane.Markdown(ready, sizing_mode="stretch_width")

    def enable(self, start: bool, stop: bool, resume: bool) -> None:
        self.start_button.disabled, self.stop_button.disabled, self.resume_button.disabled = not start, not stop, not resume

    def show_progress(self, step: int, total: int, state: str) -> None:
        """The bar at ``step`` of ``total``; full and green once ``state`` is converged (all work done)."""
        total = max(int(total), 1)
        self.progress_bar.max = total
        self.progress_bar.value = total if state == "converged" else min(int(step), total)
        self.progress_bar.bar_color = {"failed": "danger", "converged": "success"}.get(state, "primary")

    def show_queued(self, queued: tuple[int, int] | None, run_dir: str | Path | None = None) -> None:
        """While the job waits (``queued``: position, number waiting): that in the status line and Cancel."""
        self.cancel_queued_button.visible = queued is not None
        if queued is not None:
            self.status.object = queued_markdown(queued, "job", run_dir)

    @property
    def buttons(self) -> pn.Row:
        return pn.Row(self.start_button, self.stop_button, self.resume_button)

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(self.buttons, self.progress_bar, self.status, self.cancel_queued_button,
                         sizing_mode="stretch_width")


def series_plot(buffer: hv.streams.Buffer, names: list[str], title: str = "") -> hv.DynamicMap:
    """One curve per scalar series over ``step`` (each series on its own line; shared step axis)."""

    def render(data: pd.DataFrame) -> hv.Overlay:
        curves = [hv.Curve(data, "step", name, label=name) for name in names]
        return hv.Overlay(curves).opts(title=title, legend_position="top_left", responsive=True, height=260,
                                       show_grid=True)

    return hv.DynamicMap(render, streams=[buffer])


class JobPanel(pn.viewable.Viewer):
    """One job at a time of ``kind``: ``function(ctx)`` with ``settings()`` in a new directory of ``runs_dir``.

    Subscribers get every applied batch: ``subscribe(fn)``, ``fn(events, panel)``; ``panel.result`` holds
    the finished job's result, ``panel.run_dir`` its directory, ``panel.state`` its state."""

    state = param.String(default="idle", doc="idle, queued, starting, running, stopping, cancelled (while "
                                             "queued), or a core.jobs end state")
    step = param.Integer(default=0)
    total = param.Integer(default=0)
    run_dir = param.String(default="")
    result = param.Dict(default={})
    error = param.String(default="")

    def __init__(self, function: JobFunction, kind: str, runs_dir: str | Path, settings: Callable[[], dict],
                 can_start: Callable[[], bool] = lambda: True, table_rows: int = TABLE_ROWS, **params):
        super().__init__(**params)
        self.function, self.kind, self.runs_dir = function, kind, Path(runs_dir)
        self._settings, self._can_start, self._table_rows = settings, can_start, table_rows
        self.runner = ScheduledJobRunner()
        self.controls = JobControls(self.start, self.stop, self.resume, on_cancel=self.cancel)
        self.plot_area = pn.Column(sizing_mode="stretch_width")
        self.table = fitted_table(pd.DataFrame({"step": []}), visible=False)
        self._buffer: hv.streams.Buffer | None = None
        self._rows: list[dict[str, float]] = []
        self._subscribers: list[Callable[[list[JobEvent], JobPanel], None]] = []
        self.pump = EventPump(self.runner.drain, self.apply, busy=lambda: self.runner.running,
                              between=self._move_counters, idle=self._follow_queue)
        if self.pump.callback is not None:  # a closed tab stops its job (after its unit, with a checkpoint)
            # or takes it out of the server's queue
            pn.state.on_session_destroyed(lambda _ctx: (self.runner.stop(), self.pump.stop()))
        self.refresh()

    # ------------------------------------------------------------------------------------- actions
    def subscribe(self, fn: Callable[[list[JobEvent], JobPanel], None]) -> None:
        """Call ``fn(events, panel)`` after each applied batch of events."""
        self._subscribers.append(fn)

    def start(self) -> None:
        """Start the job in a new run directory (a message naming the field when the settings are bad)."""
        if not self._can_start():
            notify("error", "Fix the settings first.")
            return
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")[:-3]
        run_dir = None
        try:
            settings = self._settings()
            owner = current_user()
            run_dir = reserve_run_dir(self.runs_dir, f"{re.sub(r'[^A-Za-z0-9_-]+', '_', self.kind)}-{stamp}", owner)
            self.runner.start(self.function, settings, run_dir, self.kind, owner=owner)
        except (InputError, OSError) as exc:
            if run_dir is not None:  # refused (a server limit, a job running): the reserved folder goes
                discard_run_dir(run_dir)
            self._refused(f"{exc.field}: {exc.message}" if isinstance(exc, InputError) else f"runs_dir: {exc}")
            return
        self._reset()
        self._submitted(run_dir)

    def cancel(self) -> None:
        """Take the job out of the server's queue while it waits (its owner or an admin)."""
        try:
            self.runner.cancel()
        except InputError as exc:
            notify("error", f"{exc.field}: {exc.message}")
            return
        self.pump.pump()

    def stop(self) -> None:
        """Ask the job to stop after its current unit of work (it checkpoints); a waiting one is cancelled."""
        if self.runner.queued:
            self.cancel()
        elif self.runner.running:
            self.runner.stop()
            self.state = "stopping"
            self.refresh()

    def resume(self) -> None:
        """Continue the job in ``run_dir`` from its checkpoint."""
        if not self.run_dir or self.runner.running:
            return
        try:
            self.runner.resume(self.run_dir)
        except InputError as exc:
            self._refused(f"{exc.field}: {exc.message}")
            return
        self._submitted(self.run_dir)

    def _submitted(self, run_dir: str | Path) -> None:
        self.param.update(state="queued" if self.runner.queued else "starting", run_dir=str(run_dir), error="")
        self.refresh()

    def _refused(self, text: str) -> None:
        """A start or resume refused (bad settings, a server limit): said in a toast and the status line."""
        notify("error", text)
        self.controls.status.object = f"⚠ {text}"

    def open(self, run_dir: str | Path) -> None:
        """Show a saved job: its state, progress history and result (a message for a bad directory)."""
        try:
            meta = read_run_json(run_dir)
            events, _ = read_events(run_dir)
        except InputError as exc:
            notify("error", f"{exc.field}: {exc.message}")
            return
        self._reset()
        self.param.update(run_dir=str(run_dir))
        self.apply([e for e in events if e.kind != "finished"])
        progress = meta.get("progress") or {}
        self.param.update(state=run_state(meta), result=meta.get("result") or {}, error=meta.get("error") or "",
                          step=int(progress.get("step", self.step)), total=int(progress.get("total", self.total)))
        self._notify_subscribers([JobEvent("finished", state=self.state, data={"result": self.result})])
        self.refresh()

    # ------------------------------------------------------------------------------------- events
    def apply(self, events: list[JobEvent]) -> None:
        """Update state, plot and table from a batch of job events (in the document's next tick)."""
        rows = []
        with pn.io.hold():
            for e in events:
                if e.kind == "started":
                    self.state = "running"
                elif e.kind == "progress":
                    self.param.update(step=e.step, total=e.total)
                    rows.append({"step": e.step, **e.scalars})
                    if self.state == "starting":
                        self.state = "running"
                elif e.kind == "message":
                    notify(e.level if e.level in ("info", "warning", "error") else "info", e.message)
                elif e.kind == "finished":
                    self.param.update(state=e.state, error=e.message, result=e.data.get("result") or {})
                    if e.state == "cancelled" and not Path(self.run_dir).is_dir():  # its folder was discarded
                        self.run_dir = ""
                    notify("error" if e.state == "failed" else "success" if e.state in FINISHED_STATES else "info",
                           f"{self.kind}: {e.state}" + (f": {e.message}" if e.message else ""))
            if rows:
                self._add_rows(rows)
            self._notify_subscribers(events)
            self.refresh()

    def _follow_queue(self) -> None:
        """While the job waits, its position moves (or it is admitted) without an event of its own."""
        if self.state == "queued":
            self.refresh()

    def _move_counters(self) -> bool:
        """Between refreshes (throttled while plots re-render): the step count and bar from the newest
        progress event, which the runner keeps (cheap)."""
        last = self.runner.last_progress
        if last is None or last.step <= self.step or self.state not in ("starting", "running"):
            return False
        self.param.update(step=last.step, total=last.total, state="running")
        self.refresh()
        return True

    def _notify_subscribers(self, events: list[JobEvent]) -> None:
        for fn in self._subscribers:
            try:
                fn(events, self)
            except Exception as exc:  # a broken result view must not stop the stream
                log.exception("job panel subscriber failed")
                notify("warning", f"Could not update a view: {type(exc).__name__}: {exc}")

    def _add_rows(self, rows: list[dict[str, float]]) -> None:
        frame = pd.DataFrame(rows)
        names = [c for c in frame.columns if c != "step"]
        if self._buffer is None or list(self._buffer.data.columns) != list(frame.columns):
            self._buffer = hv.streams.Buffer(frame.iloc[:0], length=PLOT_POINTS, index=False)
            self.plot_area.objects = [pn.pane.HoloViews(series_plot(self._buffer, names, self.kind),
                                                        sizing_mode="stretch_width", linked_axes=False)]
        self._buffer.send(frame)
        self._rows = (self._rows + rows)[-self._table_rows:]
        set_table(self.table, pd.DataFrame(self._rows))
        self.table.visible = True

    def _reset(self) -> None:
        self._buffer, self._rows = None, []
        self.plot_area.objects = []
        self.table.visible = False
        self.param.update(state="idle", step=0, total=0, result={}, error="")

    # ------------------------------------------------------------------------------------- display
    def status_text(self) -> str:
        """The status line: state, step of total, run directory, error."""
        lines = [f"**{self.state.capitalize()}** · step {self.step}/{self.total or '?'}"]
        if self.error:
            lines.append(f"⚠ {self.error}")
        if self.run_dir:
            lines.append(f"Run: `{Path(self.run_dir).name}`")
        return "  \n".join(lines)

    def refresh(self) -> None:
        """Buttons, progress bar and status line from the current state."""
        running, queued = self.runner.running, self.runner.queue_position()
        if self.state == "queued" and queued is None and running:  # admitted
            self.state = "starting"
        resumable = bool(self.run_dir) and self.state in ("stopped", "interrupted", "failed", "cancelled") \
            and not running
        self.controls.enable(start=not running and self._can_start(), stop=running and self.state != "stopping",
                             resume=resumable)
        self.controls.show_progress(self.step, self.total, self.state)
        self.controls.status.object = self.status_text() if self.state != "idle" else self.controls.status.object
        self.controls.show_queued(queued, self.run_dir)

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(self.controls, self.plot_area, self.table, sizing_mode="stretch_width")
