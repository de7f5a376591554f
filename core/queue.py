"""A fair queue of trainings: at most ``max_concurrent`` run at once, round-robin between users.

UI-free and thread-safe. A job is submitted with its owner; ``admit`` (called on submit, on finish and
on cancel) starts waiting jobs while slots are free, taking users in turn so one user's many jobs do
not starve another's single job, and never more than ``per_user`` running jobs for one user.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Callable

from .errors import InputError


@dataclass
class QueuedJob:
    """One submitted job: ``start`` is called (outside the lock) when the job is admitted."""

    job_id: str
    owner: str
    start: Callable[[], None]
    state: str = "queued"  # queued | running | done | cancelled


@dataclass
class FairQueue:
    """Admits at most ``max_concurrent`` jobs at once, ``per_user`` per owner, round-robin by owner."""

    max_concurrent: int = 1
    per_user: int | None = None
    _waiting: "OrderedDict[str, deque[QueuedJob]]" = field(default_factory=OrderedDict, repr=False)
    _running: dict = field(default_factory=dict, repr=False)
    _served: dict = field(default_factory=dict, repr=False)  # owner -> tick of their last admission
    _tick: int = 0
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def submit(self, job_id: str, owner: str, start: Callable[[], None]) -> QueuedJob:
        """Queue a job and admit whatever may run now; returns the job (its ``state`` says which)."""
        job = QueuedJob(job_id, owner, start)
        with self._lock:
            self._waiting.setdefault(owner, deque()).append(job)
        self.admit()
        return job

    def order(self) -> list[QueuedJob]:
        """The waiting jobs in the order they would be admitted: the owner served longest ago first."""
        with self._lock:
            queues = {o: deque(q) for o, q in self._waiting.items() if q}
            served = dict(self._served)
        out: list[QueuedJob] = []
        tick = self._tick
        while queues:
            owner = min(queues, key=lambda o: served.get(o, -1))
            out.append(queues[owner].popleft())
            tick += 1
            served[owner] = tick
            if not queues[owner]:
                del queues[owner]
        return out

    def position(self, job_id: str) -> tuple[int, int] | None:
        """(1-based position, number waiting) of a queued job, or None when it is not waiting."""
        waiting = self.order()
        for n, job in enumerate(waiting, 1):
            if job.job_id == job_id:
                return n, len(waiting)
        return None

    def cancel(self, job_id: str, user: str, admin: bool = False) -> None:
        """Remove a waiting job. Only its owner (or an admin) may; raises InputError("job") otherwise."""
        with self._lock:
            for owner, q in self._waiting.items():
                for job in q:
                    if job.job_id == job_id:
                        if owner != user and not admin:
                            raise InputError("job", f"{job_id} belongs to {owner}, not to {user}")
                        q.remove(job)
                        job.state = "cancelled"
                        return
        raise InputError("job", f"{job_id} is not queued")

    def finished(self, job_id: str) -> None:
        """Free a running job's slot and admit the next waiting jobs."""
        with self._lock:
            job = self._running.pop(job_id, None)
            if job is not None:
                job.state = "done"
        self.admit()

    def running(self) -> list[QueuedJob]:
        with self._lock:
            return list(self._running.values())

    def admit(self) -> list[QueuedJob]:
        """Start waiting jobs while slots are free, one owner at a time in turn; returns those started."""
        started: list[QueuedJob] = []
        with self._lock:
            while len(self._running) < self.max_concurrent:
                job = self._next_locked()
                if job is None:
                    break
                job.state = "running"
                self._running[job.job_id] = job
                started.append(job)
        for job in started:
            job.start()
        return started

    def _next_locked(self) -> QueuedJob | None:
        ready = [o for o, q in self._waiting.items() if q and (
            self.per_user is None or sum(j.owner == o for j in self._running.values()) < self.per_user)]
        if not ready:
            return None
        owner = min(ready, key=lambda o: self._served.get(o, -1))  # served longest ago (or never) first
        self._tick += 1
        self._served[owner] = self._tick
        return self._waiting[owner].popleft()
