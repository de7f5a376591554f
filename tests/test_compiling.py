"""The compiled Euler steps of STG and V1 (core.compiling.CompiledOrEager): a compiler failure falls
back to eager with a warning ('auto', same numbers) or raises a field-named error ('on')."""

from __future__ import annotations

import pytest
import torch

from core.errors import InputError
from core.model import load_model

CASES = {
    "stg": ({"num_steps": 60}, [[5.0, 1.0]], "simulate"),
    "v1": ({"num_trials": 5, "num_steps": 60}, [[0.3, 0.1, 0.2, 0.4]], "emergent_statistics"),
}


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
