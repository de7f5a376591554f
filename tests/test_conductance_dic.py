"""DICs against finite differences of the models' current-voltage relations at matching timescales.

The reference here is built from the simulation's own current function (``open_fraction``: what drives
dV/dt) and the gates' steady states, not from the DIC code: for timescale class k, every gate x follows
the voltage with its share w_k,x (x = x_inf(V_th + w_k,x (V - V_th)), shares by the log rule of the notes,
re-implemented below), the driving force moves only in the fast class, and g_k = dI_k/dV / g_leak.
"""

import math

import pytest
import torch

from core.conductance import DA, STG, compensate, dics, seed_population, sensitivity

torch.set_num_threads(1)


def share(tau, t1, t2):
    if tau <= t1:
        return 1.0
    if tau > t2:
        return 0.0
    return (math.log(t2) - math.log(tau)) / (math.log(t2) - math.log(t1))


def class_weights(model, V_th):
    """{state column: (w_f, w_s, w_u)} for every state column that enters a current."""
    V = torch.tensor([V_th], dtype=torch.float64)
    _, tau = model.vgates(V)
    tau = tau[0].tolist()
    if model is STG:
        tf, ts, tu = tau[0], tau[2], tau[9]
        cols = {1 + i: tau[i] for i in range(10)}           # voltage-only gates
        cols["kca_v"] = tau[10]
        cols["ca"] = STG.tau_Ca
    else:
        tf, ts, tu = tau[0], tau[2], DA.tau_u_const
        cols = {1 + i: tau[i] for i in range(5)}
        cols[6] = math.inf   # ERG: forced ultraslow
        cols[0] = 0.0        # NMDA block (reads column 0): forced fast
    out = {}
    for c, t in cols.items():
        wfs, wsu = share(t, tf, ts), share(t, ts, tu)
        out[c] = (wfs, wsu - wfs, 1 - wsu)
    return out


def class_current(model, g, V, k, V_th, W):
    """I_k(V) (M,) for one neuron g (k,), voltages V (M,)."""
    M = V.shape[0]
    gg = g[None].expand(M, -1)
    cols = {}
    for c, w in W.items():
        cols[c] = V_th + w[k] * (V - V_th)
    if model is STG:
        base = {c: model.steady_state(cols[c], gg) for c in range(1, 11)}
        state = torch.zeros(M, 13, dtype=torch.float64)
        for c in range(1, 11):
            state[:, c] = base[c][:, c]
        Ca = model.ca_inf(cols["ca"], gg)
        s_v = model.vgates(cols["kca_v"])[0][:, 10]
        state[:, 11] = Ca / (Ca + 3) * s_v
        state[:, 12] = Ca
    else:
        state = torch.zeros(M, 8, dtype=torch.float64)
        for c in range(1, 6):
            state[:, c] = model.steady_state(cols[c], gg)[:, c]
        state[:, 6] = model.erg_steady(cols[6])[0]
        state[:, 0] = cols[0]
    P = model.open_fraction(state)
    drive = V if k == 0 else torch.full_like(V, V_th)
    E = torch.tensor(model.E, dtype=torch.float64)
    return (gg * P * (drive[:, None] - E)).sum(1)


def population(model, n=6, seed=0):
    """Seed neurons and neuromodulated neurons of both regimes (varied conductances)."""
    targets = [[4.0, 5.0], [-6.0, 6.0], [-12.0, 9.0]] if model is STG else [[0.5, 5.0], [-4.0, 6.0], [3.0, 12.0]]
    gens = [seed_population(model, n, torch.Generator().manual_seed(seed))]
    gens += [compensate(model, t, n=n, seed=seed + 1).g for t in targets]
    return torch.cat(gens)


@pytest.mark.parametrize("model", [STG, DA], ids=["stg", "da"])
def test_each_dic_matches_finite_difference_of_its_timescale_iv(model):
    g_all = population(model)
    h = 1e-4
    for V_th in (model.V_th, model.V_th - 7.0, model.V_th + 4.0):
        W = class_weights(model, V_th)
        D = dics(model, g_all, V=V_th)
        for i in range(g_all.shape[0]):
            g = g_all[i]
            V = torch.tensor([V_th - h, V_th + h], dtype=torch.float64)
            for k in range(3):
                I = class_current(model, g, V, k, V_th, W)
                fd = float((I[1] - I[0]) / (2 * h)) / float(g[-1])
                assert D[i, k].item() == pytest.approx(fd, rel=1e-5, abs=1e-5 * (1 + abs(fd))), (model.name, V_th, i, k)


@pytest.mark.parametrize("model", [STG, DA], ids=["stg", "da"])
def test_total_dic_is_slope_of_steady_state_iv(model):
    """g_f + g_s + g_u = dI_ss/dV / g_leak with every gate and calcium at steady state."""
    g = population(model, n=4, seed=3)
    h = 1e-4
    V = torch.linspace(model.V_th - 15, model.V_th + 10, 6, dtype=torch.float64)
    for j in range(len(V)):
        D = dics(model, g, V=V[j]).sum(1)
        Vp = torch.full((g.shape[0],), float(V[j] + h), dtype=torch.float64)
        Vm = torch.full((g.shape[0],), float(V[j] - h), dtype=torch.float64)
        Ip = model.currents(model.steady_state(Vp, g), g).sum(1)
        Im = model.currents(model.steady_state(Vm, g), g).sum(1)
        fd = (Ip - Im) / (2 * h) / g[:, -1]
        torch.testing.assert_close(D, fd, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("model", [STG, DA], ids=["stg", "da"])
def test_dics_are_linear_in_g_and_leak_normalised(model):
    g = population(model, n=3)
    S = sensitivity(model, g)
    torch.testing.assert_close(torch.einsum("njk,nk->nj", S, g), dics(model, g))
    # leak alone: g_f = 1 after normalisation (leak column of S is [1/g_leak, 0, 0])
    torch.testing.assert_close(S[:, :, -1] * g[:, -1:], torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64).expand(len(g), 3))
    # scaling every conductance leaves the (dimensionless) DICs unchanged, for DA (no calcium)
    if model is DA:
        torch.testing.assert_close(dics(model, 2.5 * g), dics(model, g))


def test_seed_populations_have_the_seed_dics():
    for model in (STG, DA):
        g = seed_population(model, 200, torch.Generator().manual_seed(5))
        d = dics(model, g)
        torch.testing.assert_close(d, torch.tensor(model.seed_dics, dtype=torch.float64).expand(200, 3),
                                   rtol=1e-9, atol=1e-9)
        assert (g >= 0).all()
        # degenerate: drawn conductances vary widely across the population
        cv = g.std(0) / g.mean(0)
        assert (cv[[model.index(c) for c in model.seed_ranges if c not in ("leak", "NMDA")]] > 0.1).all()
