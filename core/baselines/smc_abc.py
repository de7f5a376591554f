"""SMC-ABC with pyabc (the paper's tool) on an EPI problem.

Prior: U(lower, upper) per parameter, written with scipy's (loc, scale) = (lower, upper - lower)
(the reference script's U[-1, 0] slip is exactly a wrong scale here). Summary statistics: f(x; z);
distance: L2 to x0 = mu. Converged once a population is accepted at epsilon <= ``abc_epsilon``.
pyabc simulates one particle per call, so each particle runs the batched simulator on a (1, d) batch.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
import numpy as np
import param
import torch

from .criterion import ConvergenceCriterion
from .problem import Budget, InferenceProblem, Stopped
from .result import MethodResult
from .run_log import RunLog, StepCallback


class SMCABCSettings(param.Parameterized):
    """Defaults = the reference script: 1,000 particles, at most 200 populations, minimum acceptance
    rate 1e-6, median epsilon schedule, multivariate normal perturbation."""

    population_size = param.Integer(1000, bounds=(2, None))
    max_populations = param.Integer(200, bounds=(1, None))
    min_acceptance_rate = param.Number(1e-6, bounds=(0, 1))
    num_predictive = param.Integer(1000, bounds=(1, None), doc="resampled particles per criterion check")
    stop_at_criterion = param.Boolean(True, doc="stop at the first population within abc_epsilon")

    def label(self) -> str:
        return f"pyabc, {self.population_size} particles"


def pyabc_box_prior(problem: InferenceProblem, keys: list[str]):
    """pyabc Distribution U(lower_i, upper_i) per key; scipy's uniform takes (loc, scale) =
    (lower, upper - lower), which the reference script got wrong (U[-1, 0] instead of U[-1, 1])."""
    import pyabc

    lower, upper = (b.cpu().double().numpy() for b in (problem.lower, problem.upper))
    return pyabc.Distribution(**{k: pyabc.RV("uniform", lo, hi - lo) for k, lo, hi in zip(keys, lower, upper)})


def _deadline_sampler(budget: Budget):
    """pyabc's single-core sampler, aborting (``Stopped``) once the budget is spent."""
    from pyabc.sampler import SingleCoreSampler

    class DeadlineSampler(SingleCoreSampler):
        def sample_until_n_accepted(self, n, simulate_one, t, *, max_eval=np.inf, all_accepted=False,
                                    ana_vars=None):
            def simulate_one_in_time():
                budget.check()
                return simulate_one()

            return super().sample_until_n_accepted(n, simulate_one_in_time, t, max_eval=max_eval,
                                                   all_accepted=all_accepted, ana_vars=ana_vars)

    return DeadlineSampler(check_max_eval=True)


def run_smc_abc(problem: InferenceProblem, settings: SMCABCSettings | None = None, seed: int = 0,
                budget: Budget | None = None, criterion: ConvergenceCriterion | None = None,
                on_step: StepCallback | None = None, setting_name: str = "") -> MethodResult:
    """Run pyabc's ABCSMC population by population; after each, resample ``num_predictive``
    particles by weight and evaluate the shared predictive distance."""
    import pyabc

    settings = settings or SMCABCSettings()
    budget = budget or Budget()
    criterion = criterion or ConvergenceCriterion()
    problem.seed(seed)
    for name in ("ABC", "pyabc", "Sampler", "Epsilon", "Distance", "Acceptor", "Transitions"):
        logging.getLogger(name).setLevel(logging.WARNING)
    log = RunLog("smc", setting_name or settings.label(), seed, problem, budget, criterion, on_step)
    keys = [f"z{i}" for i in range(problem.dim)]

    def simulator(par) -> dict[str, np.ndarray]:
        z = torch.tensor([[par[k] for k in keys]], dtype=torch.float32)
        return {"f": problem.simulate(z)[0].cpu().double().numpy()}

    def distance(x: dict, x0: dict) -> float:
        d = float(np.linalg.norm(x["f"] - x0["f"]))
        return d if np.isfinite(d) else np.inf

    prior = pyabc_box_prior(problem, keys)
    x0 = {"f": problem.x0.cpu().double().numpy()}
    error: str | None = None
    epsilon = float("inf")
    with tempfile.TemporaryDirectory(prefix="epi-smc-") as tmp:
        try:
            abc = pyabc.ABCSMC(simulator, prior, distance, population_size=settings.population_size,
                               sampler=_deadline_sampler(budget))
            history = abc.new("sqlite:///" + str(Path(tmp) / "abc.db"), x0)
            minimum_epsilon = criterion.abc_epsilon if settings.stop_at_criterion else 0.0
            t = abc.initialize_components_before_run(
                minimum_epsilon=minimum_epsilon, max_nr_populations=settings.max_populations,
                min_acceptance_rate=settings.min_acceptance_rate, max_total_nr_simulations=np.inf,
                max_walltime=None, min_eps_diff=0.0,
            )
            while True:
                outcome = abc.run_generation(t=t)
                if not outcome["successful"]:
                    error = f"population {t + 1}: sampling failed (acceptance below the minimum)"
                    break
                epsilon = float(abc.eps(t))
                frame, weights = history.get_distribution(m=0, t=t)
                pick = np.random.choice(len(weights), settings.num_predictive, p=weights / weights.sum())
                z = torch.tensor(frame[keys].to_numpy()[pick], dtype=torch.float32, device=problem.device)
                rec = log.check(t + 1, z, converged=criterion.met_by_epsilon(epsilon), epsilon=epsilon,
                                acceptance_rate=float(outcome["acceptance_rate"]))
                if (rec.converged and settings.stop_at_criterion) or abc.check_terminate(
                        t=t, acceptance_rate=outcome["acceptance_rate"]):
                    break
                t += 1
        except Stopped:
            pass
    return log.result(error=error, epsilon=epsilon, population_size=settings.population_size)
