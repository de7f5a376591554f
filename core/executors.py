"""Where work runs: in this process, or on Dask distributed (a LocalCluster on this machine, or a scheduler
that workers on other machines joined). UI-free.

Two shapes of work:

* many independent tasks (simulation chunks): :func:`map_tasks` runs ``fn(item)`` for each item and
  reports each result as it arrives;
* a long job (core.jobs): an executor's ``submit`` starts it and returns a handle with ``drain()``,
  ``stop()`` and ``running``. :class:`InProcessExecutor` runs it in a thread of this process (the
  embedded default, zero set-up); :class:`DaskExecutor` runs it on a Dask worker. A Dask job streams its
  events through its run directory (``events.jsonl``), which the handle tails, and is stopped through a
  STOP file there: so the runs directory must be one shared filesystem for the server and the workers.
  Files were chosen over Dask's pub/sub because the run directory must hold every event anyway (a run
  reopened later, a server restarted mid-run), and a file tail survives a reconnecting client.

``scheduler`` everywhere: ``None`` or ``"local"``: a LocalCluster of worker processes on this machine;
``"tcp://host:8786"``: that scheduler; ``"sync"``: inline in this process (tests, one-chunk jobs).
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from .errors import InputError
from .jobs import (CHECKPOINT_FILE, STOP_FILE, JobEvent, JobFunction, JobResult, JobRunner, function_name, read_events, request_stop,
                   resume_job, run_job)

#: how long a client waits for a remote scheduler before saying it cannot reach it
CONNECT_TIMEOUT_S = 10


#: the nice value of the LocalCluster workers that ``epi-dash serve --scheduler local`` starts (``--worker-nice``)
WORKER_NICE = 10

#: LocalCluster arguments for no dashboard, and the scheduler's small HTTP server (health, metrics) on a free
#: port rather than 8787 (Dask's default; taken by a second cluster on the machine, with a warning)
WITHOUT_DASHBOARD: dict[str, Any] = {"dashboard_address": ":0", "scheduler_kwargs": {"dashboard": False}}


def check_scheduler(scheduler: str | None) -> str | None:
    """``scheduler`` if it is None, "local", "sync" or a ``tcp://``/``tls://`` address; else an InputError."""
    if scheduler in (None, "local", "sync"):
        return scheduler
    if isinstance(scheduler, str) and scheduler.split("://")[0] in ("tcp", "tls", "inproc", "ucx") and "://" in scheduler:
        return scheduler
    raise InputError("scheduler", f"expected 'local', 'sync' or an address such as tcp://host:8786; got {scheduler!r}")


@contextmanager
def dask_client(scheduler: str | None = None, n_workers: int | None = None) -> Iterator[Any]:
    """A ``distributed.Client``: on a new LocalCluster of processes (``None``/"local"; closed on exit) or
    connected to ``scheduler`` (an InputError naming "scheduler" when it cannot be reached)."""
    from distributed import Client, LocalCluster

    scheduler = check_scheduler(scheduler)
    if scheduler == "sync":
        raise InputError("scheduler", "'sync' runs inline and has no Dask client")
    if scheduler in (None, "local"):
        workers = n_workers or max(1, min(os.cpu_count() or 1, 8))
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, silence_logs=logging.ERROR,
                          **WITHOUT_DASHBOARD) as cluster, Client(cluster) as client:
            yield client
        return
    try:
        client = Client(scheduler, timeout=f"{CONNECT_TIMEOUT_S}s")
    except (OSError, TimeoutError) as exc:
        raise InputError("scheduler", f"cannot reach the Dask scheduler at {scheduler}: {exc}") from exc
    try:
        yield client
    finally:
        client.close()


def close_quietly(closeable, owner_pid: int) -> None:
    """At exit, close a Dask cluster or client in the process that made it (forked server processes inherit
    the exit hook, not the object's threads). Workers that a signal to the whole process group already
    ended make Dask log connection tracebacks while it closes: a normal shutdown, so they are not shown."""
    if os.getpid() != owner_pid:
        return
    logging.getLogger("distributed").setLevel(logging.CRITICAL)
    try:
        closeable.close()
    except BaseException:  # noqa: BLE001 - a second Ctrl-C or a dead worker while exiting: nothing to keep
        pass


def map_tasks(fn: Callable[[Any], Any], items: Sequence[Any], scheduler: str | None = None,
              on_result: Callable[[int, Any], None] | None = None, client: Any = None,
              retries: int = 1) -> list[Any]:
    """``[fn(item) for item in items]``, run on Dask (or inline with ``scheduler="sync"``), calling
    ``on_result(index, value)`` as each task finishes (in completion order). ``fn`` must be a module-level
    function (workers import it). A task whose worker died is retried ``retries`` times on another; a
    task's own exception is raised here."""
    items = list(items)
    results: list[Any] = [None] * len(items)
    if check_scheduler(scheduler) == "sync" and client is None:
        for k, item in enumerate(items):
            results[k] = fn(item)
            if on_result is not None:
                on_result(k, results[k])
        return results
    if client is None:
        with dask_client(scheduler) as own:
            return map_tasks(fn, items, on_result=on_result, client=own, retries=retries)
    from distributed import as_completed

    futures = client.map(fn, items, pure=False, retries=retries)
    index = {f.key: k for k, f in enumerate(futures)}
    for future in as_completed(futures):
        k = index[future.key]
        results[k] = future.result()
        if on_result is not None:
            on_result(k, results[k])
    return results


class JobHandle:
    """A submitted job: ``drain()`` its events, ``stop()`` it, ``running``, ``result`` once it ended."""

    run_dir: Path

    @property
    def running(self) -> bool:
        raise NotImplementedError

    def drain(self) -> list[JobEvent]:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def result(self, timeout: float | None = None) -> JobResult:
        raise NotImplementedError


class _ThreadHandle(JobHandle):
    def __init__(self, runner: JobRunner, run_dir: Path):
        self.runner, self.run_dir = runner, run_dir

    @property
    def running(self) -> bool:
        return self.runner.running

    def drain(self) -> list[JobEvent]:
        return self.runner.drain()

    def stop(self) -> None:
        self.runner.stop()

    def result(self, timeout: float | None = None) -> JobResult:
        self.runner.join(timeout)
        if self.runner.result is None:
            raise TimeoutError(f"job in {self.run_dir} still running")
        return self.runner.result


class InProcessExecutor:
    """The embedded default: each job in a background thread of this process."""

    name = "in-process"

    def submit(self, function: JobFunction | str, settings: dict[str, Any], run_dir: str | Path, kind: str,
               resume: bool = False) -> JobHandle:
        runner = JobRunner()
        if resume:
            runner.resume(run_dir)
        else:
            runner.start(function, settings, run_dir, kind)
        return _ThreadHandle(runner, Path(run_dir))

    def close(self) -> None:
        pass


def _run_on_worker(function: str, settings: dict[str, Any], run_dir: str, kind: str, resume: bool) -> dict[str, Any]:
    """What a Dask worker runs: the job, writing its run directory (module-level so workers import it).
    A task that Dask runs again because its worker died continues from the job's last checkpoint."""
    if resume or (Path(run_dir) / CHECKPOINT_FILE).is_file():
        result = resume_job(run_dir, clear_stop=False)
    else:
        result = run_job(function, settings, run_dir, kind, clear_stop=False)
    return {"state": result.state, "result": result.result, "error": result.error}


class _DaskHandle(JobHandle):
    def __init__(self, future: Any, run_dir: Path):
        self.future, self.run_dir = future, run_dir
        self._offset = 0
        self._reported_loss = False

    @property
    def running(self) -> bool:
        return not self.future.done()

    def drain(self) -> list[JobEvent]:
        events, self._offset = read_events(self.run_dir, self._offset)
        if (not self.running and self.future.status == "error" and not self._reported_loss
                and not any(e.kind == "finished" for e in events)):
            # the worker died or the task could not start: say so; the run directory is kept for a resume
            self._reported_loss = True
            events.append(JobEvent("finished", state="failed", message=f"dask: {self.future.exception()}"))
        return events

    def stop(self) -> None:
        request_stop(self.run_dir)

    def result(self, timeout: float | None = None) -> JobResult:
        out = self.future.result(timeout=timeout)
        return JobResult(self.run_dir, out["state"], out["result"], out["error"])


class DaskExecutor:
    """Jobs on Dask distributed workers. ``scheduler``: "local" (a LocalCluster this executor starts and
    closes) or an address. Workers must see the run directory at the same path (a shared filesystem) and
    be able to import the job's function (and a user's model files: the same model path)."""

    name = "dask"

    def __init__(self, scheduler: str | None = "local", n_workers: int | None = None):
        self.scheduler = check_scheduler(scheduler)
        if self.scheduler == "sync":
            raise InputError("scheduler", "use InProcessExecutor for in-process jobs")
        self._context = dask_client(self.scheduler, n_workers=n_workers)
        self.client = self._context.__enter__()

    def submit(self, function: JobFunction | str, settings: dict[str, Any], run_dir: str | Path, kind: str,
               resume: bool = False) -> JobHandle:
        run_dir = Path(run_dir).resolve()
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / STOP_FILE).unlink(missing_ok=True)  # here, not on the worker: a stop may follow at once
        future = self.client.submit(_run_on_worker, function_name(function), settings, str(run_dir), kind,
                                    resume, pure=False, retries=1)
        return _DaskHandle(future, run_dir)

    def close(self) -> None:
        if self._context is not None:
            self._context.__exit__(None, None, None)
            self._context = None


def make_executor(scheduler: str | None = None) -> InProcessExecutor | DaskExecutor:
    """``None``: the embedded in-process executor; "local" or an address: a :class:`DaskExecutor`."""
    if scheduler is None or check_scheduler(scheduler) == "sync":
        return InProcessExecutor()
    return DaskExecutor(scheduler)
