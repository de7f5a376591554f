"""A page closed while the server was writing to it is no error: keep its traceback out of the log.

Closing a tab while a training streams to it races the server's writes: tornado's stream is found
closed during one message, and Panel 1.9's ``dispatch_tornado`` then raises ``WebSocketClosedError``
before it has stored the futures of the frames already sent, so asyncio later logs "Task exception was
never retrieved ... WebSocketClosedError" with two tracebacks. Nothing is lost (the page is gone; its
session is cleaned up as usual), so :func:`quiet_closed_pages` has the server's event loop drop exactly
those reports and pass every other one to asyncio's default handler.
"""

from __future__ import annotations

import asyncio
from typing import Any


def _is_closed_page(context: dict[str, Any]) -> bool:
    from tornado.iostream import StreamClosedError
    from tornado.websocket import WebSocketClosedError

    return isinstance(context.get("exception"), (WebSocketClosedError, StreamClosedError))


def closed_page_handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """asyncio exception handler: silent for a write to a closed page, the default for anything else."""
    if not _is_closed_page(context):
        loop.default_exception_handler(context)


def _install(_context: Any = None) -> None:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    if loop.get_exception_handler() is None:
        loop.set_exception_handler(closed_page_handler)


def quiet_closed_pages() -> None:
    """Install :func:`closed_page_handler` on the server's loop: now if it runs (an ``apps/*.py`` script
    in its session), else as each session is created (before ``pn.serve``; forked workers too)."""
    import panel as pn

    _install()
    if pn.state.curdoc is None and _install not in pn.state._on_session_created:
        pn.state.on_session_created(_install)
