"""EPI: maximum-entropy q(z) subject to E_q[E_x[T(x; z)]] = mu_opt, by the augmented Lagrangian method
(Methods 5.1.3), with streaming callbacks, stop/resume and checkpoints."""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

import numpy as np
import torch
from torch import Tensor

from .analysis import EPIDistribution
from .errors import InputError, TrainingError
from .flow import RealNVP
from .hypothesis import convergence_test, penalty_increase_test
from .model import Model
from .property import EmergentProperty
from .runs import Run, RunWriter, final_entropy, process_identity, read_run_json, read_trace_rows
from .settings import FlowSettings, OptimizerSettings, resolve_device, settings_dict, settings_for

T_CLIP = 1e10


@dataclass
class IterationRecord:
    """What one optimization step reports to listeners (lists are plain floats)."""

    iteration: int
    epoch: int
    entropy: float
    cost: float
    R: list[float]
    f_mean: list[float]
    f_std: list[float]
    eta: list[float]
    c: float
    wall_time: float
    health: list = field(default_factory=list)  # core.health.HealthFinding found at this iteration


@dataclass
class EpochRecord:
    """End of an augmented Lagrangian epoch: test result and the multiplier/penalty updates."""

    epoch: int
    iteration: int
    p_values: list[float]
    converged: bool
    c: float
    eta: list[float]
    entropy: float
    mean_sq_norm: float
    c_increased: bool
    wall_time: float
    health: list = field(default_factory=list)  # core.health.HealthFinding found at this epoch's end


@dataclass
class EPIResult:
    converged: bool
    epochs: int
    iterations: int
    wall_time_s: float
    entropy: float
    distribution: EPIDistribution
    run_dir: str | None
    history: list[dict[str, Any]] = field(default_factory=list)
    state: str = "finished"
    error: str | None = None
    health: list[dict[str, Any]] = field(default_factory=list)  # the health watch's findings (as dicts)
    message: str = ""  # "did not converge in K epochs: ..." for a run that used all its epochs


def augmented_lagrangian_loss(
    log_q: Tensor, T: Tensor, mu_opt: Tensor, eta: Tensor, c: float
) -> tuple[Tensor, Tensor, Tensor]:
    """Surrogate loss whose gradient is that of -H + eta^T R + c/2 ||R||^2, with the penalty's
    gradient by the unbiased split-half estimator c J_{R1}^T R2 (R1, R2 from disjoint halves).

    ``log_q``: (n,), ``T``: (n, m). Returns (loss, entropy estimate, R (m,))."""
    entropy = -log_q.mean()
    R = T.mean(0) - mu_opt
    half = T.shape[0] // 2
    R1 = T[:half].mean(0) - mu_opt
    R2 = T[half : 2 * half].mean(0) - mu_opt
    loss = -entropy + eta @ R + c * (R1 @ R2.detach())
    return loss, entropy, R


class EPITrainer:
    """Runs EPI for ``model`` and ``prop``; listeners get every iteration and epoch.

    ``train()`` blocks (run it in a thread for a UI); ``request_stop()`` ends it after the current
    iteration with a checkpoint; ``EPITrainer.resume(run_dir)`` continues it identically."""

    def __init__(
        self,
        model: Model,
        prop: EmergentProperty | None = None,
        flow: FlowSettings | None = None,
        opt: OptimizerSettings | None = None,
        run_dir: str | Path | None = None,
    ):
        prop = prop if prop is not None else EmergentProperty.default_for(model)
        prop.validate(model)
        default_flow, default_opt = settings_for(model)
        self.model, self.property = model, prop
        self.flow_settings = flow if flow is not None else default_flow
        self.opt = opt if opt is not None else default_opt
        self.device = resolve_device(self.opt.device)
        if self.opt.batch_size < 4:
            raise InputError("batch_size", "must be at least 4")

        lower, upper = model.bounds()
        fs = self.flow_settings
        self.flow = RealNVP(
            lower, upper, num_stages=fs.num_stages, num_layers=fs.num_layers, num_units=fs.num_units,
            batch_norm=fs.batch_norm, post_affine=fs.post_affine, mixing=fs.mixing,
            seed=self.opt.seed,
        ).to(self.device)
        self.generator = torch.Generator(device=self.device).manual_seed(self.opt.seed)
        self.model.set_generator(self.generator)
        self.mu_opt = prop.mu_opt(self.device)
        m = prop.num_constraints
        self.eta = torch.zeros(m, device=self.device)
        self._last_R = torch.zeros(m, device=self.device)  # R of the latest training batch
        self.c = float(self.opt.c0)
        self.epoch = 0  # completed epochs
        self.iteration = 0  # completed iterations
        self.initialized = False
        self.previous_norms: np.ndarray | None = None
        self.history: list[dict[str, Any]] = []
        self.trace_rows: list[list[float]] = []
        self.init_info: dict[str, float] = {}
        self.converged = False
        self.state = "idle"
        self.error: str | None = None
        #: how a run that ended without failing went, when it needs saying ("did not converge in ...")
        self.message = ""
        self._elapsed = 0.0
        self._t_start = time.perf_counter()
        self._optimizer = self._new_optimizer()
        self._stop = threading.Event()
        self._iteration_callbacks: list[Callable[[IterationRecord], None]] = []
        self._epoch_callbacks: list[Callable[[EpochRecord], None]] = []
        self.writer = RunWriter(run_dir) if run_dir is not None else None
        #: extra run.json fields (a job's kind, say), written with the trainer's own
        self.extra_meta: dict[str, Any] = {}
        self.health_findings: list[dict[str, Any]] = []  # every finding of the health watch (run.json "health")
        self.health_watch = None
        if self.opt.health != "off":
            from .health import HealthWatch

            self.health_watch = HealthWatch(prop.statistics, prop.mean, prop.std, (upper - lower).to(self.device),
                                            model.model_name or type(model).__name__)

    # --- listeners and control ----------------------------------------------------------------
    def add_callback(
        self,
        on_iteration: Callable[[IterationRecord], None] | None = None,
        on_epoch: Callable[[EpochRecord], None] | None = None,
    ) -> None:
        if on_iteration is not None:
            self._iteration_callbacks.append(on_iteration)
        if on_epoch is not None:
            self._epoch_callbacks.append(on_epoch)

    def request_stop(self) -> None:
        """Thread-safe: stop after the current iteration and write a checkpoint."""
        self._stop.set()

    @property
    def distribution(self) -> EPIDistribution:
        return EPIDistribution(self.flow, self.model, self.property)

    @property
    def trace_columns(self) -> list[str]:
        cons = self.property.constraint_names
        stats_ = self.property.statistics
        return (
            ["iteration", "epoch", "entropy", "cost", "c", "wall_time"]
            + [f"R:{n}" for n in cons]
            + [f"mean:{s}" for s in stats_]
            + [f"std:{s}" for s in stats_]
            + [f"eta:{n}" for n in cons]
        )

    def _new_optimizer(self) -> torch.optim.Optimizer:
        # fused: one kernel for the whole update (CPU and CUDA; 3x faster than foreach on CPU)
        return torch.optim.Adam(self.flow.parameters(), lr=self.opt.lr, fused=True)

    # --- numerics -----------------------------------------------------------------------------
    def _model_statistics(self, z: Tensor) -> Tensor:
        """``model.checked_statistics(z)``; an exception from the model's own code becomes a TrainingError
        naming the model's method that raised it (bad input and CUDA out of memory pass through)."""
        try:
            return self.model.checked_statistics(z)
        except (InputError, TrainingError, torch.cuda.OutOfMemoryError):
            raise
        except Exception as exc:
            raise TrainingError(
                f"{_raising_method(exc, self.model)} raised {type(exc).__name__}: {exc} (epoch {self.epoch + 1}, "
                f"iteration {self.iteration + 1}); training stopped, the last checkpoint is kept"
            ) from exc

    def _statistics(self, z: Tensor) -> Tensor:
        f = self._model_statistics(z)
        if not torch.isfinite(f).all():
            bad = ~torch.isfinite(f)
            j = int(bad.any(0).nonzero()[0])
            frac = float(bad[:, j].float().mean())
            if self.health_watch is not None:
                self.health_findings.append(self.health_watch.non_finite(
                    self.property.statistics[j], frac, self.epoch + 1, self.iteration + 1).to_dict())
            raise TrainingError(
                f"statistic {self.property.statistics[j]!r} is NaN or infinite for {frac:.1%} of the "
                f"batch (epoch {self.epoch + 1}, iteration {self.iteration + 1}); training stopped, "
                "the last checkpoint is kept"
            )
        return f

    @torch.no_grad()
    def constraint_batches(self, num_batches: int, batch_size: int) -> Tensor:
        """R estimated on ``num_batches`` fresh batches: (num_batches, m), simulated in large chunks."""
        return self._test_batches(num_batches, batch_size)[0]

    @torch.no_grad()
    def _test_batches(self, num_batches: int, batch_size: int) -> tuple[Tensor, float]:
        """R on ``num_batches`` fresh batches: (num_batches, m), and the entropy -E[log q] of the
        same samples (one pass through the flow serves the tests and the entropy estimate)."""
        total = num_batches * batch_size
        chunk = max(batch_size, (self.opt.test_chunk // batch_size) * batch_size)
        sums, log_q_sum = [], 0.0
        for start in range(0, total, chunk):
            n = min(chunk, total - start)
            z, log_q = self.flow.rsample_and_log_prob(n, self.generator)
            T = self.property.sufficient_statistics(self._statistics(z)).clamp(-T_CLIP, T_CLIP)
            sums.append(T.reshape(n // batch_size, batch_size, -1).mean(1))
            log_q_sum = log_q_sum + log_q.sum()
        return torch.cat(sums) - self.mu_opt, -float(log_q_sum) / total

    def _set_gaussian(self, lower: Tensor, upper: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and sd: (dim,) each, from ``init_mean`` / ``init_sd`` (default: box centre, range / 4)."""
        fs = self.flow_settings
        if fs.init_mean is None:
            mean = (lower + upper) / 2
        else:
            if len(fs.init_mean) != self.model.dim:
                raise InputError("init_mean", f"needs {self.model.dim} values; got {len(fs.init_mean)}")
            mean = torch.tensor(fs.init_mean, dtype=torch.float32, device=self.device)
        return mean, (upper - lower) / 4 if fs.init_sd is None else torch.full_like(lower, fs.init_sd)

    @torch.no_grad()
    def abc_gaussian(self, lower: Tensor, upper: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and sd: (dim,) each, of the ``abc_keep`` of ``abc_samples`` uniform draws from the box
        [lower, upper] whose statistics are closest to the property's mean (distance in units of its
        sd; draws with non-finite statistics never count). The sd is floored at 1 % of the range."""
        fs = self.flow_settings
        if fs.abc_keep > fs.abc_samples:
            raise InputError("abc_keep", f"must be at most abc_samples ({fs.abc_samples}); got {fs.abc_keep}")
        z = lower + (upper - lower) * torch.rand(fs.abc_samples, self.model.dim, generator=self.generator,
                                                 device=self.device)
        f = torch.cat([self._model_statistics(chunk) for chunk in z.split(self.opt.test_chunk)])
        mean = torch.as_tensor(self.property.mean, dtype=f.dtype, device=f.device)
        std = torch.as_tensor(self.property.std, dtype=f.dtype, device=f.device)
        distance = ((f - mean) / std).square().sum(-1).nan_to_num(nan=float("inf"))
        nearest = distance.topk(fs.abc_keep, largest=False)
        kept = z[nearest.indices]
        self.init_info["abc_distance"] = float(nearest.values[-1].sqrt())  # the farthest kept draw
        return kept.mean(0), torch.maximum(kept.std(0), 0.01 * (upper - lower))

    def initialize(self) -> None:
        """Set q to (approximately) the isotropic Gaussian of the settings: closed form, then
        ``init_iters`` steps of reverse-KL refinement; then the c-test's baseline norms."""
        t0 = time.perf_counter()
        lower, upper = (b.to(self.device) for b in self.model.bounds())
        fs = self.flow_settings
        mean, sd = self.abc_gaussian(lower, upper) if fs.init == "abc" else self._set_gaussian(lower, upper)
        self.flow.set_gaussian_approximation(mean, sd)
        opt = self._new_optimizer()
        kl = float("nan")
        for _ in range(fs.init_iters):
            z, log_q = self.flow.rsample_and_log_prob(self.opt.batch_size, self.generator)
            log_p = (-0.5 * ((z - mean) / sd) ** 2 - torch.log(sd)).sum(-1) - 0.5 * z.shape[1] * np.log(2 * np.pi)
            loss = (log_q - log_p).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            kl = float(loss.detach())
        self.init_info.update(init_kl=kl, init_time_s=time.perf_counter() - t0)
        self._checkpoint()  # a failure in the baseline test below keeps the initialized flow
        R = self.constraint_batches(self.opt.num_test_batches, self.opt.batch_size)
        self.previous_norms = (R**2).sum(1).cpu().double().numpy()
        self.initialized = True
        self.init_info["init_time_s"] = time.perf_counter() - t0

    def step(self) -> IterationRecord:
        """One Adam step on the augmented Lagrangian."""
        if not self.flow.training:
            self.flow.train()
        z, log_q = self.flow.rsample_and_log_prob(self.opt.batch_size, self.generator)
        f = self._statistics(z)
        if self.health_watch is not None:  # every probe_every iterations: per-draw gradients of f w.r.t. z
            self.health_watch.observe_batch(f, z, self.epoch + 1, self.iteration + 1)
        T = self.property.sufficient_statistics(f).clamp(-T_CLIP, T_CLIP)
        loss, entropy, R = augmented_lagrangian_loss(log_q, T, self.mu_opt, self.eta, self.c)
        if not torch.isfinite(loss):
            raise TrainingError(
                f"the EPI objective became non-finite at epoch {self.epoch + 1}, iteration "
                f"{self.iteration + 1}; training stopped, the last checkpoint is kept"
            )
        self._optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self._optimizer.step()
        self.iteration += 1
        self._last_R = R.detach()
        fd = f.detach()
        cost = -entropy.detach() + self.eta @ R.detach() + 0.5 * self.c * (R.detach() ** 2).sum()
        packed = torch.cat([entropy.detach()[None], cost[None], R.detach(), fd.mean(0), fd.std(0), self.eta])
        values = packed.tolist()  # one device sync per iteration
        m2, m = R.shape[0], fd.shape[1]
        rec = IterationRecord(
            iteration=self.iteration, epoch=self.epoch + 1, entropy=values[0], cost=values[1],
            R=values[2 : 2 + m2], f_mean=values[2 + m2 : 2 + m2 + m], f_std=values[2 + m2 + m : 2 + m2 + 2 * m],
            eta=values[2 + m2 + 2 * m :], c=self.c, wall_time=self._elapsed_now(),
        )
        self.trace_rows.append(
            [rec.iteration, rec.epoch, rec.entropy, rec.cost, rec.c, rec.wall_time, *rec.R, *rec.f_mean, *rec.f_std, *rec.eta]
        )
        return rec

    def end_epoch(self) -> EpochRecord:
        """Convergence test; if not converged: eta <- eta + c R, then the c-test (c <- beta c)."""
        self.flow.eval()
        opt = self.opt
        n_test = max(2, int(round(opt.nu * opt.batch_size)))
        R_test, entropy = self._test_batches(opt.num_test_batches, n_test)
        p_values, converged = convergence_test(R_test, opt.alpha)
        c_before = self.c
        increased, mean_sq = False, float("nan")
        self.epoch += 1
        if not converged:
            self.eta = self.eta + self.c * self._last_R
            # fresh batches of the training size; the convergence test's serve when sizes match (nu = 1)
            R = R_test if n_test == opt.batch_size else self.constraint_batches(opt.num_test_batches, opt.batch_size)
            norms = (R**2).sum(1).cpu().double().numpy()
            mean_sq = float(norms.mean())
            u = float(torch.rand((), generator=self.generator, device=self.device))
            increased, _, _ = penalty_increase_test(norms, self.previous_norms, opt.gamma, u)
            if increased:
                self.c *= opt.beta
            self.previous_norms = norms
            if opt.reset_optimizer:
                self._optimizer = self._new_optimizer()
        self.converged = converged
        rec = EpochRecord(
            epoch=self.epoch, iteration=self.iteration, p_values=p_values.tolist(), converged=converged,
            c=c_before, eta=self.eta.tolist(), entropy=entropy, mean_sq_norm=mean_sq, c_increased=increased,
            wall_time=self._elapsed_now(),
        )
        self.history.append(asdict(rec))
        return rec

    # --- the loop -----------------------------------------------------------------------------
    def _elapsed_now(self) -> float:
        return self._elapsed + (time.perf_counter() - self._t_start)

    def _emit(self, callbacks: list[Callable], record: Any) -> None:
        for cb in callbacks:
            cb(record)

    def train(self) -> EPIResult:
        """Run (or continue) EPI until convergence, ``num_epochs``, a stop request or a failure.

        A stop requested before ``train()`` (e.g. while a UI was still building the trainer) is
        honoured at the first iteration; the request is consumed when ``train()`` returns."""
        if self.device.type == "cpu" and self.opt.num_threads > 0:
            torch.set_num_threads(self.opt.num_threads)
        self._t_start = time.perf_counter()
        self.state = "running"
        self.error, self.message = None, ""
        opt = self.opt
        try:
            with torch.random.fork_rng(devices=[] if self.device.type == "cpu" else [self.device]):
                if not self.initialized:
                    self.initialize()
                    self._checkpoint()
                while self.epoch < opt.num_epochs and not (self.converged and opt.stop_early):
                    while self.iteration < (self.epoch + 1) * opt.iters_per_epoch:
                        if self._stop.is_set():
                            self._stop.clear()
                            self.state = "stopped"
                            self._checkpoint()
                            return self._result()
                        rec = self.step()
                        rec.health = self.health_watch.observe_iteration(rec) if self.health_watch else []
                        self._emit(self._iteration_callbacks, rec)
                        if self._unhealthy(rec.health):
                            return self._result()
                    rec = self.end_epoch()
                    rec.health = self.health_watch.observe_epoch(rec) if self.health_watch else []
                    if self._unhealthy(rec.health):  # before the checkpoint: the last one predates the finding
                        self._emit(self._epoch_callbacks, rec)
                        return self._result()
                    self._checkpoint()
                    self._emit(self._epoch_callbacks, rec)
            self.state = "converged" if self.converged else "finished"
            self.message = "" if self.converged else self._not_converged()
            self._checkpoint(final=True)
        except TrainingError as exc:
            self.state, self.error = "failed", str(exc)
            self._write_meta()
        except InputError as exc:  # bad input found while training (a model's statistics of the wrong shape)
            self.state, self.error = "failed", f"{exc.field}: {exc.message}"
            self._write_meta()
            raise
        except torch.cuda.OutOfMemoryError:
            self.state = "failed"
            self.error = (f"CUDA out of memory at batch_size {opt.batch_size}: lower batch_size or use "
                          "the CPU; the last checkpoint is kept")
            if torch.cuda.is_available():
                torch.cuda.empty_cache()  # the failed batch's memory goes back to the server's other trainings
            self._write_meta()
        self._stop.clear()
        return self._result()

    def _not_converged(self) -> str:
        """Why a run that used all its epochs ends unconverged: the constraints its last test rejects."""
        last = self.history[-1] if self.history else None
        if last is None:
            return f"did not converge in {self.epoch} epochs; the last q is kept"
        threshold = self.opt.alpha / len(last["p_values"])
        rejected = [f"{n} (p = {p:.2g})" for n, p in zip(self.property.constraint_names, last["p_values"])
                    if p <= threshold]
        return (f"did not converge in {self.epoch} epochs: the last test rejects {', '.join(rejected)} "
                f"(Bonferroni threshold {threshold:.2g}); the last q is kept")

    def _unhealthy(self, findings: list) -> bool:
        """Record health findings; True when they end the run (``health="stop"``: state "unhealthy",
        the checkpoint on disk is the last one before the finding)."""
        if not findings:
            return False
        self.health_findings += [f.to_dict() for f in findings]
        if self.opt.health == "stop" and any(f.stop for f in findings):  # notices (stop=False) go on
            self.state, self.error = "unhealthy", "; ".join(f.message for f in findings if f.stop)
        self._write_meta()
        return self.state == "unhealthy"

    def _result(self) -> EPIResult:
        elapsed = self._elapsed_now()
        entropy = final_entropy(self.history)
        return EPIResult(
            converged=self.converged, epochs=self.epoch, iterations=self.iteration, wall_time_s=elapsed,
            entropy=entropy, distribution=self.distribution,
            run_dir=str(self.writer.path) if self.writer else None, history=list(self.history),
            state=self.state, error=self.error, health=list(self.health_findings), message=self.message,
        )

    # --- persistence --------------------------------------------------------------------------
    def metadata(self) -> dict[str, Any]:
        lower, upper = self.model.bounds()
        return {
            **self.extra_meta,
            "format": "epi-dash-run/1",
            "model": self.model.model_name or type(self.model).__name__,
            "model_params": self.model.hyperparameters(),
            "property": self.property.to_dict(),
            "flow": settings_dict(self.flow_settings),
            "optimizer": settings_dict(self.opt),
            "parameter_names": self.model.parameter_names,
            "statistic_names": self.property.statistics,
            "constraint_names": self.property.constraint_names,
            "bounds": {"lower": lower.tolist(), "upper": upper.tolist()},
            "seed": self.opt.seed,
            "device": str(self.device),
            "state": self.state,
            "process": process_identity(),
            "error": self.error,
            "message": self.message,
            "health": self.health_findings,
            "converged": self.converged,
            "epochs": self.epoch,
            "iterations": self.iteration,
            "wall_time_s": self._elapsed_now(),
            "c": self.c,
            "eta": self.eta.tolist(),
            **self.init_info,
            "history": self.history,
        }

    def _write_meta(self) -> None:
        if self.writer:
            self.writer.write_meta(self.metadata())
            self.writer.write_trace(self.trace_columns, self.trace_rows)

    def _health_state(self) -> dict[str, Any]:
        """The health watch's running state (its windows, counters, the findings already reported), so a
        resumed run judges its health as the uninterrupted run would; {} without a watch."""
        hw = self.health_watch
        return {} if hw is None else {k: v for k, v in vars(hw).items()
                                      if k.startswith("_") or k in ("initial_entropy", "last_probe")}

    def _checkpoint(self, final: bool = False) -> None:
        """Everything the run needs to go on exactly as if uninterrupted: flow (and batch-norm buffers),
        Adam's moments, eta, c, counters, the c-test's previous norms, the trainer's generator (the only
        source of randomness in training: samples, simulator noise, c-test draws; on CUDA its CUDA state),
        the per-epoch history, the trace rows and the health watch's state.

        Written trace.csv, then checkpoint.pt, then run.json (each atomically): a process killed between
        two of them (SIGKILL) leaves a trace with at least the checkpoint's rows (resume drops later ones)."""
        if not self.writer:
            return
        state = {
            "flow": self.flow.state_dict(),
            "optimizer": self._optimizer.state_dict(),
            "eta": self.eta.cpu(),
            "c": self.c,
            "epoch": self.epoch,
            "iteration": self.iteration,
            "initialized": self.initialized,
            "converged": self.converged,
            "previous_norms": self.previous_norms,
            "generator": self.generator.get_state(),
            "history": self.history,
            "elapsed": self._elapsed_now(),
            "init_info": self.init_info,
            "trace": torch.tensor(self.trace_rows, dtype=torch.float64).reshape(-1, len(self.trace_columns)),
            "health_watch": self._health_state(),
            "health_findings": self.health_findings,
        }
        self.writer.write_trace(self.trace_columns, self.trace_rows)
        self.writer.write_checkpoint(state)
        if final:
            self.writer.write_samples(self.distribution, n=5000)
        self.writer.write_meta(self.metadata())

    @classmethod
    def resume(cls, run_dir: str | Path, device: str | None = None) -> EPITrainer:
        """Rebuild a trainer from ``run_dir`` (run.json + checkpoint.pt) to continue training."""
        from .model import load_model

        path = Path(run_dir)
        meta = read_run_json(path)
        ckpt_path = path / "checkpoint.pt"
        if not ckpt_path.is_file():
            raise InputError("run_dir", f"no checkpoint.pt in {path}")
        model = load_model(meta["model"], **meta["model_params"])
        prop = EmergentProperty.from_dict(meta["property"])
        flow = FlowSettings(**meta["flow"])
        opt_values = dict(meta["optimizer"])
        if device is not None:
            opt_values["device"] = device
        opt = OptimizerSettings(**opt_values)
        trainer = cls(model, prop, flow, opt, run_dir=path)
        state = torch.load(ckpt_path, map_location=trainer.device, weights_only=False)
        trainer.flow.load_state_dict(state["flow"])
        trainer._optimizer.load_state_dict(state["optimizer"])
        trainer.eta = state["eta"].to(trainer.device)
        trainer.c = state["c"]
        trainer.epoch, trainer.iteration = state["epoch"], state["iteration"]
        trainer.initialized, trainer.converged = state["initialized"], state["converged"]
        trainer.previous_norms = state["previous_norms"]
        trainer.generator.set_state(state["generator"].cpu())
        trainer.history = state["history"]
        trainer._elapsed = state["elapsed"]
        trainer.init_info = state.get("init_info", {})
        if "trace" in state:  # the rows up to the checkpoint (iteration and epoch as ints, as trace.csv's)
            trainer.trace_rows = [[int(r[0]), int(r[1]), *r[2:]] for r in state["trace"].tolist()]
        else:  # a checkpoint written before the trace joined it
            trainer.trace_rows = [r for r in read_trace_rows(path) if r[0] <= trainer.iteration]
        # the findings up to the checkpoint (run.json may hold later ones, which the resumed run finds again)
        trainer.health_findings = list(state.get("health_findings", meta.get("health", [])))
        if trainer.health_watch is not None:
            if state.get("health_watch"):
                vars(trainer.health_watch).update(state["health_watch"])
            elif trainer.trace_rows:  # collapse is judged from the first entropy
                trainer.health_watch.initial_entropy = trainer.trace_rows[0][2]
        trainer.state = "stopped"
        return trainer


def _raising_method(exc: BaseException, model: Model) -> str:
    """``Class.method`` of the innermost method of ``model`` in ``exc``'s traceback (where a user's model
    code failed), else the class name."""
    name = type(model).__name__
    where = name
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_locals.get("self") is model:
            where = f"{name}.{tb.tb_frame.f_code.co_name}"
        tb = tb.tb_next
    return where


ResultLike = TypeVar("ResultLike", "EPIResult", Run)


def best_result(results: Sequence[ResultLike]) -> ResultLike | None:
    """The converged run of greatest entropy (the paper's selection over seeds), or None.
    ``results``: EPIResults or saved runs (``core.runs.Run``), which also have ``converged`` and ``entropy``."""
    converged = [r for r in results if r.converged]
    return max(converged, key=lambda r: r.entropy) if converged else None


def load_distribution(run: str | Path | Run, device: str | None = None) -> EPIDistribution:
    """q(z) of a saved EPI run, from its checkpoint (``core.runs`` reads run directories without the
    trainer; this is the EPI side). ``device``: default the run's own, or the CPU where CUDA is absent."""
    path = run.path if isinstance(run, Run) else Path(run)
    if device is None and not torch.cuda.is_available():
        device = "cpu"
    return EPITrainer.resume(path, device=device).distribution
