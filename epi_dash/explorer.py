"""Degeneracy explorer (no panel import): move z from the mode along one Hessian eigenvector and
see activity, statistics and log q there (paper Fig 1E-F).

z(s) = mode + s * v_k / sqrt(|lambda_k|), clipped inside the parameter box. Along a degenerate
direction (small |lambda|) the unit step is long and activity barely changes; along a sensitive one it
is short and activity changes quickly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import param
import torch

from core.model import Model, Trajectories

#: model draws averaged for the statistics at a probed point (stochastic simulators)
STAT_DRAWS = 16
#: seed of the noise every probe simulates with (common random numbers): the traces and statistics at the
#: mode and at a probe differ by z alone, so sliding along a direction shows its effect, not fresh noise
PROBE_NOISE_SEED = 0


def direction_options(analysis: dict[str, Any] | None, per_end: int = 8) -> dict[str, int]:
    """Labels like ``"v1 sensitive (λ = -12.3)"`` -> eigenvector index, most sensitive first; for
    large D only the ``per_end`` most sensitive and ``per_end`` most degenerate directions."""
    if not analysis:
        return {}
    vals = np.asarray(analysis["eigenvalues"])
    keep = range(len(vals)) if len(vals) <= 2 * per_end else [*range(per_end), *range(len(vals) - per_end, len(vals))]
    return {f"v{n + 1} {analysis['kinds'][n]} (λ = {vals[n]:.3g})": n for n in keep}


class DegeneracyExplorer(param.Parameterized):
    """Probe point state; ``evaluate`` simulates the model there."""

    direction = param.Integer(default=0, bounds=(0, None), doc="Hessian eigenvector (0 = most sensitive)")
    step = param.Number(default=0.0, bounds=(-3.0, 3.0), step=0.05,
                        doc="distance from the mode in units of 1/sqrt(|eigenvalue|)")
    analysis = param.Dict(default=None, allow_None=True, doc="mode, eigenvalues, eigenvectors, kinds")
    clicked = param.Array(default=None, allow_None=True, doc="a z picked in the pairplot (overrides the slider)")

    def __init__(self, model: Model, **params):
        super().__init__(**params)
        self.model = model
        lower, upper = model.bounds()
        width = (upper - lower).numpy()
        # steps that leave the box stop just inside it (log q is -inf on its faces)
        self._bounds = (lower.numpy(), upper.numpy())
        self._lower = lower.numpy() + 1e-6 * width
        self._upper = upper.numpy() - 1e-6 * width

    def probe(self) -> np.ndarray | None:
        """The probed z: (d,), or None before any mode is known."""
        if self.clicked is not None:
            return np.asarray(self.clicked, dtype=float)
        if not self.analysis:
            return None
        vals = np.asarray(self.analysis["eigenvalues"])
        vecs = np.asarray(self.analysis["eigenvectors"])
        k = min(self.direction, len(vals) - 1)
        z = np.asarray(self.analysis["mode"]) + self.step * vecs[:, k] / np.sqrt(max(abs(vals[k]), 1e-12))
        outside = (z <= self._bounds[0]) | (z >= self._bounds[1])
        return np.where(outside, np.clip(z, self._lower, self._upper), z)

    def mode(self) -> np.ndarray | None:
        return None if not self.analysis else np.asarray(self.analysis["mode"], dtype=float)

    @torch.no_grad()
    def trajectories(self, z: np.ndarray | None) -> Trajectories | None:
        """Simulated activity at z, or None when the model has no traces to show."""
        if z is None:
            return None
        try:
            with self.model.fixed_noise(PROBE_NOISE_SEED):
                return self.model.trajectories(torch.as_tensor(z, dtype=torch.float32)[None])
        except NotImplementedError:
            return None

    @torch.no_grad()
    def statistics(self, z: np.ndarray | None) -> np.ndarray | None:
        """Mean statistics over ``STAT_DRAWS`` simulations at z: (m,)."""
        if z is None:
            return None
        zz = torch.as_tensor(z, dtype=torch.float32)[None].repeat(STAT_DRAWS, 1)
        with self.model.fixed_noise(PROBE_NOISE_SEED):
            return self.model.emergent_statistics(zz).mean(0).cpu().numpy()
