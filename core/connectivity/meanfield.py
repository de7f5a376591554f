"""Mean-field latent dynamics of low-rank RNNs: tau dkappa/dt = -kappa + F(kappa, v),
F_r(kappa, v) = E_p[n_r phi(m^T kappa + I^T v)]: by Monte Carlo over fixed samples of p, and in closed
form (Stein's lemma) for Gaussian mixtures."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..errors import InputError
from .network import ERF_SLOPE, phi_fn, split_loadings


def field_mc(kappa: Tensor, z: Tensor, rank: int, phi: str = "tanh", inputs: int = 0,
             v: Tensor | None = None) -> Tensor:
    """F at probe states kappa: (P, R) (inputs v: (P, K)) as the mean over samples z: (S, d) -> (P, R)."""
    m, n, I = split_loadings(z, rank, inputs)
    pre = kappa @ m.T                                                # (P, S)
    if v is not None and inputs:
        pre = pre + v @ I.T
    return phi_fn(phi)(pre) @ n / z.shape[0]


def features(kappa: Tensor, z: Tensor, rank: int, phi: str = "tanh", inputs: int = 0,
             v: Tensor | None = None) -> Tensor:
    """Per-sample dynamics features T_{s,k,r} = n_r phi(m^T kappa_k + I^T v_k): (S, P, R); their mean
    over samples is ``field_mc``."""
    m, n, I = split_loadings(z, rank, inputs)
    pre = m @ kappa.T                                                # (S, P)
    if v is not None and inputs:
        pre = pre + I @ v.T
    return phi_fn(phi)(pre).unsqueeze(-1) * n.unsqueeze(1)


def gaussian_averages(mu: Tensor, delta: Tensor, phi: str = "tanh", nodes: int = 200) -> tuple[Tensor, Tensor]:
    """<phi>(mu, Delta) and <phi'>(mu, Delta) = E[phi(mu + sqrt(Delta) x)], E[phi'(...)], x ~ N(0, 1).

    erf: closed forms (erf(a mu / sqrt(1 + 2 a^2 Delta)) and the matching <phi'>); tanh: Gauss-Hermite
    quadrature with ``nodes`` nodes (as Beiran et al.'s code)."""
    if phi == "erf":
        a = ERF_SLOPE
        s = 1 + 2 * a**2 * delta
        return (torch.erf(a * mu / s.sqrt()),
                2 * a / math.sqrt(math.pi) * s.rsqrt() * torch.exp(-(a**2) * mu**2 / s))
    if phi != "tanh":
        raise InputError("phi", f"unknown nonlinearity {phi!r}")
    x, w = _hermite(nodes)
    x, w = x.to(mu.dtype), w.to(mu.dtype)
    arg = mu.unsqueeze(-1) + delta.clamp(min=0).sqrt().unsqueeze(-1) * x
    th = torch.tanh(arg)
    return th @ w, (1 - th**2) @ w


@functools.lru_cache(maxsize=8)
def _hermite(nodes: int) -> tuple[Tensor, Tensor]:
    """Gauss-Hermite nodes and weights for E over N(0, 1)."""
    x, w = np.polynomial.hermite.hermgauss(nodes)
    return torch.as_tensor(x * math.sqrt(2)), torch.as_tensor(w / math.sqrt(math.pi))


@dataclass
class GaussianMixture:
    """p(z) = sum_p w_p N(mean_p, cov_p) over interleaved loadings z (see ``network.loading_names``).
    weights: (P,), means: (P, d), covs: (P, d, d)."""

    weights: Tensor
    means: Tensor
    covs: Tensor
    rank: int
    inputs: int = 0

    def _blocks(self) -> dict[str, Tensor]:
        R, K = self.rank, self.inputs
        im, in_ = torch.arange(0, 2 * R, 2), torch.arange(1, 2 * R, 2)
        iI = torch.arange(2 * R, 2 * R + K)
        c = self.covs
        return {"mu_m": self.means[:, im], "mu_n": self.means[:, in_], "mu_I": self.means[:, iI],
                "S_mm": c[:, im][:, :, im], "S_nm": c[:, in_][:, :, im], "S_mI": c[:, im][:, :, iI],
                "S_II": c[:, iI][:, :, iI], "S_nI": c[:, in_][:, :, iI]}

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """(n, d) samples."""
        idx = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        L = torch.linalg.cholesky(self.covs)
        eps = torch.randn(n, self.means.shape[1], generator=generator, dtype=self.means.dtype)
        return self.means[idx] + (L[idx] @ eps.unsqueeze(-1)).squeeze(-1)

    def log_prob(self, z: Tensor) -> Tensor:
        comps = torch.distributions.MultivariateNormal(self.means, self.covs)
        return torch.logsumexp(comps.log_prob(z.unsqueeze(1)) + self.weights.log(), dim=1)

    def entropy(self) -> float:
        """Exact for one population; a Monte Carlo estimate (100k samples) for several."""
        if len(self.weights) == 1:
            return float(torch.distributions.MultivariateNormal(self.means[0], self.covs[0]).entropy())
        z = self.sample(100_000, torch.Generator().manual_seed(0))
        return float(-self.log_prob(z).mean())

    def field(self, kappa: Tensor, v: Tensor | None = None, phi: str = "tanh") -> Tensor:
        """Closed-form F(kappa, v): (P_probes, R) for kappa: (P_probes, R), v: (P_probes, K)."""
        b = self._blocks()
        k = kappa.unsqueeze(1)                                       # (Q, 1, R)
        mu = (b["mu_m"] * k).sum(-1)                                 # (Q, P)
        delta = torch.einsum("qr,prs,qs->qp", kappa, b["S_mm"], kappa)
        lin = torch.einsum("prs,qs->qpr", b["S_nm"], kappa)          # (Q, P, R)
        if v is not None and self.inputs:
            mu = mu + v @ b["mu_I"].T
            delta = (delta + 2 * torch.einsum("qr,prk,qk->qp", kappa, b["S_mI"], v)
                     + torch.einsum("qk,pkl,ql->qp", v, b["S_II"], v))
            lin = lin + torch.einsum("prk,qk->qpr", b["S_nI"], v)
        avg, avg_d = gaussian_averages(mu, delta, phi)
        per_pop = b["mu_n"] * avg.unsqueeze(-1) + lin * avg_d.unsqueeze(-1)
        return (per_pop * self.weights[:, None]).sum(1)


def latent_velocity(kappa: Tensor, F: Tensor, tau: float = 1.0) -> Tensor:
    """dkappa/dt = (-kappa + F) / tau."""
    return (F - kappa) / tau


def integrate_latent(field, kappa0: Tensor, duration: float, dt: float = 0.05, tau: float = 1.0) -> Tensor:
    """RK4 trajectories of the mean-field dynamics from kappa0: (B, R) -> (B, T+1, R); ``field(kappa)
    -> F``."""
    steps = int(round(duration / dt))
    k, out = kappa0, [kappa0]

    def vel(x):
        return latent_velocity(x, field(x), tau)

    for _ in range(steps):
        a = vel(k)
        b = vel(k + 0.5 * dt * a)
        c = vel(k + 0.5 * dt * b)
        d = vel(k + dt * c)
        k = k + dt / 6 * (a + 2 * b + 2 * c + d)
        out.append(k)
    return torch.stack(out, 1)
