"""Training the spike-train -> DIC density network on a simulated data set, as a resumable job.

Settings: ``dataset`` (run dir of :func:`core.conductance.dataset.simulate_dataset`), ``epochs``,
``batch_size``, ``lr``, ``val_fraction``, ``seed`` and the network's size (``d``, ``layers``, ...).
Each epoch ends with a checkpoint (network, optimizer, epoch, best validation loss); the best network by
validation negative log-likelihood is written to ``density.pt`` in the run directory.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from core.errors import InputError
from core.jobs import JobContext

from .dataset import load_dataset
from .density import DICDensity, isi_tokens

KIND = "conductance.density"

DEFAULTS: dict[str, Any] = {
    "dataset": "", "epochs": 30, "batch_size": 64, "lr": 2e-3, "val_fraction": 0.1, "seed": 1,
    "d": 32, "heads": 4, "layers": 2, "latent": 16, "transforms": 3, "hidden": 64, "max_spikes": 250,
}
NET_KEYS = ("d", "heads", "layers", "latent", "transforms", "hidden", "max_spikes")


def training_settings(**overrides: Any) -> dict[str, Any]:
    unknown = set(overrides) - set(DEFAULTS)
    if unknown:
        key = sorted(unknown)[0]
        raise InputError(f"settings[{key}]", f"unknown training setting {key!r}")
    s = {**DEFAULTS, **{k: v for k, v in overrides.items() if v is not None}}
    for key in ("epochs", "batch_size"):
        if int(s[key]) < 1:
            raise InputError(f"settings[{key}]", f"must be >= 1, got {s[key]}")
    return s


def train_density(ctx: JobContext) -> dict[str, Any]:
    """Job function: fit a :class:`DICDensity` by maximum likelihood on the non-silent neurons."""
    s = ctx.settings
    torch.set_num_threads(1)
    data = load_dataset(s["dataset"])
    keep = data["ok"] & (data["counts"] >= 3)
    if keep.sum() < 10:
        raise InputError("dataset", f"only {int(keep.sum())} non-silent neurons in {s['dataset']}")
    idx = np.flatnonzero(keep)
    trains = data["trains"].subset(torch.from_numpy(idx))
    y = torch.from_numpy(data["targets"][idx]).float()
    tok, mask = isi_tokens(trains, int(s["max_spikes"]))
    gen = torch.Generator().manual_seed(int(s["seed"]))
    torch.manual_seed(int(s["seed"]))
    perm = torch.randperm(len(y), generator=gen)
    n_val = max(1, int(len(y) * float(s["val_fraction"])))
    val, tr = perm[:n_val], perm[n_val:]
    net = DICDensity(model=data["model"], **{k: int(s[k]) for k in NET_KEYS})
    net.fit_normalisation(tok[tr], mask[tr])
    opt = torch.optim.Adam(net.parameters(), lr=float(s["lr"]))
    epochs = int(s["epochs"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    state = ctx.load_checkpoint()
    start, best = 0, float("inf")
    if state is not None:
        net.load_state_dict(state["net"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        start, best = state["epoch"], state["best"]
    bs = int(s["batch_size"])
    for epoch in range(start, epochs):
        net.train()
        order = tr[torch.randperm(len(tr), generator=gen)]
        total = 0.0
        for b in range(0, len(order), bs):
            j = order[b:b + bs]
            L = int(mask[j].sum(1).max())
            loss = -net.log_prob(y[j], tok[j, :L], mask[j, :L]).mean()
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
            opt.step()
            total += float(loss.detach()) * len(j)
        sched.step()
        net.eval()
        with torch.no_grad():
            L = int(mask[val].sum(1).max())
            val_loss = float(-net.log_prob(y[val], tok[val, :L], mask[val, :L]).mean())
        if val_loss < best:
            best = val_loss
            net.save(ctx.path("density.pt"))
        ctx.save_checkpoint({"net": net.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                             "epoch": epoch + 1, "best": best})
        ctx.progress(epoch + 1, epochs, loss=total / len(tr), val_loss=val_loss)
        ctx.check_stop()
    return {"best_val_nll": best, "n_train": int(len(tr)), "n_val": int(n_val), "model": data["model"]}
