"""V1 SSSN (Methods 5.2.2): declarations, steady state, s_E at hand-checked noise levels, gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.errors import InputError
from core.model import load_model


def seeded(model, seed: int = 0):
    model.set_generator(torch.Generator().manual_seed(seed))
    return model


def s_e(model, sigma, repeats: int = 4) -> float:
    with torch.no_grad():
        return model.emergent_statistics(torch.tensor([sigma] * repeats)).mean().item()


def test_declarations():
    model = load_model("v1")
    assert model.parameter_names == ["sigma_E", "sigma_P", "sigma_S", "sigma_V"]
    lower, upper = model.bounds()
    assert lower.tolist() == [0.0] * 4 and upper.tolist() == [0.5] * 4
    assert model.statistic_names == ["s_E"] and (model.statistics[0].mean, model.statistics[0].std) == (5.0, 1.0)
    d = model.epi_defaults
    assert (d["batch_size"], d["c0"], d["beta"], d["iters_per_epoch"], d["num_units"]) == (100, 0.1, 2.0, 2000, 50)
    assert model.window_start == 150  # t_ss = 75 ms at dt = 0.5 ms
    again = load_model("v1", **model.hyperparameters())
    assert again.hyperparameters() == model.hyperparameters()


def test_bad_connectivity_names_the_field():
    model = load_model("v1", W=[[1.0, 2.0]] * 4)
    with pytest.raises(InputError) as err:
        model.simulate(torch.zeros(1, 4))
    assert err.value.field == "W"


def test_shapes_and_deterministic_steady_state():
    """sigma = 0: rates relax from U[10, 25] Hz to the 50 % contrast fixed point (notes: E 45.9,
    P 54.0, S 27.5, V 49.3 Hz), so s_E is ~0."""
    model = seeded(load_model("v1", num_trials=5))
    x = model.simulate(torch.zeros(2, 4))
    assert x.shape == (2, 5, 201, 4)
    assert ((x[:, :, 0] >= 10) & (x[:, :, 0] <= 25)).all()
    torch.testing.assert_close(x[0, 0, -1], torch.tensor([45.9, 54.0, 27.5, 49.3]), atol=0.1, rtol=0)
    assert model.measure(x, torch.zeros(2, 4)).max() < 0.05


@pytest.mark.parametrize(
    "sigma, expected",
    [  # notes section 3.3, independent numpy re-simulation; tolerance 15 % (trial noise + their window)
        ([0.1, 0, 0, 0], 1.6),
        ([0.25, 0, 0, 0], 4.5),
        ([0.5, 0, 0, 0], 10.6),
        ([0, 0.5, 0, 0], 10.6),
    ],
)
def test_s_e_matches_the_notes(sigma, expected):
    assert s_e(seeded(load_model("v1")), sigma) == pytest.approx(expected, rel=0.15)


def test_s_and_v_noise_are_degenerate():
    model = seeded(load_model("v1"))
    assert s_e(model, [0, 0, 0.5, 0]) < 1.0 and s_e(model, [0, 0, 0, 0.5]) < 1.0


def test_measure_agrees_with_the_streaming_statistic():
    """``emergent_statistics`` keeps running moments instead of traces; same noise -> same s_E."""
    z = torch.tensor([[0.3, 0.1, 0.2, 0.4], [0.05, 0.4, 0.0, 0.1]])
    a = seeded(load_model("v1", num_trials=30), 7)
    b = seeded(load_model("v1", num_trials=30), 7)
    with torch.no_grad():
        torch.testing.assert_close(a.emergent_statistics(z), b.measure(b.simulate(z), z), rtol=1e-3, atol=1e-3)


def test_chunked_no_grad_evaluation_matches_one_chunk():
    z = torch.rand(5, 4) * 0.5
    whole = seeded(load_model("v1", num_trials=10), 2)
    chunked = seeded(load_model("v1", num_trials=10, simulation_chunk=2), 2)
    with torch.no_grad():
        a, b = whole.emergent_statistics(z), chunked.emergent_statistics(z)
    assert a.shape == b.shape == (5, 1)
    # different chunking draws the noise in a different order: agree in distribution, not exactly
    assert (a - b).abs().mean() < 0.3 * a.mean()


def test_gradients_finite_and_s_e_increases_with_sigma_e():
    model = seeded(load_model("v1", num_trials=50))
    z = torch.tensor([[0.2, 0.1, 0.3, 0.3], [0.4, 0.2, 0.1, 0.0]], requires_grad=True)
    model.emergent_statistics(z).sum().backward()
    assert torch.isfinite(z.grad).all()
    assert (z.grad[:, 0] > 0).all() and (z.grad[:, 1] > 0).all()  # E and P noise raise s_E


def test_a_few_epi_iterations(train_a_few_iterations):
    model = load_model("v1", num_trials=10, num_steps=60, t_ss=0.02)
    result, records = train_a_few_iterations(model)
    assert all(np.isfinite(r.entropy) and r.f_mean[0] >= 0 for r in records)
    z = result.distribution.sample(5)
    assert z.shape == (5, 4) and bool(((z > 0) & (z < 0.5)).all())
