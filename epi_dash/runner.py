"""Runs EPI in a background thread and reports plain events on a queue (no panel import).

Each training is one ``core.jobs`` job (``core.epi_job.train_epi``, kind "epi"): run.json carries the job's
kind, function, settings and state, events.jsonl its progress, and a stop is the job's stop. This runner
adds what a live EPI view needs on top, as its own event kinds (the EPI extension of the job events).

The training thread only ``put``s :class:`RunnerEvent` objects holding numbers, lists and numpy
arrays; a UI drains them on its own schedule. Kinds, in the order they arrive:

``started``    run_dir, model, parameter_names, statistic_names, constraint_names, lower, upper,
               means, stds, iterations_total, resumed
``iteration``  an ``IterationRecord`` as a dict (one per optimization step)
``epoch``      an ``EpochRecord`` as a dict
``snapshot``   iteration, z (n, d), log_q (n,): current samples of q, every ``snapshot_every`` steps
``analysis``   iteration, mode (d,), log_q_mode, mode_near_faces (parameter names), eigenvalues (d,),
               eigenvectors (d, d), kinds, predictive (n, m): at epoch ends (small D), on request,
               and after training
``finished``   state ("converged", "finished", "stopped", "failed", "cancelled": while queued), converged,
               epochs, iterations, wall_time_s, entropy, run_dir, error, message (why the server stopped
               or who cancelled it; "" otherwise)
``failed``     message: the trainer could not be built or crashed outside its own error handling
``open_failed``, ``analysis_failed``  message: a saved run or an analysis could not be loaded/run

Mode search and Hessians run on a *copy* of the flow in a second thread, so training never waits
for them and never shares parameters with an autograd pass it does not own.

Every start and resume goes through the process's ``epi_dash.scheduler``: the server's limits are checked
first (an InputError naming the limit), then the training waits in the fair queue until it is admitted
(``queued``, ``queue_position()``; ``cancel``/``stop`` removes it), and its slot is freed when it ends. A
training running longer than ``max_wall_time_s`` is stopped (checkpointed, state "stopped", a message).
"""

from __future__ import annotations

import atexit
import copy
import json
import queue
import threading
import time
import weakref
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from core.analysis import EPIDistribution
from core.epi import EpochRecord, EPITrainer, IterationRecord
from core.epi_job import KIND, build_trainer, epi_settings, train_epi
from core.errors import InputError, TrainingError
from core.jobs import FINISHED_STATES, JobContext, run_job
from core.runs import final_entropy, json_default, read_run_json
from core.model import Model
from core.property import EmergentProperty
from core.settings import FlowSettings, OptimizerSettings

from .scheduler import Scheduler, Ticket, scheduler as process_scheduler
from .state import copy_model
from .users import current_user


@dataclass
class RunnerEvent:
    kind: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class AnalysisSettings:
    """How much work one analysis does (mode search, Hessian at the mode, predictive draws)."""

    num_starts: int = 4
    num_samples: int = 1000
    steps: int = 200
    num_predictive: int = 1000


def to_numpy(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def analyze(dist: EPIDistribution, settings: AnalysisSettings | None = None) -> dict[str, Any]:
    """Mode of q, Hessian directions there, and predictive statistics, as numpy arrays."""
    s = settings or AnalysisSettings()
    mode = dist.find_mode(num_starts=s.num_starts, num_samples=s.num_samples, steps=s.steps)
    directions = dist.hessian_directions(mode)
    with torch.no_grad():
        log_q_mode = float(dist.log_prob(mode[None])[0])
        predictive = to_numpy(dist.predictive(s.num_predictive))
    return {
        "mode": to_numpy(mode),
        "log_q_mode": log_q_mode,
        "mode_near_faces": dist.near_faces(mode),
        "eigenvalues": to_numpy(directions.eigenvalues),
        "eigenvectors": to_numpy(directions.eigenvectors),
        "kinds": list(directions.kinds),
        "predictive": predictive,
    }


def describe_failure(exc: BaseException) -> str:
    """A one-line message naming the cause, for a notification (never a traceback)."""
    if isinstance(exc, InputError):
        return f"{exc.field}: {exc.message}"
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return "CUDA out of memory: lower batch_size or train on the CPU"
    if isinstance(exc, TrainingError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def startup_phase(trainer: EPITrainer | None) -> str:
    """What a launched training does before its first iteration, for a status line: building the
    trainer (``None``), initializing q, or the first iteration (where torch.compile compiles the
    simulator of models that have one: 1-3 minutes on a CPU the first time)."""
    if trainer is None:
        return "building the model and the flow"
    compiles = getattr(trainer.model, "compile", "off") != "off"
    if not trainer.initialized:
        fs = trainer.flow_settings
        phase = (f"initializing q: ABC search over {fs.abc_samples:,} simulations, then the Gaussian fit"
                 if fs.init == "abc" else "initializing q: Gaussian fit, then the baseline test")
        return f"{phase}; then torch.compile compiles the simulator (up to a minute the first time)" if compiles else phase
    if compiles:
        return ("first iteration: torch.compile is compiling the simulator (up to a minute on a CPU the first "
                "time, seconds once cached)")
    return "first iteration"


#: how often a training on a Dask worker is polled for new events (s)
REMOTE_POLL_S = 0.25

#: runners of this process that have launched a training (weak: a closed session's runner goes away)
_LAUNCHED: weakref.WeakSet[TrainingRunner] = weakref.WeakSet()


def stop_all_trainings(timeout: float = 60.0) -> int:
    """Stop every training of this process after its current iteration and wait (up to ``timeout`` s in
    all) until each has written its checkpoint; returns how many were stopped.

    Runs at interpreter exit (``atexit``): a server that is shut down (Ctrl-C, SIGTERM via Bokeh's
    handler) keeps every session's progress up to the last iteration, where the daemon training
    threads would otherwise die mid-epoch and lose the work since the last epoch end."""
    running = [r for r in list(_LAUNCHED) if r.running]
    for runner in running:
        runner._closing.set()  # no final analysis: torch work in a thread at interpreter exit aborts it
        runner.stop()
    deadline = time.monotonic() + timeout
    for runner in running:
        runner.join(max(0.0, deadline - time.monotonic()))
    return len(running)


atexit.register(stop_all_trainings)


class TrainingRunner:
    """One training at a time, in a daemon thread; ``drain()`` returns what happened since.

    ``trainer_factory`` builds the trainer (default :class:`EPITrainer`); tests may pass a
    smaller one with the same interface.
    """

    def __init__(
        self,
        snapshot_every: int = 500,
        snapshot_samples: int = 1000,
        analyze_each_epoch_max_dim: int = 40,
        analysis: AnalysisSettings | None = None,
        trainer_factory: Callable[..., EPITrainer] = EPITrainer,
        executor: Any = None,
        scheduler: Scheduler | None = None,
        owner: str | None = None,
    ):
        self.snapshot_every = snapshot_every
        self.snapshot_samples = snapshot_samples
        self.analyze_each_epoch_max_dim = analyze_each_epoch_max_dim
        self.analysis_settings = analysis or AnalysisSettings()
        self.trainer_factory = trainer_factory
        #: where trainings run: None or an InProcessExecutor (a thread here), or a core.executors.DaskExecutor
        #: (a Dask worker; events come back through the run directory)
        self.executor = executor if getattr(executor, "name", "in-process") != "in-process" else None
        self._handle = None
        self.events: queue.Queue[RunnerEvent] = queue.Queue()
        self.trainer: EPITrainer | None = None
        self.run_dir: Path | None = None
        #: the newest iteration record (read by UIs between batched refreshes)
        self.last_iteration: dict[str, Any] | None = None
        #: the (frozen) q of the newest analysis, safe to evaluate from the UI thread
        self.latest_distribution: EPIDistribution | None = None
        self._thread: threading.Thread | None = None
        self._analysis_threads: list[threading.Thread] = []
        self._analysis_requested = threading.Event()
        self._analysis_lock = threading.Lock()
        self._stop_requested = threading.Event()
        self._closing = threading.Event()  # the process is exiting: skip the final analysis
        self._awaiting_first_iteration = False
        #: who decides what runs (None: this process's ``epi_dash.scheduler.scheduler()``) and for whom
        #: (None: ``users.current_user()`` when a training is submitted)
        self.scheduler, self.owner = scheduler, owner
        self._sched: Scheduler | None = None  # the scheduler of the current training, its owner, its place
        self._job_owner = ""
        self._ticket: Ticket | None = None
        self._stop_note = ""  # why the server stopped the current training

    # --- control (any thread) -----------------------------------------------------------------
    @property
    def running(self) -> bool:
        """True while a training waits in the queue, trains, or does its final analysis."""
        job = self._ticket.job if self._ticket is not None else None
        return (self._thread is not None and self._thread.is_alive()) or (
            job is not None and job.state in ("queued", "running"))

    @property
    def queued(self) -> bool:
        """True while the training submitted last waits for a slot."""
        return self._ticket is not None and self._ticket.queued

    def _awaiting_admission(self) -> bool:
        """Queued, or admitted and its thread not yet started."""
        job, thread = self._ticket.job if self._ticket is not None else None, self._thread
        return job is not None and job.state in ("queued", "running") and not (thread is not None and thread.is_alive())

    def queue_position(self) -> tuple[int, int] | None:
        """(position, number waiting) while the training waits for a slot; else None."""
        return self._ticket.position() if self._ticket is not None else None

    def startup(self) -> str | None:
        """``startup_phase`` of the training launched last, until its first iteration; else None."""
        position = self.queue_position()
        if position is not None:
            return f"queued: position {position[0]} of {position[1]}"
        if not (self._awaiting_first_iteration and self.running):
            return None
        return startup_phase(self.trainer)

    def start(self, model: Model, prop: EmergentProperty, flow: FlowSettings, opt: OptimizerSettings,
              run_dir: str | Path, model_spec: str | None = None) -> None:
        """Train a new q in the background, saving to ``run_dir`` (a ``core.jobs`` job of kind "epi";
        ``model_spec``: how settings name the model, for a resume elsewhere; default its name)."""
        spec = model_spec or model.model_name or type(model).__name__
        try:
            settings = json.loads(json.dumps(epi_settings(spec, model, prop, flow, opt), default=json_default))
        except (TypeError, ValueError) as exc:
            settings = {"model": spec, "unsaved": f"settings are not JSON: {exc}"}
        self._admissible(opt.batch_size, opt.num_epochs * opt.iters_per_epoch, model.dim)
        if self.executor is not None:
            self._launch_remote(settings, run_dir, resumed=False)
            return
        self._submit(lambda _ctx: self.trainer_factory(model, prop, flow, opt, run_dir=run_dir), resumed=False,
                     run_dir=run_dir, settings=settings)

    def resume(self, run_dir: str | Path, device: str | None = None) -> None:
        """Continue the run saved in ``run_dir`` from its checkpoint."""
        factory = getattr(self.trainer_factory, "resume", EPITrainer.resume)
        try:
            meta = read_run_json(run_dir)
        except InputError:
            meta = {}
        settings = meta.get("settings", {})
        opt = settings.get("optimizer") or meta.get("optimizer") or {}
        self._admissible(int(opt.get("batch_size", 0)), int(opt.get("num_epochs", 0)) * int(opt.get("iters_per_epoch", 0)),
                         len(meta.get("parameter_names") or []) or None)
        if self.executor is not None:
            self._launch_remote(settings, run_dir, resumed=True)
            return
        self._submit(lambda _ctx: factory(run_dir, device=device), resumed=True, run_dir=run_dir, settings=settings)

    def open(self, run_dir: str | Path, device: str | None = None) -> None:
        """Load a saved run's q in the background and report a ``snapshot`` and an ``analysis``."""
        factory = getattr(self.trainer_factory, "resume", EPITrainer.resume)
        self._stop_requested.clear()
        if self.running:
            raise InputError("open", "a training is running in this session; stop it first")
        self._thread = threading.Thread(target=self._open, args=(lambda: factory(run_dir, device=device),),
                                        name="epi-open", daemon=True)
        self._thread.start()

    def cancel(self, user: str | None = None) -> None:
        """Take the waiting training out of the queue (it ends "cancelled"). Only its owner or an admin
        may (``user``; default the session's user): an InputError otherwise, or when it is not waiting."""
        if self._ticket is None:
            raise InputError("job", "this session's training is not queued (Stop ends a running one)")
        self._ticket.cancel(user or current_user(), "training")

    def stop(self) -> None:
        """Ask the trainer to stop after the current iteration (it then writes a checkpoint); a training
        that still waits for a slot is cancelled."""
        self._stop_requested.set()
        if self.queued:
            try:
                self.cancel(self._job_owner)
                return
            except InputError:  # admitted meanwhile: stopped like a running one (the stop is already asked)
                pass
        if self.trainer is not None:
            self.trainer.request_stop()
        if self._handle is not None and self._handle.running:
            self._handle.stop()

    def request_analysis(self) -> None:
        """Find the mode of the current q soon (from the next iteration, on a copy of the flow)."""
        if self.running:
            self._analysis_requested.set()
        elif self.trainer is not None:
            self._spawn_analysis(self._frozen_distribution(self.trainer))

    def drain(self, limit: int = 100_000) -> list[RunnerEvent]:
        """Events queued since the last call, oldest first (never blocks)."""
        out: list[RunnerEvent] = []
        while len(out) < limit:
            try:
                out.append(self.events.get_nowait())
            except queue.Empty:
                break
        return out

    def join(self, timeout: float | None = None) -> None:
        """Wait for training and any analysis to end, and first for a queued training's turn (tests,
        benchmarks, shutdown)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._awaiting_admission() and (deadline is None or time.monotonic() < deadline):
            time.sleep(0.05)
        if deadline is not None:
            timeout = max(0.0, deadline - time.monotonic())
        if self._thread is not None:
            self._thread.join(timeout)
        for t in list(self._analysis_threads):
            t.join(timeout)

    # --- scheduling: limits, queue, slot, wall time ----------------------------------------------
    def _admissible(self, batch_size: int, iterations: int, parameters: int | None) -> None:
        """Refuse a second training in this session, or one over the server's limits (InputError)."""
        if self.running:
            raise InputError("start", "a training is already running or queued in this session")
        sched = self.scheduler or process_scheduler()
        owner = self.owner or current_user()
        sched.check(owner, batch_size, iterations, parameters)
        self._sched, self._job_owner, self._ticket = sched, owner, None

    def _prepare(self, run_dir: str | Path) -> None:
        self._stop_requested.clear()
        self._analysis_requested.clear()
        self.trainer, self._awaiting_first_iteration, self._stop_note = None, True, ""  # the new run's, once built
        self._ticket = Ticket(self._sched, self._job_owner, run_dir)
        _LAUNCHED.add(self)

    def _submit(self, make_trainer: Callable[[JobContext], EPITrainer], resumed: bool, run_dir: str | Path,
                settings: dict[str, Any]) -> None:
        """Queue a training in this process; it starts (``_launch``) when the scheduler admits it."""
        self._prepare(run_dir)
        self._ticket.submit(
            start=lambda: self._launch(make_trainer, resumed, run_dir, settings),
            on_cancel=lambda user: self._cancelled(user, resumed, Path(run_dir)))

    def _cancelled(self, user: str, resumed: bool, run_dir: Path) -> None:
        """The queued training was cancelled (by ``user``): a "finished" event in state "cancelled"."""
        self._awaiting_first_iteration = False
        meta: dict[str, Any] = {}
        if resumed:
            try:
                meta = read_run_json(run_dir)
            except (InputError, OSError):
                pass
        message = self._ticket.cancelled(user, run_dir, new=not resumed)
        self._put("finished", state="cancelled", converged=False, epochs=meta.get("epochs", 0),
                  iterations=meta.get("iterations", 0), wall_time_s=meta.get("wall_time_s", 0.0),
                  entropy=final_entropy(meta.get("history") or []), run_dir=str(run_dir), error=None,
                  message=message)

    def _wall_time_up(self, limit: float) -> None:
        """The training ran ``max_wall_time_s``: stop it (it checkpoints; Resume continues it)."""
        if not self.running:
            return
        self._stop_note = (f"it reached this server's limit of {limit:g} s on one training's wall time "
                           "(max_wall_time_s); its checkpoint is kept and Resume continues it")
        self._put("message", level="warning", text=f"Training stopped: {self._stop_note}")
        self.stop()

    def _release(self) -> None:
        """The training ended (any state): stop its wall clock and free its slot (idempotent)."""
        if self._ticket is not None:
            self._ticket.release()

    # --- the training thread ------------------------------------------------------------------
    def _launch(self, make_trainer: Callable[[JobContext], EPITrainer], resumed: bool, run_dir: str | Path,
                settings: dict[str, Any]) -> None:
        """Admitted: train in a daemon thread."""
        self._ticket.start_wall_clock(self._wall_time_up)
        self._thread = threading.Thread(target=self._run, args=(make_trainer, resumed, Path(run_dir), settings),
                                        name="epi-training", daemon=True)
        try:
            self._thread.start()
        except Exception as exc:  # no thread: said, and the slot is freed
            self._put("failed", message=describe_failure(exc))
            self._release()

    # --- a training on another executor (a Dask worker) ------------------------------------------
    def _launch_remote(self, settings: dict[str, Any], run_dir: str | Path, resumed: bool) -> None:
        """Submit to the Dask executor now (no local slot; it counts for the owner's runs and wall time)."""
        if "unsaved" in settings:
            raise InputError("model", "this model cannot be named for a Dask worker (" + settings["unsaved"] + ")")
        self._prepare(run_dir)
        handle = self.executor.submit(train_epi, settings, run_dir, KIND, resume=resumed)
        self._ticket.submit_remote()
        self._ticket.start_wall_clock(self._wall_time_up)
        self._handle = handle
        self._thread = threading.Thread(target=self._follow_remote, args=(handle, settings, Path(run_dir), resumed),
                                        name="epi-remote-training", daemon=True)
        self._thread.start()

    def _follow_remote(self, handle, settings: dict[str, Any], run_dir: Path, resumed: bool) -> None:
        """Turn a remote job's events (tailed from its run directory) into this runner's events; snapshots
        and analyses come from the checkpoint the worker writes at each epoch end."""
        names: tuple[list[str], list[str]] = ([], [])
        try:
            while True:
                running = handle.running
                for event in handle.drain():
                    if event.kind == "started":
                        local = build_trainer(JobContext(run_dir, settings, resumed=resumed))
                        self.trainer = local
                        names = (local.property.constraint_names, list(local.property.statistics))
                        self._put("started", **self._describe(local, resumed))
                    elif event.kind == "progress" and names[1]:
                        self._on_remote_iteration(event, *names)
                    elif event.kind == "epoch":
                        self._put("epoch", **{**event.data, "health": event.data.get("health", [])})
                        self._refresh_from_checkpoint(run_dir, analyze_it=True)
                    elif event.kind == "message":
                        self._put("message", level=event.level, text=event.message)
                    elif event.kind == "finished":
                        self._finish_remote(event, run_dir)
                if not running:
                    break
                if self._stop_requested.is_set():
                    handle.stop()
                time.sleep(REMOTE_POLL_S)
        except Exception as exc:  # a lost scheduler, an unreadable file: reported, the run directory is kept
            self._put("failed", message=describe_failure(exc))
        finally:
            self._awaiting_first_iteration = False
            self._release()

    def _on_remote_iteration(self, event, constraints: list[str], statistics: list[str]) -> None:
        s = event.scalars
        record = IterationRecord(
            iteration=event.step, epoch=int(s.get("epoch", 0)), entropy=s["entropy"], cost=s["cost"],
            R=[s[f"R:{n}"] for n in constraints], f_mean=[s[f"mean:{n}"] for n in statistics],
            f_std=[s[f"std:{n}"] for n in statistics], eta=[s[f"eta:{n}"] for n in constraints], c=s["c"],
            wall_time=s.get("wall_time", 0.0))
        self._awaiting_first_iteration = False
        data = asdict(record)
        self.last_iteration = data
        self._put("iteration", **data)

    def _refresh_from_checkpoint(self, run_dir: Path, analyze_it: bool) -> None:
        """Samples (and an analysis) of q from the worker's latest checkpoint."""
        try:
            trainer = EPITrainer.resume(run_dir, device="cpu")
        except (InputError, OSError, RuntimeError) as exc:
            self._put("analysis_failed", message=f"checkpoint: {exc}")
            return
        self.trainer = trainer
        self._put_snapshot(trainer)
        if analyze_it and trainer.model.dim <= self.analyze_each_epoch_max_dim:
            self._spawn_analysis(self._frozen_distribution(trainer))

    def _finish_remote(self, event, run_dir: Path) -> None:
        try:
            meta = read_run_json(run_dir)
        except InputError:
            meta = {}
        state = meta.get("state", event.state) if event.state in FINISHED_STATES else event.state
        self._put("finished", state=state, converged=bool(meta.get("converged")), epochs=meta.get("epochs", 0),
                  iterations=meta.get("iterations", 0), wall_time_s=meta.get("wall_time_s", 0.0),
                  entropy=final_entropy(meta.get("history") or []), run_dir=str(run_dir),
                  error=event.message or None, message=self._stop_note)
        self._release()
        if event.state in FINISHED_STATES and not self._closing.is_set():
            self._refresh_from_checkpoint(run_dir, analyze_it=False)
            if self.trainer is not None and self.trainer.initialized:
                self._analyze_now(self._frozen_distribution(self.trainer), self.trainer.iteration)

    def _put(self, kind: str, **data: Any) -> None:
        self.events.put(RunnerEvent(kind, data))

    def _run(self, make_trainer: Callable[[JobContext], EPITrainer], resumed: bool, run_dir: Path,
             settings: dict[str, Any]) -> None:
        try:
            self._train(make_trainer, resumed, run_dir, settings)
        finally:
            self._awaiting_first_iteration = False
            self._release()

    def _train(self, make_trainer: Callable[[JobContext], EPITrainer], resumed: bool, run_dir: Path,
               settings: dict[str, Any]) -> None:
        """One EPI job (``core.epi_job.train_epi`` through ``core.jobs.run_job``): the job owns run.json's
        kind/state/settings, events.jsonl and the stop; the trainer callbacks feed this runner's events."""
        built: list[EPITrainer] = []

        def on_trainer(trainer: EPITrainer) -> None:
            built.append(trainer)
            self.trainer = trainer
            self.run_dir = Path(trainer.writer.path) if trainer.writer is not None else None
            trainer.add_callback(on_iteration=self._on_iteration, on_epoch=self._on_epoch)
            self._put("started", **self._describe(trainer, resumed))
            if self._stop_requested.is_set():
                trainer.request_stop()

        try:
            job = run_job(train_epi, settings, run_dir, KIND, resume=resumed, stop_event=self._stop_requested,
                          objects={"make_trainer": make_trainer, "on_trainer": on_trainer},
                          owner=self._job_owner or None)  # a resumed run keeps its recorded owner
        except Exception as exc:  # report every cause to the UI; the server keeps serving
            self._put("failed", message=describe_failure(exc))
            return
        finally:
            self._release()  # the slot is free before the final analysis
        if not built:
            self._put("failed", message=job.error or f"training ended {job.state} before it started")
            return
        trainer = built[0]
        state = trainer.state if job.state in FINISHED_STATES or trainer.state == "unhealthy" else job.state
        self._put("finished", state=state, converged=trainer.converged, epochs=trainer.epoch,
                  iterations=trainer.iteration, wall_time_s=trainer._elapsed_now(),
                  entropy=final_entropy(trainer.history), run_dir=str(run_dir), error=job.error or None,
                  message=self._stop_note)
        if not job.error and trainer.initialized and not self._closing.is_set():
            self._put_snapshot(trainer)
            self._analyze_now(self._frozen_distribution(trainer), trainer.iteration)

    def _open(self, make_trainer: Callable[[], EPITrainer]) -> None:
        try:
            trainer = make_trainer()
        except Exception as exc:
            self._put("open_failed", message=describe_failure(exc))
            return
        self.trainer = trainer
        self.run_dir = Path(trainer.writer.path) if trainer.writer is not None else None
        if trainer.initialized:
            self._put_snapshot(trainer)
            self._analyze_now(self._frozen_distribution(trainer), trainer.iteration)

    @staticmethod
    def _describe(trainer: EPITrainer, resumed: bool) -> dict[str, Any]:
        lower, upper = trainer.model.bounds()
        prop = trainer.property
        return dict(
            run_dir=str(trainer.writer.path) if trainer.writer is not None else None,
            model=trainer.model.model_name or type(trainer.model).__name__,
            model_params=trainer.model.hyperparameters(),
            parameter_names=trainer.model.parameter_names,
            statistic_names=list(prop.statistics),
            constraint_names=prop.constraint_names,
            lower=to_numpy(lower), upper=to_numpy(upper),
            means=list(prop.mean), stds=list(prop.std),
            iterations_total=trainer.opt.num_epochs * trainer.opt.iters_per_epoch,
            num_epochs=trainer.opt.num_epochs, iteration=trainer.iteration, resumed=resumed,
        )

    def _on_iteration(self, record: IterationRecord) -> None:
        self._awaiting_first_iteration = False
        data = asdict(record)
        self.last_iteration = data
        self._put("iteration", **data)
        trainer = self.trainer
        if record.iteration % self.snapshot_every == 0:
            self._put_snapshot(trainer)
        if self._analysis_requested.is_set():
            self._analysis_requested.clear()
            self._spawn_analysis(self._frozen_distribution(trainer))

    def _on_epoch(self, record: EpochRecord) -> None:
        self._put("epoch", **asdict(record))
        trainer = self.trainer
        if trainer.model.dim <= self.analyze_each_epoch_max_dim:
            self._spawn_analysis(self._frozen_distribution(trainer))

    def _put_snapshot(self, trainer: EPITrainer) -> None:
        with torch.no_grad():
            z, log_q = trainer.distribution.sample_with_log_prob(self.snapshot_samples)
        trainer.flow.train()
        self._put("snapshot", iteration=trainer.iteration, z=to_numpy(z), log_q=to_numpy(log_q))

    # --- analysis (own thread, own copy of the flow and the model) -----------------------------
    @staticmethod
    def _frozen_distribution(trainer: EPITrainer) -> EPIDistribution:
        flow = copy.deepcopy(trainer.flow)
        return EPIDistribution(flow, copy_model(trainer.model), trainer.property)

    def _spawn_analysis(self, dist: EPIDistribution) -> None:
        iteration = self.trainer.iteration if self.trainer is not None else 0
        self._analysis_threads = [t for t in self._analysis_threads if t.is_alive()]
        if self._analysis_threads:  # one at a time; the next epoch brings a fresher one
            return
        t = threading.Thread(target=self._analyze_now, args=(dist, iteration), name="epi-analysis", daemon=True)
        self._analysis_threads.append(t)
        t.start()

    def _analyze_now(self, dist: EPIDistribution, iteration: int) -> None:
        try:
            started = time.perf_counter()
            result = analyze(dist, self.analysis_settings)
            with self._analysis_lock:  # the newest event and latest_distribution stay paired
                self.latest_distribution = dist
                self._put("analysis", iteration=iteration, seconds=time.perf_counter() - started, **result)
        except Exception as exc:  # analysis is advisory: report it, keep training
            self._put("analysis_failed", message=describe_failure(exc))
