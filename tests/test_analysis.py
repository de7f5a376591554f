"""EPIDistribution: log q, gradients and Hessians (torch.func), modes, directions."""

import math
import warnings

import pytest
import torch

from core import EmergentProperty, EPITrainer, FreeParameter, InputError, Model, Statistic, load_model, settings_for
from core.analysis import EPIDistribution


@pytest.fixture(scope="module")
def dist():
    model = load_model("lds")
    flow, opt = settings_for(model, init_iters=50, seed=2)
    tr = EPITrainer(model, None, flow, opt)
    tr.initialize()
    with torch.no_grad():  # a generic, non-Gaussian q
        g = torch.Generator().manual_seed(0)
        for p in tr.flow.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    return tr.distribution


def test_grad_and_hessian_match_finite_differences(dist):
    with torch.random.fork_rng():
        torch.manual_seed(0)
        z = dist.sample(3).double()
    flow = dist.flow.double()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)  # e.g. a deprecated resize in a double backward
            G = dist.grad_log_prob(z.float()).double()
            H = dist.hessian(z)
        # log q is piecewise smooth (ReLU coupling nets): its gradient jumps where a pre-activation
        # crosses 0. A +-1e-4 stencil met such a kink in ~1 of 300 random draws; +-1e-6 (float64) ~100x rarer
        eps = 1e-6
        for i in range(4):
            e = torch.zeros(4, dtype=torch.float64)
            e[i] = eps
            fd = (flow.log_prob(z + e) - flow.log_prob(z - e)) / (2 * eps)
            assert torch.allclose(G[:, i], fd, rtol=1e-3, atol=1e-3)
            fd_grad = (torch.func.vmap(torch.func.grad(lambda x: flow.log_prob(x[None])[0]))(z + e)
                       - torch.func.vmap(torch.func.grad(lambda x: flow.log_prob(x[None])[0]))(z - e)) / (2 * eps)
            assert torch.allclose(H[:, :, i], fd_grad, rtol=1e-4, atol=1e-5)
        assert torch.allclose(H, H.transpose(1, 2), atol=1e-8)
    finally:
        flow.float()


def test_mode_is_a_local_maximum(dist):
    mode = dist.find_mode(num_starts=5)
    g = dist.grad_log_prob(mode[None])[0]
    assert g.norm() < 1e-2 * (1 + dist.log_prob(mode).abs().item())
    directions = dist.hessian_directions(mode)
    vals = directions.eigenvalues
    assert torch.all(vals[:-1] <= vals[1:])  # sorted, most negative first
    assert vals.max() < 0  # a maximum
    assert directions.kinds[0] == "sensitive"
    V = directions.eigenvectors
    assert torch.allclose(V.T @ V, torch.eye(4), atol=1e-5)
    assert dist.log_prob(mode).item() >= dist.log_prob(dist.sample(500)).max().item() - 1e-3


def test_conditional_mode_holds_coordinates_fixed(dist):
    mode = dist.find_mode(num_starts=3, fixed={"a2": -3.0, 3: 1.5})
    assert mode[1].item() == pytest.approx(-3.0, abs=1e-5)
    assert mode[3].item() == pytest.approx(1.5, abs=1e-5)
    with pytest.raises(InputError) as err:
        dist.find_mode(fixed={"a1": 20.0})
    assert err.value.field == "fixed[a1]"


def test_mode_in_a_region_stays_there(dist):
    """Signed modes (paper eqs 89-90): the ascent cannot leave the requested half of the box."""
    for low, high in ((0.0, 10.0), (-10.0, 0.0)):
        mode = dist.find_mode(num_starts=3, fixed={"a4": 0.5}, region={"a1": (low, high)})
        assert low < mode[0].item() < high and mode[3].item() == pytest.approx(0.5, abs=1e-5)
    with pytest.raises(InputError) as err:
        dist.find_mode(region={"a1": (11.0, 12.0)})
    assert err.value.field == "region[a1]"


def test_predictive_and_trajectories(dist):
    f = dist.predictive(100)
    assert f.shape == (100, 2) and torch.isfinite(f).all()
    traj = dist.trajectories(dist.sample(3))
    assert traj.x.shape == (3, 150, 2) and traj.t.shape == (150,) and traj.names == ["x1", "x2"]
    assert abs(traj.x[:, 0, 0] - 2**-0.5).max() < 1e-5  # starts at x0


def test_near_faces_names_the_coordinates_at_the_box_faces(dist):
    lower, upper = dist.lower, dist.upper
    centre = (lower + upper) / 2
    assert dist.near_faces(centre) == []
    z = centre.clone()
    z[1] = lower[1] + 0.01 * (upper[1] - lower[1])  # find_mode's 1 % margin
    z[3] = upper[3] - 0.001 * (upper[3] - lower[3])
    assert dist.near_faces(z) == ["a2", "a4"]
    z[1] = lower[1] + 0.05 * (upper[1] - lower[1])
    assert dist.near_faces(z) == ["a4"] and dist.near_faces(z, tol=0.06) == ["a2", "a4"]


class _Box(Model):
    parameters = (FreeParameter("a", 0.0, 1.0), FreeParameter("b", 0.0, 1.0))
    statistics = (Statistic("a", 0.5, 0.1),)

    def simulate(self, z):
        return z

    def measure(self, x, z):
        return z[:, :1]


class _AnalyticDensity(torch.nn.Module):
    """A known q on the unit square for find_mode: a Gaussian bulk (weight 1 - w, sd 0.15, peak at the
    centre) plus a thin spike of weight w at the corner (0, 0), just inside find_mode's 1 % margin, tall
    enough that log q at the margin beats the bulk's peak (as a flow's tail that reaches a face);
    ``tilt`` > 0 drops the bulk for a density rising monotonically towards that corner."""

    def __init__(self, w: float = 0.02, tilt: float = 0.0):
        super().__init__()
        self.dim, self.w, self.tilt = 2, w, tilt
        self.box = torch.nn.Module()
        self.box.register_buffer("lower", torch.zeros(2))
        self.components = ((0.5, 0.15, 1 - w), (0.004, 0.004, w))

    def log_prob(self, z):
        if self.tilt:
            return -self.tilt * z.sum(-1)
        terms = [math.log(weight) - ((z - m) ** 2).sum(-1) / (2 * s**2) - math.log(2 * math.pi * s**2)
                 for m, s, weight in self.components]
        return torch.logsumexp(torch.stack(terms), 0)

    def rsample_and_log_prob(self, n, generator=None):
        g = torch.Generator().manual_seed(0)
        spike = torch.rand(n, 1, generator=g) < self.w
        z = torch.where(spike, 0.004 + 0.004 * torch.randn(n, 2, generator=g).abs(),
                        (0.5 + 0.15 * torch.randn(n, 2, generator=g)).clamp(0.01, 0.99))
        return z, self.log_prob(z)


def test_mode_is_the_interior_peak_not_a_spike_at_a_face():
    """A converged STG run had log q +28 in a 1 % tail at a corner against +0.95 at its bulk's peak: the
    mode (and its Hessian) must be the bulk's; a q that only rises towards a face gives that face."""
    model = _Box()
    prop = EmergentProperty.default_for(model)
    spiky = EPIDistribution(_AnalyticDensity(w=0.02), model, prop)
    margin_point = torch.tensor([0.01, 0.01])
    assert spiky.log_prob(margin_point).item() > spiky.log_prob(torch.tensor([0.5, 0.5])).item() + 1
    mode = spiky.find_mode(num_starts=5)
    assert mode.tolist() == pytest.approx([0.5, 0.5], abs=1e-3) and spiky.near_faces(mode) == []
    assert spiky.hessian_directions(mode).eigenvalues.max() < 0
    tilted = EPIDistribution(_AnalyticDensity(tilt=5.0), model, prop)
    mode = tilted.find_mode(num_starts=5)
    assert mode.tolist() == pytest.approx([0.01, 0.01], abs=1e-3) and tilted.near_faces(mode) == ["a", "b"]


def test_mode_in_a_region_without_mass_is_an_error_naming_the_region():
    """SC runs whose q holds one regime (sW < 0) have no sample with sW > 0: the signed mode is reported
    as absent, with the count of samples looked at, instead of an ascent into an empty tail."""
    q = EPIDistribution(_AnalyticDensity(w=1e-9), _Box(), EmergentProperty.default_for(_Box()))
    assert q.find_mode(num_starts=3, region={"a": (0.6, 1.0)})[0].item() > 0.6  # the bulk's tail is there
    with pytest.raises(InputError) as err:
        q.find_mode(num_samples=500, region={"a": (0.995, 1.0)})  # the samples stop at 0.99
    assert err.value.field == "region" and "0 of 500" in str(err.value)


def test_hessians_from_several_threads_at_once(dist):
    """torch.func's forward-mode levels are process-wide: without a lock, concurrent Hessians (a
    dashboard's epoch and final analyses, two users' runs) failed with "no level exists"."""
    import threading

    z = dist.sample(8)
    expected = dist.hessian(z)
    results, errors = [], []

    def work():
        try:
            for _ in range(10):
                results.append(dist.hessian(z))
        except Exception as exc:  # noqa: BLE001 - the assertion below reports it
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors[0]
    assert len(results) == 40 and all(torch.allclose(H, expected) for H in results)
