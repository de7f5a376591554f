"""The batched exponential-Euler simulator against scipy's BDF on an independently written STG right-hand
side (equations typed from the notes' table, not imported), spike detection, noise, and bad input."""

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp
from scipy.signal import butter, filtfilt

from core.conductance import DA, STG, activity_metrics, compensate, simulate
from core.conductance.simulate import FilteredNoise
from core.errors import InputError

torch.set_num_threads(1)


def s(V, A, B, C, D):
    return A + B / (1 + np.exp((V + D) / C))


def stg_rhs(t, u, g):
    """Liu et al. STG neuron as in the notes (sec. 1): u = V, mNa, hNa, mKd, mCaT, hCaT, mCaS, hCaS, mKCa,
    mA, hA, mH, Ca; g = Na, Kd, CaT, CaS, KCa, A, H, leak."""
    V, mNa, hNa, mKd, mT, hT, mS, hS, mK, mA, hA, mH, Ca = u
    gNa, gKd, gT, gS, gK, gA, gH, gL = g
    I = (gNa * mNa**3 * hNa * (V - 50) + gKd * mKd**4 * (V + 80) + gT * mT**3 * hT * (V - 80)
         + gS * mS**3 * hS * (V - 80) + gK * mK**4 * (V + 80) + gA * mA**3 * hA * (V + 80)
         + gH * mH * (V + 20) + gL * (V + 50))
    ICa = gT * mT**3 * hT * (V - 80) + gS * mS**3 * hS * (V - 80)
    return [
        -I,
        (s(V, 0, 1, -5.29, 25.5) - mNa) / s(V, 1.32, -1.26, -25, 120),
        (s(V, 0, 1, 5.18, 48.9) - hNa) / (s(V, 0, 0.67, -10, 62.9) * s(V, 1.5, 1, 3.6, 34.9)),
        (s(V, 0, 1, -11.8, 12.3) - mKd) / s(V, 7.2, -6.4, -19.2, 28.3),
        (s(V, 0, 1, -7.2, 27.1) - mT) / s(V, 21.7, -21.3, -20.5, 68.1),
        (s(V, 0, 1, 5.5, 32.1) - hT) / s(V, 105, -89.8, -16.9, 55),
        (s(V, 0, 1, -8.1, 33) - mS) / (1.4 + 7 / (np.exp((V + 27) / 10) + np.exp(-(V + 70) / 13))),
        (s(V, 0, 1, 6.2, 60) - hS) / (60 + 150 / (np.exp((V + 55) / 9) + np.exp(-(V + 65) / 16))),
        (Ca / (Ca + 3) * s(V, 0, 1, -12.6, 28.3) - mK) / s(V, 90.3, -75.1, -22.7, 46),
        (s(V, 0, 1, -8.7, 27.2) - mA) / s(V, 11.6, -10.4, -15.2, 32.9),
        (s(V, 0, 1, 4.9, 56.9) - hA) / s(V, 38.6, -29.2, -26.5, 38.9),
        (s(V, 0, 1, 6, 70) - mH) / s(V, 272, 1499, -8.73, 42.2),
        (-0.94 * ICa - Ca + 0.05) / 20,
    ]


def stg_u0():
    V, Ca = -70.0, 0.5
    return [V, s(V, 0, 1, -5.29, 25.5), s(V, 0, 1, 5.18, 48.9), s(V, 0, 1, -11.8, 12.3), s(V, 0, 1, -7.2, 27.1),
            s(V, 0, 1, 5.5, 32.1), s(V, 0, 1, -8.1, 33), s(V, 0, 1, 6.2, 60),
            Ca / (Ca + 3) * s(V, 0, 1, -12.6, 28.3), s(V, 0, 1, -8.7, 27.2), s(V, 0, 1, 4.9, 56.9),
            s(V, 0, 1, 6, 70), Ca]


def reference_spikes(g, T, transient):
    sol = solve_ivp(stg_rhs, (0, T), stg_u0(), args=(g,), method="BDF", rtol=1e-6, atol=1e-6,
                    t_eval=np.arange(0, T, 0.01))
    V = sol.y[0]
    up = np.flatnonzero((V[1:] > 10) & (V[:-1] <= 10)) + 1
    t = sol.t[up]
    return t[t > transient] - transient


def test_stg_spike_statistics_match_scipy_bdf():
    """A spiking and a bursting neuron, simulated together (dt 0.05 ms, float64) and one by one by BDF."""
    g = torch.cat([compensate(STG, (4.0, 5.0), n=1, seed=4).g, compensate(STG, (-8.0, 7.0), n=1, seed=4).g])
    T, tr = 600.0, 150.0
    sim = simulate(STG, g, duration=T - tr, transient=tr, dtype=torch.float64)
    for i in range(2):
        ref = reference_spikes(g[i].numpy(), T, tr)
        got = sim.spikes.row(i)
        assert len(ref) >= 5
        # same number of spikes (+-1 at the window edges), same mean, longest and shortest ISI within 3-5 %
        assert abs(len(got) - len(ref)) <= 1, (got, ref)
        assert np.mean(np.diff(got)) == pytest.approx(np.mean(np.diff(ref)), rel=0.03)
        assert np.max(np.diff(got)) == pytest.approx(np.max(np.diff(ref)), rel=0.03)
        assert np.min(np.diff(got)) == pytest.approx(np.min(np.diff(ref)), rel=0.05)


def test_default_step_float32_keeps_the_regimes():
    """The production setting (dt 0.05 ms, float32): spiking and bursting targets give their regimes."""
    sp = compensate(STG, (4.0, 5.0), n=40, seed=0).g
    bu = compensate(STG, (-8.0, 7.0), n=40, seed=0).g
    sim = simulate(STG, torch.cat([sp, bu]), duration=1000, transient=500)
    cls = activity_metrics(sim.spikes)["cls"]
    assert (cls[:40] == 1).double().mean() >= 0.9
    assert (cls[40:] == 2).double().mean() >= 0.9


def test_da_pacemaker_and_burster():
    sp = compensate(DA, (0.5, 5.0), n=8, seed=0).g
    bu = compensate(DA, (-2.0, 3.0), n=8, seed=0).g
    sim = simulate(DA, torch.cat([sp, bu]), duration=2600, transient=600, record=1)
    c = sim.spikes.counts
    assert (c[:8] >= 2).all()
    isi = sim.spikes.times[:8, 1:3] - sim.spikes.times[:8, 0:2]
    assert (isi[~torch.isnan(isi)] > 300).all()           # slow pacemaking, about 1 Hz
    cls = activity_metrics(sim.spikes)["cls"]
    assert ((cls[:8] == 1) | (c[:8] == 2)).all()          # regular (2 spikes: too few to classify)
    assert (cls[8:] == 2).sum() >= 7                      # bursting
    assert (c[8:] >= 2 * c[:8]).all()
    assert sim.V.shape[0] == 1 and sim.V.max() > 10 and sim.V.min() < -50


def test_noise_matches_the_authors_filtfilt_statistics():
    rng = np.random.default_rng(0)
    w = rng.normal(0, 5.0, (20, 40000))
    b, a = butter(4, 1000 / (10000 / 2))
    ref_std = filtfilt(b, a, w, axis=1).std()
    gen = FilteredNoise(np.full(20, 5.0), 0.1, seed=1)
    ours = np.concatenate([gen.block(10000) for _ in range(4)], 1)[:, 2000:]
    assert ours.std() == pytest.approx(ref_std, rel=0.05)


def test_current_injection_noisy_and_constant():
    g = compensate(STG, (4.0, 5.0), n=4, seed=1).g
    gg = torch.cat([g, g, g])                                     # quiet, noisy, driven copies in one batch
    sigma = torch.tensor([0.0] * 4 + [5.0] * 4 + [0.0] * 4, dtype=torch.float64)
    # the channels' conductances dwarf the leak (input conductance ~1 at rest), so it takes a few units
    I = torch.tensor([0.0] * 8 + [3.0] * 4, dtype=torch.float64)
    sim = simulate(STG, gg, duration=500, transient=300, noise_sigma=sigma, I_ext=I, seed=2)
    t = sim.spikes.times
    assert not torch.equal(torch.nan_to_num(t[:4]), torch.nan_to_num(t[4:8, : t.shape[1]]))
    assert (sim.spikes.counts[8:] >= sim.spikes.counts[:4] + 2).all()
    again = simulate(STG, gg[4:8], duration=500, transient=300, noise_sigma=5.0, seed=2)
    assert again.spikes.counts.sum() > 0


def test_noise_is_reproducible_by_seed():
    g = compensate(STG, (4.0, 5.0), n=2, seed=1).g
    a = simulate(STG, g, duration=200, transient=100, noise_sigma=5.0, seed=7)
    b = simulate(STG, g, duration=200, transient=100, noise_sigma=5.0, seed=7)
    torch.testing.assert_close(a.spikes.times, b.spikes.times, equal_nan=True)


def test_bad_conductances_name_the_field():
    with pytest.raises(InputError) as e:
        simulate(STG, torch.ones(3, 5))
    assert e.value.field == "g"
    g = torch.ones(2, 8)
    g[0, 2] = -1
    with pytest.raises(InputError) as e:
        simulate(STG, g)
    assert e.value.field == "g"
    with pytest.raises(InputError) as e:
        simulate(STG, torch.ones(2, 8), noise_sigma=np.ones(3))
    assert e.value.field == "noise_sigma"
