"""Records of one method's run: a trace of checks (one per EPI epoch / SNPE round / ABC population)
and the final result with samples, predictive statistics, timing and simulation counts."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


@dataclass
class StepRecord:
    """One check of the shared criterion. ``step``: epoch, round or population index (1-based)."""

    method: str
    step: int
    wall_time_s: float
    simulations: int
    distance: float
    converged: bool
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class MethodResult:
    """Outcome of one (method, seed) run.

    ``samples``: (n, d) parameters from the method's final distribution (inside the box);
    ``predictive``: (n, m) statistics simulated at ``samples``. ``converged``: the shared criterion
    was met; ``time_to_criterion_s`` / ``simulations_to_criterion``: when it first was (None if
    never); ``timed_out``: the wall-time limit ended the run.
    """

    method: str
    setting: str
    seed: int
    converged: bool
    timed_out: bool
    wall_time_s: float
    simulations: int
    distance: float
    parameter_names: list[str]
    statistic_names: list[str]
    target_mean: list[float]
    samples: np.ndarray
    predictive: np.ndarray
    time_to_criterion_s: float | None = None
    simulations_to_criterion: int | None = None
    history: list[StepRecord] = field(default_factory=list)
    device: str = "cpu"
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.method}:{self.setting}" if self.setting else self.method

    def predictive_summary(self) -> dict[str, float]:
        """``mean[stat]`` and ``sd[stat]`` of the predictive statistics (finite rows only)."""
        f = self.predictive
        finite = f[np.isfinite(f).all(axis=1)] if f.size else f
        out: dict[str, float] = {}
        for j, name in enumerate(self.statistic_names):
            col = finite[:, j] if len(finite) else np.array([np.nan])
            out[f"mean[{name}]"] = float(np.mean(col))
            out[f"sd[{name}]"] = float(np.std(col))
        return out

    def row(self) -> dict[str, Any]:
        """One flat table row (compare.csv)."""
        return {
            "method": self.method,
            "setting": self.setting,
            "seed": self.seed,
            "converged": self.converged,
            "timed_out": self.timed_out,
            "wall_time_s": round(self.wall_time_s, 3),
            "time_to_criterion_s": None if self.time_to_criterion_s is None else round(self.time_to_criterion_s, 3),
            "simulations": self.simulations,
            "simulations_to_criterion": self.simulations_to_criterion,
            "distance": self.distance,
            "steps": len(self.history),
            **self.predictive_summary(),
            "device": self.device,
            "error": self.error or "",
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-able record without the sample arrays (those go to an .npz)."""
        return {
            **self.row(),
            "parameter_names": self.parameter_names,
            "statistic_names": self.statistic_names,
            "target_mean": self.target_mean,
            "history": [asdict(h) for h in self.history],
            "extra": self.extra,
        }
