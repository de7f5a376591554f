"""Finished example runs shipped with the package (``epi_dash/examples/runs/``): list, locate, fetch, add.

An example is a normal run directory stripped to what opening needs: ``run.json``, ``trace.csv``,
``checkpoint.pt`` with the flow and multipliers but an empty optimizer state (``load_distribution`` and
``resume`` still work; Adam restarts its moments), ``trace.csv`` thinned to about ``TRACE_ROWS``
iterations at 6 significant digits (run.json's ``example.trace_every`` says the step), and
``samples.npz`` cut to ``SAMPLE_ROWS`` rows (fewer in high dimension: ``SAMPLE_FLOATS`` numbers at most).
``index.json`` lists each: name, model, property, description, command, date, machine, converged,
size_kb, shipped. An entry with ``shipped: false`` is listed but not in the package: it records the
``command`` that builds it and its ``train`` settings (model, model_params, mean, std, settings), which
``training_meta`` turns into a run.json-like dict the workbench's set-up applies before it trains.
"""

from __future__ import annotations

import csv
import fcntl
import json
import math
import platform
import shutil
import socket
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import InputError
from .runs import OWNER_KEY, atomic_write, default_owner, read_run_json

SAMPLE_ROWS = 2000
SAMPLE_FLOATS = 100_000  # at most this many numbers in z: 2,000 rows in 2 to 50 dimensions, fewer above
TRACE_ROWS = 1000  # the trace thinned to about this many iterations (the first and the last kept)
EXAMPLE_FILES = ("run.json", "trace.csv", "checkpoint.pt", "samples.npz")


def examples_root() -> Path:
    """The package's example directory (``epi_dash/examples/runs``); read only."""
    return Path(__file__).resolve().parent.parent / "epi_dash" / "examples" / "runs"


@dataclass
class Example:
    """One entry of ``index.json``; ``path`` is the shipped run directory (None when not shipped)."""

    name: str
    meta: dict[str, Any]
    path: Path | None

    @property
    def shipped(self) -> bool:
        return self.path is not None


def read_index(root: Path | None = None) -> list[dict[str, Any]]:
    f = (root or examples_root()) / "index.json"
    return json.loads(f.read_text())["examples"] if f.is_file() else []


def _write_index(root: Path, entries: list[dict[str, Any]]) -> None:
    entries = sorted(entries, key=lambda e: e["name"])
    atomic_write(root / "index.json", lambda p: p.write_text(json.dumps({"examples": entries}, indent=2) + "\n"))


def list_examples(root: Path | None = None) -> list[Example]:
    """Every example of the index, shipped or not, in index order (by name)."""
    root = root or examples_root()
    out = []
    for e in read_index(root):
        d = root / e["name"]
        out.append(Example(e["name"], e, d if e.get("shipped") and (d / "run.json").is_file() else None))
    return out


def locate(name: str, root: Path | None = None) -> Example:
    """The example called ``name``; InputError naming the known ones otherwise."""
    examples = list_examples(root)
    for ex in examples:
        if ex.name == name:
            return ex
    raise InputError("name", f"no example {name!r}; known: {', '.join(e.name for e in examples) or 'none'}")


def fetch(name: str, runs_dir: str | Path = "runs", root: Path | None = None, reuse: bool = False,
          owner: str | None = None) -> Path:
    """Copy the shipped example ``name`` into ``runs_dir/name`` (or ``name-2``, ...) and return that path.
    ``owner``: who opens it, recorded as the copy's run.json ``owner`` (so that they may resume it; None:
    this process's user, ``core.runs.default_owner``). ``reuse``: return ``runs_dir/name`` as it is when it
    already holds this example copied for the same owner. The package copy is never written to."""
    from .runs import reserve_run_dir

    ex = locate(name, root)
    if ex.path is None:
        raise InputError("name", f"example {name!r} is not shipped; build it with: {ex.meta.get('command')}")
    owner = owner or default_owner()
    meta = {**read_run_json(ex.path), OWNER_KEY: owner}
    text = json.dumps(meta, indent=2)
    existing = Path(runs_dir) / name
    if reuse and (existing / "run.json").is_file() and (existing / "checkpoint.pt").is_file() \
            and (existing / "run.json").read_text() == text:
        return existing
    dest = reserve_run_dir(runs_dir, name)
    for f in EXAMPLE_FILES[1:]:
        if (ex.path / f).is_file():
            shutil.copy2(ex.path / f, dest / f)
    atomic_write(dest / "run.json", lambda p: p.write_text(text))  # last: the copy is whole once it has one
    return dest


def _dir_kb(path: Path) -> float:
    return round(sum(f.stat().st_size for f in path.iterdir() if f.is_file()) / 1024, 1)


def _thin_trace(src: Path, dest: Path) -> int:
    """Copy ``src`` trace.csv to ``dest`` keeping every k-th row (first and last too); returns k."""
    with open(src, newline="") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], rows[1:]
    every = max(1, math.ceil(len(body) / TRACE_ROWS))
    keep = [r for i, r in enumerate(body) if i % every == 0 or i == len(body) - 1]
    short = lambda v: v if "." not in v and "e" not in v else f"{float(v):.6g}"  # noqa: E731
    with open(dest, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows([[short(v) for v in r] for r in keep])
    return every


def strip_run(src: Path, dest: Path) -> None:
    """Write the stripped copy of run ``src`` into the existing, empty directory ``dest``."""
    meta = read_run_json(src)
    meta.pop(OWNER_KEY, None)  # a shipped example is nobody's: fetch records who opens it
    every = _thin_trace(src / "trace.csv", dest / "trace.csv") if (src / "trace.csv").is_file() else 1
    meta["example"] = {**(meta.get("example") or {}), "trace_every": every * (meta.get("example") or {}).get("trace_every", 1)}
    (dest / "run.json").write_text(json.dumps(meta, indent=2))
    state = torch.load(src / "checkpoint.pt", map_location="cpu", weights_only=False)
    opt = state.get("optimizer")
    if isinstance(opt, dict):  # keep the param groups (load_state_dict checks them), drop Adam's moments
        state["optimizer"] = {"state": {}, "param_groups": opt.get("param_groups", [])}
    torch.save(state, dest / "checkpoint.pt")
    with np.load(src / "samples.npz") as d:
        arrays = {k: d[k] for k in d.files}
    d = arrays["z"].shape[1] if arrays["z"].ndim == 2 else 1
    rows = max(200, min(SAMPLE_ROWS, SAMPLE_FLOATS // max(d, 1)))
    arrays = {k: (v[:rows] if k in ("z", "log_q") else v) for k, v in arrays.items()}
    np.savez_compressed(dest / "samples.npz", **arrays)


def add(run_dir: str | Path, name: str, description: str, command: str | None = None,
        allow_unconverged: bool = False, root: Path | None = None) -> dict[str, Any]:
    """Copy run ``run_dir`` stripped into the package as example ``name``, add or replace its index entry,
    and return the entry. Refuses a run that did not converge unless ``allow_unconverged``."""
    root = root or examples_root()
    src = Path(run_dir)
    meta = read_run_json(src)
    if not name or "/" in name or name.startswith("."):
        raise InputError("name", f"a plain directory name is needed; got {name!r}")
    for f in ("checkpoint.pt", "samples.npz"):
        if not (src / f).is_file():
            raise InputError("run_dir", f"no {f} in {src} (the run has not finished)")
    if not meta.get("converged") and not allow_unconverged:
        raise InputError("run_dir", f"{src} did not converge; pass --allow-unconverged to ship it anyway")
    root.mkdir(parents=True, exist_ok=True)
    dest, tmp = root / name, root / f".{name}.tmp"
    restrip = src.resolve() == dest.resolve()  # re-adding a shipped example keeps its command, date, machine
    trained = datetime.fromtimestamp((src / "run.json").stat().st_mtime, timezone.utc).strftime("%Y-%m-%d")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    strip_run(src, tmp)  # first, so that re-stripping a shipped example (src == dest) works
    if dest.exists():
        shutil.rmtree(dest)
    tmp.rename(dest)
    previous = next((e for e in read_index(root) if e["name"] == name), {})
    old = previous if restrip else {}
    entry = {
        "name": name,
        "model": meta.get("model"),
        "property": meta.get("property"),
        "description": description,
        "command": command or old.get("command") or meta.get("command") or f"epi-dash train {meta.get('model')}",
        "date": old.get("date") or trained,
        "machine": old.get("machine") or meta.get("machine") or f"{socket.gethostname()} ({platform.machine()}, "
                                           f"{meta.get('device', 'cpu')})",
        "converged": bool(meta.get("converged")),
        "size_kb": _dir_kb(dest),
        "shipped": True,
    }
    if previous.get("train") and previous["train"].get("model") == meta.get("model"):
        entry["train"] = previous["train"]  # how to build it again
    with open(root / ".index.lock", "w") as lock:  # two helpers adding at once: one at a time
        fcntl.flock(lock, fcntl.LOCK_EX)
        entries = [e for e in read_index(root) if e["name"] != name] + [entry]
        _write_index(root, entries)
    return entry


def add_planned(name: str, description: str, train: dict[str, Any], root: Path | None = None) -> dict[str, Any]:
    """List example ``name`` as built on first use: ``train`` = {model, model_params, mean, std,
    settings}. A shipped example of that name keeps its files and gains the settings to rebuild it."""
    root = root or examples_root()
    root.mkdir(parents=True, exist_ok=True)
    ex = Example(name, {"train": train}, None)
    command = "epi-dash " + " ".join(a if " " not in a else repr(a) for a in train_argv(ex, f"runs/{name}"))
    training_meta(ex)  # the model and property must load
    with open(root / ".index.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        entries = read_index(root)
        old = next((e for e in entries if e["name"] == name), None)
        if old is not None and old.get("shipped"):
            entry = {**old, "train": train}
        else:
            entry = {"name": name, "model": train["model"], "property": training_meta(ex)["property"],
                     "description": description, "command": command, "converged": False, "shipped": False,
                     "train": train}
        _write_index(root, [e for e in entries if e["name"] != name] + [entry])
    return entry


def training_meta(ex: Example) -> dict[str, Any]:
    """The run.json-like settings that build example ``ex`` (``model``, ``model_params``, ``property``,
    ``flow`` and ``optimizer`` overrides), from its index entry's ``train``; InputError if it has none."""
    from .model import load_model
    from .property import EmergentProperty

    train = ex.meta.get("train")
    if not train:
        raise InputError("name", f"example {ex.name!r} records no training settings")
    model = load_model(train["model"], **train.get("model_params", {}))
    prop = EmergentProperty.default_for(model, mean=train.get("mean") or {}, std=train.get("std") or {})
    return {"model": train["model"], "model_params": train.get("model_params", {}), "property": prop.to_dict(),
            "flow": {}, "optimizer": dict(train.get("settings") or {})}


def train_argv(ex: Example, out: str | Path) -> list[str]:
    """``epi-dash`` arguments that train example ``ex`` into ``out`` (its ``train`` settings)."""
    train = ex.meta.get("train")
    if not train:
        raise InputError("name", f"example {ex.name!r} records no training settings")
    argv = ["train", train["model"], "--out", str(out)]
    for k, v in {**train.get("model_params", {}), **(train.get("settings") or {})}.items():
        argv += ["--set", f"{k}={v}"]
    for kind in ("mean", "std"):
        for k, v in (train.get(kind) or {}).items():
            argv += [f"--{kind}", f"{k}={v}"]
    return argv
