"""Identifiability: what the dynamics of the three teachers pin down, and what they leave free."""

import math
from dataclasses import replace

import pytest
import torch

from core.connectivity import field_mc, make_teacher
from core.connectivity.identifiability import fit_gaussian, gaussian_theta, identifiability_report


@pytest.mark.parametrize("name", ["bistable", "cycle", "ring"])
def test_teachers_pin_s_mm_and_s_nm_and_leave_s_nn_free(name):
    t = make_teacher(name)
    obs = t.observation()
    eye = torch.eye(t.rank, dtype=torch.float64)
    theta = gaussian_theta(eye, t.S, t.S @ t.S.T + 0.25 * eye)
    rep = identifiability_report(obs, theta)
    assert rep.unique
    assert all(n.startswith("S_nn") for n in rep.free) and len(rep.free) == t.rank * (t.rank + 1) // 2
    assert {n for n in rep.pinned if n.startswith("S_nm")} == {f"S_nm[{i}{j}]" for i in range(1, t.rank + 1)
                                                               for j in range(1, t.rank + 1)}
    assert "pinned by 4000 recorded units" in rep.text()


def test_fitted_gaussian_recovers_the_teacher_statistics():
    t = make_teacher("cycle")
    theta = fit_gaussian(t.observation())
    assert torch.allclose(theta[:3], torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64), atol=0.02)  # S_mm
    assert torch.allclose(theta[3:7], t.S.flatten(), atol=0.02)                                         # S_nm


def test_probes_only_on_the_ring_do_not_separate_gain_from_coupling():
    """At the ring's fixed points F(kappa) = kappa: only <phi'>(r^2) S_nm = I is seen, so S_mm and S_nm are
    not separately identified (needs probes off the attractor)."""
    t = make_teacher("ring")
    obs = t.observation()
    ang = torch.arange(12, dtype=torch.float64) * (2 * math.pi / 12)
    k = 0.948134 * torch.stack([ang.cos(), ang.sin()], 1)
    eye = torch.eye(2, dtype=torch.float64)
    rep = identifiability_report(replace(obs, kappa=k, F=t.field(k)), gaussian_theta(eye, t.S, t.S @ t.S.T + 0.25 * eye))
    assert not rep.unique
    assert "S_mm[11]" in rep.free and "S_nm[11]" in rep.free


def test_dynamics_see_only_w_equal_p_times_conditional_mean():
    """Nonparametric check (rank 1): p'(m) = N(0, 1.5^2) with E'[n | m] = S m p(m) / p'(m) has the same
    w(m) and so the same F as the teacher (within Monte Carlo error), though p(m) differs; the teacher
    with another noise sd has the same F too; a different S does not."""
    t = make_teacher("bistable")
    kappa = t.probes()
    F = t.field(kappa)
    g = torch.Generator().manual_seed(0)
    m = 1.5 * torch.randn(400_000, 1, generator=g, dtype=torch.float64)
    ratio = torch.exp(-0.5 * m**2) / (torch.exp(-0.5 * (m / 1.5) ** 2) / 1.5)
    n = 2.0 * m * ratio + 0.5 * torch.randn(m.shape, generator=g, dtype=torch.float64)
    F_alt = field_mc(kappa, torch.cat([m, n], 1), 1)
    assert (F_alt - F).abs().max() < 0.03
    t2 = replace(t, noise_sd=1.5)
    assert (t2.field(kappa) - F).abs().max() < 1e-12
    t3 = replace(t, S=torch.tensor([[2.3]], dtype=torch.float64))
    assert (t3.field(kappa) - F).abs().max() > 0.1
