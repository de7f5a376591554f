"""Real NVP flow: bijectivity, exact log-density, support, Gaussian initialization."""

import pytest
import torch
from torch.func import jacrev

from core import InputError, RealNVP


def make_flow(dim=3, **kw):
    lower = torch.linspace(-2.0, -1.0, dim)
    upper = torch.linspace(1.0, 5.0, dim)
    flow = RealNVP(lower, upper, num_units=16, seed=3, **kw)
    # move away from the identity initialization so the test exercises nonlinear couplings
    with torch.no_grad():
        g = torch.Generator().manual_seed(0)
        for p in flow.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    return flow.eval()


@pytest.mark.parametrize("kw", [{}, {"mixing": "permutation"}, {"post_affine": False}, {"batch_norm": True}])
def test_inverse_round_trip(kw):
    flow = make_flow(**kw)
    eps = torch.randn(256, 3, generator=torch.Generator().manual_seed(1))
    z, log_q = flow(eps)
    eps_back, _ = flow.inverse(z)
    assert torch.allclose(eps_back, eps, atol=1e-3)
    assert torch.allclose(flow.log_prob(z), log_q, atol=1e-3)


@pytest.mark.parametrize("dim", [2, 3, 5])
def test_log_density_matches_autograd_jacobian(dim):
    flow = make_flow(dim).double()
    eps = torch.randn(8, dim, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    z, log_q = flow(eps)
    for i in range(len(eps)):
        J = jacrev(lambda e: flow(e[None])[0][0])(eps[i])
        base = torch.distributions.Normal(0.0, 1.0).log_prob(eps[i]).sum()
        expected = base - torch.linalg.slogdet(J).logabsdet
        assert torch.allclose(log_q[i], expected, atol=1e-8), (log_q[i], expected)


def test_samples_inside_bounds_even_when_saturated():
    flow = make_flow()
    with torch.no_grad():
        flow.box.scale.fill_(50.0)  # push mass against the walls
    z, log_q = flow.rsample_and_log_prob(5000, torch.Generator().manual_seed(0))
    lower, upper = flow.box.lower, flow.box.lower + flow.box.width
    assert ((z >= lower) & (z <= upper)).all()
    assert torch.isfinite(log_q).all()


def test_gaussian_approximation_closed_form():
    """At construction every layer is a rotation/identity, so q is the logit-normal that
    matches N(mean, sd^2) to first order: its mean and sd are within 20 % of the target."""
    lower, upper = torch.tensor([-10.0, 0.0, 2.0]), torch.tensor([10.0, 4.0, 3.0])
    flow = RealNVP(lower, upper, seed=0)
    mean = torch.tensor([1.0, 1.0, 2.5])
    sd = torch.tensor([1.0, 0.5, 0.05])
    flow.set_gaussian_approximation(mean, sd)
    z, _ = flow.rsample_and_log_prob(20000, torch.Generator().manual_seed(0))
    assert torch.allclose(z.mean(0), mean, atol=0.05 * 2)
    assert torch.allclose(z.std(0), sd, rtol=0.2)


def test_bad_bounds_name_the_field():
    with pytest.raises(InputError) as err:
        RealNVP(torch.tensor([0.0, 1.0]), torch.tensor([1.0, 1.0]))
    assert err.value.field == "bounds[1]"
    with pytest.raises(InputError):
        RealNVP(torch.tensor([0.0]), torch.tensor([1.0]))
