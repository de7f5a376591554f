"""The run library: every job below a runs directory (EPI trainings, simulations, sweeps, ...) with its
kind, state and progress, newest first; ``on_open(path, kind)`` shows one. With sign-in a user sees and
opens only their own runs (admins: all; see ``epi_dash.library``)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Callable

import pandas as pd
import panel as pn

from core.errors import InputError
from core.runs import run_owner, scan_runs

from ..users import current_user, is_admin, may_control, require_control

JOB_COLUMNS = ["run", "kind", "state", "progress", "updated"]


def job_kind(meta: dict) -> str:
    """A run's kind: run.json's ``kind``; runs written before the job mechanism are EPI trainings."""
    return str(meta.get("kind") or ("epi" if "model" in meta else "?"))


def jobs_table(runs_dir: str | Path, kinds: list[str] | None = None, user: str | None = None) -> pd.DataFrame:
    """One row per run directory below ``runs_dir`` (newest first) that ``user`` (default: this session's)
    may see, only ``kinds`` if given; ``path`` hidden."""
    user = user or current_user()
    rows = []
    runs, damaged = scan_runs(runs_dir)
    for run in runs:
        kind = job_kind(run.meta)
        if (kinds is not None and kind not in kinds) or not may_control(user, run_owner(run.meta)):
            continue
        progress = run.meta.get("progress") or {}
        if progress:
            shown = f"{progress.get('step', 0)}/{progress.get('total') or '?'}"
        else:
            shown = str(run.meta.get("iterations", ""))
        try:
            updated = dt.datetime.fromtimestamp((run.path / "run.json").stat().st_mtime).strftime("%Y-%m-%d %H:%M:%S")
        except OSError:
            updated = ""  # removed while listing
        rows.append({"run": run.path.name, "kind": kind, "state": run.state, "progress": shown,
                     "updated": updated, "path": str(run.path)})
    if kinds is None and is_admin(user):
        for path, reason in damaged:
            rows.append({"run": path.name, "kind": "", "state": f"damaged: {reason}", "progress": "",
                         "updated": "", "path": str(path)})
    return pd.DataFrame(rows, columns=[*JOB_COLUMNS, "path"])


class JobLibrary(pn.viewable.Viewer):
    """A table of jobs (``kinds``: only these) with Refresh and Open (``on_open(path, kind)``)."""

    def __init__(self, runs_dir: str | Path, on_open: Callable[[str, str], None] | None = None,
                 kinds: list[str] | None = None, **params):
        super().__init__(**params)
        self.runs_dir, self.kinds, self.on_open = Path(runs_dir), kinds, on_open
        self.user = current_user()  # read in the session's thread
        self.table = pn.widgets.Tabulator(jobs_table(self.runs_dir, kinds, self.user), hidden_columns=["path"],
                                          selectable=1, show_index=False, disabled=True, layout="fit_columns",
                                          sizing_mode="stretch_width", height=240, pagination="local", page_size=20)
        self.refresh_button = pn.widgets.Button(label="Refresh", icon="refresh", width=110)
        self.open_button = pn.widgets.Button(label="Open", color="primary", width=110, visible=on_open is not None)
        self.message = pn.pane.Markdown("", sizing_mode="stretch_width")
        self.refresh_button.on_click(lambda _e: self.refresh())
        self.open_button.on_click(lambda _e: self.open_selected())

    def refresh(self) -> None:
        self.table.value = jobs_table(self.runs_dir, self.kinds, self.user)

    def open_selected(self) -> None:
        frame = self.table.value
        rows = [i for i in self.table.selection if i < len(frame)]
        if not rows:
            self.message.object = "⚠️ Select a run first."
            return
        path, kind = frame["path"].iloc[rows[0]], frame["kind"].iloc[rows[0]]
        state = str(frame["state"].iloc[rows[0]])
        if state.startswith("damaged"):
            self.message.object = f"⚠️ **{Path(path).name}** cannot be opened: it is {state}."
            return
        try:
            require_control(path, self.user)
        except InputError as exc:
            self.message.object = f"⚠️ {exc.field}: {exc.message}"
            return
        self.message.object = f"Opened **{Path(path).name}**."
        if self.on_open is not None:
            self.on_open(path, kind)

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(pn.Row(self.refresh_button, self.open_button), self.table, self.message,
                         sizing_mode="stretch_width")
