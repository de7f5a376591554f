"""A ``core.jobs.JobRunner`` whose jobs go through the process's scheduler (``epi_dash.scheduler``).

Every start and resume of a ``JobPanel`` job (a data set's simulation, an estimator's training, ...) and of
a sweep is first checked against the server's per-user limit (``max_runs_per_user``: an InputError naming
it), then waits in the fair queue it shares with EPI trainings until it is admitted (``queued``,
``queue_position()``; ``cancel``/``stop`` takes it out: it ends "cancelled" and a new job's reserved
directory is discarded), and frees its slot when it ends in any state, a failed start included. A job that
runs longer than ``max_wall_time_s`` is stopped (it checkpoints), its end naming the limit.

    runner = ScheduledJobRunner()            # the process's scheduler; owner: users.current_user()
    runner.start(simulate, settings, run_dir, "toy.walk", owner=user)
    runner.queue_position()                  # (2, 3) while it waits, None once it runs
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from core.errors import InputError
from core.jobs import JobEvent, JobFunction, JobResult, JobRunner, describe_error

from .scheduler import Scheduler, Ticket, scheduler as process_scheduler
from .users import current_user


class ScheduledJobRunner(JobRunner):
    """One job at a time, admitted by ``scheduler`` (None: ``epi_dash.scheduler.scheduler()``) for ``owner``
    (None: ``users.current_user()`` when it is submitted); ``running`` is True while it waits or runs."""

    def __init__(self, scheduler: Scheduler | None = None, owner: str | None = None):
        super().__init__()
        self.scheduler, self.owner = scheduler, owner
        self._ticket: Ticket | None = None  # the current job's place with the scheduler
        self._pending = False  # submitted, and neither launched nor cancelled yet
        self._launching = threading.RLock()  # others see ``running`` only before or after a launch
        self._fresh = False  # the job being submitted is a new one (its directory is discarded if cancelled)
        self._stop_asked = False
        self._note = ""  # why the server stopped the job

    # --- state (any thread) ------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """True while the job waits for a slot or runs."""
        with self._launching:
            return self._pending or super().running

    @property
    def queued(self) -> bool:
        """True while the job submitted last waits for a slot."""
        return self._ticket is not None and self._ticket.queued

    def queue_position(self) -> tuple[int, int] | None:
        """(position, number waiting) while the job waits for a slot; else None."""
        return self._ticket.position() if self._ticket is not None else None

    # --- control -----------------------------------------------------------------------------------
    def start(self, function: JobFunction | str, settings: dict[str, Any], run_dir: str | Path, kind: str,
              objects: dict[str, Any] | None = None, owner: str | None = None) -> None:
        """Submit a new job (see ``JobRunner.start``); it starts once admitted."""
        self._fresh = True
        try:
            super().start(function, settings, run_dir, kind, objects=objects, owner=owner)
        finally:
            self._fresh = False

    def cancel(self, user: str | None = None) -> None:
        """Take the waiting job out of the queue (it ends "cancelled"). Only its owner or an admin may
        (``user``; default the session's user): an InputError "job" otherwise, or when it is not waiting."""
        if self._ticket is None:
            raise InputError("job", "this session's job is not queued (Stop ends a running one)")
        self._ticket.cancel(user or current_user())

    def stop(self) -> None:
        """Stop the running job after its current unit of work (it checkpoints); a waiting one is cancelled."""
        self._stop_asked = True
        if self.queued:
            try:
                self.cancel(self._ticket.owner)
                return
            except InputError:  # admitted meanwhile: stopped like a running one
                pass
        super().stop()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the job's turn, then for its end (tests, shutdown)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._pending and (deadline is None or time.monotonic() < deadline):
            time.sleep(0.02)
        with self._launching:  # a launch in progress has set its thread
            pass
        super().join(None if deadline is None else max(0.0, deadline - time.monotonic()))

    # --- scheduling ----------------------------------------------------------------------------------
    def _launch(self, body: Callable[[Callable[[JobEvent], None]], JobResult], run_dir: str | Path) -> None:
        """Check the limits and queue the job; the scheduler launches it (``_admitted``)."""
        if self.running:
            raise InputError("job", "a job is already running or queued in this session; stop it first")
        sched = self.scheduler or process_scheduler()
        owner = self.owner or current_user()
        sched.check_job(owner)
        run_dir, fresh = Path(run_dir), self._fresh
        ticket = self._ticket = Ticket(sched, owner, run_dir)
        self._stop_asked, self._note, self._pending = False, "", True
        self.result, self.last_progress, self.run_dir = None, None, run_dir
        ticket.submit(start=lambda: self._admitted(ticket, body, run_dir),
                      on_cancel=lambda user: self._cancelled(ticket, user, fresh, run_dir))

    def _admitted(self, ticket: Ticket, body: Callable[[Callable[[JobEvent], None]], JobResult],
                  run_dir: Path) -> None:
        """Its turn: run it in a thread, on the server's wall clock (a launch that fails frees the slot)."""
        with self._launching:
            self._pending = False
            ticket.start_wall_clock(self._wall_time_up)
            try:
                JobRunner._launch(self, lambda on_event: self._run(ticket, body, on_event), run_dir)
            except Exception as exc:  # no thread: said as the job's end, and the slot is freed
                ticket.release()
                self.result = JobResult(run_dir, "failed", error=describe_error(exc))
                self._queue.put(JobEvent("finished", state="failed", message=self.result.error))
                return
        if self._stop_asked:  # a stop asked while it was being admitted
            JobRunner.stop(self)

    def _run(self, ticket: Ticket, body: Callable[[Callable[[JobEvent], None]], JobResult],
             on_event: Callable[[JobEvent], None]) -> JobResult:
        """The job's thread: its end says why the server stopped it; the slot is freed however it ends."""
        def relay(event: JobEvent) -> None:
            if event.kind == "finished" and self._note and not event.message:
                event = replace(event, message=self._note)
            on_event(event)

        try:
            return body(relay)
        finally:
            ticket.release()

    def _wall_time_up(self, limit: float) -> None:
        """The job ran ``max_wall_time_s``: stop it (it checkpoints; Resume continues it)."""
        if not JobRunner.running.fget(self):
            return
        self._note = (f"stopped at this server's limit of {limit:g} s on one job's wall time (max_wall_time_s); "
                      "Resume continues it from its last checkpoint")
        JobRunner.stop(self)

    def _cancelled(self, ticket: Ticket, user: str, fresh: bool, run_dir: Path) -> None:
        """The waiting job was cancelled (by ``user``): a "finished" event in state "cancelled"."""
        self._pending = False
        self.result = JobResult(run_dir, "cancelled", error=ticket.cancelled(user, run_dir, new=fresh))
        self._queue.put(JobEvent("finished", state="cancelled", message=self.result.error))
