"""Event pump: moves a background job's queued events into a session's page, throttled.

A worker thread only queues plain events; a per-session periodic callback (``pump``) drains them and hands
the batch to the session document's next-tick callback, where ``apply(events)`` may change widgets and
HoloViews streams. Re-rendering plots costs tens of ms on a busy machine, so full refreshes happen at most
every ``MIN_REFRESH_S``..``MAX_REFRESH_S`` (never more than 1 / (1 + ``REFRESH_DUTY``) of the server's time);
in between, ``between()`` may move cheap counters (at most every ``COUNTER_PERIOD_S``).

Every per-session timer of the apps goes through ``session_timer``: Panel counts an ordinary periodic
callback as the server being busy and, at its start and end, sets the busy indicator of *every* open
session, so N pages with a 4 Hz timer each cost O(N^2) updates a second (with 30 pages open the server
did nothing else).
"""

from __future__ import annotations

import contextlib
import time
from functools import partial
from typing import Any, Callable

import panel as pn
from panel.io.callbacks import PeriodicCallback

DRAIN_PERIOD_MS = 250
MIN_REFRESH_S = 1.0
MAX_REFRESH_S = 6.0
REFRESH_DUTY = 19.0
COUNTER_PERIOD_S = 1.0


def frozen_models(doc) -> contextlib.AbstractContextManager:
    """Bokeh ``doc``'s model graph frozen while a batch is applied: one recomputation of the document's
    models at the end instead of one per refreshed plot (each plot of a training page refreshes on the same
    stream; the recomputations were 60 % of a refresh, and a refresh held up every other page's events)."""
    models = getattr(doc, "models", None)
    return models.freeze() if hasattr(models, "freeze") else contextlib.nullcontext()


def session_timer(callback: Callable[[], Any], period_ms: int) -> PeriodicCallback:
    """``pn.state.add_periodic_callback(callback, period_ms)`` (scoped to, and stopped with, the current
    session) that neither marks the server busy nor logs each call."""
    timer = pn.state.add_periodic_callback(callback, period=period_ms, start=False)
    timer._background = True  # Panel 1.9-1.10: PeriodicCallback(background=True), which add_periodic_callback cannot pass
    timer.log = False
    timer.start()
    return timer


class EventPump:
    """``drain() -> events``; ``apply(events)`` (in the document's next tick); ``busy()``: the job still runs
    (refreshes are throttled only then); ``between() -> bool``: cheap update between refreshes (True when it
    changed something); ``idle()``: called when a pump found no events. Outside a server session (tests)
    ``pump()`` applies inline and nothing is scheduled."""

    def __init__(self, drain: Callable[[], list[Any]], apply: Callable[[list[Any]], None],
                 busy: Callable[[], bool] = lambda: False, between: Callable[[], bool] | None = None,
                 idle: Callable[[], None] | None = None, period_ms: int = DRAIN_PERIOD_MS):
        self._drain, self._apply, self._busy = drain, apply, busy
        self._between, self._idle = between, idle
        self._doc = pn.state.curdoc
        self._next_refresh = 0.0
        self._counter_at = 0.0
        self.callback = None
        if self._doc is not None and self._doc.session_context is not None:
            self.callback = session_timer(self.pump, period_ms)

    def _disconnected(self) -> bool:
        """The page is gone (closed tab, session awaiting clean-up): pushing to it would only log
        ``WebSocketClosedError`` tracebacks, so pumping pauses until the session is destroyed."""
        context = self._doc.session_context if self._doc is not None else None
        session = getattr(context, "_session", None) if context is not None else None
        if context is None or session is None:
            return False
        return bool(getattr(context, "destroyed", False)) or getattr(session, "connection_count", 1) == 0

    def pump(self) -> None:
        """The periodic callback: apply what was queued since the last refresh (or move the counters)."""
        if self._disconnected():
            return
        now = time.monotonic()
        if now < self._next_refresh and self._busy():
            if self._between is not None and now - self._counter_at >= COUNTER_PERIOD_S and self._between():
                self._counter_at = now
            return
        events = self._drain()
        if not events:
            if self._idle is not None:
                self._idle()
            return
        if self._doc is not None and self._doc.session_context is not None:
            self._next_refresh = now + MIN_REFRESH_S  # one batch in flight at a time
            self._doc.add_next_tick_callback(partial(self.apply, events))
        else:
            self.apply(events)

    def apply(self, events: list[Any]) -> None:
        """Apply a batch now and set when the next may come (``REFRESH_DUTY`` x the time it took)."""
        if self._disconnected():
            return
        started = time.monotonic()
        try:
            with frozen_models(self._doc):
                self._apply(events)
        finally:
            spent = time.monotonic() - started
            self._next_refresh = time.monotonic() + min(MAX_REFRESH_S, max(MIN_REFRESH_S, REFRESH_DUTY * spent))

    def flush(self) -> None:
        """Apply everything queued now, whatever the throttle (a job's end, tests, benchmarks)."""
        self._next_refresh = 0.0
        self.pump()

    def stop(self) -> None:
        """End the periodic callback (the session is gone)."""
        if self.callback is not None:
            self.callback.stop()
