"""Bookkeeping shared by every method's runner: evaluate the shared criterion on predictive samples,
remember when it was first met, report each check to a callback, and assemble the MethodResult."""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
from torch import Tensor

from .criterion import ConvergenceCriterion
from .problem import Budget, InferenceProblem
from .result import MethodResult, StepRecord

StepCallback = Callable[[StepRecord], None]


class RunLog:
    """Collects the StepRecords of one (method, seed) run.

    ``check(step, z)`` simulates the predictive statistics at z: (n, d) (not counted as the
    method's simulations: they only evaluate the criterion) and records d = ||E f - mu||.
    """

    def __init__(self, method: str, setting: str, seed: int, problem: InferenceProblem,
                 budget: Budget, criterion: ConvergenceCriterion | None = None,
                 on_step: StepCallback | None = None):
        self.method = method
        self.setting = setting
        self.seed = seed
        self.problem = problem
        self.budget = budget
        self.criterion = criterion or ConvergenceCriterion()
        self.on_step = on_step
        self.history: list[StepRecord] = []
        self.time_to_criterion_s: float | None = None
        self.simulations_to_criterion: int | None = None
        self.samples: np.ndarray = np.zeros((0, problem.dim), dtype=np.float32)
        self.predictive: np.ndarray = np.zeros((0, len(problem.statistic_names)), dtype=np.float32)
        self.distance = math.inf

    @property
    def converged(self) -> bool:
        return self.time_to_criterion_s is not None

    def record(self, step: int, distance: float, converged: bool, simulations: int | None = None,
               **extra: Any) -> StepRecord:
        """Append one check; the first check that meets the criterion fixes the time and count."""
        sims = self.problem.num_simulations if simulations is None else simulations
        rec = StepRecord(self.method, step, self.budget.elapsed(), sims, float(distance), bool(converged),
                         {k: _jsonable(v) for k, v in extra.items()})
        self.history.append(rec)
        if converged and self.time_to_criterion_s is None:
            self.time_to_criterion_s = rec.wall_time_s
            self.simulations_to_criterion = sims
        if self.on_step is not None:
            self.on_step(rec)
        return rec

    def check(self, step: int, z: Tensor, simulations: int | None = None, converged: bool | None = None,
              **extra: Any) -> StepRecord:
        """Evaluate the shared criterion on predictive statistics at samples z: (n, d).
        ``converged`` replaces the distance rule (SMC-ABC is judged by its epsilon)."""
        f = self.problem.simulate(z, count=False)
        self.samples = z.detach().cpu().numpy().astype(np.float32)
        self.predictive = f.detach().cpu().numpy().astype(np.float32)
        self.distance = self.criterion.distance(f, self.problem.x0)
        if converged is None:
            converged = self.criterion.met_by_distance(self.distance)
        return self.record(step, self.distance, converged, simulations, **extra)

    def result(self, error: str | None = None, converged: bool | None = None,
               simulations: int | None = None, **extra: Any) -> MethodResult:
        """The MethodResult of this run (``converged`` overrides the distance rule, e.g. for ABC)."""
        return MethodResult(
            method=self.method,
            setting=self.setting,
            seed=self.seed,
            converged=self.converged if converged is None else converged,
            timed_out=self.budget.timed_out() and not self.converged,
            wall_time_s=self.budget.elapsed(),
            simulations=self.problem.num_simulations if simulations is None else simulations,
            distance=float(self.distance),
            parameter_names=self.problem.parameter_names,
            statistic_names=self.problem.statistic_names,
            target_mean=[float(v) for v in self.problem.property.mean],
            samples=self.samples,
            predictive=self.predictive,
            time_to_criterion_s=self.time_to_criterion_s,
            simulations_to_criterion=self.simulations_to_criterion,
            history=self.history,
            device=str(self.problem.device),
            error=error,
            extra={k: _jsonable(v) for k, v in extra.items()},
        )


def _jsonable(v: Any) -> Any:
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return v
