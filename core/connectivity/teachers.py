"""Synthetic teacher loading distributions with known dynamics (rank 1 bistable, rank 2 limit cycle and
ring attractor; each Gaussian or heavy-tailed), and their observations.

All teachers: tau = 1, phi = tanh, zero means, m with unit variance per component, n = S m + noise_sd xi
(S = S_nm, xi independent with unit variance). Gaussian: m, xi ~ N(0, 1). Heavy: m and xi are
unit-variance Student-t with ``nu`` degrees of freedom (F then by Monte Carlo: Stein's lemma needs
Gaussian m). Statistics from ``../shared/spec/maxent-lrrnn-notes.md`` section 3, except the bistable
sigma_mn = 2.0 (notes: 1.2, kappa* = 0.486 near the bifurcation at 1: an N = 1,000 network's sampling
error in Cov(n, m) of ~3 % would move kappa* by ~20 %)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy import special, stats
from torch import Tensor

from ..errors import InputError
from .meanfield import GaussianMixture, field_mc
from .network import join_loadings, loading_names
from .observation import Observation, field_from_trajectories, subsample_probes

TEACHERS = ("bistable", "cycle", "ring", "bistable-heavy", "cycle-heavy", "ring-heavy")
_S = {"bistable": [[2.0]], "cycle": [[1.6, -0.8], [0.8, 1.6]], "ring": [[1.6, 0.0], [0.0, 1.6]]}
_DYNAMICS = {"bistable": "two stable fixed points +-kappa*, unstable origin (rank 1)",
             "cycle": "limit cycle around an unstable origin (rank 2)",
             "ring": "ring attractor: a circle of (slow) fixed points (rank 2)"}


def _unit_t_entropy(nu: float, scale: float = 1.0) -> float:
    """Entropy of a Student-t with ``nu`` dof scaled to variance scale^2."""
    s = scale * math.sqrt((nu - 2) / nu)
    return float(stats.t(df=nu, scale=s).entropy())


@dataclass
class Teacher:
    """A teacher loading distribution. ``S``: (R, R) Cov(n, m); ``noise_sd``: sd of n given m."""

    name: str
    S: Tensor
    noise_sd: float = 0.5
    heavy: bool = False
    nu: float = 4.0
    tau: float = 1.0
    phi: str = "tanh"

    @property
    def rank(self) -> int:
        return self.S.shape[0]

    @property
    def kind(self) -> str:
        return self.name.removesuffix("-heavy")

    @property
    def names(self) -> list[str]:
        return loading_names(self.rank)

    @property
    def description(self) -> str:
        tails = f"Student-t (nu = {self.nu:g}) m and noise" if self.heavy else "Gaussian"
        return f"{_DYNAMICS[self.kind]}; {tails}; S_nm = {self.S.tolist()}, noise sd {self.noise_sd:g}"

    # --- the distribution ---------------------------------------------------------------------
    def _unit(self, shape: tuple[int, ...], rng: np.random.Generator) -> Tensor:
        if self.heavy:
            x = rng.standard_t(self.nu, size=shape) * math.sqrt((self.nu - 2) / self.nu)
        else:
            x = rng.standard_normal(size=shape)
        return torch.as_tensor(x, dtype=torch.float64)

    def sample(self, n: int, seed: int = 0) -> Tensor:
        """(n, 2R) i.i.d. unit loadings (interleaved m1, n1, ...), float64."""
        rng = np.random.default_rng(seed)
        m = self._unit((n, self.rank), rng)
        nn = m @ self.S.T + self.noise_sd * self._unit((n, self.rank), rng)
        return join_loadings(m, nn)

    def mixture(self) -> GaussianMixture | None:
        """The one-population Gaussian (None for heavy teachers)."""
        if self.heavy:
            return None
        R = self.rank
        cov_mn = torch.cat([torch.cat([torch.eye(R, dtype=torch.float64), self.S.T], 1),
                            torch.cat([self.S, self.S @ self.S.T + self.noise_sd**2 * torch.eye(R, dtype=torch.float64)], 1)], 0)
        perm = torch.tensor([i for r in range(R) for i in (r, R + r)])   # (m..., n...) -> interleaved
        cov = cov_mn[perm][:, perm]
        return GaussianMixture(torch.ones(1, dtype=torch.float64), torch.zeros(1, 2 * R, dtype=torch.float64),
                               cov[None], rank=R)

    def log_prob(self, z: Tensor) -> Tensor:
        """log p(z): (n,) for z: (n, 2R)."""
        m, n = z[:, 0::2], z[:, 1::2]
        resid = (n - m @ self.S.T) / self.noise_sd
        if not self.heavy:
            lp = torch.distributions.Normal(0.0, 1.0)
            return lp.log_prob(m).sum(1) + lp.log_prob(resid).sum(1) - self.rank * math.log(self.noise_sd)
        s = math.sqrt((self.nu - 2) / self.nu)
        lt = torch.distributions.StudentT(self.nu, 0.0, s)
        return lt.log_prob(m).sum(1) + lt.log_prob(resid).sum(1) - self.rank * math.log(self.noise_sd)

    def entropy(self) -> float:
        """Exact differential entropy of p (nats)."""
        R = self.rank
        if not self.heavy:
            return float(self.mixture().entropy())
        return R * _unit_t_entropy(self.nu) + R * _unit_t_entropy(self.nu, self.noise_sd)

    def second_moments(self) -> tuple[Tensor, Tensor]:
        """E[m m^T] = I and E[n n^T] = S S^T + noise_sd^2 I: (R, R) each."""
        eye = torch.eye(self.rank, dtype=torch.float64)
        return eye, self.S @ self.S.T + self.noise_sd**2 * eye

    def field(self, kappa: Tensor, mc_samples: int = 200_000) -> Tensor:
        """F(kappa): (P, R), closed form (Gaussian) or Monte Carlo over ``mc_samples`` fixed samples."""
        kappa = kappa.to(torch.float64)
        mix = self.mixture()
        if mix is not None:
            return mix.field(kappa, phi=self.phi)
        return field_mc(kappa, self.sample(mc_samples, seed=12345), self.rank, self.phi)

    # --- observations ---------------------------------------------------------------------------
    def probes(self) -> Tensor:
        """Default probe states: +-0.25..2 (rank 1); 4 radii 0.5..2 x 12 angles (rank 2): (P, R)."""
        if self.rank == 1:
            r = torch.linspace(0.25, 2.0, 8, dtype=torch.float64)
            return torch.cat([-r.flip(0), r])[:, None]
        ang = torch.arange(12, dtype=torch.float64) * (2 * math.pi / 12)
        pts = [torch.stack([r * ang.cos(), r * ang.sin()], 1) for r in (0.5, 1.0, 1.5, 2.0)]
        return torch.cat(pts)

    def observation(self, mode: str = "field", pin_m: bool = True, num_units: int = 4000, seed: int = 0,
                    max_probes: int = 48) -> Observation:
        """The teacher's dynamics as constraints. ``mode``: "field" (F at ``probes()``) or "trajectories"
        (mean-field trajectories from a ring of initial states, F by finite differences). ``pin_m``: add
        ``num_units`` observed m loadings (what recording single units gives, notes section 4.3)."""
        C_m, C_n = self.second_moments()
        traj = self.trajectories()
        if mode == "field":
            kappa = self.probes()
            F = self.field(kappa)
        elif mode == "trajectories":
            states, F = field_from_trajectories(traj["t"], traj["kappa"], self.tau)
            kappa, F = subsample_probes(states, F, max_probes, seed)
        else:
            raise InputError("mode", f"unknown observation mode {mode!r}; use 'field' or 'trajectories'")
        m = self.sample(num_units, seed=seed + 1)[:, 0::2] if pin_m else None
        return Observation(rank=self.rank, kappa=kappa, F=F, C_n=C_n, C_m=C_m, m_samples=m, tau=self.tau,
                           phi=self.phi, source=f"teacher {self.name} ({mode})", trajectories=traj)

    def initial_states(self, count: int = 8, radius: float = 1.8) -> Tensor:
        """Initial latent states for trajectories: (count, R)."""
        if self.rank == 1:
            return torch.linspace(-radius, radius, count, dtype=torch.float64)[:, None]
        ang = torch.arange(count, dtype=torch.float64) * (2 * math.pi / count) + 0.3
        rad = torch.where(torch.arange(count) % 2 == 0, radius, 0.15).to(torch.float64)
        return torch.stack([rad * ang.cos(), rad * ang.sin()], 1)

    def trajectories(self, duration: float = 20.0, dt: float = 0.1) -> dict[str, Tensor]:
        """Mean-field latent trajectories: {"t": (T,), "kappa": (B, T, R)}."""
        from .meanfield import integrate_latent

        mix = self.mixture()
        if mix is not None:
            def fld(k):
                return mix.field(k, phi=self.phi)
        else:
            zs = self.sample(50_000, seed=12345)

            def fld(k):
                return field_mc(k, zs, self.rank, self.phi)
        k = integrate_latent(fld, self.initial_states(), duration, dt, self.tau)
        return {"t": torch.arange(k.shape[1], dtype=torch.float64) * dt, "kappa": k}


def make_teacher(name: str) -> Teacher:
    """One of ``TEACHERS``."""
    if name not in TEACHERS:
        raise InputError("teacher", f"unknown teacher {name!r}; choose one of {', '.join(TEACHERS)}")
    base = name.removesuffix("-heavy")
    return Teacher(name=name, S=torch.tensor(_S[base], dtype=torch.float64), heavy=name.endswith("-heavy"))


def tail_index(x: Tensor | np.ndarray) -> float:
    """Robust tail heaviness of a 1-D sample: (q99.5 - q0.5) / (q75 - q25) of |x| deviations,
    normalized so a Gaussian gives 1 (Student-t nu = 4 gives ~1.6)."""
    x = np.asarray(x, dtype=float)
    q = np.quantile(x, [0.005, 0.25, 0.75, 0.995])
    gauss = (2 * special.ndtri(0.995)) / (2 * special.ndtri(0.75))
    return float((q[3] - q[0]) / (q[2] - q[1]) / gauss)
