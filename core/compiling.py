"""torch.compile with an eager fallback, shared by the models' ``compile`` = 'auto' / 'on' / 'off'."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable

import torch

from .errors import InputError

COMPILE_MODES = ("auto", "on", "off")


class CompiledOrEager:
    """``function`` compiled with ``torch.compile(function, **options)`` on first use.

    ``select(mode)`` gives the callable to run: ``function`` itself for 'off' or after a failure,
    else a wrapper that runs the compiled code. If compiling or running it raises (no C++ compiler,
    unsupported device or op), the wrapper runs ``function`` instead and, for 'auto', warns once and
    stays eager; for 'on' it raises ``InputError("compile", ...)``. ``label`` names the owner in the
    warning. The compiled code must give the numbers ``function`` gives, so falling back is safe."""

    def __init__(self, function: Callable, label: str, **options):
        self.function, self.label, self.options = function, label, options
        self._compiled: Callable | None = None
        self.failed = False

    def select(self, mode: str) -> Callable:
        """The function to call for ``mode`` (one of ``COMPILE_MODES``)."""
        if mode == "off" or self.failed:
            return self.function
        return functools.partial(self._run, mode)

    def _run(self, mode: str, *args):
        if self.failed:
            return self.function(*args)
        try:
            if self._compiled is None:
                self._compiled = torch.compile(self.function, **self.options)
            return self._compiled(*args)
        except Exception as exc:  # any compiler error: eager gives the same numbers
            if mode == "on":
                raise InputError("compile", f"torch.compile failed here: {exc}") from exc
            warnings.warn(f"{self.label}: torch.compile failed ({type(exc).__name__}); running eagerly",
                          stacklevel=3)
            self.failed = True
            return self.function(*args)
