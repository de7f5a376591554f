"""Circuit models: param-declared hyperparameters, declared free parameters z, a batched
differentiable simulator and named emergent-property statistics.

A model is a ``param.Parameterized`` subclass::

    @register_model("lds")
    class LDS(Model):
        tau = param.Number(1.0, bounds=(0, None), inclusive_bounds=(False, True), doc="time constant (s)")
        parameters = (FreeParameter("a1", -10, 10), ...)
        statistics = (Statistic("real_lambda1", mean=0.0, std=0.25), ...)

        def simulate(self, z):          # z: (batch, dim) -> x: anything measure() understands
            ...
        def measure(self, x, z):        # -> (batch, m), one column per statistic
            ...
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import param
import torch
from torch import Tensor

from .errors import InputError, parameter_error


@dataclass(frozen=True)
class FreeParameter:
    """A free parameter z_i with its support [lower, upper]."""

    name: str
    lower: float
    upper: float
    unit: str = ""
    doc: str = ""

    def __post_init__(self):
        if not (np.isfinite(self.lower) and np.isfinite(self.upper)):
            raise InputError(f"bounds[{self.name}]", "lower and upper bounds must be finite")
        if not self.lower < self.upper:
            raise InputError(
                f"bounds[{self.name}]", f"lower ({self.lower}) must be < upper ({self.upper})"
            )


@dataclass(frozen=True)
class Statistic:
    """An emergent-property statistic f_j(x; z) with its default target mean and sd."""

    name: str
    mean: float
    std: float
    unit: str = ""
    doc: str = ""


@dataclass
class Trajectories:
    """Simulated activity for plotting. ``x``: (batch, T, P) on time axis ``t``: (T,)."""

    t: np.ndarray
    x: np.ndarray
    names: list[str]
    time_unit: str = "s"
    value_unit: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class Model(param.Parameterized):
    """Base class of circuit models. Subclasses declare ``parameters`` and ``statistics`` and
    implement ``simulate`` and ``measure``; stochastic models draw noise with ``self.randn``."""

    parameters: ClassVar[tuple[FreeParameter, ...]] = ()
    statistics: ClassVar[tuple[Statistic, ...]] = ()
    #: names of the populations/variables along the last axis of ``trajectories().x``
    population_names: ClassVar[tuple[str, ...]] = ()
    time_unit: ClassVar[str] = "s"
    #: time step of ``simulate``'s time axis (in ``time_unit``), used by the default ``trajectories``
    trajectory_dt: ClassVar[float] = 1.0
    #: per-model overrides of FlowSettings / OptimizerSettings (the paper's settings)
    epi_defaults: ClassVar[dict[str, Any]] = {}
    #: registry key, set by ``register_model`` (or ``path.py:Class`` for user models)
    model_name: ClassVar[str] = ""

    def __init__(self, **params):
        super().__init__(**params)
        self._generator: torch.Generator | None = None

    # --- declarations -------------------------------------------------------------------------
    def free_parameters(self) -> list[FreeParameter]:
        """The free parameters z, in column order. Override when they depend on hyperparameters."""
        return list(self.parameters)

    def statistic_specs(self) -> list[Statistic]:
        return list(self.statistics)

    @property
    def parameter_names(self) -> list[str]:
        return [p.name for p in self.free_parameters()]

    @property
    def statistic_names(self) -> list[str]:
        return [s.name for s in self.statistic_specs()]

    @property
    def dim(self) -> int:
        return len(self.free_parameters())

    def bounds(self, device: torch.device | str = "cpu") -> tuple[Tensor, Tensor]:
        """Lower and upper bounds, each (dim,)."""
        ps = self.free_parameters()
        lower = torch.tensor([p.lower for p in ps], dtype=torch.float32, device=device)
        upper = torch.tensor([p.upper for p in ps], dtype=torch.float32, device=device)
        return lower, upper

    def hyperparameters(self) -> dict[str, Any]:
        """Fixed hyperparameters as plain JSON-able values (``model_params`` in run.json)."""
        out = {}
        for k, p in self.param.objects("existing").items():
            if k == "name":
                continue
            v = getattr(self, k)
            if isinstance(v, np.ndarray):
                v = v.tolist()
            elif isinstance(v, tuple):
                v = list(v)
            out[k] = v
        return out

    # --- randomness ---------------------------------------------------------------------------
    def set_generator(self, generator: torch.Generator | None) -> None:
        """Noise source for ``randn``; the trainer sets a seeded one so runs are reproducible."""
        self._generator = generator

    @contextlib.contextmanager
    def fixed_noise(self, seed: int = 0) -> Iterator[None]:
        """Within the block every call draws the same noise: ``randn``/``rand`` come from a fresh
        generator seeded with ``seed`` (common random numbers), so activity at two z differs by z alone."""
        previous = self._generator
        self._generator = torch.Generator().manual_seed(seed)
        try:
            yield
        finally:
            self._generator = previous

    def randn(self, *shape: int, like: Tensor) -> Tensor:
        """Standard normal noise of ``shape`` on ``like``'s device and dtype."""
        g = self._generator
        if g is not None and g.device.type != like.device.type:
            g = None
        return torch.randn(*shape, generator=g, device=like.device, dtype=like.dtype)

    def rand(self, *shape: int, like: Tensor) -> Tensor:
        """Uniform [0, 1) noise of ``shape`` on ``like``'s device and dtype."""
        g = self._generator
        if g is not None and g.device.type != like.device.type:
            g = None
        return torch.rand(*shape, generator=g, device=like.device, dtype=like.dtype)

    # --- the science --------------------------------------------------------------------------
    def simulate(self, z: Tensor) -> Tensor:
        """Draw x ~ p(x | z) for z: (batch, dim). Differentiable in z."""
        raise NotImplementedError

    def measure(self, x: Tensor, z: Tensor) -> Tensor:
        """Statistics f(x; z): (batch, m), columns in ``statistic_names`` order."""
        raise NotImplementedError

    def emergent_statistics(self, z: Tensor) -> Tensor:
        """f(x; z) with x ~ p(x|z): (batch, m). Override to skip work ``measure`` does not need."""
        return self.measure(self.simulate(z), z)

    def checked_statistics(self, z: Tensor) -> Tensor:
        """``emergent_statistics`` with the shape checked, naming the model on a mismatch."""
        f = self.emergent_statistics(z)
        m = len(self.statistic_specs())
        if not isinstance(f, Tensor) or f.ndim != 2 or f.shape != (z.shape[0], m):
            shape = tuple(f.shape) if isinstance(f, Tensor) else type(f).__name__
            raise InputError(
                f"{type(self).__name__}.measure",
                f"must return a tensor of shape (batch, {m}) = ({z.shape[0]}, {m}); got {shape}",
            )
        return f

    def trajectories(self, z: Tensor) -> Trajectories:
        """Activity traces at z: (batch, dim) for plotting. Default: ``simulate`` returning
        (batch, T, P) sampled every ``trajectory_dt``."""
        with torch.no_grad():
            x = self.simulate(z)
        if x.ndim != 3:
            raise NotImplementedError(f"{type(self).__name__} must override trajectories()")
        t = np.arange(x.shape[1]) * self.trajectory_dt
        names = list(self.population_names) or [f"x{i}" for i in range(x.shape[2])]
        return Trajectories(t=t, x=x.detach().cpu().numpy(), names=names, time_unit=self.time_unit)

    def describe(self) -> dict[str, Any]:
        """A JSON-able summary: parameters, statistics, hyperparameters."""
        return {
            "model": self.model_name or type(self).__name__,
            "doc": (type(self).__doc__ or "").strip().split("\n")[0],
            "parameters": [vars(p) for p in self.free_parameters()],
            "statistics": [vars(s) for s in self.statistic_specs()],
            "hyperparameters": self.hyperparameters(),
        }


_REGISTRY: dict[str, type[Model]] = {}


def register_model(name: str):
    """Class decorator: make a model available as ``load_model(name)``."""

    def deco(cls: type[Model]) -> type[Model]:
        cls.model_name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def _import_builtins() -> None:
    importlib.import_module("core.models")


def available_models() -> dict[str, type[Model]]:
    """Built-in and registered models by name."""
    _import_builtins()
    return dict(sorted(_REGISTRY.items()))


def _import_problem(exc: Exception) -> str:
    """What went wrong importing a user's model file, in one line: a syntax error's line and text, a
    declaration's own message (``bounds[a]: lower (1.0) must be < upper (1.0)``), else type and message."""
    if isinstance(exc, SyntaxError):
        return f"syntax error at line {exc.lineno}: {exc.msg}"
    if isinstance(exc, InputError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def load_model_class(spec: str) -> type[Model]:
    """A model class from a registry name or ``path/to/file.py:ClassName``."""
    if ":" in spec and spec.split(":", 1)[0].endswith(".py"):
        path_s, cls_name = spec.rsplit(":", 1)
        path = Path(path_s).expanduser()
        if not path.is_file():
            raise InputError("model", f"model file not found: {path}")
        mod_name = f"epi_user_model_{abs(hash(str(path.resolve())))}"
        module_spec = importlib.util.spec_from_file_location(mod_name, path)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[mod_name] = module
        try:
            module_spec.loader.exec_module(module)
        except Exception as exc:  # a user file: report, don't crash the caller
            raise InputError("model", f"could not import {path}: {_import_problem(exc)}") from exc
        cls = getattr(module, cls_name, None)
        if not (isinstance(cls, type) and issubclass(cls, Model)):
            raise InputError("model", f"{path} has no Model subclass named {cls_name!r}")
        if not cls.model_name or cls.model_name not in _REGISTRY:
            cls.model_name = spec
        return cls
    models = available_models()
    if spec not in models:
        raise InputError("model", f"unknown model {spec!r}; available: {', '.join(models)}")
    return models[spec]


def load_model(spec: str, **hyperparameters) -> Model:
    """Instantiate a model by name (or file path) with hyperparameters set."""
    cls = load_model_class(spec)
    unknown = set(hyperparameters) - set(cls.param.objects("existing")) 
    if unknown:
        raise InputError(
            f"set[{sorted(unknown)[0]}]",
            f"{cls.__name__} has no hyperparameter {sorted(unknown)[0]!r}; "
            f"known: {', '.join(k for k in cls.param.objects('existing') if k != 'name')}",
        )
    try:
        return cls(**hyperparameters)
    except (ValueError, TypeError) as exc:
        raise parameter_error("set", exc) from exc
