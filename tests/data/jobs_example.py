"""Job functions for tests of core.jobs and core.executors (module-level, so Dask workers import them)."""

from __future__ import annotations

import time

from core.errors import InputError
from core.jobs import JobContext


def count(ctx: JobContext) -> dict:
    """Counts to ``settings["n"]``, one step per ``settings["delay"]`` s, checkpointing each step."""
    state = ctx.load_checkpoint() or {"done": 0, "total": 0}
    for k in range(state["done"], ctx.settings["n"]):
        time.sleep(ctx.settings.get("delay", 0.0))
        state = {"done": k + 1, "total": state["total"] + k}
        ctx.save_checkpoint(state)
        ctx.progress(k + 1, ctx.settings["n"], total_so_far=state["total"])
        ctx.check_stop()
    return {"sum": state["total"], "resumed": ctx.resumed}


def bad_input(ctx: JobContext) -> dict:
    """Fails like a job given bad settings."""
    raise InputError("budget", "must be > 0; got 0")


def square(x: float) -> float:
    return x * x
