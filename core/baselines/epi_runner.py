"""EPI as a contestant in the race: the engine's EPITrainer, checked against the shared criterion
after every epoch (and optionally every ``check_every`` iterations) and stopped at the wall-time limit."""

from __future__ import annotations

from typing import Any

from ..epi import EPITrainer, EpochRecord, IterationRecord
from ..settings import settings_for
from .criterion import ConvergenceCriterion
from .problem import Budget, InferenceProblem
from .result import MethodResult
from .run_log import RunLog, StepCallback


def run_epi(problem: InferenceProblem, seed: int = 0, budget: Budget | None = None,
            criterion: ConvergenceCriterion | None = None, on_step: StepCallback | None = None,
            settings: dict[str, Any] | None = None, check_every: int | None = None,
            num_predictive: int = 1000, stop_at_criterion: bool = True,
            setting_name: str = "paper") -> MethodResult:
    """Train EPI with the model's paper settings (``settings`` overrides them).

    ``simulations`` counts the training batches (batch_size x iterations, as the paper does); the
    simulations of EPI's own hypothesis tests are reported in ``extra["test_simulations"]``.
    """
    budget = budget or Budget()
    # health "warn": in a race every method runs to the shared criterion or its budget; the watch's findings
    # are still recorded, but a stop would end EPI on its own rule where the others have none
    flow, opt = settings_for(problem.model, **{"health": "warn", **(settings or {}), "seed": seed,
                                               "device": str(problem.device)})
    trainer = EPITrainer(problem.model, problem.property, flow, opt)
    log = RunLog("epi", setting_name, seed, problem, budget, criterion, on_step)
    checks = {"step": 0}

    def check(**extra: Any) -> None:
        checks["step"] += 1
        z = trainer.distribution.sample(num_predictive)
        rec = log.check(checks["step"], z, simulations=opt.batch_size * trainer.iteration,
                        iteration=trainer.iteration, **extra)
        if rec.converged and stop_at_criterion:
            trainer.request_stop()

    def on_iteration(rec: IterationRecord) -> None:
        if budget.exhausted():
            trainer.request_stop()
        elif check_every and rec.iteration % check_every == 0 and rec.iteration % opt.iters_per_epoch:
            check(epoch=rec.epoch, entropy=rec.entropy)

    def on_epoch(rec: EpochRecord) -> None:
        check(epoch=rec.epoch, entropy=rec.entropy, epi_converged=rec.converged, c=rec.c)

    trainer.add_callback(on_iteration=on_iteration, on_epoch=on_epoch)
    outcome = trainer.train()
    if not log.history and trainer.initialized:  # stopped inside the first epoch: report where q is
        check(epoch=trainer.epoch + 1)
    n_test = max(2, int(round(opt.nu * opt.batch_size)))
    test_sims = opt.num_test_batches * (opt.batch_size * (1 + trainer.epoch) + n_test * trainer.epoch)
    return log.result(
        error=outcome.error, simulations=opt.batch_size * trainer.iteration,
        epi_converged=outcome.converged, epochs=outcome.epochs, iterations=outcome.iterations,
        entropy=outcome.entropy, test_simulations=test_sims, **trainer.init_info,
    )
