"""The usual approach: train one low-rank RNN's loadings by gradient descent (BPTT, Adam) on trajectories.

``fit_latent_gd``: a rank-R network of N units fitted to latent trajectories. With x(0) = M kappa(0) and
no input, x(t) = M kappa(t) exactly at any N, so the network's latent dynamics are
tau dkappa/dt = -kappa + (1/N) sum_i n_i phi(m_i^T kappa) and the fit simulates those (cost O(N R) per
step, not O(N^2)). ``fit_activity_gd``: a network with one unit per recorded neuron fitted to population
activity x(t) (Valente et al. 2022 style, masked nothing, Euler steps). Whatever the data do not
constrain keeps its random initialization: the spurious structure the max-ent answer does not have."""

from __future__ import annotations

import time
from typing import Any, Callable

import torch
from torch import Tensor

from ..errors import InputError
from .network import join_loadings, latent_readout, phi_fn


def _euler_latent(m: Tensor, n: Tensor, k0: Tensor, steps: int, dt: float, tau: float, phi) -> Tensor:
    k, out = k0, [k0]
    N = m.shape[0]
    for _ in range(steps):
        F = phi(k @ m.T) @ n / N
        k = k + dt / tau * (F - k)
        out.append(k)
    return torch.stack(out, 1)


def fit_latent_gd(t: Tensor, kappa: Tensor, rank: int, N: int = 500, steps: int = 600, lr: float = 1e-2,
                  init_sd_n: float = 0.1, tau: float = 1.0, phi: str = "tanh", seed: int = 0,
                  on_step: Callable[[int, int, float], None] | None = None) -> dict[str, Any]:
    """Fit loadings (m_i, n_i), i = 1..N, to latent trajectories kappa: (B, T, R) sampled at t: (T,)
    (uniform steps). m starts N(0, I), n N(0, init_sd_n^2 I). Returns {"samples" (N, 2R), "loss",
    "history", "wall_time_s"}."""
    if kappa.ndim != 3 or kappa.shape[2] != rank:
        raise InputError("rank", f"trajectories have {kappa.shape[-1]} latent dimensions; rank {rank} needs {rank}")
    t0 = time.perf_counter()
    g = torch.Generator().manual_seed(seed)
    dt = float(t[1] - t[0])
    target = kappa.float()
    m = torch.randn(N, rank, generator=g).requires_grad_()
    n = (init_sd_n * torch.randn(N, rank, generator=g)).requires_grad_()
    opt = torch.optim.Adam([m, n], lr=lr)
    f = phi_fn(phi)
    history = []
    for k in range(steps):
        pred = _euler_latent(m, n, target[:, 0], target.shape[1] - 1, dt, tau, f)
        loss = ((pred - target) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        history.append(float(loss.detach()))
        if on_step is not None:
            on_step(k + 1, steps, history[-1])
    z = join_loadings(m.detach(), n.detach()).double()
    return {"samples": z, "loss": history[-1], "history": history, "wall_time_s": time.perf_counter() - t0}


def fit_activity_gd(t: Tensor, x: Tensor, rank: int, steps: int = 400, lr: float = 2e-2, tau: float = 1.0,
                    phi: str = "tanh", seed: int = 0, on_step: Callable[[int, int, float], None] | None = None
                    ) -> dict[str, Any]:
    """Fit a rank-R network with one unit per recorded neuron to activity x: (trials, T, N) at times t (T,).
    Initialization from the SVD of the activity (m = top-R principal directions * sqrt(N)). Returns
    {"samples" (N, 2R), "kappa" (trials, T, R) latents (projection of x on m), "loss", "r2", "history"}."""
    trials, T, N = x.shape
    if rank > min(N, T):
        raise InputError("rank", f"the data support at most rank {min(N, T)} ({N} units, {T} time points)")
    t0 = time.perf_counter()
    g = torch.Generator().manual_seed(seed)
    dt = float(t[1] - t[0])
    X = x.float()
    flat = X.reshape(-1, N)
    U, S, Vh = torch.linalg.svd(flat - flat.mean(0), full_matrices=False)
    m = (Vh[:rank].T * N**0.5).clone().requires_grad_()
    n = (0.1 * torch.randn(N, rank, generator=g)).requires_grad_()
    opt = torch.optim.Adam([m, n], lr=lr)
    f = phi_fn(phi)
    history = []
    for k in range(steps):
        xk, out = X[:, 0], [X[:, 0]]
        for _ in range(T - 1):
            rec = f(xk) @ n / N
            xk = xk + dt / tau * (rec @ m.T - xk)
            out.append(xk)
        pred = torch.stack(out, 1)
        loss = ((pred - X) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        history.append(float(loss.detach()))
        if on_step is not None:
            on_step(k + 1, steps, history[-1])
    md, nd = m.detach(), n.detach()
    kappa = latent_readout(X.reshape(1, trials * T, N), md[None]).reshape(trials, T, rank)
    r2 = 1 - history[-1] / float(((X - X.mean((0, 1))) ** 2).mean())
    return {"samples": join_loadings(md, nd).double(), "kappa": kappa.double(), "loss": history[-1], "r2": r2,
            "history": history, "wall_time_s": time.perf_counter() - t0}


def residual_sd(z: Tensor, rank: int, degree: int = 3) -> Tensor:
    """sd of n given m: residual of a per-component least-squares fit of n on odd polynomials of m up to
    ``degree`` (how much of n is *not* a function of m): (R,)."""
    m, n = z[:, 0::2].double(), z[:, 1::2].double()
    feats = torch.cat([m**p for p in range(1, degree + 1, 2)] + [torch.ones(len(m), 1, dtype=m.dtype)], 1)
    coef = torch.linalg.lstsq(feats, n).solution
    return (n - feats @ coef).std(0)
