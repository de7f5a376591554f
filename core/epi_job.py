"""EPI training as a job (core.jobs): so a training runs on any executor, in this process or on a Dask
worker, with the same run directory, stop, resume and run library as every other long task.

Settings (plain JSON): ``model`` (a registered name or ``path/to/file.py:Class``), ``model_params``,
``property`` (``EmergentProperty.to_dict()``), ``flow`` and ``optimizer`` (settings dicts). Events:

``progress``  every iteration: step = iteration, total = num_epochs x iters_per_epoch, scalars entropy,
              cost, c and ``R:<constraint>``, ``mean:<statistic>``, ``std:<statistic>``, ``eta:<constraint>``
``epoch``     (persisted) an ``EpochRecord`` as a dict
``snapshot``  (in-process only) iteration, z (n, d), log_q (n,) of the current q, every ``snapshot_every``

The run directory is an ordinary EPI run (run.json, trace.csv, checkpoint.pt, samples.npz: ``core.runs``)
with the job's fields (kind "epi", function, settings) added to run.json.

In-process submitters (the dashboard) may hand the job two objects (``JobContext.objects``):
``make_trainer(ctx) -> EPITrainer`` (a model object built in the UI, which settings cannot always name) and
``on_trainer(trainer)`` (called before training: the place to add the UI's own callbacks).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import torch

from .epi import EPITrainer, EpochRecord, IterationRecord
from .errors import TrainingError
from .jobs import JobContext, JobStopped
from .model import Model, load_model
from .property import EmergentProperty
from .runs import OWNER_KEY
from .settings import FlowSettings, OptimizerSettings, settings_dict

KIND = "epi"


def epi_settings(model_spec: str, model: Model, prop: EmergentProperty, flow: FlowSettings,
                 opt: OptimizerSettings) -> dict[str, Any]:
    """The job settings of one EPI training (what :func:`train_epi` rebuilds it from)."""
    return {"model": model_spec, "model_params": model.hyperparameters(), "property": prop.to_dict(),
            "flow": settings_dict(flow), "optimizer": settings_dict(opt)}


def build_trainer(ctx: JobContext) -> EPITrainer:
    """A new trainer from ``ctx.settings``, or the one in ``ctx.run_dir`` when the job resumes."""
    if ctx.resumed and ctx.path("checkpoint.pt").is_file():
        return EPITrainer.resume(ctx.run_dir, device=ctx.settings.get("optimizer", {}).get("device"))
    s = ctx.settings
    model = load_model(s["model"], **s.get("model_params", {}))
    prop = EmergentProperty.from_dict(s["property"]) if s.get("property") else None
    flow = FlowSettings(**{k: v for k, v in s.get("flow", {}).items() if k in FlowSettings.param})
    opt = OptimizerSettings(**{k: v for k, v in s.get("optimizer", {}).items() if k in OptimizerSettings.param})
    return EPITrainer(model, prop, flow, opt, run_dir=ctx.run_dir)


def train_epi(ctx: JobContext, snapshot_every: int = 0, snapshot_samples: int = 500) -> dict[str, Any]:
    """Train (or continue) EPI in ``ctx.run_dir``; returns the outcome (state "converged" when it passed
    the test). A stop asked through the job ends the trainer after its iteration, with a checkpoint."""
    make = ctx.objects.get("make_trainer")
    trainer = make(ctx) if make is not None else build_trainer(ctx)
    trainer.extra_meta = {"kind": KIND, "function": f"{__name__}:train_epi", "settings": ctx.settings,
                          **({OWNER_KEY: ctx.owner} if ctx.owner else {})}
    opt = trainer.opt
    total = opt.num_epochs * opt.iters_per_epoch
    cons, stats = trainer.property.constraint_names, trainer.property.statistics

    def on_iteration(rec: IterationRecord) -> None:
        scalars = {"entropy": rec.entropy, "cost": rec.cost, "c": rec.c, "wall_time": rec.wall_time,
                   **{f"R:{n}": v for n, v in zip(cons, rec.R)},
                   **{f"mean:{s}": v for s, v in zip(stats, rec.f_mean)},
                   **{f"std:{s}": v for s, v in zip(stats, rec.f_std)},
                   **{f"eta:{n}": v for n, v in zip(cons, rec.eta)}}
        ctx.progress(rec.iteration, total, epoch=rec.epoch, **scalars)
        if snapshot_every and rec.iteration % snapshot_every == 0:
            with torch.no_grad():
                z, log_q = trainer.distribution.sample_with_log_prob(snapshot_samples)
            trainer.flow.train()
            ctx.emit("snapshot", iteration=rec.iteration, z=z.cpu().numpy(), log_q=log_q.cpu().numpy())
        if ctx.stop_requested:
            trainer.request_stop()

    def on_epoch(rec: EpochRecord) -> None:
        ctx.emit("epoch", persist=True, **{k: v for k, v in asdict(rec).items() if k != "health"})

    trainer.add_callback(on_iteration=on_iteration, on_epoch=on_epoch)
    if ctx.objects.get("on_trainer") is not None:
        ctx.objects["on_trainer"](trainer)
    if ctx.stop_requested:
        raise JobStopped()
    result = trainer.train()
    if result.state == "unhealthy":  # the health watch stopped it (core.health): kept, resumable
        for finding in getattr(result, "health", []) or []:
            ctx.message(finding.get("message", str(finding)) if isinstance(finding, dict) else str(finding),
                        level="warning")
        raise JobStopped("unhealthy")
    if result.state == "stopped":
        raise JobStopped()
    if result.state == "failed":
        raise TrainingError(result.error or "training failed")
    return {"state": result.state, "converged": result.converged, "epochs": result.epochs,
            "iterations": result.iterations, "entropy": result.entropy, "wall_time_s": result.wall_time_s}
