"""The one scheduler of a server process: which jobs run now, which wait, and the server's limits.

Every long job of a session submits through :func:`scheduler` (created on first use from the
``EPI_DASH_MAX_*`` environment, which ``epi-dash serve --max-...`` sets): EPI trainings (``TrainingRunner``,
checked with :meth:`Scheduler.check`), and every other job, a data set's simulation, an estimator's training,
a sweep (``epi_dash.scheduled_job.ScheduledJobRunner``, checked with :meth:`Scheduler.check_job`). It holds one
``core.queue.FairQueue`` (at most K jobs at once in this process, ``max_per_user`` per user, the rest
waiting, users served in turn) and the ``core.limits.ServerLimits`` a request is checked against. Trainings
on another executor (a Dask scheduler) take no local slot but count towards a user's ``max_runs_per_user``.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from core.errors import InputError
from core.limits import ServerLimits, env_name
from core.queue import FairQueue, QueuedJob
from core.runs import discard_run_dir

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

    def check_job(self, owner: str) -> None:
        """Refuse (InputError "runs", naming ``max_runs_per_user``) one more job of any kind for ``owner``;
        EPI's own limits (batch size, iterations, parameters) are :meth:`check`'s."""
        self.limits.check_runs(self.runs_of(owner), what="jobs (trainings, simulations, sweeps)")

    def wall_clock(self, on_limit: Callable[[float], None]) -> threading.Timer | None:
        """A started daemon timer calling ``on_limit(max_wall_time_s)`` once a job has run that long; None
        without that limit. The job cancels it when it ends."""
        limit = self.limits.max_wall_time_s
        if limit is None:
            return None
        timer = threading.Timer(limit, on_limit, args=(limit,))
        timer.daemon = True
        timer.start()
        return timer

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


_TICKETS = itertools.count(1)


class Ticket:
    """One job's place with a scheduler, from its submission to its end (a runner holds one per job): its
    id, owner and queue entry, its cancel while it waits, the server's wall clock on it, and its release."""

    def __init__(self, sched: Scheduler, owner: str, run_dir: str | Path):
        self.sched, self.owner = sched, owner
        self.job_id = f"{next(_TICKETS)}:{Path(run_dir).name}"
        self.job: QueuedJob | None = None
        self._timer: threading.Timer | None = None

    @property
    def queued(self) -> bool:
        """True while the job waits for a slot."""
        job = self.job
        return job is not None and job.state == "queued"

    def position(self) -> tuple[int, int] | None:
        """(position, number waiting) while the job waits; else None."""
        return self.sched.position(self.job_id) if self.queued else None

    def submit(self, start: Callable[[], None], on_cancel: Callable[[str], None]) -> None:
        """Queue the job (:meth:`Scheduler.submit`)."""
        self.job = self.sched.submit(self.job_id, self.owner, start, on_cancel)

    def wait_turn(self, stop: threading.Event, poll_s: float = 0.25) -> bool:
        """Queue the job and block this worker thread until it is admitted (True; ``release()`` it when it
        ends) or until ``stop`` is set or the job is cancelled (the queue card) while it waits (False: it left
        the queue)."""
        admitted, cancelled = threading.Event(), threading.Event()
        self.submit(start=admitted.set, on_cancel=lambda _user: cancelled.set())
        while not admitted.wait(poll_s):
            if cancelled.is_set():
                return False
            if stop.is_set():
                try:
                    self.sched.cancel(self.job_id, self.owner)
                    return False
                except InputError:  # admitted meanwhile
                    admitted.wait()
        return True

    def submit_remote(self) -> None:
        """The job runs on another executor (:meth:`Scheduler.submit_remote`)."""
        self.sched.submit_remote(self.job_id, self.owner)

    def cancel(self, user: str, what: str = "job") -> None:
        """Take the waiting job out of the queue: its owner or an admin (``user``) may; an InputError "job"
        otherwise, or when it does not wait (any more)."""
        if not self.queued:
            raise InputError("job", f"this session's {what} is not queued (Stop ends a running one)")
        self.sched.cancel(self.job_id, user)

    def cancelled(self, user: str, run_dir: str | Path, new: bool) -> str:
        """After a cancel by ``user``: a new job's reserved folder is discarded (a resumed one's is kept);
        returns what its end says."""
        if new:
            try:
                discard_run_dir(run_dir)  # empty, or only its owner's run.json
            except OSError:
                pass
        return "cancelled while queued" + ("" if user == self.owner else f" by {user}")

    def start_wall_clock(self, on_limit: Callable[[float], None]) -> None:
        """Admitted: ``on_limit(max_wall_time_s)`` once it has run that long (:meth:`Scheduler.wall_clock`)."""
        self._timer = self.sched.wall_clock(on_limit)

    def release(self) -> None:
        """The job ended (any state): stop its wall clock and free its slot (idempotent)."""
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        self.sched.finished(self.job_id)


@contextmanager
def slot_for(sched: Scheduler, owner: str, name: str, stop: threading.Event,
             on_waiting: Callable[[], None] = lambda: None) -> Iterator[Ticket | None]:
    """A job of ``owner`` run from a worker thread: refused past ``max_runs_per_user`` (InputError, before
    anything waits), else ``on_waiting()`` and a wait for a slot in the fair queue; yields its Ticket once
    admitted (None if ``stop`` was set or it was cancelled while waiting) and frees the slot however the
    block ends."""
    sched.check_job(owner)
    ticket = Ticket(sched, owner, name)
    on_waiting()
    if not ticket.wait_turn(stop):
        yield None
        return
    try:
        yield ticket
    finally:
        ticket.release()


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
    "--max-concurrent": ("max_concurrent", int, "jobs (trainings, simulations, sweeps) at once in each server "
                                                "process; the rest wait in a fair queue (default: one per CPU core)"),
    "--max-per-user": ("max_per_user", int, "of those, at most N for one user (default: no cap)"),
    "--max-batch-size": ("max_batch_size", int, "largest batch_size a training may ask for"),
    "--max-iterations": ("max_iterations", int, "most iterations (num_epochs x iters_per_epoch) of one training"),
    "--max-parameters": ("max_parameters", int, "most free model parameters (the dimension of q)"),
    "--max-wall-time": ("max_wall_time_s", float, "how long one job may run before it is stopped "
                                                  "(checkpointed; Resume continues it)"),
    "--max-runs-per-user": ("max_runs_per_user", int, "jobs (of any kind) one user may have queued or running at "
                                                      "once"),
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
