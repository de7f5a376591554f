"""One job mechanism for every long task: EPI training, simulating a data set, training an estimator, a
sweep, a compensation run. UI-free: a UI only subscribes to the events.

A *job function* is a plain module-level function ``fn(ctx: JobContext) -> dict``. It reads
``ctx.settings``, resumes from ``ctx.load_checkpoint()``, reports ``ctx.progress(step, total, **scalars)``,
saves ``ctx.save_checkpoint(state)`` after each unit of work, calls ``ctx.check_stop()`` between units
(which raises :class:`JobStopped` once a stop was asked for) and returns a JSON-able result.

``run_job`` runs one in this thread (the CLI, a Dask worker); :class:`JobRunner` runs one in a background
thread and queues its events (a dashboard session). Both write the run directory:

``run.json``      kind, function ("module:qualname"), settings, state, process (host, pid), progress
                  ({step, total}), result, error, created/updated (Unix seconds), owner (who started it:
                  ``core.runs.OWNER_KEY``)
``events.jsonl``  one JSON object per line: the started, progress, message and finished events
``checkpoint.pt`` the job's own resume state (``torch.save`` of a dict), written atomically
``STOP``          present when a stop was asked for from another process (a Dask worker's job sees it)

States: queued, running, stopped, interrupted (its process is gone: see ``core.runs.run_state``),
finished (or converged, for EPI), failed. EPI training as a job: ``core.epi_job.train_epi``.
"""

from __future__ import annotations

import importlib
import json
import queue
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from .errors import InputError, TrainingError
from .runs import (OWNER_KEY, atomic_write, default_owner, json_default, process_identity, read_run_json,
                   recorded_owner, run_state)

JOB_STATES = ("queued", "running", "stopped", "interrupted", "finished", "failed")
#: a job that ended normally is "finished"; its function may return ``{"state": "converged"}`` (EPI)
FINISHED_STATES = ("finished", "converged")
STOP_FILE = "STOP"
EVENTS_FILE = "events.jsonl"
CHECKPOINT_FILE = "checkpoint.pt"
#: run.json's progress is rewritten at most this often (each rewrite is a whole-file atomic replace)
META_PERIOD_S = 1.0

JobFunction = Callable[["JobContext"], "dict[str, Any] | None"]


class JobStopped(Exception):
    """Raised by :meth:`JobContext.check_stop` once a stop was asked for; the job ends "stopped" (or a
    finer ``state`` its function names, e.g. EPI's "unhealthy": stopped by its health watch)."""

    def __init__(self, state: str = "stopped"):
        super().__init__(state)
        self.state = state


@dataclass
class JobEvent:
    """One thing a job reports. ``kind``: "started", "progress", "message", "finished", or a job's own kind
    (``JobContext.emit``: e.g. EPI's snapshots), which is queued for a live UI but not written to disk."""

    kind: str
    time: float = field(default_factory=time.time)
    step: int = 0
    total: int = 0
    scalars: dict[str, float] = field(default_factory=dict)
    message: str = ""
    level: str = "info"
    state: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    #: written to events.jsonl (so a job on another machine streams it): the standard kinds, and a job's own
    #: kinds emitted with ``persist=True`` (plain JSON data only)
    persist: bool = False

    def __post_init__(self) -> None:
        if self.kind in ("started", "progress", "message", "finished"):
            self.persist = True

    def to_json(self) -> str:
        return json.dumps(asdict(self), default=json_default, allow_nan=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> JobEvent:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


@dataclass
class JobResult:
    """How a job ended: ``state`` ("finished", "stopped", "failed"), its ``result`` dict, ``error`` text."""

    run_dir: Path
    state: str
    result: dict[str, Any] = field(default_factory=dict)
    error: str = ""

    def raise_for_state(self) -> JobResult:
        """``self``, or an error when the job failed (an InputError when the message names a field)."""
        if self.state == "failed":
            field_name, _, message = self.error.partition(": ")
            if message and " " not in field_name:
                raise InputError(field_name, message)
            raise TrainingError(self.error)
        return self


def function_name(fn: JobFunction | str) -> str:
    """``"module:qualname"`` of a module-level function (what run.json stores so a job can resume)."""
    if isinstance(fn, str):
        return fn
    qualname = getattr(fn, "__qualname__", "")
    if "<" in qualname or not getattr(fn, "__module__", None):
        raise InputError("function", f"a job function must be a module-level function; got {fn!r}")
    return f"{fn.__module__}:{qualname}"


def resolve_function(name: str) -> JobFunction:
    """The function named ``"module:qualname"``; an InputError naming it when it cannot be imported."""
    module_name, _, qualname = name.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise InputError("function", f"cannot import job function {name!r}: {exc}") from exc
    return obj


def describe_error(exc: BaseException) -> str:
    """One line naming the cause (``field: message`` for bad input), never a traceback."""
    if isinstance(exc, InputError):
        return f"{exc.field}: {exc.message}"
    if isinstance(exc, TrainingError):
        return str(exc)
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return "device: CUDA out of memory; use a smaller batch or the CPU"
    return f"{type(exc).__name__}: {exc}"


class JobContext:
    """What a running job sees: its ``run_dir``, ``settings``, whether it was ``resumed``, and the calls to
    report progress, checkpoint and notice a stop."""

    def __init__(self, run_dir: str | Path, settings: dict[str, Any], resumed: bool = False,
                 emit: Callable[[JobEvent], None] | None = None, stop_event: threading.Event | None = None,
                 objects: dict[str, Any] | None = None, owner: str | None = None):
        self.run_dir = Path(run_dir)
        self.settings = settings
        self.resumed = resumed
        #: who started the job (run.json's owner); a job writing run.json itself must keep it
        self.owner = owner
        #: in-process values the submitter hands the job (an object it already built, a hook); never
        #: persisted, so a job must still be able to run (and resume elsewhere) from ``settings`` alone
        self.objects: dict[str, Any] = dict(objects or {})
        self._emit = emit or (lambda _event: None)
        self._stop_event = stop_event or threading.Event()
        self.last_progress: JobEvent | None = None

    # ---------------------------------------------------------------------------- reporting
    def progress(self, step: int, total: int, message: str = "", **scalars: float) -> None:
        """Report ``step`` of ``total`` units done and the current value of named scalar series."""
        event = JobEvent("progress", step=int(step), total=int(total), message=message,
                         scalars={k: float(v) for k, v in scalars.items()})
        self.last_progress = event
        self._emit(event)

    def message(self, text: str, level: str = "info") -> None:
        """A line for the user (level "info", "warning" or "error")."""
        self._emit(JobEvent("message", message=text, level=level))

    def emit(self, kind: str, persist: bool = False, **data: Any) -> None:
        """A job-specific event for a live UI. ``persist``: also written to events.jsonl (plain JSON data
        only), so a UI streaming a job that runs elsewhere gets it too; else queued in-process only (arrays)."""
        self._emit(JobEvent(kind, data=data, persist=persist))

    # ---------------------------------------------------------------------------- stopping
    @property
    def stop_requested(self) -> bool:
        """Whether a stop was asked for (``JobRunner.stop`` in this process, or a STOP file from another)."""
        if not self._stop_event.is_set() and (self.run_dir / STOP_FILE).exists():
            self._stop_event.set()
        return self._stop_event.is_set()

    def check_stop(self) -> None:
        """Raise :class:`JobStopped` if a stop was asked for (call it between units of work)."""
        if self.stop_requested:
            raise JobStopped()

    # ---------------------------------------------------------------------------- files
    def path(self, name: str) -> Path:
        """A file in the run directory."""
        return self.run_dir / name

    def save_checkpoint(self, state: dict[str, Any]) -> None:
        """Replace ``checkpoint.pt`` atomically with ``state`` (tensors, arrays, numbers)."""
        atomic_write(self.path(CHECKPOINT_FILE), lambda p: torch.save(state, p))

    def load_checkpoint(self) -> dict[str, Any] | None:
        """The last saved state, or None for a fresh job (an InputError when the file is corrupt)."""
        f = self.path(CHECKPOINT_FILE)
        if not f.is_file():
            if self.resumed:
                self.message(f"no {CHECKPOINT_FILE} in {self.run_dir.name} (it stopped before its first "
                             "checkpoint): starting from the beginning", level="warning")
            return None
        try:
            return torch.load(f, map_location="cpu", weights_only=False)
        except Exception as exc:
            raise InputError("checkpoint", f"{CHECKPOINT_FILE} in {self.run_dir} is damaged (truncated or not a "
                                           f"checkpoint) and cannot be resumed; start a new run ({type(exc).__name__})") from exc


class _JobFiles:
    """Writes run.json and events.jsonl for one job execution."""

    def __init__(self, run_dir: Path, meta: dict[str, Any]):
        self.run_dir = run_dir
        self.meta = meta
        self._written_at = 0.0

    def write_meta(self, **changes: Any) -> None:
        """Update the job's fields of run.json, keeping whatever else the job function wrote there."""
        self.meta.update(changes, updated=time.time())
        on_disk = {}
        if (self.run_dir / "run.json").is_file():
            try:
                on_disk = read_run_json(self.run_dir)
            except InputError:
                pass
        text = json.dumps({**on_disk, **self.meta}, indent=2, default=json_default)
        atomic_write(self.run_dir / "run.json", lambda p: p.write_text(text))
        self._written_at = time.monotonic()

    def record(self, event: JobEvent) -> None:
        if not event.persist:
            return
        with open(self.run_dir / EVENTS_FILE, "a") as fh:
            fh.write(event.to_json() + "\n")
        if event.kind == "progress" and time.monotonic() - self._written_at >= META_PERIOD_S:
            self.write_meta(progress={"step": event.step, "total": event.total})


def _progress_bar(kind: str):
    from tqdm.auto import tqdm

    bar = tqdm(desc=kind, unit="step", dynamic_ncols=True)

    def on_event(event: JobEvent) -> None:
        if event.kind == "progress":
            if event.total and bar.total != event.total:
                bar.total = event.total
            bar.n = event.step
            if event.scalars:
                bar.set_postfix({k: f"{v:.4g}" for k, v in list(event.scalars.items())[:4]}, refresh=False)
            bar.refresh()
        elif event.kind == "message":
            bar.write(f"{event.level}: {event.message}" if event.level != "info" else event.message)
        elif event.kind == "finished":
            bar.close()

    return on_event


def run_job(function: JobFunction | str, settings: dict[str, Any], run_dir: str | Path, kind: str, *,
            resume: bool = False, on_event: Callable[[JobEvent], None] | None = None,
            stop_event: threading.Event | None = None, progress_bar: bool = False,
            clear_stop: bool = True, objects: dict[str, Any] | None = None, owner: str | None = None) -> JobResult:
    """Run a job to its end in this thread and return how it ended (never raises for the job's own errors:
    a failure is ``state == "failed"`` with ``error`` naming the cause; Ctrl-C ends it "stopped").

    ``resume``: continue the job in ``run_dir`` (its function finds its checkpoint; its owner stays).
    ``clear_stop``: forget an earlier stop request (False where the submitter cleared it and a new request
    may already be there).
    ``objects``: in-process values for the job (``JobContext.objects``), not written anywhere. ``owner``: who
    starts it; default the owner already recorded (``reserve_run_dir(..., owner=)``, a resumed run, an
    enclosing run), else this process's user (``core.runs.default_owner``)."""
    name = function_name(function)
    fn = resolve_function(name) if isinstance(function, str) else function
    try:
        json.dumps(settings, allow_nan=True)
    except TypeError as exc:
        raise InputError("settings", f"settings must be plain JSON values: {exc}") from exc
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    previous = read_run_json(run_dir) if resume and (run_dir / "run.json").is_file() else {}
    if clear_stop:
        (run_dir / STOP_FILE).unlink(missing_ok=True)
    # a resumed run keeps its owner (an admin continuing it does not take it over)
    owner = (previous.get(OWNER_KEY) if resume else None) or owner or recorded_owner(run_dir) or default_owner()
    files = _JobFiles(run_dir, {"kind": kind, "function": name, "settings": settings, OWNER_KEY: owner,
                                "created": previous.get("created", time.time()), "error": "", "result": {}})
    bar = _progress_bar(kind) if progress_bar else None

    def emit(event: JobEvent) -> None:
        files.record(event)
        if bar is not None:
            bar(event)
        if on_event is not None:
            on_event(event)

    ctx = JobContext(run_dir, settings, resumed=bool(previous), emit=emit, stop_event=stop_event, objects=objects,
                     owner=owner)
    files.write_meta(state="running", process=process_identity())
    emit(JobEvent("started", message=f"{kind} {'resumed' if previous else 'started'}", state="running"))
    result: dict[str, Any] = {}
    error = ""
    try:
        result = fn(ctx) or {}
        state = result.get("state") if result.get("state") in FINISHED_STATES else "finished"
    except JobStopped as exc:
        state = exc.state
    except KeyboardInterrupt:
        state = "stopped"
    except Exception as exc:  # the job's own failure: recorded, its files and checkpoint kept
        state, error = "failed", describe_error(exc)
    last = ctx.last_progress
    progress = {"step": last.step, "total": last.total} if last else previous.get("progress", {})
    files.write_meta(state=state, result=result, error=error, progress=progress)
    emit(JobEvent("finished", state=state, message=error, data={"result": result}))
    return JobResult(run_dir, state, result, error)


def resume_job(run_dir: str | Path, **kwargs: Any) -> JobResult:
    """Continue a stopped, interrupted or failed job from its checkpoint (kwargs as for :func:`run_job`)."""
    meta = read_run_json(run_dir)
    if "function" not in meta or "kind" not in meta:
        raise InputError("run_dir", f"{run_dir} is not a job run directory (run.json has no function/kind)")
    state = run_state(meta)
    if state == "running":
        raise InputError("run_dir", f"{run_dir} is still running (process {meta.get('process')})")
    return run_job(meta["function"], meta.get("settings", {}), run_dir, meta["kind"], resume=True, **kwargs)


def request_stop(run_dir: str | Path) -> None:
    """Ask the job in ``run_dir`` to stop from any process that sees the directory (a STOP file)."""
    (Path(run_dir) / STOP_FILE).touch()


def read_events(run_dir: str | Path, offset: int = 0) -> tuple[list[JobEvent], int]:
    """Events written to ``events.jsonl`` from byte ``offset`` on, and the offset to read from next
    (a partly written last line is left for the next call)."""
    f = Path(run_dir) / EVENTS_FILE
    if not f.is_file():
        return [], offset
    with open(f, "rb") as fh:
        fh.seek(offset)
        chunk = fh.read()
    end = chunk.rfind(b"\n") + 1
    events = []
    for line in chunk[:end].splitlines():
        try:
            events.append(JobEvent.from_dict(json.loads(line)))
        except (ValueError, TypeError, KeyError):
            continue  # blank, or a line torn by a kill mid-append and followed by later events: skipped
    return events, offset + end


class JobRunner:
    """Runs one job at a time in a background thread; a UI polls :meth:`drain` for its events."""

    def __init__(self) -> None:
        self._queue: queue.Queue[JobEvent] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.result: JobResult | None = None
        self.last_progress: JobEvent | None = None
        self.run_dir: Path | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, function: JobFunction | str, settings: dict[str, Any], run_dir: str | Path, kind: str,
              objects: dict[str, Any] | None = None, owner: str | None = None) -> None:
        """Start a new job (an InputError if one is running or the function/settings are unusable);
        ``owner``: who starts it (see :func:`run_job`)."""
        function_name(function)
        self._launch(lambda on_event: run_job(function, settings, run_dir, kind, on_event=on_event,
                                              stop_event=self._stop, objects=objects, owner=owner), run_dir)

    def resume(self, run_dir: str | Path, objects: dict[str, Any] | None = None) -> None:
        """Continue the job in ``run_dir`` from its checkpoint."""
        read_run_json(run_dir)
        self._launch(lambda on_event: resume_job(run_dir, on_event=on_event, stop_event=self._stop,
                                                 objects=objects), run_dir)

    def _launch(self, body: Callable[[Callable[[JobEvent], None]], JobResult], run_dir: str | Path) -> None:
        if self.running:
            raise InputError("job", "a job is already running in this session; stop it first")
        self._stop = threading.Event()
        self.result, self.last_progress, self.run_dir = None, None, Path(run_dir)

        def on_event(event: JobEvent) -> None:
            if event.kind == "progress":
                self.last_progress = event
            self._queue.put(event)

        def target() -> None:
            try:
                self.result = body(on_event)
            except Exception as exc:  # could not even start (bad settings, unimportable function)
                self.result = JobResult(Path(run_dir), "failed", error=describe_error(exc))
                self._queue.put(JobEvent("finished", state="failed", message=self.result.error))

        self._thread = threading.Thread(target=target, name=f"epi-dash-job-{Path(run_dir).name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ask the running job to stop after its current unit of work (it checkpoints and ends "stopped")."""
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def drain(self, limit: int = 100_000) -> list[JobEvent]:
        """The events queued since the last call, oldest first."""
        events: list[JobEvent] = []
        while len(events) < limit:
            try:
                events.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return events
