"""Build and train in one job (what the dashboard starts): the data set's chunks, then the estimator.

Settings (flat, as a form gives them): budget, heldout, chunk_size, seed, n_neurons, duration, scheduler
("" = local process pool), max_epochs. The run directory is the data set directory; its estimator goes
to ``estimator/`` as with ``epi-dash amortized build``. Resumable: finished chunks are kept and the
estimator is trained again from the full data set.
"""

from __future__ import annotations

from typing import Any

from ..jobs import JobContext
from .dataset import build_dataset, default_settings
from .posterior import ESTIMATOR_DIR, train_posterior

BUILD_KIND = "amortized.build"


def dataset_settings(flat: dict[str, Any]) -> dict[str, Any]:
    """The data set job's settings from the flat form values."""
    network = {k: flat[k] for k in ("n_neurons", "duration") if k in flat}
    return default_settings(budget=int(flat.get("budget", 2000)), heldout=int(flat.get("heldout", 20)),
                            chunk_size=int(flat.get("chunk_size", 50)), seed=int(flat.get("seed", 0)),
                            network=network, scheduler=(flat.get("scheduler") or None))


def build_and_train(ctx: JobContext) -> dict[str, Any]:
    """Simulate the missing chunks, then train NPE (progress: simulations, then epochs)."""
    ds = dataset_settings(ctx.settings)
    sim = JobContext(ctx.run_dir, ds, resumed=ctx.resumed, emit=ctx._emit, stop_event=ctx._stop_event)
    out = build_dataset(sim)
    ctx.last_progress = sim.last_progress
    ctx.message(f"data set: {out['simulations']} simulations ({out['valid']} valid); training the estimator")
    (ctx.run_dir / ESTIMATOR_DIR).mkdir(exist_ok=True)
    train = {"max_epochs": int(ctx.settings.get("max_epochs", 300))}
    est = JobContext(ctx.run_dir / ESTIMATOR_DIR, {"dataset": str(ctx.run_dir), "train": train},
                     emit=ctx._emit, stop_event=ctx._stop_event)
    result = train_posterior(est)
    ctx.last_progress = est.last_progress
    return {**{f"dataset_{k}": v for k, v in out.items()}, **result}
