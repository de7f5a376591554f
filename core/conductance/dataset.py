"""Training data for the spike-train -> DIC network, simulated to disk as a resumable job (core.jobs).

Each chunk draws (g_s, g_u) uniformly over the model's DIC box (notes sec. 4), builds one neuron per target
by iterative compensation, simulates it (a fraction ``noise_fraction`` with a noisy current of std
``noise_sigma``, notes sec. 5) and writes ``chunk_XXXX.npz`` atomically: ``targets`` (c, 2), ``g`` (c, k),
``ok`` (c,), ``noise`` (c,), ``times`` (c, S) NaN-padded spike times (ms from the end of the transient),
``counts`` (c,), ``duration``. The checkpoint holds the number of chunks done, so ``resume_job``
continues after the last finished chunk. Chunk seeds are ``seed * 100003 + chunk``: a resumed run
produces the same files as an uninterrupted one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.errors import InputError
from core.jobs import JobContext
from core.runs import atomic_write

from .compensation import compensate
from .models import get_model
from .simulate import simulate
from .spikes import SpikeTrains

KIND = "conductance.dataset"

DEFAULTS: dict[str, Any] = {
    "model": "stg", "n": 2000, "chunk": 500, "noise_fraction": 0.5, "noise_sigma": 5.0, "seed": 1,
    "duration": None, "transient": None, "dt": None, "device": "auto",
}


def dataset_settings(**overrides: Any) -> dict[str, Any]:
    """Complete, checked settings of a data-set job (JSON values)."""
    unknown = set(overrides) - set(DEFAULTS)
    if unknown:
        key = sorted(unknown)[0]
        raise InputError(f"settings[{key}]", f"unknown data-set setting {key!r}")
    s = {**DEFAULTS, **{k: v for k, v in overrides.items() if v is not None}}
    get_model(s["model"])
    if int(s["n"]) < 1:
        raise InputError("settings[n]", f"number of neurons must be >= 1, got {s['n']}")
    if int(s["chunk"]) < 1:
        raise InputError("settings[chunk]", f"chunk size must be >= 1, got {s['chunk']}")
    if not 0 <= float(s["noise_fraction"]) <= 1:
        raise InputError("settings[noise_fraction]", "must be in [0, 1]")
    return s


def simulate_dataset(ctx: JobContext) -> dict[str, Any]:
    """Job function: simulate the data set chunk by chunk into ``ctx.run_dir``."""
    s = ctx.settings
    model = get_model(s["model"])
    n, chunk = int(s["n"]), int(s["chunk"])
    n_chunks = -(-n // chunk)
    state = ctx.load_checkpoint() or {"done": 0}
    torch.set_num_threads(1)
    lo = np.array([model.dic_box["g_s"][0], model.dic_box["g_u"][0]])
    hi = np.array([model.dic_box["g_s"][1], model.dic_box["g_u"][1]])
    for k in range(state["done"], n_chunks):
        c = min(chunk, n - k * chunk)
        seed = int(s["seed"]) * 100003 + k
        rng = np.random.default_rng(seed)
        targets = lo + (hi - lo) * rng.random((c, 2))
        comp = compensate(model, targets, seed=seed)
        noise = np.where(rng.random(c) < float(s["noise_fraction"]), float(s["noise_sigma"]), 0.0)
        g = torch.where(comp.ok[:, None], comp.g, torch.zeros_like(comp.g))
        g[:, -1] = torch.where(comp.ok, comp.g[:, -1], torch.ones(c, dtype=comp.g.dtype))

        def report(step: int, total: int, k=k) -> None:
            ctx.progress(k * 1000 + int(1000 * step / total), n_chunks * 1000, chunk=k)

        sim = simulate(model, g, duration=s["duration"], transient=s["transient"], dt=s["dt"],
                       noise_sigma=noise, seed=seed, device=s["device"], progress=report)
        arrays = dict(targets=targets, g=comp.g.numpy(), ok=comp.ok.numpy(), noise=noise,
                      times=sim.spikes.times.float().numpy(), counts=sim.spikes.counts.numpy(),
                      duration=np.float64(sim.duration))
        atomic_write(ctx.path(f"chunk_{k:04d}.npz"), lambda p, a=arrays: _savez(p, a))
        state["done"] = k + 1
        ctx.save_checkpoint(state)
        ctx.progress((k + 1) * 1000, n_chunks * 1000, chunk=k,
                     silent_fraction=float((sim.spikes.counts < 3).double().mean()))
        ctx.check_stop()
    return {"chunks": n_chunks, "n": n, "model": model.name}


def _savez(path: Path, arrays: dict) -> None:
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def load_dataset(run_dir) -> dict[str, Any]:
    """All finished chunks of a data-set run: ``targets`` (N, 2), ``g``, ``ok``, ``noise``, ``trains``
    (a :class:`SpikeTrains`), ``model``."""
    d = Path(run_dir)
    files = sorted(d.glob("chunk_*.npz"))
    if not files:
        raise InputError("dataset", f"no simulated chunks in {d}")
    parts = [dict(np.load(f)) for f in files]
    width = max(p["times"].shape[1] for p in parts)
    times = np.concatenate([np.pad(p["times"], ((0, 0), (0, width - p["times"].shape[1])),
                                   constant_values=np.nan) for p in parts])
    import json

    meta = json.loads((d / "run.json").read_text()) if (d / "run.json").is_file() else {}
    out = {k: np.concatenate([p[k] for p in parts]) for k in ("targets", "g", "ok", "noise", "counts")}
    out["trains"] = SpikeTrains(torch.from_numpy(times).double(), torch.from_numpy(out["counts"]).long(),
                                float(parts[0]["duration"]))
    out["model"] = meta.get("settings", {}).get("model", "stg")
    return out
