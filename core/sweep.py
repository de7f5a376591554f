"""Sweeps: EPI over a grid of property levels (or model hyperparameters) x seeds, the paper's X(y)
(Fig 2E-F). Each (level, seed) is its own task and run directory, run on an executor (in this process, a
Dask LocalCluster or a remote scheduler); a finished task is not redone; per level the converged run of
greatest entropy is selected (the paper's rule). UI-free.

Each task is an EPI training job (``core.epi_job``), so its run directory is an ordinary run that the
library lists, resumes and opens. Layout of a sweep directory ``OUT``::

    OUT/sweep.json                      model, vary, seeds, settings, cells (level, seed, run_dir, outcome), selection
    OUT/<field>=<value>[,...]/seed-<s>/ an ordinary EPI run directory (run.json, trace.csv, ...)
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any, Callable

import numpy as np
from scipy import stats

from .errors import InputError
from .executors import map_tasks
from .jobs import describe_error, resume_job, run_job
from .settings import settings_for
from .runs import atomic_write, json_default, load_run, read_run_json

#: the statistic the paper compares across levels, per model (name, parameter indices summed as squares)
PAPER_COMPARISONS: dict[str, list[tuple[str, list[int]]]] = {
    "v1": [("sigma_E^2 + sigma_P^2", [0, 1]), ("sigma_S^2 + sigma_V^2", [2, 3])],
}
DONE_STATES = ("converged", "finished")


def parse_vary(items: list[str]) -> dict[str, list[float | int]]:
    """``["s_E.mean=5,10", "N=2,10"]`` -> ``{"s_E.mean": [5.0, 10.0], "N": [2, 10]}`` (field-named errors)."""
    vary: dict[str, list[float | int]] = {}
    for item in items:
        name, sep, values = item.partition("=")
        name = name.strip()
        field = f"vary[{name or item}]"
        if not sep or not name or not values.strip():
            raise InputError(field, f"expected FIELD=V1,V2,... (e.g. s_E.mean=5,10); got {item!r}")
        levels = []
        for text in values.split(","):
            try:
                number = float(text)
            except ValueError:
                raise InputError(field, f"{text.strip()!r} is not a number") from None
            if not math.isfinite(number):
                raise InputError(field, f"levels must be finite; got {text.strip()}")
            levels.append(int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number)
        if name in vary:
            raise InputError(field, "given twice")
        vary[name] = levels
    if not vary:
        raise InputError("vary", "give at least one FIELD=V1,V2,...")
    return vary


def level_label(level: dict[str, Any]) -> str:
    return ",".join(f"{k}={v:g}" for k, v in level.items())


def _apply_level(model_spec: str, hyper: dict[str, Any], means: dict[str, float], stds: dict[str, float],
                 level: dict[str, Any]):
    """(model, property) for one level; an InputError naming ``vary[FIELD]`` when a level is invalid."""
    from .model import load_model, load_model_class
    from .property import EmergentProperty

    cls = load_model_class(model_spec)
    hyper, means, stds = dict(hyper), dict(means), dict(stds)
    for name, value in level.items():
        if "." in name:
            stat, _, part = name.rpartition(".")
            if part not in ("mean", "std"):
                raise InputError(f"vary[{name}]", "a property field is STAT.mean or STAT.std")
            (means if part == "mean" else stds)[stat] = value
        elif name in set(cls.param) - {"name"}:
            hyper[name] = value
        else:
            raise InputError(f"vary[{name}]", f"neither STAT.mean/STAT.std nor a hyperparameter of {cls.__name__}")
    try:
        model = load_model(model_spec, **hyper)
        prop = EmergentProperty.default_for(model, mean=means, std=stds)
        prop.validate(model)
    except InputError as exc:
        if exc.field.startswith("vary["):
            raise
        raise InputError(f"vary[{level_label(level)}]", f"{exc.field}: {exc.message}") from exc
    except ValueError as exc:  # param's own bounds check of a hyperparameter
        raise InputError(f"vary[{level_label(level)}]", str(exc)) from exc
    return model, prop


def sweep_cells(model_spec: str, vary: dict[str, list], seeds: int, out: str | Path,
                hyper: dict[str, Any] | None = None, means: dict[str, float] | None = None,
                stds: dict[str, float] | None = None, settings: dict[str, Any] | None = None,
                first_seed: int = 1) -> list[dict[str, Any]]:
    """One task per (level, seed), every level validated before anything runs. A task is a plain dict
    (``train_cell``'s argument), so any executor can ship it."""
    if seeds < 1:
        raise InputError("seeds", f"must be >= 1; got {seeds}")
    names = list(vary)
    cells = []
    for values in itertools.product(*(vary[n] for n in names)):
        level = dict(zip(names, values))
        model, _prop = _apply_level(model_spec, hyper or {}, means or {}, stds or {}, level)
        settings_for(model, **(settings or {}))  # bad flow/optimizer settings are refused before anything runs
        for seed in range(first_seed, first_seed + seeds):
            cells.append({"model": model_spec, "hyper": hyper or {}, "means": means or {}, "stds": stds or {},
                          "settings": {**(settings or {}), "seed": seed}, "level": level, "seed": seed,
                          "run_dir": str(Path(out).resolve() / level_label(level) / f"seed-{seed}")})
    return cells


def cell_outcome(run_dir: str | Path) -> dict[str, Any]:
    meta = read_run_json(run_dir)
    history = meta.get("history") or []
    return {"state": meta.get("state"), "converged": bool(meta.get("converged")),
            "entropy": float(history[-1]["entropy"]) if history else float("nan"),
            "epochs": meta.get("epochs"), "wall_time_s": meta.get("wall_time_s"), "error": meta.get("error")}


def train_cell(cell: dict[str, Any]) -> dict[str, Any]:
    """Train (or resume, or skip when done) one sweep task; its outcome (a failure is an outcome with
    state "failed" and the error, so one bad task never loses the others). Module-level: runs on Dask workers."""
    try:
        return _train_cell(cell)
    except Exception as exc:
        return {"state": "failed", "converged": False, "entropy": float("nan"), "epochs": 0, "wall_time_s": 0.0,
                "error": describe_error(exc), "skipped": False}


def _train_cell(cell: dict[str, Any]) -> dict[str, Any]:
    from .epi_job import KIND, epi_settings, train_epi

    run_dir = Path(cell["run_dir"])
    if (run_dir / "run.json").is_file():
        done = cell_outcome(run_dir)
        if done["state"] in DONE_STATES:
            return {**done, "skipped": True}
        if (run_dir / "checkpoint.pt").is_file():
            ended = resume_job(run_dir)
            return {**cell_outcome(run_dir), "skipped": False, "error": ended.error or None}
    model, prop = _apply_level(cell["model"], cell["hyper"], cell["means"], cell["stds"], cell["level"])
    flow, opt = settings_for(model, **cell["settings"])
    ended = run_job(train_epi, epi_settings(cell["model"], model, prop, flow, opt), run_dir, kind=KIND)
    return {**cell_outcome(run_dir), "skipped": False, "error": ended.error or None}


def select(cells: list[dict[str, Any]], outcomes: list[dict[str, Any]]) -> dict[str, str | None]:
    """Per level label: the run directory of the converged run of greatest entropy, or None."""
    chosen: dict[str, str | None] = {}
    best_entropy: dict[str, float] = {}
    for cell, outcome in zip(cells, outcomes):
        label = level_label(cell["level"])
        chosen.setdefault(label, None)
        if outcome.get("converged") and outcome["entropy"] > best_entropy.get(label, -math.inf):
            chosen[label], best_entropy[label] = cell["run_dir"], outcome["entropy"]
    return chosen


def write_manifest(out: str | Path, manifest: dict[str, Any]) -> None:
    path = Path(out) / "sweep.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(manifest, indent=2, default=json_default)
    atomic_write(path, lambda p: p.write_text(text))


def run_sweep(cells: list[dict[str, Any]], out: str | Path, scheduler: str | None = None,
              on_result: Callable[[int, dict[str, Any]], None] | None = None,
              description: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run every task (``scheduler``: None in this process one after the other, "local" or an address on
    Dask) and write ``sweep.json``; the manifest with outcomes and the per-level selection."""
    manifest = {**(description or {}), "cells": [{k: c[k] for k in ("level", "seed", "run_dir")} for c in cells],
                "outcomes": [None] * len(cells), "selection": {}}
    write_manifest(out, manifest)

    def arrived(k: int, outcome: dict[str, Any]) -> None:
        manifest["outcomes"][k] = outcome
        write_manifest(out, manifest)
        if on_result is not None:
            on_result(k, outcome)

    outcomes = map_tasks(train_cell, cells, scheduler=scheduler or "sync", on_result=arrived)
    manifest["outcomes"] = outcomes
    manifest["selection"] = select(cells, outcomes)
    write_manifest(out, manifest)
    return manifest


def load_sweep(out: str | Path) -> dict[str, Any]:
    path = Path(out) / "sweep.json"
    if not path.is_file():
        raise InputError("sweep_dir", f"no sweep.json in {out}")
    return json.loads(path.read_text())


def level_samples(manifest: dict[str, Any], n: int = 2000) -> dict[str, np.ndarray]:
    """Samples ``(n, d)`` of each level's selected q (its saved samples.npz), by level label."""
    out = {}
    for label, run_dir in manifest.get("selection", {}).items():
        if run_dir:
            out[label] = load_run(run_dir).samples["z"][:n]
    return out


def compare_levels(samples: dict[str, np.ndarray], model_name: str, parameter_names: list[str]) -> list[dict[str, Any]]:
    """Between consecutive levels: the paper's comparison statistic where it has one (sums of squares of
    parameter groups, Welch t-test), else each parameter's mean (Welch t-test)."""
    groups = PAPER_COMPARISONS.get(model_name) or [(name, [k]) for k, name in enumerate(parameter_names)]
    squared = model_name in PAPER_COMPARISONS
    labels = list(samples)
    rows = []
    for low, high in zip(labels, labels[1:]):
        for name, cols in groups:
            a = (samples[low][:, cols] ** 2).sum(1) if squared else samples[low][:, cols[0]]
            b = (samples[high][:, cols] ** 2).sum(1) if squared else samples[high][:, cols[0]]
            test = stats.ttest_ind(b, a, equal_var=False)
            rows.append({"statistic": name, "levels": f"{high} vs {low}", "mean_high": float(b.mean()),
                         "mean_low": float(a.mean()), "t": float(test.statistic), "p": float(test.pvalue)})
    return rows


def sweep_job(ctx) -> dict[str, Any]:
    """A whole sweep as one job (core.jobs), e.g. launched from the dashboard: settings ``model``,
    ``vary`` ({field: levels}), ``seeds``, optional ``hyper``, ``means``, ``stds``, ``settings`` (flow and
    optimizer), ``scheduler``; the sweep directory is the job's run directory. Progress: one step per
    finished task. A stop ends it after the running task (rerunning continues the sweep)."""
    from .jobs import JobStopped

    s = ctx.settings
    cells = sweep_cells(s["model"], s["vary"], int(s.get("seeds", 1)), ctx.run_dir, hyper=s.get("hyper"),
                        means=s.get("means"), stds=s.get("stds"), settings=s.get("settings"))
    done = 0

    def arrived(k: int, outcome: dict[str, Any]) -> None:
        nonlocal done
        done += 1
        ctx.progress(done, len(cells), converged=float(bool(outcome.get("converged"))),
                     entropy=outcome.get("entropy", float("nan")))
        ctx.emit("cell", persist=True, index=k, outcome=outcome)
        if ctx.stop_requested:
            raise JobStopped()

    description = {key: s.get(key) for key in ("model", "vary", "seeds", "hyper", "settings", "means", "stds")}
    manifest = run_sweep(cells, ctx.run_dir, scheduler=s.get("scheduler"), on_result=arrived,
                         description=description)
    return {"selection": manifest["selection"], "tasks": len(cells)}
