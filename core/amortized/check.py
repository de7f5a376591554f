"""Posterior-predictive check and coverage warning for a target.

Re-simulate K posterior samples, recompute the same features and compare with the target's. The scale
of feature j is s_j, its sd over the valid training simulations (the prior predictive). A simulation is
within tolerance on feature j when |x_j - x*_j| <= tol * s_j, and overall when the root mean square over
features of (x_j - x*_j) / s_j is <= tol (tol = 0.5 by default: half a prior-predictive sd).
A target whose features lie outside the training set's 0.5-99.5 % range gets a coverage warning.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from ..errors import InputError
from .features import FeatureSettings, compute_features
from .network import simulate
from .posterior import AmortizedPosterior
from .prior import NetworkConfig
from .spikes import Spikes

DEFAULT_TOL = 0.5


@dataclass
class PredictiveCheck:
    """The check's numbers (JSON-able via ``to_json``); arrays are per feature in ``feature_names`` order."""

    feature_names: list[str]
    feature_units: list[str]
    target: list[float]
    tolerance: float
    scale: list[float]
    fraction_per_feature: list[float]
    fraction_overall: float
    n_resimulated: int
    n_valid: int
    distance: list[float]
    coverage_warning: str = ""
    outside_features: list[str] = field(default_factory=list)
    label: str = ""

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["per_feature"] = {n: f for n, f in zip(self.feature_names, self.fraction_per_feature)}
        d["target_values"] = {n: v for n, v in zip(self.feature_names, self.target)}
        return d

    def table(self) -> str:
        """The check as printed text."""
        lines = [f"posterior-predictive check{' of ' + self.label if self.label else ''}: {self.n_resimulated} "
                 f"re-simulated samples ({self.n_valid} not flagged), tolerance {self.tolerance} training sd",
                 f"{'feature':<22} {'unit':<14} {'target':>9} {'within':>7}"]
        for n, u, t, f in zip(self.feature_names, self.feature_units, self.target, self.fraction_per_feature):
            lines.append(f"{n:<22} {u:<14} {t:>9.3f} {100 * f:>6.0f}%")
        lines.append(f"{'overall (RMS)':<22} {'':<14} {'':>9} {100 * self.fraction_overall:>6.0f}%")
        if self.coverage_warning:
            lines.append(f"warning: {self.coverage_warning}")
        return "\n".join(lines)


def coverage(x_target: np.ndarray, posterior: AmortizedPosterior) -> tuple[str, list[str]]:
    """A warning (or "") and the features outside the training set's 0.5-99.5 % quantile range."""
    f = posterior.meta["features"]
    lo, hi = np.asarray(f["q_low"]), np.asarray(f["q_high"])
    out = [n for n, v, a, b in zip(posterior.feature_names, x_target, lo, hi) if v < a or v > b]
    if not out:
        return "", []
    return (f"the target lies outside what the training set covers for {len(out)} feature(s) "
            f"({', '.join(out[:6])}{', ...' if len(out) > 6 else ''}): the posterior extrapolates there"), out


def resimulate(theta: torch.Tensor, posterior: AmortizedPosterior, seed: int = 1,
               device: str = "cpu") -> tuple[np.ndarray, Spikes]:
    """Features (K, F) and spikes of K parameter sets, with the estimator's network and feature settings."""
    net = NetworkConfig.from_dict(posterior.meta["network"])
    fs = FeatureSettings.from_dict(posterior.meta["feature_settings"])
    spikes = simulate(theta, net, seed=seed, device=device)
    return compute_features(spikes, fs, t_start=net.t_start), spikes


def compare(x_sim: np.ndarray, flagged: np.ndarray, x_target: np.ndarray, posterior: AmortizedPosterior,
            tol: float = DEFAULT_TOL, label: str = "") -> PredictiveCheck:
    """The check from already simulated features x_sim (K, F). Flagged sims count as misses."""
    if not tol > 0:
        raise InputError("tolerance", f"must be > 0, got {tol}")
    scale = np.asarray(posterior.meta["features"]["std"])
    d = (x_sim - x_target[None]) / scale[None]
    ok = ~np.asarray(flagged, bool)
    within = (np.abs(d) <= tol) & ok[:, None]
    rms = np.sqrt((d ** 2).mean(1))
    overall = (rms <= tol) & ok
    warning, outside = coverage(x_target, posterior)
    return PredictiveCheck(posterior.feature_names, list(posterior.meta["feature_units"]),
                           [float(v) for v in x_target], float(tol), scale.tolist(),
                           within.mean(0).tolist(), float(overall.mean()), int(len(x_sim)), int(ok.sum()),
                           rms.tolist(), warning, outside, label)


def predictive_check(posterior: AmortizedPosterior, x_target: np.ndarray, theta: torch.Tensor, k: int = 50,
                     tol: float = DEFAULT_TOL, seed: int = 1, label: str = "",
                     device: str = "cpu") -> tuple[PredictiveCheck, np.ndarray, Spikes]:
    """Re-simulate the first ``k`` of ``theta`` (n, 28) and compare with the target: (check, x_sim, spikes)."""
    if k < 1:
        raise InputError("k", f"must be >= 1 re-simulation, got {k}")
    x_sim, spikes = resimulate(theta[:k], posterior, seed=seed, device=device)
    return compare(x_sim, spikes.flagged, np.asarray(x_target), posterior, tol, label), x_sim, spikes
