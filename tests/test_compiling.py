"""The compiled Euler steps of STG and V1 (core.compiling.CompiledOrEager): they give the eager
numbers, gradients included; a compiler failure falls back to eager with a warning ('auto', same
numbers) or raises a field-named error ('on')."""

from __future__ import annotations

import warnings

import pytest
import torch

from core.errors import InputError
from core.model import load_model

#: short runs of two parameter sets in chunks of 4 steps (a quick compile; shorter than a chunk would run eagerly)
CASES = {
    "stg": ({"num_steps": 60, "steps_per_chunk": 4}, [[5.0, 1.0], [7.0, 3.0]], "simulate"),
    "v1": ({"num_trials": 10, "num_steps": 14, "t_ss": 0.002, "steps_per_chunk": 4},
           [[0.3, 0.1, 0.2, 0.4], [0.5, 0.0, 0.1, 0.0]],
           "emergent_statistics"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_compiled_steps_match_eager(name):
    """Skipped only where torch.compile cannot work (no C++ compiler)."""
    kwargs, z_values, method = CASES[name]
    results = []
    for mode in ("off", "auto"):
        model = load_model(name, compile=mode, **kwargs)
        model.set_generator(torch.Generator().manual_seed(0))
        z = torch.tensor(z_values, requires_grad=True)  # compiled steps serve gradient batches
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = getattr(model, method)(z)
        if model._compiled.failed:
            pytest.skip("torch.compile does not work here")
        out.sum().backward()
        results.append((out.detach(), z.grad))
    (eager, eager_grad), (compiled, compiled_grad) = results
    torch.testing.assert_close(compiled, eager, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(compiled_grad, eager_grad, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", sorted(CASES))
def test_compile_failure_falls_back_or_raises(monkeypatch, name):
    kwargs, z_values, method = CASES[name]

    def broken_compile(fn, **kw):
        def run(*args):
            raise RuntimeError("no compiler")
        return run

    def run_model(compile_mode: str) -> torch.Tensor:
        model = load_model(name, compile=compile_mode, **kwargs)
        model.set_generator(torch.Generator().manual_seed(0))
        z = torch.tensor(z_values, requires_grad=True)  # compiled steps serve gradient batches
        return getattr(model, method)(z)

    monkeypatch.setattr(torch, "compile", broken_compile)
    with pytest.warns(UserWarning, match="running eagerly"):
        fallback = run_model("auto")
    torch.testing.assert_close(fallback, run_model("off"))
    with pytest.raises(InputError) as err:
        run_model("on")
    assert err.value.field == "compile"
