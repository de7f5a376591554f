"""Max-ent inference: the exponential tilt's dual, the CNF trained by flow matching, heavy tails."""

import math

import pytest
import torch

from core.connectivity import constraint_error, make_teacher, solve_maxent, tail_index
from core.connectivity.flow_matching import CNF, FlowMatchingSettings, fit_maxent_flow, tilt_weights, train_cfm
from core.connectivity.inference import validate


@pytest.mark.parametrize("name", ["bistable", "ring"])
def test_dual_meets_constraints_and_entropy_at_least_the_teachers(name):
    t = make_teacher(name)
    free = solve_maxent(t.observation(pin_m=False), pool_size=15_000, max_iter=200)
    assert free.converged and free.constraint_error < 0.01
    assert free.dual >= t.entropy() - 0.01                       # max-ent over a set the teacher is in
    z = free.sample(40_000, seed=1)
    assert constraint_error(z, free.obs) < 0.03                  # exact samples (MC error ~1 %)
    assert torch.allclose((z[:, 1::2].T @ z[:, 1::2]) / len(z), free.obs.C_n, rtol=0.05, atol=0.05)
    pinned = solve_maxent(t.observation(pin_m=True), max_iter=200)
    assert pinned.converged
    teacher_cond = 0.5 * t.rank * math.log(2 * math.pi * math.e * t.noise_sd**2)
    assert pinned.entropy_given_m() >= teacher_cond - 0.02


def test_unreachable_observation_reports_not_converged():
    t = make_teacher("cycle")
    obs = t.observation(pin_m=False)
    obs.C_n = 0.05 * torch.eye(2, dtype=torch.float64)            # too little spread in n to reach F
    sol = solve_maxent(obs, pool_size=10_000, max_iter=100)
    assert not sol.converged and sol.constraint_error > 0.05


def test_flow_matching_fits_a_known_2d_distribution():
    """Two-component Gaussian mixture in 2-D: CNF samples' moments and log-densities match the truth."""
    torch.manual_seed(0)
    means = torch.tensor([[-1.5, 0.0], [1.5, 0.5]])
    comp = torch.distributions.MultivariateNormal(means, torch.stack([0.3 * torch.eye(2), 0.5 * torch.eye(2)]))
    mix = torch.distributions.MixtureSameFamily(torch.distributions.Categorical(torch.tensor([0.4, 0.6])), comp)
    cnf = CNF(2, hidden=64, layers=3, seed=0)
    cnf.standardize_to(mix.sample((20_000,)))
    train_cfm(cnf, lambda n: mix.sample((n,)), steps=1500, batch_size=256, lr=3e-3)
    z = cnf.sample(8000, seed=1)
    ref = mix.sample((8000,))
    assert torch.allclose(z.mean(0), ref.mean(0), atol=0.1)
    assert torch.allclose(torch.cov(z.T), torch.cov(ref.T), atol=0.15)
    assert float((z[:, 0] < 0).float().mean()) == pytest.approx(0.4, abs=0.04)  # mode weights
    zt = mix.sample((2000,))
    lp = cnf.log_prob(zt)
    true = mix.log_prob(zt)
    assert float((lp - true).abs().median()) < 0.15
    assert float(-lp.mean()) == pytest.approx(float(-true.mean()), abs=0.1)   # cross-entropy ~ entropy


def test_short_flow_matching_lowers_the_constraint_error_and_the_tilt_corrects_it():
    t = make_teacher("cycle")
    obs = t.observation()
    sol = solve_maxent(obs)
    cnf = CNF(4, seed=0)
    cnf.standardize_to(sol.sample(20_000, seed=2))
    before = constraint_error(cnf.sample(10_000, seed=3).double(), obs)
    train_cfm(cnf, lambda n: sol.sample(n, seed=int(torch.randint(10**9, ())).__int__()).float(), steps=400)
    pool = cnf.sample(10_000, seed=4).double()
    after = constraint_error(pool, obs)
    assert after < 0.5 * before and after < 0.1
    w, ess = tilt_weights(pool, obs)
    m, n = pool[:, 0::2], pool[:, 1::2]
    est = (torch.tanh(m @ obs.kappa.T) * w[:, None]).T @ n / w.sum()
    assert float((est - obs.F).norm() / obs.F.norm()) < 0.3 * after and ess > 0.3


def test_heavy_tails_come_back_where_demanded_and_not_elsewhere():
    """ring-heavy: p(m) is pinned (recorded units) -> inferred m heavy-tailed like the teacher's; the law
    of n given m is free -> Gaussian (tail index ~1), though the teacher's is heavy (~1.6)."""
    t = make_teacher("ring-heavy")
    res = fit_maxent_flow(t.observation(), FlowMatchingSettings(steps=800, correction_rounds=0, eval_samples=10_000,
                                                                entropy_samples=500))
    v = validate("ring", res["solution"].obs, None, res["samples"], teacher=None)
    zt = t.sample(20_000, seed=9)
    assert min(tail_index(zt[:, 0]), tail_index(zt[:, 2])) > 1.35           # the teacher is heavy
    assert min(v["tail_m"]) > 1.3                                              # demanded: back
    assert max(v["tail_n_given_m"]) < 1.15                                     # not demanded: Gaussian
    exact = res["solution"].sample(20_000, seed=3)
    assert tail_index(exact[:, 0]) > 1.35
