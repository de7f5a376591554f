"""Run several methods x seeds on one model and property under the shared criterion, and save
``compare.csv`` (one row per run), ``compare.json`` (rows + traces + settings) and the samples.

Method specs: ``epi``, ``smc``, ``snpe`` with ``:``-separated options, e.g. ``snpe:unbounded``,
``snpe:aggressive``, ``snpe:aggressive:unbounded`` (defaults: bounded density, reference preset).
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from ..errors import InputError
from ..model import Model
from ..property import EmergentProperty
from .criterion import ConvergenceCriterion
from .epi_runner import run_epi
from .problem import Budget, InferenceProblem
from .result import MethodResult, StepRecord
from .run_log import StepCallback
from .smc_abc import SMCABCSettings, run_smc_abc
from .snpe import SNPESettings, run_snpe

METHODS = ("epi", "snpe", "smc")
_OPTIONS = {"epi": set(), "smc": set(), "snpe": {"bounded", "unbounded", "reference", "aggressive"}}


@dataclass(frozen=True)
class MethodSpec:
    """A parsed method spec. ``settings``: overrides of that method's settings (tiny test budgets,
    EPI's ``iters_per_epoch``, ...)."""

    method: str
    options: tuple[str, ...] = ()
    settings: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @classmethod
    def parse(cls, spec: str, settings: dict[str, Any] | None = None) -> MethodSpec:
        method, *options = [t.strip().lower() for t in spec.split(":")]
        if method not in METHODS:
            raise InputError("methods", f"unknown method {method!r}; choose from {', '.join(METHODS)}")
        bad = [o for o in options if o not in _OPTIONS[method]]
        if bad:
            allowed = ", ".join(sorted(_OPTIONS[method])) or "none"
            raise InputError("methods", f"{method} has no option {bad[0]!r} (options: {allowed})")
        return cls(method, tuple(options), dict(settings or {}))

    def copy(self) -> MethodSpec:
        """An independent copy (runners consume some settings)."""
        return MethodSpec(self.method, self.options, dict(self.settings))

    @property
    def name(self) -> str:
        return ":".join((self.method, *self.options))

    def setting_name(self) -> str:
        if self.method == "snpe":
            density = "unbounded" if "unbounded" in self.options else "bounded"
            preset = "aggressive" if "aggressive" in self.options else "reference"
            return f"{density}/{preset}"
        return {"epi": "paper", "smc": "pyabc"}[self.method]


def parse_methods(methods: str | list[str], settings: dict[str, dict[str, Any]] | None = None) -> list[MethodSpec]:
    """``"epi,snpe,smc"`` or a list -> MethodSpecs; ``settings`` maps a method name to overrides."""
    names = [m for m in (methods.split(",") if isinstance(methods, str) else methods) if m.strip()]
    if not names:
        raise InputError("methods", "name at least one method")
    settings = settings or {}
    return [MethodSpec.parse(n, settings.get(n.split(":")[0].strip().lower())) for n in names]


def run_method(spec: MethodSpec, model: Model, prop: EmergentProperty, seed: int,
               time_limit_s: float | None = None, device: str = "auto",
               criterion: ConvergenceCriterion | None = None, on_step: StepCallback | None = None,
               stop_event: threading.Event | None = None) -> MethodResult:
    """Run one method once. Errors inside a method become ``result.error`` (the race goes on)."""
    problem = InferenceProblem(model, prop, device=device)
    budget = Budget(time_limit_s, stop_event)
    kwargs = dict(seed=seed, budget=budget, criterion=criterion, on_step=on_step,
                  setting_name=spec.setting_name())
    try:
        if spec.method == "epi":
            extra = {k: spec.settings.pop(k) for k in ("check_every", "num_predictive", "stop_at_criterion")
                     if k in spec.settings}
            return run_epi(problem, settings=dict(spec.settings), **extra, **kwargs)
        if spec.method == "snpe":
            preset = "aggressive" if "aggressive" in spec.options else "reference"
            density = "unbounded" if "unbounded" in spec.options else "bounded"
            settings = SNPESettings.preset(preset, problem.dim, density=density, **spec.settings)
            return run_snpe(problem, settings, **kwargs)
        return run_smc_abc(problem, SMCABCSettings(**spec.settings), **kwargs)
    except InputError:
        raise
    except Exception as exc:  # a crashing baseline is a result to report, not a crash of the race
        return MethodResult(
            method=spec.method, setting=spec.setting_name(), seed=seed, converged=False,
            timed_out=budget.timed_out(), wall_time_s=budget.elapsed(), simulations=problem.num_simulations,
            distance=math.inf, parameter_names=problem.parameter_names,
            statistic_names=problem.statistic_names, target_mean=list(map(float, prop.mean)),
            samples=np.zeros((0, problem.dim), np.float32),
            predictive=np.zeros((0, len(prop.statistics)), np.float32),
            device=str(problem.device), error=f"{type(exc).__name__}: {exc}",
        )


RACE_KIND = "compare.race"


def race_settings(spec: MethodSpec, model_spec: str, model_params: dict[str, Any], prop: EmergentProperty,
                  seed: int, time_limit_s: float | None, device: str = "auto") -> dict[str, Any]:
    """The job settings of one (method, seed) race (what :func:`race_job` rebuilds it from)."""
    return {"method": spec.name, "method_settings": dict(spec.settings), "model": model_spec,
            "model_params": dict(model_params), "property": prop.to_dict(), "seed": int(seed),
            "time_limit_s": time_limit_s, "device": device}


def race_job(ctx: Any) -> dict[str, Any]:
    """One method x seed of a comparison as a ``core.jobs`` job (kind ``compare.race``): progress is the
    method's criterion checks (scalars ``distance``, ``simulations``), the result its ``MethodResult.row()``.
    A race keeps no checkpoint: resuming runs it again. In-process submitters may hand ``ctx.objects``
    ``model`` / ``property`` (built objects), ``stop_event`` (the method's cooperative stop),
    ``on_step(StepRecord)`` and ``on_result(MethodResult)`` (the arrays a live view plots)."""
    from ..jobs import JobStopped
    from ..model import load_model

    s, objects = ctx.settings, ctx.objects
    model = objects.get("model") or load_model(s["model"], **s.get("model_params", {}))
    prop = objects.get("property") or EmergentProperty.from_dict(s["property"])
    spec = MethodSpec.parse(s["method"], s.get("method_settings"))
    on_step = objects.get("on_step")

    def step(record: StepRecord) -> None:
        ctx.progress(record.step, 0, distance=record.distance, simulations=record.simulations,
                     wall_time_s=record.wall_time_s)
        if on_step is not None:
            on_step(record)

    stop = objects.get("stop_event") or threading.Event()
    result = run_method(spec, model, prop, int(s["seed"]), s.get("time_limit_s"), s.get("device", "auto"),
                        on_step=step, stop_event=stop)
    if objects.get("on_result") is not None:
        objects["on_result"](result)
    if ctx.stop_requested or stop.is_set():
        raise JobStopped()
    return json.loads(json.dumps(result.row(), default=_json_default))


def run_comparison(model: Model, prop: EmergentProperty, methods: list[MethodSpec], seeds: list[int],
                   time_limit_s: float | None = None, out_dir: str | Path | None = None,
                   device: str = "auto", criterion: ConvergenceCriterion | None = None,
                   on_result: Callable[[MethodResult], None] | None = None,
                   on_step: StepCallback | None = None,
                   stop_event: threading.Event | None = None) -> list[MethodResult]:
    """Every (method, seed), one after the other; results are saved after each run."""
    prop.validate(model)
    results: list[MethodResult] = []
    for spec in methods:
        for seed in seeds:
            if stop_event is not None and stop_event.is_set():
                return results
            result = run_method(spec.copy(), model, prop, seed, time_limit_s, device, criterion,
                                on_step, stop_event)
            results.append(result)
            if out_dir is not None:
                save_comparison(results, out_dir, model, prop, time_limit_s, criterion)
            if on_result is not None:
                on_result(result)
    return results


def sample_file_name(result: MethodResult) -> str:
    safe = "".join(ch if ch.isalnum() else "-" for ch in result.setting)
    return f"{result.method}_{safe}_seed{result.seed}.npz"


def save_comparison(results: list[MethodResult], out_dir: str | Path, model: Model,
                    prop: EmergentProperty, time_limit_s: float | None = None,
                    criterion: ConvergenceCriterion | None = None) -> Path:
    """Write compare.csv, compare.json and samples/<method>_<setting>_seed<k>.npz into out_dir."""
    criterion = criterion or ConvergenceCriterion()
    out = Path(out_dir)
    (out / "samples").mkdir(parents=True, exist_ok=True)
    pd.DataFrame([r.row() for r in results]).to_csv(out / "compare.csv", index=False)
    for r in results:
        np.savez(out / "samples" / sample_file_name(r), z=r.samples, f=r.predictive,
                 parameter_names=np.array(r.parameter_names), statistic_names=np.array(r.statistic_names))
    meta = {
        "format": "epi-dash-compare/1",
        "model": model.model_name or type(model).__name__,
        "model_params": model.hyperparameters(),
        "property": prop.to_dict(),
        "criterion": {"distance_threshold": criterion.threshold, "abc_epsilon": criterion.abc_epsilon},
        "time_limit_s": time_limit_s,
        "runs": [{**r.to_dict(), "samples_file": f"samples/{sample_file_name(r)}"} for r in results],
    }
    (out / "compare.json").write_text(json.dumps(meta, indent=1, default=_json_default))
    return out


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.floating, np.integer, np.bool_)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def load_comparison(out_dir: str | Path) -> tuple[dict[str, Any], pd.DataFrame]:
    """(compare.json contents, compare.csv as a DataFrame)."""
    out = Path(out_dir)
    path = out / "compare.json"
    if not path.is_file():
        raise InputError("out", f"no compare.json in {out}")
    return json.loads(path.read_text()), pd.read_csv(out / "compare.csv")
