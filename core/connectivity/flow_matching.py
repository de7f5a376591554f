"""A continuous normalizing flow for loading distributions, trained by (conditional) flow matching.

We use Meta's ``flow_matching`` package (``AffineProbPath`` with the ``CondOTScheduler``: straight paths
x_t = t x_1 + (1 - t) x_0 from a standard normal x_0, target velocity x_1 - x_0, and its ``ODESolver`` for
sampling and exact-divergence log-likelihoods), with our own small MLP velocity field. Why: it ships the
path, the loss target and the likelihood ODE (torchcfm is not installed and pulls heavy dependencies; zuko's
CNF is trained by maximum likelihood through the ODE, not by flow matching). Data are standardized per
dimension first; log-densities are corrected by the standardization's Jacobian.

Max-ent training (``fit_maxent_flow``): (1) solve the exponential tilt's dual (``maxent.solve_maxent``),
(2) train the CNF by CFM on fresh exact samples of the tilted family every step, (3) optional correction
rounds: the I-projection of the CNF's own samples onto the dynamics constraints (an exponential tilt
with weights w_s ∝ exp(delta^T T(z_s)), fitted by its dual) and a weighted-CFM fine-tune on those samples."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from flow_matching.path import AffineProbPath
from flow_matching.path.scheduler import CondOTScheduler
from flow_matching.solver import ODESolver
from flow_matching.utils import ModelWrapper
from torch import Tensor, nn

from .maxent import MaxEntSolution, constraint_error, solve_maxent
from .network import phi_fn
from .observation import Observation


class VelocityMLP(nn.Module):
    """v_theta(x, t): (B, d) x (B,) -> (B, d); t enters with sin/cos features."""

    def __init__(self, dim: int, hidden: int = 128, layers: int = 3):
        super().__init__()
        sizes = [dim + 5] + [hidden] * layers
        mods: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            mods += [nn.Linear(a, b), nn.SiLU()]
        self.net = nn.Sequential(*mods, nn.Linear(hidden, dim))

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        t = t.reshape(-1, 1).expand(x.shape[0], 1).to(x.dtype)
        freqs = torch.tensor([1.0, 2.0], dtype=x.dtype) * math.pi
        tf = torch.cat([t, torch.sin(t * freqs), torch.cos(t * freqs)], 1)
        return self.net(torch.cat([x, tf], 1))


class _Wrapped(ModelWrapper):
    def forward(self, x: Tensor, t: Tensor, **extras) -> Tensor:
        return self.model(x, t)


class CNF(nn.Module):
    """Continuous normalizing flow z = shift + scale * ODE(x_0), x_0 ~ N(0, I). float32 internally."""

    def __init__(self, dim: int, hidden: int = 128, layers: int = 3, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.dim = dim
        self.velocity = VelocityMLP(dim, hidden, layers)
        self.register_buffer("shift", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(dim))
        self.path = AffineProbPath(scheduler=CondOTScheduler())

    def standardize_to(self, data: Tensor) -> None:
        """Set shift/scale to the data's per-dimension mean and sd."""
        self.shift.copy_(data.mean(0).float())
        self.scale.copy_(data.std(0).float().clamp(min=1e-6))

    def cfm_loss(self, z1: Tensor, weights: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        """Flow-matching loss mean ||v(x_t, t) - (x_1 - x_0)||^2 on data z1: (B, d) (optionally weighted)."""
        x1 = (z1.float() - self.shift) / self.scale
        x0 = torch.randn(x1.shape, generator=generator)
        t = torch.rand(x1.shape[0], generator=generator)
        ps = self.path.sample(x_0=x0, x_1=x1, t=t)
        err = ((self.velocity(ps.x_t, ps.t) - ps.dx_t) ** 2).sum(1)
        if weights is None:
            return err.mean()
        return (err * weights).sum() / weights.sum()

    @torch.no_grad()
    def sample(self, n: int, seed: int = 0, steps: int = 40) -> Tensor:
        """(n, d) samples (midpoint ODE steps, float32)."""
        g = torch.Generator().manual_seed(seed)
        x0 = torch.randn(n, self.dim, generator=g)
        x1 = ODESolver(velocity_model=_Wrapped(self.velocity)).sample(x0, step_size=1.0 / steps, method="midpoint")
        return x1 * self.scale + self.shift

    def log_prob(self, z: Tensor, steps: int = 40) -> Tensor:
        """log q(z): (n,) by the instantaneous change of variables with the exact divergence."""
        x1 = ((z.float() - self.shift) / self.scale)

        def log_p0(x: Tensor) -> Tensor:
            return -0.5 * (x**2).sum(1) - 0.5 * self.dim * math.log(2 * math.pi)

        solver = ODESolver(velocity_model=_Wrapped(self.velocity))
        _, lp = solver.compute_likelihood(x_1=x1, log_p0=log_p0, step_size=1.0 / steps, method="midpoint",
                                          exact_divergence=True)
        return lp.detach() - self.scale.log().sum()

    def entropy(self, n: int = 4000, seed: int = 1) -> float:
        """Monte Carlo -E[log q] over n fresh samples (nats)."""
        return float(-self.log_prob(self.sample(n, seed)).mean())


def train_cfm(cnf: CNF, draw: Callable[[int], Tensor], steps: int, batch_size: int = 512, lr: float = 2e-3,
              seed: int = 0, weights: Tensor | None = None, pool: Tensor | None = None,
              on_step: Callable[[int, float], None] | None = None, optimizer: torch.optim.Optimizer | None = None
              ) -> torch.optim.Optimizer:
    """CFM training: each step a fresh batch ``draw(batch_size)`` (or a weighted minibatch of ``pool``
    with ``weights``). Cosine-decayed Adam; ``on_step(step, loss)`` may raise to stop."""
    g = torch.Generator().manual_seed(seed)
    opt = optimizer or torch.optim.Adam(cnf.velocity.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(steps, 1), eta_min=lr * 0.05)
    for k in range(steps):
        if pool is None:
            zb, wb = draw(batch_size), None
        else:
            idx = torch.randint(pool.shape[0], (batch_size,), generator=g)
            zb, wb = pool[idx], weights[idx]
        loss = cnf.cfm_loss(zb, wb, g)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if on_step is not None:
            on_step(k + 1, float(loss.detach()))
    return opt


def tilt_weights(z: Tensor, obs: Observation, l2: float = 1e-4, max_iter: int = 200) -> tuple[Tensor, float]:
    """The I-projection of the empirical law of z: (S, 2R) onto the dynamics constraints: weights (S,)
    (mean 1) of the minimal-KL exponential tilt w ∝ exp(sum_k delta_k . n phi(m^T kappa_k)), and its ESS
    fraction."""
    dt = torch.float64
    z = z.to(dt)
    m, n = z[:, 0::2], z[:, 1::2]
    T = (phi_fn(obs.phi)(m @ obs.kappa.T.to(dt)).unsqueeze(-1) * n.unsqueeze(1)).flatten(1)  # (S, P*R)
    b = obs.F.to(dt).flatten()
    delta = torch.zeros(T.shape[1], dtype=dt, requires_grad=True)
    opt = torch.optim.LBFGS([delta], max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        L = torch.logsumexp(T @ delta, 0) - math.log(T.shape[0]) - delta @ b + 0.5 * l2 * delta @ delta
        L.backward()
        return L

    opt.step(closure)
    with torch.no_grad():
        w = torch.softmax(T @ delta, 0) * T.shape[0]
    return w, float(w.sum() ** 2 / (w**2).sum() / len(w))


@dataclass
class FlowMatchingSettings:
    """Settings of ``fit_maxent_flow`` (all JSON-able)."""

    steps: int = 3000
    batch_size: int = 512
    lr: float = 2e-3
    hidden: int = 128
    layers: int = 3
    correction_rounds: int = 1
    correction_steps: int = 600
    correction_pool: int = 10_000
    eval_samples: int = 10_000
    entropy_samples: int = 2000
    tol: float = 0.03
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def fit_maxent_flow(obs: Observation, settings: FlowMatchingSettings | None = None,
                    on_progress: Callable[[int, int, dict[str, float]], None] | None = None,
                    state: dict[str, Any] | None = None, checkpoint: Callable[[dict[str, Any]], None] | None = None,
                    check_stop: Callable[[], None] | None = None) -> dict[str, Any]:
    """Max-ent CNF for ``obs``. ``on_progress(step, total, scalars)``; ``state`` / ``checkpoint`` resume
    and save between chunks of 200 steps, after which ``check_stop()`` may raise to stop. Returns {"cnf", "solution", "samples",
    "constraint_error", "entropy", "converged", "wall_time_s", "history"}."""
    s = settings or FlowMatchingSettings()
    t0 = time.perf_counter()
    state = dict(state or {})
    elapsed0 = state.get("elapsed", 0.0)
    sol: MaxEntSolution = solve_maxent(obs, seed=s.seed)
    cnf = CNF(2 * obs.rank, s.hidden, s.layers, seed=s.seed)
    total = s.steps + s.correction_rounds * s.correction_steps
    counter = {"k": 0}
    if "cnf" in state:
        cnf.load_state_dict(state["cnf"])
    else:
        cnf.standardize_to(sol.sample(20_000, seed=s.seed + 7))
    done = state.get("done", 0)
    history = state.get("history", [])
    draw_seed = {"i": s.seed * 1_000_003 + done}

    def draw(n: int) -> Tensor:
        draw_seed["i"] += 1
        return sol.sample(n, seed=draw_seed["i"]).float()

    def report(step, loss, **extra):
        if on_progress is not None and (step % 25 == 0 or step == total):
            on_progress(step, total, {"cfm_loss": loss, **extra})

    chunk = 200
    while done < s.steps:
        k = min(chunk, s.steps - done)
        train_cfm(cnf, draw, k, s.batch_size, lr=s.lr * (0.5 * (1 + math.cos(math.pi * done / s.steps)) * 0.95 + 0.05),
                  seed=s.seed + done, on_step=lambda j, loss: report(done + j, loss))
        done += k
        history.append({"step": done, "phase": "cfm"})
        if checkpoint is not None:
            checkpoint({"cnf": cnf.state_dict(), "done": done, "history": history,
                        "elapsed": elapsed0 + time.perf_counter() - t0})
        if check_stop is not None:
            check_stop()
    rounds_done = state.get("rounds", 0)
    best = None
    for r in range(rounds_done, s.correction_rounds):
        pool = cnf.sample(s.correction_pool, seed=s.seed + 100 + r)
        err_before = constraint_error(pool.double(), obs)
        w, ess = tilt_weights(pool, obs)
        if ess < 0.3:  # a partial step keeps the weights usable
            w = w ** (0.3 / max(ess, 1e-3)) ** 0.5
            w = w / w.mean()
        best = best or {k: v.clone() for k, v in cnf.state_dict().items()}
        train_cfm(cnf, draw, s.correction_steps, s.batch_size, lr=s.lr * 0.1, seed=s.seed + 500 + r,
                  weights=w.float(), pool=pool, on_step=lambda j, loss: report(s.steps + r * s.correction_steps + j, loss,
                                                                              ess=ess))
        err_after = constraint_error(cnf.sample(s.correction_pool, seed=s.seed + 200 + r).double(), obs)
        history.append({"step": s.steps + (r + 1) * s.correction_steps, "phase": "correction", "ess": ess,
                        "error_before": err_before, "error_after": err_after})
        if err_after > err_before:  # keep the best result
            cnf.load_state_dict(best)
        best = {k: v.clone() for k, v in cnf.state_dict().items()}
        if checkpoint is not None:
            checkpoint({"cnf": cnf.state_dict(), "done": done, "rounds": r + 1, "history": history,
                        "elapsed": elapsed0 + time.perf_counter() - t0})
        if check_stop is not None:
            check_stop()
    samples = cnf.sample(s.eval_samples, seed=s.seed + 999).double()
    err = constraint_error(samples, obs)
    H = cnf.entropy(s.entropy_samples, seed=s.seed + 998)
    if on_progress is not None:
        on_progress(total, total, {"constraint_error": err, "entropy": H})
    return {"cnf": cnf, "solution": sol, "samples": samples, "constraint_error": err, "entropy": H,
            "converged": bool(sol.converged and err < s.tol), "wall_time_s": elapsed0 + time.perf_counter() - t0,
            "history": history}
