"""Emergent properties: target means and variances of a model's statistics (paper eqs 28-29)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import param
import torch
from torch import Tensor

from .errors import InputError

if TYPE_CHECKING:
    from .model import Model


class EmergentProperty(param.Parameterized):
    """E[f_j] = mean_j and Var[f_j] = std_j^2 for every named statistic f_j.

    Sufficient statistics ``T = [f, (f - mean)^2]`` (deviations from the *target* mean) with targets
    ``mu_opt = [mean, std^2]``: E[T] = mu_opt is exactly mean and variance matching.
    """

    statistics = param.List(default=[], item_type=str, doc="statistic names, in the model's order")
    mean = param.List(default=[], doc="target mean of each statistic")
    std = param.List(default=[], doc="target standard deviation of each statistic (> 0)")

    @classmethod
    def default_for(cls, model: Model, **overrides) -> EmergentProperty:
        """The model's default property; ``overrides``: {"mean": {stat: v}, "std": {stat: v}}."""
        specs = model.statistic_specs()
        prop = cls(
            statistics=[s.name for s in specs],
            mean=[float(s.mean) for s in specs],
            std=[float(s.std) for s in specs],
        )
        return prop.with_values(**overrides) if overrides else prop

    def with_values(
        self, mean: dict[str, float] | None = None, std: dict[str, float] | None = None
    ) -> EmergentProperty:
        """A copy with some statistics' targets replaced (unknown names raise)."""
        new_mean, new_std = list(self.mean), list(self.std)
        for field, values, target in (("mean", mean, new_mean), ("std", std, new_std)):
            for stat, v in (values or {}).items():
                if stat not in self.statistics:
                    raise InputError(
                        f"{field}[{stat}]",
                        f"unknown statistic {stat!r}; known: {', '.join(self.statistics)}",
                    )
                try:
                    target[self.statistics.index(stat)] = float(v)
                except (TypeError, ValueError):
                    raise InputError(f"{field}[{stat}]", f"not a number: {v!r}") from None
        return type(self)(statistics=list(self.statistics), mean=new_mean, std=new_std)

    def validate(self, model: Model | None = None) -> None:
        """Raise InputError naming the field if the property is malformed."""
        n = len(self.statistics)
        if n == 0:
            raise InputError("statistics", "the property names no statistic")
        if len(self.mean) != n or len(self.std) != n:
            raise InputError(
                "mean" if len(self.mean) != n else "std",
                f"need one value per statistic ({n}); got {len(self.mean)} means, {len(self.std)} sds",
            )
        for stat, mu, sd in zip(self.statistics, self.mean, self.std):
            if not isinstance(mu, (int, float)) or not math.isfinite(mu):
                raise InputError(f"mean[{stat}]", f"must be a finite number; got {mu!r}")
            if not isinstance(sd, (int, float)) or not math.isfinite(sd):
                raise InputError(f"std[{stat}]", f"must be a finite number; got {sd!r}")
            if sd <= 0:
                raise InputError(f"std[{stat}]", f"standard deviation must be > 0; got {sd!r}")
        if model is not None:
            names = model.statistic_names
            for stat in self.statistics:
                if stat not in names:
                    raise InputError(
                        f"statistics[{stat}]",
                        f"{type(model).__name__} has no statistic {stat!r}; known: {', '.join(names)}",
                    )
            if list(self.statistics) != names:
                raise InputError(
                    "statistics",
                    f"must list every statistic of the model in order: {', '.join(names)}",
                )

    # --- EPI quantities -----------------------------------------------------------------------
    @property
    def num_constraints(self) -> int:
        return 2 * len(self.statistics)

    @property
    def constraint_names(self) -> list[str]:
        return [f"E[{s}]" for s in self.statistics] + [f"Var[{s}]" for s in self.statistics]

    def mu_opt(self, device: torch.device | str = "cpu") -> Tensor:
        """Targets of E[T]: (2m,) = [mean, std^2]."""
        mean = torch.tensor(self.mean, dtype=torch.float32, device=device)
        std = torch.tensor(self.std, dtype=torch.float32, device=device)
        return torch.cat([mean, std**2])

    def sufficient_statistics(self, f: Tensor) -> Tensor:
        """T(f) = [f, (f - mean)^2]: (batch, 2m) from f: (batch, m)."""
        mean = torch.as_tensor(self.mean, dtype=f.dtype, device=f.device)
        return torch.cat([f, (f - mean) ** 2], dim=-1)

    def to_dict(self) -> dict[str, Any]:
        return {"statistics": list(self.statistics), "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EmergentProperty:
        return cls(statistics=list(d["statistics"]), mean=list(d["mean"]), std=list(d["std"]))
