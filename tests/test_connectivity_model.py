"""lrRNN model and mean field: closed forms vs scipy quadrature, finite N vs mean field, the spec notes'
attractor numbers."""

import math

import numpy as np
import pytest
import torch
from scipy import integrate, optimize, special

from core.connectivity import (GaussianMixture, field_mc, gaussian_averages, integrate_latent, make_teacher,
                               network_dynamics, reference_dynamics, simulate_network)
from core.connectivity.network import ERF_SLOPE, join_loadings, loading_names, split_loadings
from core.errors import InputError


def _quad(fn, mu, delta):
    """E[fn(mu + sqrt(delta) x)], x ~ N(0, 1), by scipy adaptive quadrature."""
    val, _ = integrate.quad(lambda x: fn(mu + math.sqrt(delta) * x) * math.exp(-x * x / 2) / math.sqrt(2 * math.pi),
                            -12, 12, limit=200)
    return val


@pytest.mark.parametrize("phi", ["tanh", "erf"])
def test_gaussian_averages_match_scipy_quadrature(phi):
    f = np.tanh if phi == "tanh" else (lambda x: special.erf(ERF_SLOPE * x))
    df = (lambda x: 1 - np.tanh(x) ** 2) if phi == "tanh" else (
        lambda x: 2 * ERF_SLOPE / math.sqrt(math.pi) * math.exp(-(ERF_SLOPE * x) ** 2))
    mu = torch.tensor([0.0, 0.3, -1.2, 2.0], dtype=torch.float64)
    delta = torch.tensor([0.5, 1.7, 0.1, 4.0], dtype=torch.float64)
    avg, avg_d = gaussian_averages(mu, delta, phi)
    for i in range(4):
        assert avg[i].item() == pytest.approx(_quad(f, mu[i].item(), delta[i].item()), abs=1e-7)
        assert avg_d[i].item() == pytest.approx(_quad(df, mu[i].item(), delta[i].item()), abs=1e-7)


def test_mixture_closed_form_matches_monte_carlo():
    """Two populations with non-zero means: Stein's-lemma F vs the mean over 400k samples (MC sd ~0.002)."""
    g = torch.Generator().manual_seed(0)
    d = 4
    A = torch.randn(2, d, d, generator=g, dtype=torch.float64) * 0.5
    covs = A @ A.transpose(1, 2) + 0.3 * torch.eye(d, dtype=torch.float64)
    mix = GaussianMixture(torch.tensor([0.3, 0.7], dtype=torch.float64),
                          torch.randn(2, d, generator=g, dtype=torch.float64) * 0.5, covs, rank=2)
    kappa = torch.randn(6, 2, generator=g, dtype=torch.float64)
    z = mix.sample(400_000, generator=g)
    for phi in ("tanh", "erf"):
        assert torch.allclose(mix.field(kappa, phi=phi), field_mc(kappa, z, 2, phi), atol=0.01)


def test_loading_layout_round_trips():
    assert loading_names(2, 1) == ["m1", "n1", "m2", "n2", "I"]
    z = torch.arange(10.0).reshape(2, 5)
    m, n, I = split_loadings(z, 2, 1)
    assert torch.equal(join_loadings(m, n, I), z)
    with pytest.raises(InputError) as e:
        split_loadings(z, 3, 0)
    assert e.value.field == "loadings"


def test_activity_stays_in_span_of_m_and_matches_latent_dynamics():
    """x(0) = M kappa0 and no input: x(t) = M kappa(t) exactly, so the network's latents follow the
    empirical mean field (1/N) sum n_i phi(m_i kappa) at any N."""
    t = make_teacher("cycle")
    z = t.sample(300, seed=1)[None]
    k0 = torch.tensor([[0.7, -0.2]], dtype=torch.float64)
    out = simulate_network(z, 2, k0, 5.0, 0.01, return_activity=True)
    m = z[0, :, 0::2]
    assert torch.allclose(out["x"][0], out["kappa"][0] @ m.T, atol=1e-10)
    # the same Euler scheme on the latent ODE
    k, ref = k0, [k0]
    for _ in range(500):
        k = k + 0.01 * (field_mc(k, z[0], 2) - k)
        ref.append(k)
    assert torch.allclose(out["kappa"][0], torch.cat(ref), atol=1e-9)


def test_spec_notes_attractor_numbers():
    """Notes section 3: sigma_mn = 1.2 -> kappa* = 0.486; cycle radius 0.948, omega 0.5 (period 4 pi);
    ring radius 0.948 (all from the closed form, tanh)."""
    root = optimize.brentq(lambda k: 1.2 * gaussian_averages(torch.zeros(1, dtype=torch.float64),
                                                             torch.tensor([k * k], dtype=torch.float64))[1].item() - 1,
                           0.05, 3.0)
    assert root == pytest.approx(0.486, abs=0.002)
    cyc = reference_dynamics("cycle", make_teacher("cycle").field)
    assert cyc["amplitude"] == pytest.approx(0.948, abs=0.003)
    assert cyc["period"] == pytest.approx(4 * math.pi, rel=0.01)
    ring = reference_dynamics("ring", make_teacher("ring").field)
    assert ring["radius"] == pytest.approx(0.948, abs=0.003)


def test_finite_n_networks_agree_with_mean_field_on_the_cycle():
    """Two N = 4000 networks sampled from the cycle teacher: amplitude and period within 5 % of the mean
    field (notes: N = 20000 gave 0.954 +- 0.009 vs 0.948)."""
    t = make_teacher("cycle")
    ref = reference_dynamics("cycle", t.field)
    got = network_dynamics("cycle", t.sample, N=4000, networks=2, seed=3)
    assert got["amplitude"] == pytest.approx(ref["amplitude"], rel=0.05)
    assert got["period"] == pytest.approx(ref["period"], rel=0.05)


def test_integrate_latent_converges_to_bistable_fixed_points():
    t = make_teacher("bistable")
    traj = integrate_latent(t.field, torch.tensor([[0.1], [-0.1]], dtype=torch.float64), 30.0, 0.05)
    final = traj[:, -1, 0]
    assert final[0] > 1.0 and final[1] < -1.0
    assert (t.field(final[:, None])[:, 0] - final).abs().max() < 1e-6
