"""The same max-ent problem through the existing EPI engine (bounded Real NVP + augmented Lagrangian).

z = one unit's loadings (m1, n1, ..., mR, nR) in the box [-bound, bound]^2R. The "emergent property" is a
set of *means* only: E[n_r phi(m^T kappa_k)] = F_kr, E[n n^T] = C_n and E[m m^T] = C_m (the free-m
problem of ``maxent``; EPI cannot pin a whole marginal p(m)). ``MeanProperty`` drops EPI's variance
constraints: T = f, mu_opt = mean."""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np
import param
import torch
from torch import Tensor

from ..epi import EPITrainer
from ..model import FreeParameter, Model, Statistic
from ..property import EmergentProperty
from ..settings import settings_for
from .maxent import constraint_error
from .network import loading_names, phi_fn
from .observation import Observation


class MeanProperty(EmergentProperty):
    """Mean constraints only: E[f_j] = mean_j (``std`` is unused; kept > 0 for validation)."""

    @property
    def num_constraints(self) -> int:
        return len(self.statistics)

    @property
    def constraint_names(self) -> list[str]:
        return [f"E[{s}]" for s in self.statistics]

    def mu_opt(self, device: torch.device | str = "cpu") -> Tensor:
        return torch.tensor(self.mean, dtype=torch.float32, device=device)

    def sufficient_statistics(self, f: Tensor) -> Tensor:
        return f


def _pairs(R: int) -> list[tuple[int, int]]:
    return [(i, j) for i in range(R) for j in range(i, R)]


class ConnectivityModel(Model):
    """One unit's loadings z = (m1, n1, ...); statistics: the dynamics features n_r phi(m^T kappa_k) and
    the second moments m_i m_j, n_i n_j. ``simulate`` is the identity (the statistics are closed form)."""

    bound = param.Number(8.0, bounds=(0, None), inclusive_bounds=(False, True), doc="box half-width of z")

    def __init__(self, obs: Observation, **params):
        super().__init__(**params)
        self.obs = obs
        self._kappa = obs.kappa.float()

    def free_parameters(self) -> list[FreeParameter]:
        return [FreeParameter(n, -self.bound, self.bound) for n in loading_names(self.obs.rank)]

    def statistic_specs(self) -> list[Statistic]:
        obs, R = self.obs, self.obs.rank
        stats = [Statistic(f"F{r + 1}@{k}", float(obs.F[k, r]), 1.0)
                 for k in range(obs.kappa.shape[0]) for r in range(R)]
        stats += [Statistic(f"n{i + 1}n{j + 1}", float(obs.C_n[i, j]), 1.0) for i, j in _pairs(R)]
        stats += [Statistic(f"m{i + 1}m{j + 1}", float(obs.C_m[i, j]), 1.0) for i, j in _pairs(R)]
        return stats

    def simulate(self, z: Tensor) -> Tensor:
        return z

    def measure(self, x: Tensor, z: Tensor) -> Tensor:
        m, n = z[:, 0::2], z[:, 1::2]
        ph = phi_fn(self.obs.phi)(m @ self._kappa.to(z).T)           # (B, P)
        dyn = (ph.unsqueeze(-1) * n.unsqueeze(1)).flatten(1)         # (B, P*R), k-major
        pairs = _pairs(self.obs.rank)
        nn = torch.stack([n[:, i] * n[:, j] for i, j in pairs], 1)
        mm = torch.stack([m[:, i] * m[:, j] for i, j in pairs], 1)
        return torch.cat([dyn, nn, mm], 1)


def run_epi(obs: Observation, seed: int = 0, num_epochs: int = 6, iters_per_epoch: int = 800,
            batch_size: int = 400, on_progress: Callable[[int, int, dict[str, float]], None] | None = None,
            should_stop: Callable[[], bool] | None = None, **settings: Any) -> dict[str, Any]:
    """EPI on the free-m problem. Returns {"distribution", "samples", "constraint_error", "entropy",
    "converged", "wall_time_s", "history", "state"}."""
    t0 = time.perf_counter()
    model = ConnectivityModel(obs.latent_only())
    prop = MeanProperty(statistics=model.statistic_names, mean=[s.mean for s in model.statistic_specs()],
                        std=[1.0] * len(model.statistic_names))
    flow, opt = settings_for(model, seed=seed, num_epochs=num_epochs, iters_per_epoch=iters_per_epoch,
                             batch_size=batch_size, init_mean=[0.0] * model.dim, init_sd=1.5, init_iters=200,
                             num_test_batches=50, device="cpu", **settings)
    trainer = EPITrainer(model, prop, flow, opt)
    total = num_epochs * iters_per_epoch

    def on_iteration(rec):
        if on_progress is not None and rec.iteration % 25 == 0:
            on_progress(rec.iteration, total, {"entropy": rec.entropy, "cost": rec.cost, "c": rec.c})
        if should_stop is not None and should_stop():
            trainer.request_stop()

    trainer.add_callback(on_iteration=on_iteration)
    result = trainer.train()
    z, log_q = result.distribution.sample_with_log_prob(20_000)
    z = z.detach().double()
    return {"distribution": result.distribution, "samples": z, "constraint_error": constraint_error(z, obs),
            "entropy": float(-log_q.mean()), "converged": bool(result.converged),
            "wall_time_s": time.perf_counter() - t0, "history": result.history, "state": result.state,
            "error": result.error}
