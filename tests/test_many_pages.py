"""What every open page costs the server must not grow with the number of pages open.

Panel counts an ordinary periodic callback (and each browser event) as the server being busy and sets the
header's busy spinner of every open page at each start and end: with 30 pages and a 4 Hz timer each, the
server spent all its time on it (measured: 9.5 CPU s per 10 s with 30 idle pages). The apps' timers run in
the background and their pages have no busy spinner."""

from __future__ import annotations

import asyncio

import panel as pn
from bokeh.document import Document
from panel.io.callbacks import PeriodicCallback
from panel.io.state import set_curdoc

from epi_dash.panels import session_timer
from epi_dash.workbench import create_workbench


def _busy_changes(timer: PeriodicCallback) -> tuple[list[bool], int]:
    """The server-wide busy flag's changes during one tick of ``timer``, and the ticks that ran."""
    seen: list[bool] = []
    watcher = pn.state.param.watch(lambda event: seen.append(event.new), "busy")
    try:
        asyncio.run(timer._periodic_callback())
    finally:
        pn.state.param.unwatch(watcher)
        timer.stop()
    return seen, timer.counter


def test_an_app_timer_tick_runs_without_marking_the_server_busy():
    ticks: list[int] = []
    ordinary = PeriodicCallback(callback=lambda: ticks.append(1), period=60_000)
    ordinary.start()  # outside a server session and an event loop: nothing is scheduled, the tick is ours
    changes, _ = _busy_changes(ordinary)
    assert changes == [True, False] and ticks == [1]  # Panel's default: every tick flips every page's spinner

    timer = session_timer(lambda: ticks.append(2), 60_000)
    changes, _ = _busy_changes(timer)
    assert changes == [] and ticks == [1, 2]
    assert timer.log is False


def test_a_workbench_page_registers_no_busy_spinner(tmp_path):
    before = len(pn.state._indicators)
    doc = Document()
    with set_curdoc(doc):
        page = create_workbench(runs_dir=tmp_path)
        page.server_doc(doc)
    assert page.busy_indicator is None
    assert len(pn.state._indicators) == before  # Panel updates each registered spinner on every busy flip
