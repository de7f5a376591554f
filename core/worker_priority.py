"""Dask workers that yield the CPU: trainings on a server's own LocalCluster take what its pages leave.

A lab server runs its web server and its training workers on the same cores. At equal priority, 3 trainings
on 2 cores made 30 arriving pages wait 2 minutes; with the workers at a higher nice value the pages are
built first and the trainings take the rest (idle pages cost the server almost nothing)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from distributed import WorkerPlugin

from .executors import WORKER_NICE


def lower_priority(nice: int) -> None:
    """Raise this process's nice value to at least ``nice``: every thread (Linux keeps one per thread, and
    a new thread starts with its creator's)."""
    tasks = Path("/proc/self/task")
    threads = [int(t.name) for t in tasks.iterdir()] if tasks.is_dir() else [0]
    for tid in threads:
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            os.setpriority(os.PRIO_PROCESS, tid, max(nice, os.getpriority(os.PRIO_PROCESS, tid)))


class LowerPriority(WorkerPlugin):
    """``client.register_plugin(LowerPriority(10))``: every worker, present and future, at nice 10."""

    name = "epi-dash-lower-priority"

    def __init__(self, nice: int = WORKER_NICE):
        self.nice = nice

    def setup(self, worker) -> None:
        lower_priority(self.nice)
