"""The same network in brian2 (the simulator AutoMIND uses), as an independent check of the torch one.

brian2 integrates the equations (its own Euler code generation), schedules threshold, synapses and reset,
and draws the Poisson drive (``PoissonInput``); connectivity is drawn here with numpy by the same rules as
:func:`core.amortized.network.build_connectivity` from a different random stream. One parameter set per
call (brian2 has no batch); ``target="numpy"`` avoids compiling (cython is faster for long runs).
"""

from __future__ import annotations

import numpy as np

from .prior import DEFAULTS, INDEX, NetworkConfig, check_theta
from .spikes import Spikes


def _connectivity(theta: np.ndarray, n: int, reference_n: int, rng: np.random.Generator):
    """(pre, post, weight in nS, is_exc_pre) arrays of one network, plus n_exc."""
    t = {k: float(theta[i]) for k, i in INDEX.items()}
    n_exc = int(np.clip(np.round(t["net.exc_prop"] * n), 1, max(n - 1, 1)))
    scale = reference_n / n
    is_e = np.arange(n) < n_exc
    pe, qe = is_e[:, None], is_e[None, :]
    p = lambda k: min(t[k] * scale, 1.0)  # noqa: E731
    prob = np.where(pe & qe, p("net.p_e2e"), np.where(pe & ~qe, p("net.p_e2i"),
                    np.where(~pe & qe, p("net.p_i2e"), p("net.p_i2i"))))
    n_cl = np.floor(t["net.n_clusters"])
    in_cluster = np.zeros((n, n), bool)
    if n_cl >= 2 and t["net.R_pe2e"] != 1:
        lab = rng.integers(0, int(n_cl), size=(n, 2))
        in_cluster = ((lab[:, None, 0] == lab[None, :, 0]) | (lab[:, None, 1] == lab[None, :, 1])) & pe & qe
        prob = np.where(in_cluster, min(t["net.p_e2e"] * t["net.R_pe2e"] * scale, 1.0), prob)
    conn = rng.random((n, n)) < prob
    np.fill_diagonal(conn, False)
    q = np.where(pe, np.where(qe, t["Epop.Q_ge"], t["Ipop.Q_ge"]), np.where(qe, t["Epop.Q_gi"], t["Ipop.Q_gi"]))
    q = np.where(in_cluster, q * t["net.R_Qe2e"], q)
    pre, post = np.nonzero(conn)
    return pre, post, q[pre, post], is_e[pre], n_exc


def simulate_brian2(theta, config: NetworkConfig | None = None, seed: int = 0, target: str = "numpy") -> Spikes:
    """Simulate one network (theta: (28,) or (1, 28)) in brian2; spikes as :class:`Spikes` (batch 1).

    No early stop (the check is meant for parameter sets that are neither silent nor exploding)."""
    import brian2 as b2

    config = config or NetworkConfig()
    theta = check_theta(theta)[0].numpy().astype(float)
    t = {k: float(theta[i]) for k, i in INDEX.items()}
    n = config.n_neurons
    rng = np.random.default_rng(seed + 7919)
    pre, post, weight, e_pre, n_exc = _connectivity(theta, n, config.reference_n, rng)
    b2.start_scope()
    b2.prefs.codegen.target = target
    b2.seed(seed + 104729)
    b2.defaultclock.dt = config.dt * b2.ms
    eqs = """
    dv/dt = (-g_L*(v - v_rest) + g_L*delta_T*exp((clip(v, -1*volt, v_cut) - v_thresh)/delta_T) - w
             + ge*(E_ge - v) + gi*(E_gi - v)) / C : volt (unless refractory)
    dw/dt = (a*(v - v_rest) - w) / tau_w : amp
    dge/dt = -ge/tau_ge : siemens
    dgi/dt = -gi/tau_gi : siemens
    C : farad (constant)
    g_L : siemens (constant)
    v_rest : volt (constant)
    v_thresh : volt (constant)
    v_reset : volt (constant)
    v_cut : volt (constant)
    delta_T : volt (constant)
    a : siemens (constant)
    b : amp (constant)
    tau_w : second (constant)
    E_ge : volt (constant)
    E_gi : volt (constant)
    tau_ge : second (constant)
    tau_gi : second (constant)
    t_refrac : second (constant)
    """
    G = b2.NeuronGroup(n, eqs, threshold="v > v_cut", reset="v = v_reset; w += b", refractory="t_refrac",
                       method="euler")
    is_e = np.arange(n) < n_exc
    units = {"C": b2.pF, "g_L": b2.nS, "v_rest": b2.mV, "v_thresh": b2.mV, "v_reset": b2.mV, "delta_T": b2.mV,
             "a": b2.nS, "b": b2.pA, "tau_w": b2.ms, "E_gi": b2.mV, "tau_ge": b2.ms, "tau_gi": b2.ms,
             "t_refrac": b2.ms}
    vals = {}
    for key, unit in units.items():
        vals[key] = np.where(is_e, t[f"Epop.{key}"], DEFAULTS[key])
        setattr(G, key, vals[key] * unit)
    if config.v_cut_rule == "per_sample":
        G.v_cut = (vals["v_thresh"] + 5 * vals["delta_T"]) * b2.mV
    else:
        G.v_cut = (DEFAULTS["v_thresh"] + 5 * DEFAULTS["delta_T"]) * b2.mV
    G.E_ge = DEFAULTS["E_ge"] * b2.mV
    G.v = (vals["v_rest"] + 4.0 * rng.standard_normal(n)) * b2.mV
    G.w = 0 * b2.pA
    objs = [G]
    for mask, var in ((e_pre, "ge"), (~e_pre, "gi")):
        if mask.any():
            S = b2.Synapses(G, G, "w_syn : siemens", on_pre=f"{var}_post += w_syn")
            S.connect(i=pre[mask], j=post[mask])
            S.w_syn = weight[mask] * b2.nS
            objs.append(S)
    n_ign = int(np.floor(t["Epop.p_igniters"] * n_exc))
    q = DEFAULTS["Q_poisson"] * b2.nS
    if n_ign > 0 and t["Epop.poisson_rate"] > 0:
        objs.append(b2.PoissonInput(G[:n_ign], "ge", DEFAULTS["N_poisson"], t["Epop.poisson_rate"] * b2.Hz, q))
    if n_exc < n and t["Ipop.poisson_rate"] > 0:
        objs.append(b2.PoissonInput(G[n_exc:], "ge", DEFAULTS["N_poisson"], t["Ipop.poisson_rate"] * b2.Hz, q))
    mon = b2.SpikeMonitor(G)
    objs.append(mon)
    net = b2.Network(*objs)
    net.run(config.duration * b2.second)
    units_arr = np.asarray(mon.i[:], dtype=np.int64)
    times = np.asarray(mon.t[:] / b2.second, dtype=float)
    return Spikes(np.zeros(len(units_arr), np.int64), units_arr, times, [n], [n_exc], float(config.duration))
