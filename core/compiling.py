"""torch.compile with an eager fallback, shared by the models' ``compile`` = 'auto' / 'on' / 'off'.

The models compile with torch's default shape handling (``dynamic=None``): the first graph has static
shapes, which suits training (gradient batches all have one size) and ran 12 % faster than
``dynamic=True`` for the STG (in-process A/B, 35.6 vs 40.2 ms per iteration). A new batch size or a
changed float hyperparameter recompiles once, then that input stays dynamic."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable

import param
import torch

from .errors import InputError

COMPILE_MODES = ("auto", "on", "off")
#: inductor options for the models' compiled steps on CPU. A C++ wrapper launches the generated
#: kernels without a Python call per kernel: sampled Python share of an STG iteration 18 % -> 10-14 %,
#: of a V1 iteration 12 % -> 10 %, same or slightly better speed, a few seconds more to compile (once
#: per machine: inductor caches on disk). Other devices keep inductor's defaults (untested here).
CPU_INDUCTOR_OPTIONS = {"cpp_wrapper": True}


def compile_parameter(first_compile: str) -> param.Selector:
    """A model's ``compile`` hyperparameter (one of ``COMPILE_MODES``, default 'auto');
    ``first_compile`` says how long the first compile takes, e.g. "about 40 s"."""
    return param.Selector(
        default="auto", objects=list(COMPILE_MODES),
        doc="torch.compile the Euler steps of gradient batches in chunks ('auto': when it works here, "
        f"else eager); compiling takes {first_compile} on a 2-core CPU the first time (cached on disk: "
        "seconds in later processes) and again for a new batch size",
    )


def _device_type(args: tuple) -> str:
    return next((a.device.type for a in args if isinstance(a, torch.Tensor)), "cpu")


class CompiledOrEager:
    """``function`` compiled with ``torch.compile(function, **options)`` on first use, once per device
    type (on CPU with ``options=CPU_INDUCTOR_OPTIONS``; the first tensor argument sets the device).

    ``select(mode)`` gives the callable to run: ``function`` itself for 'off' or after a failure,
    else a wrapper that runs the compiled code. If compiling or running it raises (no C++ compiler,
    unsupported device or op), the wrapper runs ``function`` instead and, for 'auto', warns once and
    stays eager; for 'on' it raises ``InputError("compile", ...)``. ``label`` names the owner in the
    warning. The compiled code must give the numbers ``function`` gives, so falling back is safe."""

    def __init__(self, function: Callable, label: str, **options):
        self.function, self.label, self.options = function, label, options
        self._compiled: dict[str, Callable] = {}
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
            device = _device_type(args)
            if device not in self._compiled:
                inductor = {"options": CPU_INDUCTOR_OPTIONS} if device == "cpu" else {}
                self._compiled[device] = torch.compile(self.function, **inductor, **self.options)
            return self._compiled[device](*args)
        except Exception as exc:  # any compiler error: eager gives the same numbers
            if mode == "on":
                raise InputError("compile", f"torch.compile failed here: {exc}") from exc
            warnings.warn(f"{self.label}: torch.compile failed ({type(exc).__name__}); running eagerly",
                          stacklevel=3)
            self.failed = True
            return self.function(*args)
