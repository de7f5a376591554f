"""Rank-2 RNN (Methods 5.2.5): O(N) eigenvalue statistics against numpy's full N x N eig/eigvalsh."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from core.errors import InputError
from core.model import load_model
from core.models.rnn import (
    most_amplified_direction,
    rank2_lambda1_real,
    symmetric_part_top_eigenvalue,
)


def random_factors(N: int, batch: int, seed: int, dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    model = load_model("rnn", N=N)
    model.set_generator(torch.Generator().manual_seed(seed))
    z = torch.rand(batch, 4 * N, generator=torch.Generator().manual_seed(seed), dtype=dtype) * 2 - 1
    return model.factors(z)


def numpy_statistics(U: torch.Tensor, V: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """From the full N x N W: (the two nonzero eigenvalues' top real part, real(lambda_1) of W, lambda^s)."""
    W = (U @ V.transpose(-1, -2)).double().numpy()
    eig = np.linalg.eigvals(W)
    nonzero_pair = np.take_along_axis(eig, np.argsort(-np.abs(eig), axis=1)[:, :2], axis=1)
    lam_s = np.linalg.eigvalsh(0.5 * (W + W.transpose(0, 2, 1)))[:, -1]
    return nonzero_pair.real.max(1), eig.real.max(1), lam_s


def test_declarations_follow_N():
    model = load_model("rnn", N=3)
    assert model.dim == 12
    assert model.parameter_names[:4] == ["u1_1", "u1_2", "u1_3", "u2_1"]
    assert model.parameter_names[-1] == "v2_3"
    lower, upper = model.bounds()
    assert torch.all(lower == -1) and torch.all(upper == 1)
    assert load_model("rnn", N=250).dim == 1000
    assert model.statistic_names == ["real_lambda1", "lambda_s"]
    assert model.epi_defaults["batch_size"] == 200 and model.epi_defaults["num_units"] == 100


def test_z_blocks_are_contiguous():
    model = load_model("rnn", N=3, g=0.0)
    z = torch.arange(12.0)[None]
    U, V = model.factors(z)
    assert U[0].T.tolist() == [[0, 1, 2], [3, 4, 5]] and V[0].T.tolist() == [[6, 7, 8], [9, 10, 11]]
    with pytest.raises(InputError) as err:
        model.factors(torch.zeros(2, 10))
    assert err.value.field == "z"


@pytest.mark.parametrize("N", [2, 3, 4, 5, 10, 37])
def test_statistics_match_full_eigendecomposition(N):
    U, V = random_factors(N, batch=64, seed=N)
    pair_real, full_real, lam_s = numpy_statistics(U, V)
    np.testing.assert_allclose(rank2_lambda1_real(U, V).numpy(), pair_real, rtol=1e-7, atol=1e-7)
    np.testing.assert_allclose(symmetric_part_top_eigenvalue(U, V).numpy(), lam_s, rtol=1e-7, atol=1e-7)
    # for N > 2 W also has N - 2 zero eigenvalues: the statistic is real(lambda_1) whenever that is >= 0
    floor = 0.0 if N > 2 else -np.inf
    np.testing.assert_allclose(np.maximum(pair_real, floor), full_real, rtol=1e-7, atol=1e-7)
    # the model's measure shares one Gram matrix between both statistics (N > 4)
    f = load_model("rnn", N=N).measure(torch.cat([U, V], -1).transpose(-1, -2), None).numpy()
    np.testing.assert_allclose(f, np.stack([pair_real, lam_s], -1), rtol=1e-7, atol=1e-7)


def test_float32_statistics_at_large_N():
    U, V = random_factors(100, batch=8, seed=1, dtype=torch.float32)
    pair_real, _, lam_s = numpy_statistics(U, V)
    f = torch.stack([rank2_lambda1_real(U, V), symmetric_part_top_eigenvalue(U, V)], -1).numpy()
    scale = np.abs(np.stack([pair_real, lam_s], -1)).max()
    np.testing.assert_allclose(f, np.stack([pair_real, lam_s], -1), atol=1e-5 * scale)


def test_noise_is_on_the_factors_with_sd_g():
    model = load_model("rnn", N=50, g=0.01)
    model.set_generator(torch.Generator().manual_seed(0))
    z = torch.zeros(400, 200)
    U, V = model.factors(z)
    assert abs(float(U.std()) - 0.01) < 0.001 and abs(float(V.std()) - 0.01) < 0.001
    U0, _ = model.factors(z, noisy=False)
    assert torch.all(U0 == 0)


def test_gradients_match_finite_differences():
    U, V = random_factors(6, batch=3, seed=2)
    U, V = U.clone().requires_grad_(), V.clone().requires_grad_()
    for fn in (rank2_lambda1_real, symmetric_part_top_eigenvalue):
        assert torch.autograd.gradcheck(lambda u, v: fn(u, v), (U, V))


def test_gradients_finite_at_degenerate_points():
    # V^T U = I: a double eigenvalue of W^r (discriminant 0) and a 4-fold degenerate symmetric part
    N = 8
    Q = torch.linalg.qr(torch.randn(N, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))[0]
    for U0, V0 in ((Q, Q), (Q, -Q), (torch.zeros(N, 2, dtype=torch.float64), Q)):
        U, V = U0[None].clone().requires_grad_(), V0[None].clone().requires_grad_()
        (rank2_lambda1_real(U, V) + symmetric_part_top_eigenvalue(U, V)).sum().backward()
        assert torch.isfinite(U.grad).all() and torch.isfinite(V.grad).all()


def test_model_statistics_gradients_through_noise():
    model = load_model("rnn", N=25)
    model.set_generator(torch.Generator().manual_seed(3))
    z = (torch.rand(16, 100) * 2 - 1).requires_grad_()
    f = model.checked_statistics(z)
    assert f.shape == (16, 2)
    f.sum().backward()
    assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0


def test_most_amplified_direction_attains_lambda_s():
    for N in (3, 30):
        U, V = random_factors(N, batch=10, seed=4)
        d = most_amplified_direction(U, V)
        W = U @ V.transpose(-1, -2)
        rayleigh = torch.einsum("bi,bij,bj->b", d, W, d)  # x^T W x = x^T W^s x
        torch.testing.assert_close(d.norm(dim=-1), torch.ones(10, dtype=d.dtype))
        torch.testing.assert_close(rayleigh, symmetric_part_top_eigenvalue(U, V).clamp(min=0))


def test_response_matches_matrix_exponential():
    model = load_model("rnn", N=6, tau=0.1)
    U, V = random_factors(6, batch=2, seed=5)
    x0 = torch.randn(2, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    t = torch.linspace(0, 1, 7, dtype=torch.float64)
    x = model.response(U, V, x0, t).numpy()
    W = (U @ V.transpose(-1, -2)).numpy()
    ref = np.stack([[scipy.linalg.expm((W[b] - np.eye(6)) * ti / 0.1) @ x0[b].numpy() for ti in t.numpy()]
                    for b in range(2)])
    np.testing.assert_allclose(x, ref, rtol=1e-8, atol=1e-8)


def test_classification_and_trajectories():
    model = load_model("rnn", N=5)
    f = torch.tensor([[0.5, 1.5], [0.5, 0.8], [1.2, 2.0], [-0.2, 1.1]])
    assert model.classify_dynamics(f).tolist() == ["stable amplified", "decaying", "unstable", "stable amplified"]
    assert model.dynamics_fractions(f) == {"stable amplified": 0.5, "decaying": 0.25, "unstable": 0.25}
    model.set_generator(torch.Generator().manual_seed(0))
    traj = model.trajectories(torch.rand(3, 20) * 2 - 1)
    assert traj.x.shape == (3, 101, 5) and traj.names == ["|x|", "x_1", "x_2", "x_3", "x_4"]
    assert len(traj.extra["class"]) == 3
    # the norm starts at 1 (a unit input); a stable amplified network grows it, a decaying one does not
    np.testing.assert_allclose(traj.x[:, 0, 0], 1.0, rtol=1e-5)
    for label, norms in zip(traj.extra["class"], traj.x[..., 0]):
        if label == "decaying":
            assert norms.max() <= 1 + 1e-4
        else:
            assert norms[1] > norms[0]


@pytest.mark.parametrize("N", [2, 25])
def test_a_few_epi_iterations(N, train_a_few_iterations):
    model = load_model("rnn", N=N)
    result, records = train_a_few_iterations(model, iterations=4, batch_size=32, num_units=16, seed=1)
    assert all(np.isfinite(r.entropy) and np.all(np.isfinite(r.R)) for r in records)
    assert result.distribution.sample(3).shape == (3, 4 * N)


@pytest.mark.parametrize("N", [3, 6])
def test_non_finite_z_gives_nan_statistics_not_an_exception(N):
    model = load_model("rnn", N=N)
    z = torch.rand(3, 4 * N) * 2 - 1
    z[1, 0] = float("nan")
    f = model.emergent_statistics(z)
    assert torch.isnan(f[1]).all() and torch.isfinite(f[[0, 2]]).all()
