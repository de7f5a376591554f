"""Server-side limits on what one training may ask for, checked where a training is submitted.

Each limit is a server setting (``epi-dash serve --max-...`` sets the ``EPI_DASH_MAX_*`` environment
variables, which every server process reads with :meth:`ServerLimits.from_env`); None means no limit.
A refusal is an InputError naming the request's field, the value, the limit and the setting.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields

from .errors import InputError

_ENV = "EPI_DASH_"


def env_name(limit: str) -> str:
    """The environment variable of a limit: ``max_batch_size`` -> ``EPI_DASH_MAX_BATCH_SIZE``."""
    return _ENV + limit.upper()


def _number(x: float) -> str:
    """``5000`` for a whole number (also 5000.0), else the float as Python writes it."""
    return str(int(x)) if float(x).is_integer() else str(x)


@dataclass(frozen=True)
class ServerLimits:
    """Maxima a server accepts; None means no limit. ``max_concurrent`` is K, trainings at once in one
    server process (None: one per CPU core), ``max_per_user`` how many of those one user may hold."""

    max_batch_size: int | None = None
    max_iterations: int | None = None
    max_parameters: int | None = None
    max_wall_time_s: float | None = None
    max_runs_per_user: int | None = None
    max_concurrent: int | None = None
    max_per_user: int | None = None

    @classmethod
    def from_env(cls, environ: dict | None = None) -> "ServerLimits":
        """Read ``EPI_DASH_MAX_BATCH_SIZE`` etc.; a bad value raises InputError naming the variable."""
        env = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            name = env_name(f.name)
            raw = env.get(name)
            if raw is None or raw == "":
                continue
            try:
                value = float(raw) if f.name == "max_wall_time_s" else int(raw)
            except ValueError:
                raise InputError(name, f"{raw!r} is not a number") from None
            if value <= 0:
                raise InputError(name, f"{raw!r} must be positive (leave it unset for no limit)")
            values[f.name] = value
        return cls(**values)

    @property
    def concurrency(self) -> int:
        """K: ``max_concurrent``, or the number of CPU cores when unset."""
        return self.max_concurrent or os.cpu_count() or 1

    def check(self, field: str, value: float, limit_name: str) -> None:
        """Raise InputError(field) when ``value`` exceeds the limit ``limit_name``."""
        limit = getattr(self, limit_name)
        if limit is not None and value > limit:
            raise InputError(field, f"{_number(value)} exceeds this server's limit of {_number(limit)} ({limit_name})")

    def check_training(self, batch_size: int, iterations: int, parameters: int | None = None,
                       runs_of_user: int | None = None) -> None:
        """Check one training request against every limit; the first exceeded raises InputError.
        ``runs_of_user``: that user's trainings already queued or running (this one would add one)."""
        self.check("batch_size", batch_size, "max_batch_size")
        self.check("iterations", iterations, "max_iterations")
        if parameters is not None:
            self.check("parameters", parameters, "max_parameters")
        if runs_of_user is not None:
            self.check_runs(runs_of_user)

    def check_runs(self, runs_of_user: int, what: str = "trainings") -> None:
        """Refuse (InputError "runs") one more job for a user who has ``runs_of_user`` queued or running
        (``what``: how the message names them)."""
        if self.max_runs_per_user is not None and runs_of_user + 1 > self.max_runs_per_user:
            raise InputError("runs", f"you have {runs_of_user} {what} queued or running; this server's limit "
                                     f"is {self.max_runs_per_user} per user (max_runs_per_user): wait for one to "
                                     "end or stop one")
