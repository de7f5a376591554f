"""Errors that name the offending field, so UIs can show them next to the widget."""

from __future__ import annotations


class InputError(ValueError):
    """Invalid user input. ``field`` names what is wrong (e.g. ``"std[real_lambda1]"``)."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class TrainingError(RuntimeError):
    """Training stopped on a numerical failure (e.g. NaN statistics); the last checkpoint is kept."""
