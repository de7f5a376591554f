"""Errors that name the offending field, so UIs can show them next to the widget."""

from __future__ import annotations

import re

_PARAM_NAME = re.compile(r"[Pp]arameter '(?:[\w.]*\.)?(\w+)'")


class InputError(ValueError):
    """Invalid user input. ``field`` names what is wrong (e.g. ``"std[real_lambda1]"``)."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class TrainingError(RuntimeError):
    """Training stopped on a numerical failure (e.g. NaN statistics); the last checkpoint is kept."""


def parameter_error(prefix: str, exc: Exception) -> InputError:
    """An InputError for a param validation error, naming the parameter as ``prefix[name]``.

    param says which parameter failed only inside its message ("Integer parameter 'Rank2RNN.N' must be
    at least 2, not 1."); without a name there the field is ``prefix`` alone."""
    found = _PARAM_NAME.search(str(exc))
    return InputError(f"{prefix}[{found.group(1)}]" if found else prefix, str(exc))
