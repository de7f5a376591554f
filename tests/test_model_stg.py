"""STG subcircuit (Methods 5.2.1): declarations, hand-checked hub frequencies, forward-mode gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.errors import InputError
from core.model import load_model
from core.models.stg import HUB, NEURONS, frequency_basis, simulate_voltages


def seeded(model, seed: int = 0):
    model.set_generator(torch.Generator().manual_seed(seed))
    return model


def stg(**kw):
    return seeded(load_model("stg", compile="off", **kw))


def test_declarations():
    model = load_model("stg")
    assert model.parameter_names == ["g_el", "g_synA"]
    lower, upper = model.bounds()
    assert lower.tolist() == pytest.approx([4.0, 0.01]) and upper.tolist() == pytest.approx([8.0, 4.0])
    assert model.statistic_names == ["hub_freq"]
    assert (model.statistics[0].mean, model.statistics[0].std) == (0.55, 0.025)
    d = model.epi_defaults
    assert (d["batch_size"], d["c0"], d["beta"], d["iters_per_epoch"], d["num_units"]) == (400, 1e5, 2.0, 5000, 25)
    assert len(model.frequencies) == 101 and model.frequencies[-1] == pytest.approx(1.0)


def test_hyperparameters_round_trip_through_json_types():
    model = load_model("stg")
    again = load_model("stg", **model.hyperparameters())
    assert again.hyperparameters() == model.hyperparameters()
    with pytest.raises(InputError):
        load_model("stg", x0=[0.0] * 14)


def test_shapes_bounds_and_trajectories():
    model = stg(num_steps=80)
    z = torch.tensor([[4.5, 3.0], [6.0, 1.0], [8.0, 0.01]])
    v = model.simulate(z)
    assert v.shape == (3, 81, 5) and torch.isfinite(v).all()
    assert (v > -0.1).all() and (v < 0.1).all()  # volts: within the reversal potentials' range
    f = model.measure(v, z)
    assert f.shape == (3, 1) and ((f >= 0) & (f <= 1)).all()
    traj = model.trajectories(z)
    assert traj.x.shape == (3, 81, 5) and traj.names == list(NEURONS) and traj.value_unit == "mV"
    assert traj.t[1] == pytest.approx(0.025) and np.abs(traj.x).max() < 100


def test_frequency_basis_recovers_a_sinusoid():
    """The measurement's linear part (drop, moving average, centring, DFT) on a 0.4 Hz sine."""
    model = stg()
    t = torch.arange(301, dtype=torch.float64) * 0.025
    v = 0.02 * torch.sin(2 * torch.pi * 0.4 * t)[None]
    assert model.hub_frequency(v.float()).item() == pytest.approx(0.4, abs=0.011)
    b = frequency_basis(301, 0.025, 20, 20, model.frequencies)
    assert b.shape == (301, 202) and np.abs(b[:20]).max() == 0


#: (point (g_el, g_synA) nS, notes' hub frequency (Hz), tolerance): the notes' independent numpy
#: re-simulation (section 3.2) vs ours, plus the spread of the noise over 10 draws
HAND_CHECKED = [
    ((4.5, 3.0), 0.35, 0.03),  # Fig 1B point: hub locked to the slow pair
    ((6.107, 1.309), 0.55, 0.01),  # the reference run's mode (notes: 0.549 Hz)
    ((4.0, 0.01), 0.68, 0.03),
]
DRAWS = 10


@pytest.fixture(scope="module")
def hand_checked_hub_voltages():
    """Hub voltages (3 * DRAWS, T + 1) at the hand-checked points: one batched simulation."""
    z = torch.tensor([point for point, _, _ in HAND_CHECKED for _ in range(DRAWS)])
    with torch.no_grad():
        return stg().simulate(z)[:, :, HUB]


@pytest.mark.parametrize("beta", [100.0, 500.0])  # paper's temperature and the reference code's
def test_hub_frequency_at_hand_checked_points(hand_checked_hub_voltages, beta):
    f = stg(softmax_beta=beta).hub_frequency(hand_checked_hub_voltages).reshape(len(HAND_CHECKED), DRAWS)
    for (point, expected, tol), draws in zip(HAND_CHECKED, f):
        assert abs(draws.mean().item() - expected) < tol, (point, beta, draws.mean().item())
        assert draws.std().item() < 0.05


def test_noise_is_seeded():
    z = torch.tensor([[5.0, 2.0]] * 4)
    a, b = stg(num_steps=60).simulate(z), stg(num_steps=60).simulate(z)
    assert torch.equal(a, b)
    assert not torch.equal(a[0], a[1])  # each sample draws its own noise


def test_forward_mode_tangents_match_autograd():
    model = stg(num_steps=120)
    z = torch.tensor([[4.5, 3.0], [6.107, 1.309], [7.0, 0.5]], dtype=torch.float64)
    noise = torch.randn(120, 3, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    x0 = torch.tensor(model.x0, dtype=torch.float64)
    c = model.constants(z)
    v, dv = simulate_voltages(z, noise, x0, c, with_tangents=True)
    z_ref = z.clone().requires_grad_()
    v_ref, _ = simulate_voltages(z_ref, noise, x0, c, with_tangents=False)
    weights = torch.randn_like(v_ref)
    (expected,) = torch.autograd.grad((v_ref * weights).sum(), z_ref)
    ours = torch.einsum("btn,tbkn->bk", weights, dv)
    torch.testing.assert_close(v, v_ref.detach())
    torch.testing.assert_close(ours, expected, rtol=1e-8, atol=1e-10)


def test_statistic_gradient_is_finite_and_matches_finite_differences():
    model = load_model("stg", compile="off")
    z = torch.tensor([[6.107, 1.309], [5.0, 2.5]], dtype=torch.float64, requires_grad=True)

    def f(zz):
        model.set_generator(torch.Generator().manual_seed(4))  # same noise: a smooth function of z
        return model.emergent_statistics(zz)[:, 0]

    (grad,) = torch.autograd.grad(f(z).sum(), z)
    assert torch.isfinite(grad).all()
    h = 1e-4
    for k in range(2):
        dz = torch.zeros_like(z)
        dz[:, k] = h
        numeric = (f(z.detach() + dz) - f(z.detach() - dz)) / (2 * h)
        torch.testing.assert_close(grad[:, k], numeric, rtol=1e-3, atol=1e-5)


def test_a_few_epi_iterations(train_a_few_iterations):
    model = load_model("stg", compile="off", num_steps=100)
    result, records = train_a_few_iterations(model, batch_size=8)
    assert all(np.isfinite(r.entropy) and 0 <= r.f_mean[0] <= 1 for r in records)
    z = result.distribution.sample(5)
    assert z.shape == (5, 2) and bool(((z[:, 0] > 4) & (z[:, 0] < 8) & (z[:, 1] > 0.01) & (z[:, 1] < 4)).all())


def test_chunked_steps_match_one_pass():
    """The chunking used for compiled steps (here with the eager steps, 7 does not divide 64)."""
    model = stg(num_steps=64)
    z = torch.tensor([[5.0, 1.0], [7.0, 3.0]])
    noise = torch.randn(64, 2, 5, generator=torch.Generator().manual_seed(0))
    x0, c = torch.tensor(model.x0), model.constants(z)
    whole, d_whole = simulate_voltages(z, noise, x0, c, True)
    chunked, d_chunked = simulate_voltages(z, noise, x0, c, True, steps_per_call=7)
    torch.testing.assert_close(chunked, whole)
    torch.testing.assert_close(d_chunked, d_whole)


def test_changed_hyperparameters_take_effect():
    model = stg(num_steps=60)
    z = torch.tensor([[5.0, 1.0]])
    assert model.simulate(z).shape == (1, 61, 5)
    model.num_steps = 80
    assert model.simulate(z).shape == (1, 81, 5) and model.basis(z).shape == (81, 202)
