"""One target's whole loop: sample the posterior, re-simulate a predictive check, read the geometry."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .check import DEFAULT_TOL, PredictiveCheck, predictive_check
from .geometry import Geometry, global_geometry, local_geometry
from .posterior import AmortizedPosterior
from .spikes import Spikes
from .targets import Target

MIN_ACCEPTED = 10


@dataclass
class TargetAnalysis:
    """Samples z (n, 28), sampling latency, the check, re-simulated features/spikes and the geometry."""

    target: Target
    z: torch.Tensor
    sample_s: float
    check: PredictiveCheck
    x_sim: np.ndarray
    spikes: Spikes
    accepted: np.ndarray  # (k,) bool over the re-simulated samples
    geometry: Geometry
    geometry_source: str

    def to_json(self) -> dict[str, Any]:
        return {"label": self.target.label, "sample_s": self.sample_s, "n_samples": int(len(self.z)),
                "geometry_source": self.geometry_source, "n_accepted": int(self.accepted.sum()),
                "geometry": self.geometry.to_json()}


def analyze_target(posterior: AmortizedPosterior, target: Target, n: int = 1000, k: int = 50,
                   tol: float = DEFAULT_TOL, seed: int = 0, local_points: int = 5,
                   device: str = "cpu") -> TargetAnalysis:
    """Sample n configurations, re-simulate the first k, and compute the geometry of the accepted ones
    (those within tolerance overall; the posterior samples when fewer than MIN_ACCEPTED pass)."""
    t0 = time.perf_counter()
    z = posterior.sample(target.x, n, seed=seed)
    sample_s = time.perf_counter() - t0
    check, x_sim, spikes = predictive_check(posterior, target.x, z, k=min(k, n), tol=tol, seed=seed + 1,
                                            label=target.label, device=device)
    accepted = (np.asarray(check.distance) <= tol) & ~spikes.flagged
    if accepted.sum() >= MIN_ACCEPTED:
        pts, source = z[:len(accepted)][torch.as_tensor(accepted)], "accepted configurations"
    else:
        pts, source = z, f"posterior samples (only {int(accepted.sum())} of {len(accepted)} re-simulations accepted)"
    geometry = global_geometry(pts, target.label)
    geometry = local_geometry(geometry, posterior, target.x, pts, n_points=local_points)
    return TargetAnalysis(target, z, sample_s, check, x_sim, spikes, accepted, geometry, source)
