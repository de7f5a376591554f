"""Superior colliculus model (Methods 5.2.4): shapes, hand-checked accuracies, inactivation, gradients."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from core.errors import InputError
from core.model import load_model
from core.models.sc import sc_connectivity

#: a hand-picked connectivity that does both tasks well: strong same-side Pro/Anti competition (vW)
#: and cross inhibition (dW, hW) let the rule input set up the task and the light pick the side
GOOD_Z = [-1.0, -4.0, -3.0, -2.0]


def seeded(model, seed: int = 0):
    model.set_generator(torch.Generator().manual_seed(seed))
    return model


def binomial_sd(p: float, n: int) -> float:
    return math.sqrt(p * (1 - p) / n)


def test_declarations():
    model = load_model("sc")
    assert model.parameter_names == ["sW", "vW", "dW", "hW"]
    assert model.statistic_names == ["p_P", "p_A"]
    lower, upper = model.bounds()
    assert torch.equal(lower, torch.full((4,), -5.0)) and torch.equal(upper, torch.full((4,), 5.0))
    assert model.num_steps == 75 and model.time_grid()[-1] == pytest.approx(1.8)
    assert model.epi_defaults["batch_size"] == 100 and model.epi_defaults["c0"] == 1e2


def test_connectivity_is_eq_76():
    W = sc_connectivity(torch.tensor([[1.0, 2.0, 3.0, 4.0]]))[0]  # sW, vW, dW, hW
    expected = torch.tensor([[1.0, 2, 4, 3], [2, 1, 3, 4], [4, 3, 1, 2], [3, 4, 2, 1]])
    assert torch.equal(W, expected)


def test_connectivity_eigenvalues_match_eigvalsh():
    model = load_model("sc")
    z = torch.rand(20, 4, dtype=torch.float64) * 10 - 5
    ours = model.connectivity_eigenvalues(z).sort(-1).values
    reference = torch.linalg.eigvalsh(sc_connectivity(z))
    torch.testing.assert_close(ours, reference)


def test_shapes_and_ranges():
    model = seeded(load_model("sc", num_trials=7))
    z = torch.rand(3, 4) * 10 - 5
    x = model.simulate(z)
    assert x.shape == (3, 2, 7, 76, 4)
    assert ((x >= 0) & (x <= 1)).all()  # phi saturates to 1.0 in float32
    f = model.measure(x, z)
    assert f.shape == (3, 2) and ((f >= 0) & (f <= 1)).all()
    assert model.checked_statistics(z).shape == (3, 2)
    traj = model.trajectories(z[:2])
    assert traj.x.shape == (2, 76, 8) and traj.extra["std"].shape == (2, 76, 8)
    assert traj.names[0] == "Pro LP" and traj.names[-1] == "Anti RA" and len(traj.t) == 76


def test_bad_z_names_the_field():
    with pytest.raises(InputError) as err:
        load_model("sc").emergent_statistics(torch.zeros(3, 5))
    assert err.value.field == "z"


def test_accuracies_from_hand_made_final_states():
    model = load_model("sc")
    x = torch.zeros(1, 2, 4, 4)
    x[0, :, :, 0] = torch.tensor([0.9, 0.9, 0.1, 0.5])  # LP
    x[0, :, :, 2] = torch.tensor([0.1, 0.2, 0.9, 0.5])  # RP
    # Pro correct when LP > RP: 2 of 4 clearly, 1 tie (sigmoid(0) = 0.5); Anti is the mirror image
    p_pro, p_anti = model.accuracies(x)[0].tolist()
    assert p_pro == pytest.approx((1 + 1 + 0 + 0.5) / 4, abs=1e-3)
    assert p_anti == pytest.approx((0 + 0 + 1 + 0.5) / 4, abs=1e-3)


def test_no_connectivity_and_no_side_bias_gives_chance():
    """W = 0 and no input that differs between left and right (I_light = 0; the Pro bias feeds LP and RP
    alike) makes left and right exchangeable: both accuracies are 50 % in expectation."""
    n = 4000
    model = seeded(load_model("sc", I_light=0.0, num_trials=n))
    p = model.emergent_statistics(torch.zeros(1, 4))[0]
    tol = 4 * binomial_sd(0.5, n)  # sigmoid outcomes in [0, 1]: sd <= the Bernoulli sd
    assert torch.all((p - 0.5).abs() < tol), p


def test_no_connectivity_with_stimulus_is_near_chance():
    """With W = 0 the light's effect decays for 0.3 s (3.3 tau) before the read-out: near 50 %."""
    model = seeded(load_model("sc", num_trials=4000), seed=1)
    p = model.emergent_statistics(torch.zeros(1, 4))[0]
    assert torch.all((p - 0.5).abs() < 0.05), p


def test_good_connectivity_does_both_tasks():
    model = seeded(load_model("sc"), seed=2)
    p_pro, p_anti = model.emergent_statistics(torch.tensor([GOOD_Z]))[0].tolist()
    assert p_pro > 0.95 and p_anti > 0.7, (p_pro, p_anti)


def test_inactivation_windows_and_validation():
    model = load_model("sc")
    like = torch.zeros(())
    assert int((model.activity_gain(0.5, "delay", like) < 1).sum()) == 16  # t = 0.816 ... 1.176 s
    assert int((model.activity_gain(0.5, "choice", like) < 1).sum()) == 25  # t = 1.224 ... 1.8 s
    assert torch.all(model.activity_gain(0.5, "total", like) == 0.5)
    with pytest.raises(InputError) as err:
        model.activity_gain(0.5, "cue", like)
    assert err.value.field == "inactivation_period"
    with pytest.raises(InputError):
        model.activity_gain(1.5, "delay", like)


def test_inactivation_with_zero_strength_is_control_and_full_strength_is_chance():
    z = torch.tensor([GOOD_Z])
    control = seeded(load_model("sc"), 3).emergent_statistics(z)
    same = seeded(load_model("sc"), 3).accuracy_under_inactivation(z, gamma=0.0, period="delay")
    torch.testing.assert_close(control, same)
    # silencing the choice period entirely leaves x_LP = x_RP = 0 at the read-out: exactly 50 %
    silenced = seeded(load_model("sc"), 3).accuracy_under_inactivation(z, gamma=1.0, period="choice")
    torch.testing.assert_close(silenced, torch.full_like(silenced, 0.5))


def test_gradients_are_finite_and_informative():
    model = seeded(load_model("sc", num_trials=50))
    z = (torch.rand(8, 4, generator=torch.Generator().manual_seed(0)) * 6 - 3).requires_grad_()
    model.emergent_statistics(z).sum().backward()
    assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0


def test_seeded_noise_is_reproducible_and_chunking_is_consistent():
    z = torch.rand(6, 4, generator=torch.Generator().manual_seed(1)) * 10 - 5
    a = seeded(load_model("sc", num_trials=30), 5).emergent_statistics(z)
    b = seeded(load_model("sc", num_trials=30), 5).emergent_statistics(z)
    torch.testing.assert_close(a, b)
    # chunked (no-grad) and whole-batch simulation agree in distribution: same mean within noise
    n = 400
    zz = torch.tensor([GOOD_Z]).repeat(20, 1)
    with torch.no_grad():
        chunked = seeded(load_model("sc", num_trials=n, chunk_size=3), 6).emergent_statistics(zz)
    whole = seeded(load_model("sc", num_trials=n), 7).emergent_statistics(zz.requires_grad_())
    assert np.allclose(chunked.mean(0).numpy(), whole.detach().mean(0).numpy(), atol=0.03)


def test_a_few_epi_iterations(train_a_few_iterations):
    model = load_model("sc", num_trials=20)
    result, records = train_a_few_iterations(model)
    assert all(np.isfinite(r.entropy) and all(0 <= m <= 1 for m in r.f_mean) for r in records)
    z = result.distribution.sample(5)
    assert z.shape == (5, 4) and bool(((z > -5) & (z < 5)).all())
