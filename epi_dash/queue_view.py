"""The server's queue (issue 28): the jobs of this server process's scheduler (``scheduler().jobs()``):
EPI trainings and every other scheduled job (a sweep, an app's simulation or training), each with its run,
owner, state (running, queued, remote: on a Dask scheduler) and waiting position; a queued one that is
yours (any, for an admin) has a Cancel cell. An admin sees every user's jobs; another user sees their own
and only the number of the others'. The card is built when first opened and refreshed every few seconds
while it is open (and on Refresh): an arriving page pays for an empty, collapsed card only.
"""

from __future__ import annotations

from typing import Callable

import pandas as pd
import panel as pn
import param

from core.errors import InputError

from .panels.pump import session_timer
from .panels.results import fitted_table, set_table
from .scheduler import Scheduler, scheduler
from .users import current_user, is_admin, may_control

REFRESH_MS = 3000
CANCEL = "✖ Cancel"
COLUMNS = ["run", "owner", "state", "position", "action", "job"]


def run_name(job_id: str) -> str:
    """The run directory's name in a scheduler job id ("N:<run dir name>", "jobN:<run dir name>")."""
    return job_id.split(":", 1)[-1]


def visible_jobs(rows: list[dict], user: str, admin: bool) -> tuple[list[dict], int]:
    """The rows of ``Scheduler.jobs()`` that ``user`` sees (an admin: all), each with its ``run`` name and
    ``action`` (CANCEL for a queued job the user may cancel, else ""), and how many other rows are hidden."""
    shown = [{**row, "run": run_name(row["job"]),
              "action": CANCEL if row["state"] == "queued" and (admin or row["owner"] == user) else ""}
             for row in rows if admin or row["owner"] == user]
    return shown, len(rows) - len(shown)


class QueueState(param.Parameterized):
    """What ``user`` sees of a scheduler's jobs (``rows``, ``hidden``: the number of others' jobs)."""

    user = param.String(default="local", doc="whose view: sees own jobs, or every job when an admin")
    rows = param.List(default=[], doc="visible_jobs rows: job, owner, state, position, run, action")
    hidden = param.Integer(default=0, doc="jobs of other users, counted and not listed")

    def __init__(self, sched: Scheduler | None = None, **params):
        super().__init__(**params)
        self.sched = sched

    @property
    def admin(self) -> bool:
        return is_admin(self.user)

    def source(self) -> Scheduler:
        """The scheduler read: the one given, else this process's."""
        return self.sched if self.sched is not None else scheduler()

    def refresh(self) -> bool:
        """Read the scheduler's jobs again; returns whether what this user sees changed."""
        rows, hidden = visible_jobs(self.source().jobs(), self.user, self.admin)
        changed = (rows, hidden) != (self.rows, self.hidden)
        if changed:
            self.param.update(rows=rows, hidden=hidden)
        return changed

    def cancel(self, job_id: str) -> str:
        """Cancel the waiting job ``job_id`` (the user's own, or any for an admin); returns a line saying so.
        InputError naming ``job`` when it is another user's, running, or not in the queue any more."""
        jobs = {row["job"]: row for row in self.source().jobs()}
        row, name = jobs.get(job_id), run_name(job_id)
        if row is None:
            raise InputError("job", f"{name} is not in the queue any more")
        if not may_control(self.user, row["owner"]):
            raise InputError("job", f"{name} belongs to another user")
        if row["state"] != "queued":
            raise InputError("job", f"{name} is {row['state']}, not waiting: stop it on its page instead")
        self.source().cancel(job_id, self.user)
        self.refresh()
        return f"Cancelled {name} (it was waiting)."


class QueueView(pn.viewable.Viewer):
    """The "Server queue" card: collapsed and empty until first opened; then a table (Cancel cells), a line
    counting others' jobs, a Refresh button, and a refresh every ``refresh_ms`` while it is open."""

    def __init__(self, state: QueueState | None = None, notify: Callable[[str, str], None] | None = None,
                 refresh_ms: int = REFRESH_MS, **params):
        super().__init__(**params)
        self.state = state if state is not None else QueueState(user=current_user())
        self.notify = notify or (lambda level, text: None)
        self.refresh_ms = refresh_ms
        self.table: pn.widgets.Tabulator | None = None
        self.summary = pn.pane.Markdown("", sizing_mode="stretch_width", styles={"font-size": "12px"})
        self.card = pn.Card(title="Server queue", collapsed=True, sizing_mode="stretch_width")
        self.card.param.watch(self._on_collapsed, "collapsed")
        self._callback = None
        self._hooked = False  # the periodic refresh stops with the session
        self._doc = pn.state.curdoc

    # ------------------------------------------------------------------ actions
    def refresh(self) -> None:
        """Show the scheduler's jobs as they are now (the table is sent only when they changed)."""
        if self.state.refresh() or not self.summary.object:
            self._show()

    def cancel(self, job_id: str) -> None:
        """Cancel a waiting job; a refusal is a notification naming ``job``."""
        try:
            text = self.state.cancel(job_id)
        except InputError as exc:
            self.notify("error", f"{exc.field}: {exc.message}")
        else:
            self.notify("info", text)
        self._show()

    # ------------------------------------------------------------------ layout
    def _frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(self.state.rows, columns=COLUMNS)
        frame["position"] = frame["position"].map(lambda p: "" if p is None or pd.isna(p) else str(int(p)))
        return frame

    def _show(self) -> None:
        if self.table is None:
            return
        set_table(self.table, self._frame(), max_height=240)
        mine = "every user's jobs" if self.state.admin else "your jobs"
        others = "" if self.state.admin else \
            f" Other users: {self.state.hidden} job{'s' if self.state.hidden != 1 else ''} queued or running."
        self.summary.object = (f"{len(self.state.rows)} of {mine} in this server process's queue "
                               f"(at most {self.state.source().max_concurrent} run at once).{others}")

    def _max_concurrent(self) -> int:
        return self.state._scheduler().max_concurrent

    def _build(self) -> None:
        """The card's contents, on first opening."""
        self.state.refresh()
        self.table = fitted_table(self._frame(), hidden_columns=["job"], selectable=False,
                                  titles={"action": "", "position": "#"})
        self.table.on_click(self._on_click)
        refresh = pn.widgets.Button(label="Refresh", icon="refresh", width=110)
        refresh.on_click(lambda _e: self.refresh())
        self.card.objects = [self.summary, self.table, refresh]
        self._show()

    def _on_click(self, event) -> None:
        if event.column == "action" and event.row is not None and event.row < len(self.state.rows):
            row = self.state.rows[event.row]
            if row["action"]:
                self.cancel(row["job"])

    def _on_collapsed(self, event) -> None:
        if event.new:
            return self._stop_timer()
        if self.table is None:
            self._build()
        else:
            self.refresh()
        doc = self._doc
        if self._callback is None and doc is not None and doc.session_context is not None:
            self._callback = session_timer(self.refresh, self.refresh_ms)
            if not self._hooked:
                self._hooked = True
                pn.state.on_session_destroyed(lambda _ctx: self._stop_timer())

    def _stop_timer(self) -> None:
        if self._callback is not None:
            self._callback.stop()
            self._callback = None

    def __panel__(self) -> pn.viewable.Viewable:
        return self.card
