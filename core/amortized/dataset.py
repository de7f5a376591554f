"""A simulated training set on disk, built in chunks by a resumable job (``core.jobs``), the chunks run
through ``core.executors.map_tasks`` (a local process pool by default, any Dask scheduler when given).

Layout of a data set directory ``DIR``::

    DIR/dataset.json           model version, network and feature settings, budget, names and units
    DIR/run.json, events.jsonl the build job (core.jobs), checkpoint.pt (chunks done)
    DIR/chunks/train_00000.npz theta (n, 28) float32, x (n, F) float32, flagged (n,) bool, seed
    DIR/chunks/heldout_00000.npz  the same plus the spikes (``spk_*`` arrays) for held-out targets

A chunk file appears atomically once its simulations are done, so a killed build resumes at the first
missing chunk (``resume_job(DIR)`` or ``epi-dash amortized build --out DIR`` again).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import InputError
from ..jobs import JobContext
from ..runs import atomic_write
from .features import FeatureSettings, compute_features, feature_specs
from .network import simulate
from .prior import MODEL_VERSION, PARAMETERS, NetworkConfig, sample_prior
from .spikes import Spikes

DATASET_FILE = "dataset.json"
DATASET_KIND = "amortized.dataset"


def default_settings(**overrides: Any) -> dict[str, Any]:
    """JSON-able settings of a build; keys: budget, heldout, chunk_size, seed, network, features,
    scheduler, device."""
    s = {"budget": 2000, "heldout": 20, "chunk_size": 50, "seed": 0, "network": NetworkConfig().to_dict(),
         "features": FeatureSettings().to_dict(), "scheduler": None, "device": "cpu"}
    unknown = set(overrides) - set(s)
    if unknown:
        key = sorted(unknown)[0]
        raise InputError(f"settings[{key}]", f"unknown data set setting {key!r}")
    s.update({k: v for k, v in overrides.items()})
    return check_settings(s)


def check_settings(s: dict[str, Any]) -> dict[str, Any]:
    """Validate a build's settings (InputError naming the field)."""
    for key in ("budget", "heldout", "chunk_size", "seed"):
        if not isinstance(s.get(key), int) or isinstance(s.get(key), bool):
            raise InputError(key, f"must be an integer, got {s.get(key)!r}")
    if s["budget"] < 1:
        raise InputError("budget", f"must be at least 1 simulation, got {s['budget']}")
    if s["heldout"] < 0:
        raise InputError("heldout", f"must be >= 0, got {s['heldout']}")
    if s["chunk_size"] < 1:
        raise InputError("chunk_size", f"must be >= 1, got {s['chunk_size']}")
    s["network"] = NetworkConfig.from_dict(s["network"]).to_dict()
    s["features"] = FeatureSettings.from_dict(s["features"]).to_dict()
    return s


def chunk_items(settings: dict[str, Any]) -> list[dict[str, Any]]:
    """One work item per chunk (train chunks, then held-out chunks): plain dicts a worker can unpickle."""
    items = []
    for split, total, offset in (("train", settings["budget"], 0), ("heldout", settings["heldout"], 1_000_000)):
        size = settings["chunk_size"]
        for k, start in enumerate(range(0, total, size)):
            items.append({"split": split, "index": k, "n": min(size, total - start),
                          "seed": int(settings["seed"]) * 2_000_003 + offset + k,
                          "network": settings["network"], "features": settings["features"],
                          "device": settings.get("device", "cpu"), "keep_spikes": split == "heldout"})
    return items


def chunk_name(item: dict[str, Any]) -> str:
    return f"{item['split']}_{item['index']:05d}.npz"


def simulate_chunk(item: dict[str, Any]) -> dict[str, np.ndarray]:
    """Simulate one chunk (runs on a worker): prior draws, spikes, features. Module-level for Dask."""
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    network = NetworkConfig.from_dict(item["network"])
    features = FeatureSettings.from_dict(item["features"])
    theta = sample_prior(item["n"], seed=item["seed"])
    spikes = simulate(theta, network, seed=item["seed"], device=item.get("device", "cpu"))
    x = compute_features(spikes, features, t_start=network.t_start)
    out = {"theta": theta.numpy().astype(np.float32), "x": x, "flagged": spikes.flagged,
           "seed": np.array(item["seed"]), "wall_s": np.array(time.perf_counter() - t0)}
    if item.get("keep_spikes"):
        d = spikes.to_npz_dict("spk_")
        d["spk_unit"] = d["spk_unit"].astype(np.int32)
        d["spk_batch"] = d["spk_batch"].astype(np.int32)
        out.update(d)
    return out


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
    atomic_write(path, write)


def dataset_meta(settings: dict[str, Any]) -> dict[str, Any]:
    specs = feature_specs(FeatureSettings.from_dict(settings["features"]))
    return {"format": "epi-dash amortized dataset 1", "model_version": MODEL_VERSION, "settings": settings,
            "parameter_names": [p.name for p in PARAMETERS], "parameter_units": [p.unit for p in PARAMETERS],
            "bounds": {"lower": [p.lower for p in PARAMETERS], "upper": [p.upper for p in PARAMETERS]},
            "feature_names": [f.name for f in specs], "feature_units": [f.unit for f in specs]}


def build_dataset(ctx: JobContext) -> dict[str, Any]:
    """The build job: simulate every missing chunk, writing each as it arrives; resumable."""
    s = check_settings(dict(ctx.settings))
    root = ctx.run_dir
    meta_file = root / DATASET_FILE
    if meta_file.is_file():
        check_version(root)
    else:
        text = json.dumps(dataset_meta(s), indent=2)
        atomic_write(meta_file, lambda p: p.write_text(text))
    (root / "chunks").mkdir(exist_ok=True)
    items = chunk_items(s)
    pending = [it for it in items if not (root / "chunks" / chunk_name(it)).is_file()]
    total_sims = sum(it["n"] for it in items)
    done_sims = total_sims - sum(it["n"] for it in pending)
    if pending and ctx.resumed and done_sims:
        ctx.message(f"resuming: {done_sims} of {total_sims} simulations already on disk")
    ctx.progress(done_sims, total_sims)
    t0 = time.perf_counter()
    state = {"done_sims": done_sims, "flagged": 0, "sims_this_session": 0}

    def on_result(k: int, arrays: dict[str, np.ndarray]) -> None:
        item = pending[k]
        _write_npz(root / "chunks" / chunk_name(item), arrays)
        state["done_sims"] += item["n"]
        state["sims_this_session"] += item["n"]
        state["flagged"] += int(arrays["flagged"].sum())
        ctx.save_checkpoint({"done_sims": state["done_sims"]})
        rate = state["sims_this_session"] / max(time.perf_counter() - t0, 1e-9)
        ctx.progress(state["done_sims"], total_sims, sims_per_s=rate,
                     flagged_frac=state["flagged"] / max(state["sims_this_session"], 1))
        ctx.check_stop()

    if pending:
        from ..executors import map_tasks

        scheduler = s.get("scheduler") or None
        if len(pending) == 1 and scheduler is None:
            scheduler = "sync"  # one chunk: no pool to start
        map_tasks(simulate_chunk, pending, scheduler=scheduler, on_result=on_result)
    data = load_dataset(root)
    return {"simulations": int(len(data["theta"])), "valid": int(data["valid"].sum()),
            "heldout": int(len(load_dataset(root, split="heldout")["theta"])),
            "wall_s": time.perf_counter() - t0}


def check_version(root: str | Path) -> dict[str, Any]:
    """dataset.json of ``root``; an InputError when it is missing or from another model version."""
    f = Path(root) / DATASET_FILE
    if not f.is_file():
        raise InputError("dataset", f"{root} has no {DATASET_FILE}: not an amortized data set")
    try:
        meta = json.loads(f.read_text())
    except json.JSONDecodeError as exc:
        raise InputError("dataset", f"{f} is not valid JSON: {exc}") from exc
    if meta.get("model_version") != MODEL_VERSION:
        raise InputError("dataset", f"{root} was built by model version {meta.get('model_version')!r}; "
                         f"this code is {MODEL_VERSION!r}: rebuild it")
    return meta


def load_dataset(root: str | Path, split: str = "train", with_spikes: bool = False) -> dict[str, Any]:
    """All chunks of ``split`` concatenated: theta (n, 28), x (n, F), flagged (n,), valid (n,) (not flagged
    and finite features: what the estimator trains on), and with_spikes: a list of per-chunk Spikes."""
    meta = check_version(root)
    files = sorted((Path(root) / "chunks").glob(f"{split}_*.npz"))
    F = len(meta["feature_names"])
    theta, x, flagged, spikes = [np.zeros((0, len(PARAMETERS)), np.float32)], [np.zeros((0, F), np.float32)], \
        [np.zeros(0, bool)], []
    for f in files:
        with np.load(f) as d:
            theta.append(d["theta"])
            x.append(d["x"])
            flagged.append(d["flagged"])
            if with_spikes and "spk_batch" in d:
                spikes.append(Spikes.from_npz_dict(d, "spk_"))
    out = {"theta": np.concatenate(theta), "x": np.concatenate(x), "flagged": np.concatenate(flagged),
           "meta": meta, "files": files}
    out["valid"] = ~out["flagged"] & np.isfinite(out["x"]).all(1)
    if with_spikes:
        out["spikes"] = spikes
    return out
