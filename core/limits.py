"""Server-side limits on what one training may ask for, checked where a training is submitted."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields

from .errors import InputError

_ENV = "EPI_DASH_"


@dataclass(frozen=True)
class ServerLimits:
    """Maxima a server accepts; None means no limit. ``max_concurrent`` is K, trainings at once."""

    max_batch_size: int | None = None
    max_iterations: int | None = None
    max_parameters: int | None = None
    max_wall_time_s: float | None = None
    max_runs_per_user: int | None = None
    max_concurrent: int = 1

    @classmethod
    def from_env(cls, environ: dict | None = None) -> "ServerLimits":
        """Read ``EPI_DASH_MAX_BATCH_SIZE`` etc.; a bad value raises InputError naming the variable."""
        env = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            raw = env.get(_ENV + f.name.upper())
            if raw is None or raw == "":
                continue
            try:
                values[f.name] = float(raw) if f.name == "max_wall_time_s" else int(raw)
            except ValueError:
                raise InputError(_ENV + f.name.upper(), f"{raw!r} is not a number") from None
        return cls(**values)

    def check(self, field: str, value: float, limit_name: str) -> None:
        """Raise InputError(field) when ``value`` exceeds the limit ``limit_name``."""
        limit = getattr(self, limit_name)
        if limit is not None and value > limit:
            raise InputError(field, f"{value} exceeds this server's limit of {limit} ({limit_name})")

    def check_training(self, batch_size: int, iterations: int, parameters: int | None = None,
                       runs_of_user: int | None = None) -> None:
        """Check one training request against every limit; the first exceeded raises InputError."""
        self.check("batch_size", batch_size, "max_batch_size")
        self.check("iterations", iterations, "max_iterations")
        if parameters is not None:
            self.check("parameters", parameters, "max_parameters")
        if runs_of_user is not None:
            self.check("runs", runs_of_user + 1, "max_runs_per_user")
