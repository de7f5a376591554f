"""What the dynamics tell us: the latent vector field at probe states, as expectation constraints on p.

F(kappa_k) = E_p[n phi(m^T kappa_k + I^T v_k)] at P probe states; targets from a vector field directly, or
from latent trajectories by finite differences (F = tau dkappa/dt + kappa). Optionally the single-neuron
m loadings (recorded units give them by regression on the latents) and the second moments that fix the
gauge and the spread of what the dynamics leave free."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..errors import InputError


@dataclass
class Observation:
    """Constraints on the loading distribution p of a rank-``rank`` network.

    kappa: (P, R) probe states; F: (P, R) observed F(kappa); C_n: (R, R) the budget E[n n^T];
    C_m: (R, R) E[m m^T] (the gauge; used when m_samples is None); m_samples: (M, R) observed m loadings
    (pins p(m) to their empirical law) or None; trajectories: optional {"t": (T,), "kappa": (B, T, R)}."""

    rank: int
    kappa: Tensor
    F: Tensor
    C_n: Tensor
    C_m: Tensor
    m_samples: Tensor | None = None
    tau: float = 1.0
    phi: str = "tanh"
    inputs: int = 0
    source: str = ""
    trajectories: dict[str, Tensor] = field(default_factory=dict)

    def __post_init__(self):
        R = self.rank
        for name, t, shape in (("kappa", self.kappa, (None, R)), ("F", self.F, (self.kappa.shape[0], R)),
                               ("C_n", self.C_n, (R, R)), ("C_m", self.C_m, (R, R))):
            if t.ndim != 2 or (shape[0] is not None and t.shape[0] != shape[0]) or t.shape[1] != shape[1]:
                raise InputError(name, f"expected shape ({shape[0] or 'P'}, {shape[1]}); got {tuple(t.shape)}")
            if not torch.isfinite(t).all():
                raise InputError(name, "contains NaN or infinite values")
        if self.m_samples is not None and (self.m_samples.ndim != 2 or self.m_samples.shape[1] != R):
            raise InputError("m_samples", f"expected (M, {R}); got {tuple(self.m_samples.shape)}")

    @property
    def pinned(self) -> bool:
        """Whether p(m) is pinned to observed m loadings."""
        return self.m_samples is not None

    def latent_only(self) -> Observation:
        """The same dynamics without the single-neuron m loadings (p(m) then free up to C_m)."""
        return replace(self, m_samples=None)

    def summary(self) -> dict[str, Any]:
        return {"rank": self.rank, "probes": int(self.kappa.shape[0]), "pinned_m": self.pinned,
                "tau": self.tau, "phi": self.phi, "source": self.source}


def field_from_trajectories(t: Tensor, kappa: Tensor, tau: float = 1.0) -> tuple[Tensor, Tensor]:
    """States and F = tau dkappa/dt + kappa by central differences: kappa (B, T, R), t (T,) ->
    (B*(T-2), R) each."""
    if kappa.ndim != 3:
        raise InputError("trajectories", f"expected (trials, T, R); got {tuple(kappa.shape)}")
    if kappa.shape[1] < 3:
        raise InputError("trajectories", f"need at least 3 time points; got {kappa.shape[1]}")
    dt = (t[2:] - t[:-2])[None, :, None]
    if not (dt > 0).all():
        raise InputError("t", "times must increase strictly")
    vel = (kappa[:, 2:] - kappa[:, :-2]) / dt
    states = kappa[:, 1:-1]
    return states.reshape(-1, kappa.shape[2]), (tau * vel + states).reshape(-1, kappa.shape[2])


def subsample_probes(states: Tensor, F: Tensor, max_probes: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    """At most ``max_probes`` states spread over the visited region (greedy farthest-point sampling)."""
    if states.shape[0] <= max_probes:
        return states, F
    rng = np.random.default_rng(seed)
    x = states.numpy()
    chosen = [int(rng.integers(len(x)))]
    dist = np.linalg.norm(x - x[chosen[0]], axis=1)
    for _ in range(max_probes - 1):
        j = int(dist.argmax())
        chosen.append(j)
        dist = np.minimum(dist, np.linalg.norm(x - x[j], axis=1))
    idx = torch.as_tensor(chosen)
    return states[idx], F[idx]
