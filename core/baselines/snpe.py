"""Sequential neural posterior estimation (sbi's NPE_C = SNPE-C / APT) on an EPI problem.

Round 1 simulates from the uniform box prior; every later round from the current posterior at
x0 = mu (atomic loss). After each round the shared criterion is evaluated on ``num_predictive``
posterior samples. Two densities: ``bounded`` (zuko MAF behind a logit map to the box, the paper's
"support map") and ``unbounded`` (sbi's default nflows MAF; leaks outside the box, so sampling
rejects outside-prior draws and can stall — recorded as ``in_box_fraction``).
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from typing import Any

import param
import torch
from torch.utils.data import default_collate

from ..errors import InputError
from .criterion import ConvergenceCriterion
from .problem import Budget, InferenceProblem, Stopped
from .result import MethodResult
from .run_log import RunLog, StepCallback


def reference_simulations_per_round(dim: int) -> int:
    """The reference script's budget (RNN: dim = 4N): 1,000 for N < 50, 25,000 at N = 50,
    250,000 at N = 100."""
    if dim < 200:
        return 1_000
    if dim < 400:
        return 25_000
    return 250_000


class SNPESettings(param.Parameterized):
    """SNPE settings; defaults = the reference script (MAF, 3 transforms, 50 hidden, 100 atoms,
    training batch 200, 10 epochs of patience, stop when the best validation loss is 2 rounds old)."""

    density = param.Selector(default="bounded", objects=["bounded", "unbounded"],
                             doc="bounded: zuko MAF + logit map to the box; unbounded: sbi's default MAF")
    hidden_features = param.Integer(50, bounds=(1, None))
    num_transforms = param.Integer(3, bounds=(1, None))
    simulations_per_round = param.Integer(None, bounds=(1, None), allow_None=True,
                                          doc="None: the reference budget for the dimension")
    training_batch_size = param.Integer(200, bounds=(1, None))
    num_atoms = param.Integer(100, bounds=(2, None))
    learning_rate = param.Number(5e-4, bounds=(0, None), inclusive_bounds=(False, True))
    stop_after_epochs = param.Integer(10, bounds=(1, None))
    max_rounds = param.Integer(50, bounds=(1, None))
    patience_rounds = param.Integer(2, bounds=(1, None), allow_None=True,
                                    doc="stop when the best validation loss is this many rounds old")
    num_predictive = param.Integer(1000, bounds=(1, None), doc="posterior samples per criterion check")
    max_sampling_time_s = param.Number(120.0, bounds=(0, None), inclusive_bounds=(False, True),
                                       doc="cap on one rejection-sampling call (stalled posteriors)")
    use_combined_loss = param.Boolean(False, doc="add the prior-sample MLE loss (less leakage)")
    stop_at_criterion = param.Boolean(True)

    @classmethod
    def preset(cls, name: str = "reference", dim: int = 1, **overrides: Any) -> SNPESettings:
        """``reference``: the reference script's settings. ``aggressive``: rounds of at most 5,000
        simulations (the reference's 25,000 / 250,000 at N = 50 / 100 cannot finish one round in
        minutes), faster training (10 atoms, learning rate 1e-3, 5 epochs of patience), the combined
        loss against leakage, and no round-level early stop: many cheap rounds instead of few big ones."""
        sims = reference_simulations_per_round(dim)
        if name == "reference":
            base: dict[str, Any] = dict(simulations_per_round=sims, training_batch_size=1000 if dim >= 400 else 200)
        elif name == "aggressive":
            sims = min(sims, 5_000)
            base = dict(simulations_per_round=sims, training_batch_size=min(500, sims // 10), num_atoms=10,
                        learning_rate=1e-3, stop_after_epochs=5, use_combined_loss=True, patience_rounds=None)
        else:
            raise InputError("snpe.preset", f"unknown preset {name!r}; use reference or aggressive")
        return cls(**{**base, **overrides})

    def label(self) -> str:
        return f"{self.density}, {self.simulations_per_round or 'ref'} sims/round"


class QuietTracker:
    """sbi's Tracker protocol without TensorBoard files (sbi's default writes them into the working
    directory); keeps the latest value of each metric for progress reports."""

    log_dir = None

    def __init__(self) -> None:
        self.metrics: dict[str, float] = {}

    def log_metric(self, name, value, step=None):
        self.metrics[name] = float(value)

    def log_metrics(self, metrics, step=None):
        for k, v in metrics.items():
            self.log_metric(k, v, step)

    def log_params(self, params):
        pass

    def add_figure(self, name, figure, step=None):
        pass

    def flush(self):
        pass


def _density_builder(settings: SNPESettings, prior):
    from sbi.neural_nets import posterior_nn

    if settings.density == "bounded":
        return posterior_nn(model="zuko_maf", hidden_features=[settings.hidden_features] * 2,
                            num_transforms=settings.num_transforms,
                            z_score_theta="transform_to_unconstrained", x_dist=prior)
    return posterior_nn(model="maf", hidden_features=settings.hidden_features,
                        num_transforms=settings.num_transforms)


def _sample(posterior, n: int, problem: InferenceProblem, budget: Budget, settings: SNPESettings):
    """Up to n in-box posterior samples; fewer when rejection sampling runs out of time."""
    limit = min(settings.max_sampling_time_s, max(budget.remaining(), 1e-3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return posterior.sample((n,), x=problem.x0, show_progress_bars=False, max_sampling_time=limit,
                                    return_partial_on_timeout=True)
        except RuntimeError as exc:  # sbi raises instead of returning an empty partial batch
            if "max_sampling_time" not in str(exc):
                raise
            return torch.zeros(0, problem.dim, device=problem.device)


def _in_box_fraction(posterior, problem: InferenceProblem, n: int = 1000) -> float:
    """Fraction of raw density samples inside the box (1 - leakage)."""
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sbi warns about exactly the leakage measured here
        raw = posterior.sample((n,), x=problem.x0, show_progress_bars=False, reject_outside_prior=False)
    return float(problem.in_bounds(raw).float().mean())


def run_snpe(problem: InferenceProblem, settings: SNPESettings | None = None, seed: int = 0,
             budget: Budget | None = None, criterion: ConvergenceCriterion | None = None,
             on_step: StepCallback | None = None, setting_name: str = "") -> MethodResult:
    """Run SNPE round by round until the criterion is met (``stop_at_criterion``), the validation
    loss stops improving for ``patience_rounds``, ``max_rounds``, or the budget runs out."""
    from sbi.inference import NPE_C
    from sbi.utils import BoxUniform

    settings = settings or SNPESettings.preset("reference", problem.dim)
    budget = budget or Budget()
    problem.seed(seed)
    logging.getLogger("sbi").setLevel(logging.ERROR)
    log = RunLog("snpe", setting_name or settings.label(), seed, problem, budget, criterion, on_step)
    sims_per_round = settings.simulations_per_round or reference_simulations_per_round(problem.dim)

    def collate_until_deadline(batch):
        budget.check()  # ends a training epoch mid-way once time is up
        return default_collate(batch)

    error: str | None = None
    rounds_since_best, best_val = 0, float("inf")
    try:
        prior = BoxUniform(low=problem.lower, high=problem.upper, device=str(problem.device))
        inference = NPE_C(prior=prior, density_estimator=_density_builder(settings, prior),
                          device=str(problem.device), show_progress_bars=False, tracker=QuietTracker())
        proposal = None
        for round_index in range(1, settings.max_rounds + 1):
            budget.check()
            theta = problem.sample_prior(sims_per_round) if proposal is None else \
                _sample(proposal, sims_per_round, problem, budget, settings)
            if theta.shape[0] < 2 * settings.num_atoms:
                error = f"round {round_index}: rejection sampling stalled ({theta.shape[0]} in-box samples)"
                break
            x = problem.simulate(theta)
            finite = torch.isfinite(x).all(dim=1)
            inference.append_simulations(theta[finite], x[finite], proposal=proposal,
                                         exclude_invalid_x=False)
            with contextlib.redirect_stdout(io.StringIO()):  # sbi prints its epoch count unconditionally
                estimator = inference.train(
                    num_atoms=settings.num_atoms, training_batch_size=settings.training_batch_size,
                    learning_rate=settings.learning_rate, stop_after_epochs=settings.stop_after_epochs,
                    use_combined_loss=settings.use_combined_loss,
                    dataloader_kwargs={"collate_fn": collate_until_deadline},
                )
            posterior = inference.build_posterior(estimator)
            proposal = posterior.set_default_x(problem.x0)
            z = _sample(proposal, settings.num_predictive, problem, budget, settings)
            val = float(inference._summary["best_validation_loss"][-1])
            if z.shape[0] == 0:
                error = f"round {round_index}: no in-box posterior sample within the sampling time"
                break
            rec = log.check(round_index, z, in_box_fraction=_in_box_fraction(proposal, problem),
                            validation_loss=val, epochs=int(inference._summary["epochs_trained"][-1]))
            if rec.converged and settings.stop_at_criterion:
                break
            rounds_since_best = 0 if val < best_val else rounds_since_best + 1
            best_val = min(best_val, val)
            if settings.patience_rounds is not None and rounds_since_best >= settings.patience_rounds:
                break
    except Stopped:
        pass
    return log.result(error=error, density=settings.density, simulations_per_round=sims_per_round)
