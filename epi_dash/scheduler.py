"""The one scheduler of a server process: which trainings run now, which wait, and the server's limits.

Every session's ``TrainingRunner`` submits through :func:`scheduler` (created on first use from the
``EPI_DASH_MAX_*`` environment, which ``epi-dash serve --max-...`` sets). It holds one
``core.queue.FairQueue`` (at most K trainings at once in this process, ``max_per_user`` per user, the rest
waiting, users served in turn) and the ``core.limits.ServerLimits`` a request is checked against. Trainings
on another executor (a Dask scheduler) take no local slot but count towards a user's ``max_runs_per_user``.
"""

from __future__ import annotations

import argparse
import logging
import os
import threading
from typing import Callable

from core.errors import InputError
from core.limits import ServerLimits, env_name
from core.queue import FairQueue, QueuedJob

from .users import is_admin

log = logging.getLogger(__name__)


class Scheduler:
    """Admission (``submit``/``finished``), waiting positions, cancel (owner or admin) and limit checks."""

    def __init__(self, limits: ServerLimits | None = None):
        self.limits = limits if limits is not None else ServerLimits()
        self.queue = FairQueue(max_concurrent=self.limits.concurrency, per_user=self.limits.max_per_user)
        self._remote: dict[str, str] = {}  # job id -> owner: trainings on another executor
        self._on_cancel: dict[str, Callable[[str], None]] = {}
        self._lock = threading.Lock()

    @property
    def max_concurrent(self) -> int:
        """K: trainings run at once in this process."""
        return self.queue.max_concurrent

    def runs_of(self, owner: str) -> int:
        """``owner``'s trainings queued or running (here or on another executor)."""
        with self._lock:
            remote = sum(o == owner for o in self._remote.values())
        local = self.queue.running() + self.queue.order()
        return remote + sum(job.owner == owner for job in local)

    def check(self, owner: str, batch_size: int, iterations: int, parameters: int | None = None) -> None:
        """Refuse (InputError naming the field and the limit) a training this server does not accept."""
        self.limits.check_training(batch_size, iterations, parameters, runs_of_user=self.runs_of(owner))

    def submit(self, job_id: str, owner: str, start: Callable[[], None],
               on_cancel: Callable[[str], None] | None = None) -> QueuedJob:
        """Queue a training; ``start()`` is called when it is admitted (now, if a slot is free, or from the
        thread of the training that frees one), ``on_cancel(user)`` when it is cancelled while waiting."""
        if on_cancel is not None:
            with self._lock:
                self._on_cancel[job_id] = on_cancel

        def guarded() -> None:
            with self._lock:
                self._on_cancel.pop(job_id, None)
            try:
                start()
            except Exception:  # a start that fails must not keep its slot nor break the caller's thread
                log.exception("training %s could not start", job_id)
                self.queue.finished(job_id)

        return self.queue.submit(job_id, owner, guarded)

    def submit_remote(self, job_id: str, owner: str) -> None:
        """Record a training that runs on another executor (no local slot; counts for its owner)."""
        with self._lock:
            self._remote[job_id] = owner

    def position(self, job_id: str) -> tuple[int, int] | None:
        """(position, number waiting) of a waiting training; None once it runs or ended."""
        return self.queue.position(job_id)

    def jobs(self) -> list[dict]:
        """Every training this process knows of, for an admin view: job id, owner, state ("running",
        "queued", "remote") and the waiting position (1-based; None unless queued)."""
        with self._lock:
            remote = dict(self._remote)
        rows = [{"job": j.job_id, "owner": j.owner, "state": "running", "position": None} for j in self.queue.running()]
        rows += [{"job": j.job_id, "owner": j.owner, "state": "queued", "position": n}
                 for n, j in enumerate(self.queue.order(), 1)]
        return rows + [{"job": job, "owner": owner, "state": "remote", "position": None} for job, owner in remote.items()]

    def cancel(self, job_id: str, user: str) -> None:
        """Remove a waiting training. Its owner or an admin may (InputError "job" otherwise, or when it is
        not waiting any more: then stop it instead)."""
        self.queue.cancel(job_id, user, admin=is_admin(user))
        with self._lock:
            callback = self._on_cancel.pop(job_id, None)
        if callback is not None:
            callback(user)

    def finished(self, job_id: str) -> None:
        """A training ended (any state): free its slot and admit the next. Idempotent."""
        with self._lock:
            self._remote.pop(job_id, None)
            self._on_cancel.pop(job_id, None)
        self.queue.finished(job_id)


_SCHEDULER: Scheduler | None = None
_CREATE = threading.Lock()


def scheduler() -> Scheduler:
    """This process's scheduler, created on first use from the environment (``ServerLimits.from_env``)."""
    global _SCHEDULER
    with _CREATE:
        if _SCHEDULER is None:
            try:
                limits = ServerLimits.from_env()
            except InputError as exc:  # a bad EPI_DASH_MAX_* value: said in the log, no limits
                log.error("%s: %s; this server runs without limits", exc.field, exc.message)
                limits = ServerLimits()
            _SCHEDULER = Scheduler(limits)
        return _SCHEDULER


def reset_scheduler(limits: ServerLimits | None = None) -> Scheduler:
    """Replace this process's scheduler (tests; ``None``: read the environment again on next use)."""
    global _SCHEDULER
    with _CREATE:
        _SCHEDULER = Scheduler(limits) if limits is not None else None
    return scheduler()


#: ``epi-dash serve`` flags -> (ServerLimits field, number type, help)
LIMIT_FLAGS: dict[str, tuple[str, type, str]] = {
    "--max-concurrent": ("max_concurrent", int, "trainings at once in each server process; the rest wait in a "
                                                "fair queue (default: one per CPU core)"),
    "--max-per-user": ("max_per_user", int, "of those, at most N for one user (default: no cap)"),
    "--max-batch-size": ("max_batch_size", int, "largest batch_size a training may ask for"),
    "--max-iterations": ("max_iterations", int, "most iterations (num_epochs x iters_per_epoch) of one training"),
    "--max-parameters": ("max_parameters", int, "most free model parameters (the dimension of q)"),
    "--max-wall-time": ("max_wall_time_s", float, "how long one training may run before it is stopped "
                                                  "(checkpointed; Resume continues it)"),
    "--max-runs-per-user": ("max_runs_per_user", int, "trainings one user may have queued or running at once"),
}


def _positive(kind: type) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            value = 0
        if value <= 0:
            raise argparse.ArgumentTypeError(f"a positive {'number' if kind is float else 'integer'}; got {text!r}")
        return value
    return parse


def add_limit_arguments(parser: argparse.ArgumentParser) -> None:
    """The server-limit flags of ``epi-dash serve`` (unset: no limit)."""
    group = parser.add_argument_group("queue and limits (per server process; a limit left unset: none)")
    for flag, (name, kind, text) in LIMIT_FLAGS.items():
        group.add_argument(flag, dest=name, type=_positive(kind), default=None,
                           metavar="SECONDS" if kind is float else "N", help=text)


def export_limits(args: argparse.Namespace, environ: dict | None = None) -> None:
    """Put the limit flags that were given into ``EPI_DASH_MAX_*`` (``environ``: default os.environ), where
    every server process (``--num-procs``) and app reads them (:func:`scheduler`)."""
    env = os.environ if environ is None else environ
    for name, _kind, _text in LIMIT_FLAGS.values():
        value = getattr(args, name, None)
        if value is not None:
            env[env_name(name)] = str(value)
