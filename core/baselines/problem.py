"""What every method in the race shares: the model's batched simulator, the uniform prior over the
parameter box, the observation x0 = mu, a simulation counter, a wall-clock deadline and the stop flag."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from ..errors import InputError
from ..model import Model
from ..property import EmergentProperty
from ..settings import resolve_device


class Stopped(Exception):
    """Raised inside a method's inner loop when the deadline passed or a stop was requested."""


@dataclass
class Budget:
    """Wall-clock limit and cooperative stop flag for one run. ``time_limit_s=None``: no limit."""

    time_limit_s: float | None = None
    stop_event: threading.Event | None = None
    start: float = field(default_factory=time.perf_counter)

    def __post_init__(self):
        if self.time_limit_s is not None and not self.time_limit_s > 0:
            raise InputError("time_limit", f"must be > 0 seconds; got {self.time_limit_s}")

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def remaining(self) -> float:
        if self.time_limit_s is None:
            return float("inf")
        return self.time_limit_s - self.elapsed()

    def timed_out(self) -> bool:
        return self.remaining() <= 0

    def stop_requested(self) -> bool:
        return self.stop_event is not None and self.stop_event.is_set()

    def exhausted(self) -> bool:
        return self.timed_out() or self.stop_requested()

    def check(self) -> None:
        """Raise ``Stopped`` when out of time or asked to stop."""
        if self.exhausted():
            raise Stopped("time limit reached" if self.timed_out() else "stop requested")


class InferenceProblem:
    """A model + emergent property seen as a likelihood-free inference problem.

    Prior: U(lower, upper) over the model's box. Observation: x0 = the property's target means.
    ``simulate(z: (n, d)) -> f: (n, m)`` runs the model's batched simulator without gradients and
    counts every simulation into ``num_simulations``.
    """

    def __init__(self, model: Model, prop: EmergentProperty, device: str | torch.device = "cpu",
                 max_batch: int = 20_000):
        prop.validate(model)
        self.model = model
        self.property = prop
        self.device = resolve_device(device)
        self.max_batch = max_batch
        self.lower, self.upper = model.bounds(self.device)
        self.x0 = torch.tensor(prop.mean, dtype=torch.float32, device=self.device)
        self.num_simulations = 0

    @property
    def dim(self) -> int:
        return self.model.dim

    @property
    def parameter_names(self) -> list[str]:
        return self.model.parameter_names

    @property
    def statistic_names(self) -> list[str]:
        return list(self.property.statistics)

    def seed(self, seed: int) -> None:
        """Seed torch, numpy (pyabc draws from numpy's global RNG) and the model's noise."""
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)
        generator = torch.Generator(device=self.device)
        generator.manual_seed(seed)
        self.model.set_generator(generator)

    def sample_prior(self, n: int) -> Tensor:
        """z ~ U(box): (n, d)."""
        u = torch.rand(n, self.dim, device=self.device)
        return self.lower + (self.upper - self.lower) * u

    def simulate(self, z: Tensor, count: bool = True) -> Tensor:
        """f(x; z), x ~ p(x | z): (n, m) float32 on the problem's device."""
        z = torch.as_tensor(z, dtype=torch.float32, device=self.device)
        if z.shape[0] == 0:
            return torch.zeros(0, len(self.statistic_names), device=self.device)
        with torch.no_grad():
            f = torch.cat([self.model.checked_statistics(chunk) for chunk in z.split(self.max_batch)])
        if count:
            self.num_simulations += z.shape[0]
        return f

    def in_bounds(self, z: Tensor) -> Tensor:
        """(n,) bool: z inside the closed box."""
        return ((z >= self.lower) & (z <= self.upper)).all(dim=-1)
