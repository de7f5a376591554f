"""The set-up of one EPI run as param state (no panel import): model, property, settings, device.

``SetupState.errors()`` names every invalid field (``"std[real_lambda1]"``, ``"batch_size"``, ...),
so the UI can show each message next to its widget and keep Start disabled until none is left.
"""

from __future__ import annotations

import math
import os
from typing import Any

import param
import torch

from core.errors import InputError
from core.model import Model, load_model
from core.property import EmergentProperty
from core.settings import FlowSettings, OptimizerSettings, resolve_device, settings_for

#: bytes of flow activations and gradients per sample and hidden unit (float32, forward + backward,
#: Adam); the simulator gets ``SIMULATOR_HEADROOM`` times that again. A rough guard, not a promise.
_BYTES_PER_UNIT = 4 * 6
SIMULATOR_HEADROOM = 20


def device_choices() -> dict[str, str]:
    """Device options labelled with what is present, e.g. ``{"auto (cpu)": "auto", ...}``."""
    has_cuda = torch.cuda.is_available()
    auto = f"auto ({torch.cuda.get_device_name(0)})" if has_cuda else "auto (cpu)"
    return {auto: "auto", "cpu": "cpu", "cuda" if has_cuda else "cuda (not available)": "cuda"}


def available_memory_bytes(device: torch.device) -> int:
    """Free memory on ``device``: CUDA's free memory, or half the machine's RAM for the CPU."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2)
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30


def max_batch_size(flow: FlowSettings, dim: int, device: torch.device) -> int:
    """The largest batch that plausibly fits in memory for a flow of this size on ``device``."""
    units = flow.num_stages * (flow.num_layers * flow.num_units + 4 * dim) + dim
    per_sample = _BYTES_PER_UNIT * units * (1 + SIMULATOR_HEADROOM)
    return max(1, available_memory_bytes(device) // per_sample)


def copy_model(model: Model) -> Model:
    """A fresh instance with the same hyperparameters (own noise generator, safe in another thread)."""
    return type(model)(**{k: v for k, v in model.param.values().items() if k != "name"})


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class SetupState(param.Parameterized):
    """Everything Start needs. Changing ``model_spec`` reloads the model with its default property
    and the paper's flow/optimizer settings for it (``model.epi_defaults``)."""

    model_spec = param.Selector(default=None, objects=[], doc="model: built-in name or path.py:Class")
    model = param.ClassSelector(class_=Model, allow_None=True, doc="the model with its hyperparameters")
    means = param.Dict(default={}, doc="target mean per statistic name")
    stds = param.Dict(default={}, doc="target standard deviation per statistic name")
    flow = param.ClassSelector(class_=FlowSettings, doc="normalizing flow settings")
    opt = param.ClassSelector(class_=OptimizerSettings, doc="optimizer settings")
    device = param.Selector(default="auto", objects=["auto", "cpu", "cuda"], doc="where to train")
    model_error = param.String(default="", doc="why the chosen model could not be loaded")
    revision = param.Integer(default=0, doc="bumped on every edit, so views can re-validate")

    def __init__(self, model_specs: dict[str, str] | list[str], model_spec: str | None = None, **params):
        specs = list(model_specs.values()) if isinstance(model_specs, dict) else list(model_specs)
        super().__init__(**params)
        self.param.model_spec.objects = specs
        self.flow, self.opt = FlowSettings(), OptimizerSettings()
        for settings in (self.flow, self.opt):
            settings.param.watch(self._bump, [k for k in settings.param if k != "name"])
        self.model_spec = model_spec if model_spec in specs else (specs[0] if specs else None)
        if self.model is None and self.model_spec is not None:
            self._load_model()

    # --- editing ------------------------------------------------------------------------------
    def _bump(self, *_events) -> None:
        self.revision += 1

    @param.depends("model_spec", watch=True)
    def _load_model(self) -> None:
        """Instantiate the chosen model; default property and settings for it."""
        try:
            model = load_model(self.model_spec)
        except InputError as exc:
            self.model, self.model_error = None, exc.message
            self._bump()
            return
        self.model_error = ""
        self.apply_model(model)

    def apply_model(self, model: Model, prop: EmergentProperty | None = None,
                    settings: dict[str, Any] | None = None) -> None:
        """Use ``model`` (e.g. from a saved run) with ``prop`` and ``settings`` overrides."""
        prop = prop or EmergentProperty.default_for(model)
        flow, opt = settings_for(model, **(settings or {}))
        with param.parameterized.batch_call_watchers(self):
            self.means = dict(zip(prop.statistics, prop.mean))
            self.stds = dict(zip(prop.statistics, prop.std))
            self.flow.param.update(**{k: getattr(flow, k) for k in flow.param if k != "name"})
            self.opt.param.update(**{k: getattr(opt, k) for k in opt.param if k not in ("name", "device")})
            self.model = model
        model.param.watch(self._bump, [k for k in model.param if k != "name"])
        self._bump()

    def apply_run(self, meta: dict[str, Any]) -> tuple[Model, EmergentProperty]:
        """Use a saved run's model, property and settings (its run.json ``meta``); its model spec joins
        the choices when it is not one of them. Returns the model and property."""
        if meta["model"] not in self.param.model_spec.objects:
            self.param.model_spec.objects = [*self.param.model_spec.objects, meta["model"]]
        model = load_model(meta["model"], **meta.get("model_params", {}))
        prop = EmergentProperty.from_dict(meta["property"])
        settings = {k: v for k, v in {**meta.get("flow", {}), **meta.get("optimizer", {})}.items()
                    if k not in ("device", "mixing")}
        with param.parameterized.discard_events(self):
            self.model_spec = meta["model"]
        self.apply_model(model, prop, settings)
        return model, prop

    def set_target(self, kind: str, stat: str, value: float | None) -> None:
        """Set the target ``kind`` ("mean" or "std") of one statistic (``None``: empty widget)."""
        target = {"mean": self.means, "std": self.stds}[kind]
        target[stat] = value
        self.param.trigger("means" if kind == "mean" else "stds")
        self._bump()

    # --- validation ---------------------------------------------------------------------------
    def emergent_property(self) -> EmergentProperty:
        names = self.model.statistic_names if self.model is not None else []
        return EmergentProperty(statistics=names, mean=[self.means.get(s) for s in names],
                                std=[self.stds.get(s) for s in names])

    def errors(self) -> dict[str, str]:
        """Problems by field name; empty when Start may proceed."""
        errs: dict[str, str] = {}
        if self.model is None:
            errs["model"] = self.model_error or "choose a model"
            return errs
        for stat in self.model.statistic_names:
            mean, std = self.means.get(stat), self.stds.get(stat)
            if not _is_number(mean):
                errs[f"mean[{stat}]"] = "enter a finite number"
            if not _is_number(std):
                errs[f"std[{stat}]"] = "enter a finite number"
            elif std <= 0:
                errs[f"std[{stat}]"] = f"standard deviation must be > 0 (got {std:g})"
        if not errs:
            try:
                self.emergent_property().validate(self.model)
            except InputError as exc:
                errs[exc.field] = exc.message
        try:
            device = resolve_device(self.device)
        except InputError as exc:
            errs["device"] = exc.message
        else:
            limit = max_batch_size(self.flow, self.model.dim, device)
            if self.opt.batch_size > limit:
                errs["batch_size"] = (f"batch of {self.opt.batch_size} is too large for {device.type} "
                                      f"memory (at most about {limit})")
        return errs

    def build(self) -> tuple[Model, EmergentProperty, FlowSettings, OptimizerSettings]:
        """Fresh copies of model, property and settings for a trainer; raises InputError."""
        errs = self.errors()
        if errs:
            field, message = next(iter(errs.items()))
            raise InputError(field, message)
        model = copy_model(self.model)
        flow = FlowSettings(**{k: getattr(self.flow, k) for k in self.flow.param if k != "name"})
        opt_values = {k: getattr(self.opt, k) for k in self.opt.param if k != "name"}
        opt = OptimizerSettings(**{**opt_values, "device": self.device})
        return model, self.emergent_property(), flow, opt
