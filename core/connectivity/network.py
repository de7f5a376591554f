"""Finite-N low-rank RNNs, batched over networks: tau dx/dt = -x + (1/N) sum_r m_r n_r^T phi(x) + I u(t).

Per-neuron loadings are stored interleaved, one row per neuron: ``z = (m1, n1, m2, n2, ..., I1, ..., IK)``
(``loading_names``). Loadings are O(1) and J = M N^T / N (never 1/sqrt(N)).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..errors import InputError

PHIS = ("tanh", "erf")
#: erf(a x) with a = sqrt(pi)/2, so phi'(0) = 1 as for tanh
ERF_SLOPE = math.sqrt(math.pi) / 2


def phi_fn(name: str):
    """The nonlinearity ``name`` ("tanh" or "erf", both with phi'(0) = 1) as a tensor function."""
    if name == "tanh":
        return torch.tanh
    if name == "erf":
        return lambda x: torch.erf(ERF_SLOPE * x)
    raise InputError("phi", f"unknown nonlinearity {name!r}; use one of {', '.join(PHIS)}")


def loading_names(rank: int, inputs: int = 0) -> list[str]:
    """Column names of z: ``m1, n1, ..., mR, nR`` then ``I1..IK`` (``I`` alone when K = 1)."""
    names = [f"{p}{r + 1}" for r in range(rank) for p in ("m", "n")]
    return names + (["I"] if inputs == 1 else [f"I{k + 1}" for k in range(inputs)])


def split_loadings(z: Tensor, rank: int, inputs: int = 0) -> tuple[Tensor, Tensor, Tensor]:
    """z: (..., 2R + K) -> m (..., R), n (..., R), I (..., K)."""
    if z.shape[-1] != 2 * rank + inputs:
        raise InputError("loadings", f"need 2*rank + inputs = {2 * rank + inputs} columns; got {z.shape[-1]}")
    mn = z[..., : 2 * rank]
    return mn[..., 0::2], mn[..., 1::2], z[..., 2 * rank:]


def join_loadings(m: Tensor, n: Tensor, I: Tensor | None = None) -> Tensor:
    """Inverse of ``split_loadings``: m, n (..., R), I (..., K) -> z (..., 2R + K)."""
    mn = torch.stack([m, n], dim=-1).flatten(-2)
    return mn if I is None or I.shape[-1] == 0 else torch.cat([mn, I], dim=-1)


def latent_readout(x: Tensor, m: Tensor) -> Tensor:
    """kappa = (M^T M)^-1 M^T x, the least-squares projection of x: (B, ..., N) on the columns of
    m: (B, N, R) -> (B, ..., R)."""
    gram = m.transpose(-1, -2) @ m                                   # (B, R, R)
    proj = torch.linalg.solve(gram, m.transpose(-1, -2))             # (B, R, N)
    shape = x.shape
    out = x.reshape(shape[0], -1, shape[-1]) @ proj.transpose(-1, -2)
    return out.reshape(*shape[:-1], m.shape[-1])


@torch.no_grad()
def simulate_network(
    z: Tensor, rank: int, kappa0: Tensor, duration: float, dt: float = 0.05, tau: float = 1.0,
    phi: str = "tanh", inputs: int = 0, u: Tensor | None = None, record_every: int = 1,
    noise_std: float = 0.0, generator: torch.Generator | None = None, return_activity: bool = False,
) -> dict[str, Tensor]:
    """Euler-simulate B networks of N units from x(0) = M kappa0.

    z: (B, N, 2R + K) loadings; kappa0: (B, R); u: (steps, K) or (B, steps, K) input, zero if None.
    Returns ``t`` (T,), ``kappa`` (B, T, R) (least-squares projection of x on the m's), and
    ``x`` (B, T, N) when ``return_activity``. Noise (std per sqrt(time)) is white, added to x."""
    if z.ndim != 3:
        raise InputError("loadings", f"expected (networks, N, {2 * rank + inputs}); got {tuple(z.shape)}")
    f = phi_fn(phi)
    m, n, I = split_loadings(z, rank, inputs)
    B, N, _ = z.shape
    steps = int(round(duration / dt))
    x = (m @ kappa0.unsqueeze(-1)).squeeze(-1)                      # (B, N)
    alpha = dt / tau
    ts, ks, xs = [0.0], [kappa0], [x] if return_activity else []
    proj = torch.linalg.solve(m.transpose(-1, -2) @ m, m.transpose(-1, -2))  # (B, R, N)
    for k in range(steps):
        rec = (n.transpose(-1, -2) @ f(x).unsqueeze(-1)).squeeze(-1) / N    # (B, R)
        drive = (m @ rec.unsqueeze(-1)).squeeze(-1)
        if u is not None and inputs:
            uk = u[k] if u.ndim == 2 else u[:, k]
            drive = drive + (I @ uk.reshape(-1, inputs, 1).expand(B, inputs, 1)).squeeze(-1)
        x = x + alpha * (drive - x)
        if noise_std > 0:
            x = x + noise_std * math.sqrt(dt) / tau * torch.randn(x.shape, generator=generator, dtype=x.dtype)
        if (k + 1) % record_every == 0:
            ts.append((k + 1) * dt)
            ks.append((proj @ x.unsqueeze(-1)).squeeze(-1))
            if return_activity:
                xs.append(x)
    out = {"t": torch.tensor(ts, dtype=z.dtype), "kappa": torch.stack(ks, 1)}
    if return_activity:
        out["x"] = torch.stack(xs, 1)
    return out


def sample_networks(sampler, num_networks: int, N: int) -> Tensor:
    """(num_networks, N, d) loadings from ``sampler(n) -> (n, d)`` (i.i.d. units)."""
    return sampler(num_networks * N).reshape(num_networks, N, -1)
