"""Each feature against hand-made spike trains with known answers."""

import numpy as np
import pytest

from core.amortized.features import (
    PSD_FLOOR,
    RATE_FLOOR,
    FeatureSettings,
    compute_features,
    detect_bursts,
    feature_names,
    population_rate,
)
from core.amortized.spikes import Spikes
from core.errors import InputError

NAMES = feature_names()


def col(x, name):
    return x[:, NAMES.index(name)]


def spikes_from(trains, duration, n_exc=None):
    """trains: list over networks of list over cells of spike-time arrays."""
    b, u, t = [], [], []
    for bi, cells in enumerate(trains):
        for ui, times in enumerate(cells):
            b += [bi] * len(times)
            u += [ui] * len(times)
            t += list(times)
    n = [len(c) for c in trains]
    return Spikes(np.array(b), np.array(u), np.array(t), n, n_exc or n, duration)


def test_regular_firing_rate_and_isi():
    # 20 cells at 10 Hz (window 0.1-2.1 s: 20 spikes each), jittered phases
    rng = np.random.default_rng(0)
    cells = [0.1 + rng.uniform(0, 0.1) + 0.1 * np.arange(20) for _ in range(20)]
    x = compute_features(spikes_from([cells], 2.1))
    assert col(x, "rate_mu")[0] == pytest.approx(1.0, abs=1e-6)  # log10 10 Hz
    assert col(x, "rate_sigma")[0] == pytest.approx(np.log10(RATE_FLOOR))  # all cells equal
    assert col(x, "isi_cv_mu")[0] == pytest.approx(0.0, abs=1e-5)
    assert col(x, "isi_mean_mu")[0] == pytest.approx(-1.0, abs=1e-5)  # log10 0.1 s
    assert col(x, "active_frac")[0] == 1.0


def test_isi_cv_of_poisson_trains_and_inhibitory_cells_ignored():
    rng = np.random.default_rng(1)
    cells = [np.sort(rng.uniform(0.1, 20.1, rng.poisson(400))) for _ in range(30)]
    inhibitory = [np.arange(0.1, 20.1, 0.001)] * 5  # would dominate the rate if counted
    x = compute_features(spikes_from([cells + inhibitory], 20.1, n_exc=[30]))
    assert col(x, "isi_cv_mu")[0] == pytest.approx(1.0, abs=0.07)
    assert 10 ** col(x, "rate_mu")[0] == pytest.approx(20.0, rel=0.1)


def test_bursts_known_times_interval_and_width():
    # 50 cells each fire 5 spikes within +-10 ms around bursts at 0.5, 1.0, 1.5, 2.0 s; nothing between
    rng = np.random.default_rng(2)
    peaks = np.array([0.5, 1.0, 1.5, 2.0])
    cells = [np.sort(np.concatenate([p + rng.normal(0, 0.005, 5) for p in peaks])) for _ in range(50)]
    x = compute_features(spikes_from([cells], 2.6))
    assert col(x, "burst_rate")[0] == pytest.approx(4 / 2.5)
    assert 10 ** col(x, "burst_interval_mean")[0] == pytest.approx(0.5, abs=0.01)
    assert col(x, "burst_interval_cv")[0] < 0.03
    width = 10 ** col(x, "burst_width_mean")[0]
    assert 0.01 < width < 0.06  # 5 ms jitter smoothed by 5 ms: full width near the base ~ 30-40 ms
    assert 10 ** col(x, "burst_offset_mean")[0] == pytest.approx(width / 2, rel=0.3)


def test_burst_distance_and_min_rate():
    rate = np.zeros((2, 3000))
    rate[0, [500, 600, 1500]] = 1000.0  # 100 ms apart: merged by the 200 ms minimum distance
    rate[1, [500, 1500]] = 10.0          # smoothed peak below 5 Hz: no bursts
    b = detect_bursts(rate, FeatureSettings())
    assert len(b[0]["peaks"]) == 2 and len(b[1]["peaks"]) == 0


def test_psd_peak_band_of_an_oscillation():
    # inhomogeneous Poisson cells modulated at 40 Hz
    rng = np.random.default_rng(3)
    t = np.arange(0, 3.1, 1e-4)
    lam = 20 * (1 + np.sin(2 * np.pi * 40 * t)) * 1e-4
    cells = [t[rng.random(t.size) < lam] for _ in range(100)]
    x = compute_features(spikes_from([cells], 3.1))
    psd_names = [n for n in NAMES if n.startswith("psd_")]
    psd = np.array([col(x, n)[0] for n in psd_names])
    edges = [(float(n[4:].split("-")[0]), float(n.split("-")[1][:-2])) for n in psd_names]
    band40 = next(i for i, (lo, hi) in enumerate(edges) if lo <= 40 < hi)
    assert psd.argmax() == band40
    assert psd[band40] > psd[band40 + 2] + 1.0  # at least 10x the power two bands up


def test_population_rate_counts_e_cells_only():
    s = spikes_from([[[0.1005, 0.1015], [0.1005]]], 0.2, n_exc=[2])
    rate, centres = population_rate(s, 0.1, 1.0)
    assert rate.shape == (1, 100) and centres[0] == pytest.approx(0.1005)
    assert rate[0, 0] == pytest.approx(2 / 2 / 1e-3) and rate[0, 1] == pytest.approx(1 / 2 / 1e-3)


def test_silent_network_gets_documented_fill_values():
    x = compute_features(spikes_from([[np.array([])] * 10], 2.1))
    assert np.isfinite(x).all()
    assert col(x, "rate_mu")[0] == pytest.approx(np.log10(RATE_FLOOR))
    assert col(x, "burst_rate")[0] == 0 and col(x, "burst_interval_mean")[0] == pytest.approx(np.log10(2.0))
    assert col(x, "isi_cv_mu")[0] == 0 and col(x, "active_frac")[0] == 0
    assert all(col(x, n)[0] == pytest.approx(np.log10(PSD_FLOOR)) for n in NAMES if n.startswith("psd_"))


def test_batch_matches_one_by_one():
    rng = np.random.default_rng(4)
    nets = [[np.sort(rng.uniform(0, 2.1, rng.poisson(30 * (k + 1)))) for _ in range(8)] for k in range(3)]
    x = compute_features(spikes_from(nets, 2.1))
    for k in range(3):
        np.testing.assert_allclose(x[k], compute_features(spikes_from([nets[k]], 2.1))[0], rtol=1e-5, atol=1e-6)


def test_too_short_window_names_duration():
    with pytest.raises(InputError) as e:
        compute_features(spikes_from([[np.array([0.05])]], 0.101))
    assert e.value.field == "duration"
