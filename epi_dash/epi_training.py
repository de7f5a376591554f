"""The EPI training views: the status line and epoch table of a run, and the live Training tab (entropy,
statistics against their targets, constraints, penalty and multipliers) over a ``LiveRun``'s streams."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import pandas as pd
import panel as pn

from .live import LiveRun, Progress
from .panels.job import cancel_button, format_duration, queued_markdown
from .panels.results import fitted_table, set_table, table_height
from .views import constraint_legend_html, constraint_view, entropy_view, penalty_view, statistic_view

EPOCH_COLUMNS = ["epoch", "iter", "test", "min p", "c", "entropy"]


def epoch_table_height(epochs: int) -> int:
    """Pixel height of the epoch table: header and rows up to five epochs, then 170 px with a scrollbar."""
    return table_height(epochs)


def epoch_frame(epochs: list[dict]) -> pd.DataFrame:
    """One row per finished epoch: its convergence test, smallest p-value, penalty c and entropy."""
    rows = [{"epoch": r["epoch"], "iter": r["iteration"], "test": r["converged"],
             "min p": min(r["p_values"]) if r["p_values"] else float("nan"), "c": r["c"],
             "entropy": r["entropy"]} for r in epochs]
    return pd.DataFrame(rows, columns=EPOCH_COLUMNS)


def status_markdown(st: Progress, analysing: bool = False, startup: str | None = None,
                    queued: tuple[int, int] | None = None) -> str:
    """The status line: state, epoch and iteration counts, elapsed time, the last test, entropy, why it
    failed or was interrupted, the run directory. ``queued``: (position, number waiting) of a training
    that waits for one of the server's training slots (``epi_dash.scheduler``)."""
    if queued is not None:
        return queued_markdown(queued, "training", st.run_dir)
    last = st.epochs[-1] if st.epochs else None
    if last is None:
        test = "no test yet"
    elif last["converged"]:
        test = f"epoch {last['epoch']}: **converged** ✓"
    else:
        test = f"epoch {last['epoch']}: not converged (min p = {min(last['p_values']):.2g})"
    busy = " · analysing q (mode, Hessian)…" if analysing else ""
    lines = [f"**{st.status.capitalize()}**{busy} · epoch {max(st.epoch, 1) if st.iteration else 0}/{st.num_epochs}"
             f" · iteration {st.iteration}/{st.iterations_total} · elapsed {format_duration(st.wall_time)}",
             f"Convergence test: {test}"]
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
    return "  \n".join(lines)


class TrainingView:
    """The Training tab: ``training_area`` holds the live plots of the current ``LiveRun`` (``show(live)``),
    ``epoch_table`` the finished epochs (``show_epochs``), ``cancel_button`` (shown while the training
    waits in the server's queue) calls ``on_cancel``."""

    def __init__(self, explained: Callable[..., pn.viewable.Viewable], explain: bool = False,
                 on_cancel: Callable[[], None] | None = None):
        self._explained, self.explain = explained, explain
        self.cancel_button = cancel_button("training", on_cancel)
        # all six columns in the 380 px status column: fitted widths, no sort arrows (rows are in epoch order)
        self.epoch_table = fitted_table(epoch_frame([]), visible=False,
                                        formatters={"test": {"type": "tickCross"},
                                                    "min p": {"type": "money", "precision": 3},
                                                    "entropy": {"type": "money", "precision": 3}})
        self.training_area = pn.Column(sizing_mode="stretch_width")
        self._shown: tuple[int, int] | None = None

    def show_state(self, live: LiveRun, controls, analysing: bool = False, startup: str | None = None,
                   queued: tuple[int, int] | None = None) -> None:
        """``live``'s state in the job ``controls`` (bar, status line), the Cancel button while ``queued``
        (position, number waiting) and the epoch table."""
        st = live.state
        controls.show_progress(st.iteration, st.iterations_total, st.status)
        controls.status.object = status_markdown(st, analysing, startup, queued)
        self.cancel_button.visible = queued is not None
        self.show_epochs(live)

    def show_epochs(self, live: LiveRun) -> None:
        shown = (id(live), len(live.state.epochs))
        if self._shown != shown:
            self._shown = shown
            set_table(self.epoch_table, epoch_frame(live.state.epochs))
        self.epoch_table.visible = bool(live.state.epochs)

    def show(self, live: LiveRun, status: pn.viewable.Viewable, progress_bar: pn.viewable.Viewable) -> None:
        """Plots of ``live`` beside the ``status`` line, ``progress_bar`` and the epoch table."""
        info = live.info
        entropy = pn.pane.HoloViews(entropy_view(live.progress, live.epochs), sizing_mode="stretch_width")
        stats = [pn.pane.HoloViews(statistic_view(live.progress, info, k), sizing_mode="stretch_width")
                 for k in range(len(info.statistic_names))]
        c_view, eta_view = penalty_view(live.progress, info)
        # the help column beside each row (tutorial) leaves ~60 % of the width: fewer plots per row there
        if self.explain:
            stat_columns, constraint_columns = 1, 2
            entropy_row = pn.Column(status, self.cancel_button, progress_bar, entropy, self.epoch_table,
                                    sizing_mode="stretch_width")
        else:
            stat_columns, constraint_columns = 2, 3
            entropy_row = pn.Row(entropy, pn.Column(status, self.cancel_button, progress_bar, self.epoch_table,
                                                    width=380),
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
