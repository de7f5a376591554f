"""The batched torch AdEx network on tiny networks, and its agreement with brian2."""

import numpy as np
import pytest
import torch

from core.amortized.features import compute_features, feature_names
from core.amortized.network import build_connectivity, early_stop_flags, simulate
from core.amortized.prior import INDEX, PARAMETERS, NetworkConfig, default_theta, sample_prior
from core.errors import InputError

TINY = NetworkConfig(n_neurons=60, duration=0.6, reference_n=300, t_early_stop=0.3)


def e_rate(spikes, b, t_start=0.1):
    m = (spikes.batch == b) & (spikes.unit < spikes.n_exc[b]) & (spikes.time >= t_start)
    return m.sum() / spikes.n_exc[b] / (spikes.duration - t_start)


def test_prior_has_the_references_28_parameters_in_order():
    assert len(PARAMETERS) == 28
    assert PARAMETERS[0].name == "net.exc_prop" and PARAMETERS[8].name == "net.n_clusters"
    assert PARAMETERS[18].name == "Epop.tau_w" and PARAMETERS[18].unit == "ms"
    assert PARAMETERS[27].name == "Ipop.poisson_rate"
    th = sample_prior(500, seed=0)
    lo = torch.tensor([p.lower for p in PARAMETERS])
    hi = torch.tensor([p.upper for p in PARAMETERS])
    assert ((th >= lo) & (th <= hi)).all()


def test_shapes_silence_without_drive_and_firing_with_drive():
    th = default_theta().repeat(3, 1)
    s = simulate(th, TINY, seed=0, drive=False)
    assert s.size == 3 and len(s.time) == 0 and not s.flagged.any() or s.flagged.all()
    s = simulate(th, TINY, seed=0)
    assert s.size == 3 and s.n_units.tolist() == [60] * 3
    assert s.batch.shape == s.unit.shape == s.time.shape
    assert (s.time > 0).all() and (s.time <= TINY.duration + 1e-9).all()
    for b in range(3):
        assert 1.0 < e_rate(s, b) < 200.0, e_rate(s, b)  # default (Zerlaut) parameters: a few to tens of Hz
    x = compute_features(s)
    assert x.shape == (3, len(feature_names())) and np.isfinite(x).all()


def test_more_drive_more_spikes():
    th = default_theta().repeat(2, 1)
    th[1, INDEX["Epop.poisson_rate"]] = 4.0
    s = simulate(th, TINY, seed=1)
    assert e_rate(s, 1) > 1.5 * e_rate(s, 0)


def test_batch_entries_are_independent():
    th = sample_prior(3, seed=5)
    th[0] = default_theta()
    other = th.clone()
    other[1:] = sample_prior(2, seed=6)
    a, b = simulate(th, TINY, seed=2), simulate(other, TINY, seed=2)
    ma, mb = a.batch == 0, b.batch == 0
    assert ma.sum() > 0
    np.testing.assert_array_equal(a.unit[ma], b.unit[mb])
    np.testing.assert_allclose(a.time[ma], b.time[mb])


def test_connectivity_keeps_in_degree_and_clusters():
    th = default_theta().repeat(2, 1)
    th[:, INDEX["net.n_clusters"]] = 4.0
    th[1, INDEX["net.R_pe2e"]] = 3.0
    W, is_exc = build_connectivity(th, 400, 2000, torch.Generator().manual_seed(0))
    n_e = int(is_exc[0].sum())
    indeg_ie = (W[0, n_e:, :n_e] > 0).sum(0).float().mean()  # I->E in-degree: p_i2e * 2000 * 0.2 = 20
    assert abs(indeg_ie - 0.05 * 2000 * 0.2) < 2.0
    ee0 = (W[0, :n_e, :n_e] > 0).float().mean()
    ee1 = (W[1, :n_e, :n_e] > 0).float().mean()
    assert ee1 > 1.2 * ee0  # in-cluster pairs connect 3x more often
    assert W[1, :n_e, :n_e].max() == pytest.approx(1.0)  # R_Qe2e = 1: same weight in and out of cluster
    assert (torch.diagonal(W, dim1=1, dim2=2) == 0).all()


def test_silent_networks_are_flagged_and_the_early_stop_rule():
    th = default_theta().repeat(2, 1)
    th[0, INDEX["Epop.poisson_rate"]] = 1.0
    th[0, INDEX["Ipop.poisson_rate"]] = 5.0
    th[0, INDEX["Epop.p_igniters"]] = 0.1
    th[0, INDEX["Epop.v_thresh"]] = -45.0
    th[0, INDEX["Epop.v_rest"]] = -75.0
    s = simulate(th, TINY, seed=0)
    assert s.flagged.tolist() == [True, False]
    assert np.isfinite(compute_features(s)).all()
    late = s.batch == 0
    assert (s.time[late] <= TINY.t_early_stop + 1e-9).all()  # frozen after the check
    assert early_stop_flags(torch.tensor([0.0, 5e-5, 0.01, 0.5, 0.99, 1.0])).tolist() == [
        True, True, False, False, True, True]


def test_bad_theta_names_the_field():
    with pytest.raises(InputError) as e:
        simulate(torch.zeros(2, 5), TINY)
    assert e.value.field == "theta"
    th = default_theta()[None].clone()
    th[0, 3] = float("nan")
    with pytest.raises(InputError):
        simulate(th, TINY)


def test_agrees_with_brian2_over_seeds():
    """Different random numbers: compare distributions over 4 seeds per simulator (E rate, ISI CV,
    population-rate spectrum). Tolerance: 3 combined standard errors plus 10 % of the value."""
    pytest.importorskip("brian2")
    from core.amortized.reference import simulate_brian2

    cfg = NetworkConfig(n_neurons=100, duration=1.0, reference_n=400)
    th = default_theta()
    seeds = range(4)
    xt = compute_features(simulate(th.repeat(4, 1), cfg, seed=11))
    xb = np.concatenate([compute_features(simulate_brian2(th, cfg, seed=s)) for s in seeds])
    names = feature_names()
    for name in ["rate_mu", "isi_cv_mu", "burst_rate"] + [n for n in names if n.startswith("psd_")]:
        j = names.index(name)
        a, b = xt[:, j], xb[:, j]
        se = np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
        assert abs(a.mean() - b.mean()) <= 3 * se + 0.1 * abs(b.mean()) + 0.05, (name, a, b)
