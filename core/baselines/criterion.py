"""The convergence criterion shared by every method in the speed race (paper Methods 5.2.5).

A method has reached the emergent property when the mean of its predictive statistics is within
``threshold`` (L2) of the target means: d = ||E_q[f(x; z)] - mu||_2 < 0.25. SMC-ABC is judged by its
own tolerance instead: converged once a population is accepted at epsilon <= 0.5.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch import Tensor

from ..errors import InputError

#: d = ||E[f] - mu||_2 must fall below this (paper: 0.25)
DISTANCE_THRESHOLD = 0.25
#: SMC-ABC converged when its population is accepted within this L2 ball around mu (paper: 0.5)
ABC_EPSILON = 0.5


def _as_numpy(f: Tensor | np.ndarray | list[float]) -> np.ndarray:
    if isinstance(f, Tensor):
        return f.detach().cpu().double().numpy()
    return np.asarray(f, dtype=float)  # also lists of floats


def predictive_distance(f: Tensor | np.ndarray, target_mean: Tensor | np.ndarray | list[float]) -> float:
    """d = ||mean_n f - mu||_2 for predictive statistics f: (n, m) and targets mu: (m,).

    Non-finite rows are dropped (a simulator blow-up must not turn d into NaN silently); with no
    finite row the distance is infinite.
    """
    f = _as_numpy(f)
    mu = _as_numpy(target_mean).reshape(-1)
    if f.ndim != 2 or f.shape[1] != mu.size:
        raise InputError("statistics", f"need f: (n, {mu.size}) to match the targets; got {f.shape}")
    finite = np.isfinite(f).all(axis=1)
    if not finite.any():
        return float("inf")
    return float(np.linalg.norm(f[finite].mean(axis=0) - mu))


def abc_distances(f: Tensor | np.ndarray, target_mean: Tensor | np.ndarray | list[float]) -> np.ndarray:
    """Per-sample L2 distances ||f_n - mu||_2: (n,) — the SMC-ABC acceptance distance."""
    f = _as_numpy(f)
    mu = _as_numpy(target_mean).reshape(-1)
    return np.linalg.norm(f - mu, axis=1)


@dataclass(frozen=True)
class ConvergenceCriterion:
    """The shared stopping rule. ``threshold`` on the predictive mean distance, ``abc_epsilon`` on
    the SMC-ABC tolerance."""

    threshold: float = DISTANCE_THRESHOLD
    abc_epsilon: float = ABC_EPSILON

    def __post_init__(self):
        if not self.threshold > 0:
            raise InputError("threshold", f"must be > 0; got {self.threshold}")
        if not self.abc_epsilon > 0:
            raise InputError("abc_epsilon", f"must be > 0; got {self.abc_epsilon}")

    def distance(self, f: Tensor | np.ndarray, target_mean) -> float:
        return predictive_distance(f, target_mean)

    def met_by_distance(self, distance: float) -> bool:
        return bool(np.isfinite(distance) and distance < self.threshold)

    def met(self, f: Tensor | np.ndarray, target_mean) -> bool:
        """True when predictive statistics f: (n, m) satisfy d < threshold."""
        return self.met_by_distance(self.distance(f, target_mean))

    def met_by_epsilon(self, epsilon: float) -> bool:
        """SMC-ABC rule: a population accepted at tolerance ``epsilon`` <= abc_epsilon."""
        return bool(np.isfinite(epsilon) and epsilon <= self.abc_epsilon)
