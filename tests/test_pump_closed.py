"""The event pump stops pushing to a page whose websocket is closed (no WebSocketClosedError tracebacks)."""

from __future__ import annotations

from types import SimpleNamespace

from epi_dash.panels import EventPump


def _pump_with_session(connections: int, destroyed: bool = False) -> tuple[EventPump, list]:
    applied: list = []
    queue = [1, 2, 3]
    pump = EventPump(lambda: [queue.pop(0)] if queue else [], applied.extend)
    session = SimpleNamespace(connection_count=connections)
    context = SimpleNamespace(_session=session, destroyed=destroyed)
    pump._doc = SimpleNamespace(session_context=context, add_next_tick_callback=lambda cb: cb())
    return pump, applied


def test_a_connected_page_gets_its_events():
    pump, applied = _pump_with_session(connections=1)
    pump.flush()
    assert applied == [1]


def test_a_closed_page_gets_nothing_pushed_and_keeps_its_queue():
    for connections, destroyed in ((0, False), (1, True)):
        pump, applied = _pump_with_session(connections, destroyed)
        pump.flush()
        pump.apply([9])
        assert applied == []
