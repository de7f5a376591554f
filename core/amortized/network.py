"""AutoMIND's clustered AdEx E/I network, batched over parameter sets in torch.

B networks (one per row of theta) advance together: state (B, N), connectivity (B, N, N) dense weights
[b, pre, post] (fine for N <= ~1000), forward Euler with the reference's equations
(``shared/spec/automind-notes.md`` section 1)::

    C dv/dt = -g_L (v - v_rest) + g_L dT exp((v - v_thresh)/dT) - w + ge (E_ge - v) + gi (E_gi - v)
    tau_w dw/dt = a (v - v_rest) - w ;  dge/dt = -ge/tau_ge ;  dgi/dt = -gi/tau_gi
    v > v_cut: v = v_reset, w += b, refractory t_refrac (v frozen, w integrates)

Step order as brian2's schedule: state update, threshold, synaptic and Poisson input (zero delays), reset.
Units: mV, ms, nS, pF, pA. Populations differ in size across the batch (exc_prop is a free parameter), so
every per-cell quantity is a (B, N) tensor chosen by an E/I mask.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from ..settings import resolve_device
from .prior import DEFAULTS, INDEX, NetworkConfig, check_theta
from .spikes import Spikes


def _col(theta: Tensor, name: str) -> Tensor:
    return theta[:, INDEX[name]]


def population_sizes(theta: Tensor, n_neurons: int) -> Tensor:
    """Excitatory cells per network: (B,) = round(exc_prop * N), at least 1 and at most N - 1."""
    n_exc = torch.round(_col(theta, "net.exc_prop") * n_neurons).long()
    return n_exc.clamp(1, max(n_neurons - 1, 1))


def build_connectivity(theta: Tensor, n_neurons: int, reference_n: int = 2000,
                       generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Weights (B, N, N) [pre, post] in nS and E mask (B, N).

    Bernoulli(p) per pair (self pairs excluded), p scaled by reference_n / N (capped at 1) to keep the
    reference's in-degree. Clustered E->E when floor(n_clusters) >= 2 and R_pe2e != 1: each E cell draws
    2 cluster labels (with replacement); a pair is in-cluster when the labels match slot by slot (the
    reference's quirk); in-cluster pairs connect with p_e2e R_pe2e and weight Q_ge R_Qe2e. (The reference
    draws exactly ceil(p count) edges per group without replacement; Bernoulli has the same mean.)"""
    B, N = theta.shape[0], n_neurons
    dev = theta.device
    scale = reference_n / N
    n_exc = population_sizes(theta, N)
    idx = torch.arange(N, device=dev)
    is_exc = idx[None, :] < n_exc[:, None]  # (B, N)
    pre_e, post_e = is_exc[:, :, None], is_exc[:, None, :]

    def p(name: str) -> Tensor:
        return (_col(theta, name) * scale).clamp(max=1.0)[:, None, None]

    prob = torch.where(pre_e & post_e, p("net.p_e2e"),
           torch.where(pre_e & ~post_e, p("net.p_e2i"),
           torch.where(~pre_e & post_e, p("net.p_i2e"), p("net.p_i2i"))))
    # clusters (E->E only)
    n_cl = torch.floor(_col(theta, "net.n_clusters"))
    clustered = (n_cl >= 2) & (_col(theta, "net.R_pe2e") != 1)
    labels = torch.floor(torch.rand(B, N, 2, generator=generator, device=dev) * n_cl[:, None, None].clamp(min=1))
    same = ((labels[:, :, None, 0] == labels[:, None, :, 0]) | (labels[:, :, None, 1] == labels[:, None, :, 1]))
    in_cluster = same & pre_e & post_e & clustered[:, None, None]
    p_in = (_col(theta, "net.p_e2e") * _col(theta, "net.R_pe2e") * scale).clamp(max=1.0)[:, None, None]
    prob = torch.where(in_cluster, p_in, prob)
    connected = torch.rand(B, N, N, generator=generator, device=dev) < prob
    connected &= ~torch.eye(N, dtype=torch.bool, device=dev)[None]
    # weights come from the target population
    q_ge_post = torch.where(post_e, _col(theta, "Epop.Q_ge")[:, None, None], _col(theta, "Ipop.Q_ge")[:, None, None])
    q_gi_post = torch.where(post_e, _col(theta, "Epop.Q_gi")[:, None, None], _col(theta, "Ipop.Q_gi")[:, None, None])
    q = torch.where(pre_e, q_ge_post, q_gi_post)
    q = torch.where(in_cluster, q * _col(theta, "net.R_Qe2e")[:, None, None], q)
    return torch.where(connected, q, torch.zeros((), device=dev)), is_exc


def cell_parameters(theta: Tensor, is_exc: Tensor, v_cut_rule: str = "per_sample") -> dict[str, Tensor]:
    """Per-cell constants (B, N): E cells take the sampled Epop values, I cells the defaults."""
    def pick(key: str) -> Tensor:
        e = _col(theta, f"Epop.{key}")[:, None]
        return torch.where(is_exc, e, torch.full_like(e, DEFAULTS[key]))

    out = {k: pick(k) for k in ("C", "g_L", "v_rest", "v_thresh", "v_reset", "t_refrac", "delta_T", "a", "b",
                                "tau_w", "E_gi", "tau_ge", "tau_gi")}
    if v_cut_rule == "per_sample":
        out["v_cut"] = out["v_thresh"] + 5 * out["delta_T"]
    else:
        out["v_cut"] = torch.full_like(out["v_thresh"], DEFAULTS["v_thresh"] + 5 * DEFAULTS["delta_T"])
    n_exc = is_exc.sum(1)
    n_ign = torch.floor(_col(theta, "Epop.p_igniters") * n_exc)
    idx = torch.arange(is_exc.shape[1], device=theta.device)[None]
    rate = torch.where(is_exc, torch.where(idx < n_ign[:, None], _col(theta, "Epop.poisson_rate")[:, None], 0.0),
                       _col(theta, "Ipop.poisson_rate")[:, None])
    out["poisson_rate"] = rate  # Hz per source
    return out


def early_stop_flags(normalized_rate: Tensor) -> Tensor:
    """The reference's early stop: t_refrac * spikes per E cell / window <= 1e-4 (silent) or >= 0.99
    (firing at the refractory limit): (B,) bool."""
    return (normalized_rate <= 1e-4) | (normalized_rate >= 0.99)


def _poisson_cdf_table(lam: Tensor) -> Tensor:
    """Poisson CDF at k = 0..K-1 for each cell's per-step mean ``lam`` (B, N): (B, N, K).

    Inversion (count = number of CDF values below a uniform draw) keeps the random stream of each network
    independent of the others' rates (torch.poisson consumes a rate-dependent number of draws)."""
    lmax = float(lam.max()) if lam.numel() else 0.0
    K = int(math.ceil(lmax + 8 * math.sqrt(lmax) + 6))
    k = torch.arange(K, device=lam.device, dtype=lam.dtype)
    logp = k * torch.log(lam.clamp(min=1e-30))[..., None] - lam[..., None] - torch.lgamma(k + 1)
    return torch.cumsum(torch.exp(logp), -1).clamp(max=1.0)


def _poisson_counts(u: Tensor, cdf: tuple[Tensor, ...]) -> Tensor:
    """Poisson counts (B, N) from uniforms ``u`` (B, N): the number of CDF values below u."""
    count = (u > cdf[0]).to(u.dtype)
    for c in cdf[1:]:
        above = u > c
        if not bool(above.any()):
            break
        count += above
    return count


@torch.no_grad()
def simulate(theta: Tensor, config: NetworkConfig | None = None, seed: int = 0, device: str = "auto",
             drive: bool = True) -> Spikes:
    """Simulate B networks, one per row of ``theta`` (B, 28), and return their spikes (times in s).

    ``seed`` fixes connectivity, initial state and Poisson drive (common random numbers for finite
    differences); ``drive=False`` switches the Poisson input off (a test: a network at rest stays silent)."""
    config = config or NetworkConfig()
    theta = check_theta(theta)
    dev = resolve_device(device)
    theta = theta.to(dev)
    gen = torch.Generator(device=dev).manual_seed(int(seed))
    B, N = theta.shape[0], config.n_neurons
    W, is_exc = build_connectivity(theta, N, config.reference_n, gen)
    W_flat = W.reshape(B * N, N)
    exc_flat = is_exc.reshape(-1)
    P = cell_parameters(theta, is_exc, config.v_cut_rule)
    dt = float(config.dt)
    n_steps = int(round(config.duration * 1000.0 / dt))
    E_ge = DEFAULTS["E_ge"]
    lam = P["poisson_rate"] * DEFAULTS["N_poisson"] * dt * 1e-3 if drive else torch.zeros_like(P["poisson_rate"])
    q_poisson = DEFAULTS["Q_poisson"]
    has_drive = bool((lam > 0).any())
    poisson_cdf = _poisson_cdf_table(lam).unbind(-1)  # K x (B, N): counts by inversion of uniform draws
    block = 100
    drive_block = None
    C, gL, vrest, vth, dT = P["C"], P["g_L"], P["v_rest"], P["v_thresh"], P["delta_T"]
    a, bw, tau_w, vreset, vcut, E_gi = P["a"], P["b"], P["tau_w"], P["v_reset"], P["v_cut"], P["E_gi"]
    dec_e, dec_i = dt / P["tau_ge"], dt / P["tau_gi"]
    # the E population's delta_T == 0 drops the exponential for both populations (never in this prior box)
    use_exp = (_col(theta, "Epop.delta_T") > 0)[:, None]
    dT_safe = torch.where(dT > 0, dT, torch.ones_like(dT))
    v = vrest + 4.0 * torch.randn(B, N, generator=gen, device=dev)
    w = torch.zeros(B, N, device=dev)
    ge = torch.zeros(B, N, device=dev)
    gi = torch.zeros(B, N, device=dev)
    refr_left = torch.zeros(B, N, device=dev)
    active = torch.ones(B, 1, dtype=torch.bool, device=dev)
    flagged = torch.zeros(B, dtype=torch.bool, device=dev)
    early_step = int(round(config.t_early_stop * 1000.0 / dt))
    start_step = int(round(config.t_start * 1000.0 / dt))
    n_exc = is_exc.sum(1)
    exc_count = torch.zeros(B, device=dev)
    record_steps, record_flat = [], []
    # constants of the step, folded once: exp prefactor (0 drops the exponential), reciprocals, decays
    gLdT = torch.where(use_exp, gL * dT_safe, torch.zeros_like(gL))
    inv_dT, dt_invC, dt_inv_tau_w = 1.0 / dT_safe, dt / C, dt / tau_w
    keep_e, keep_i = 1.0 - dec_e, 1.0 - dec_i
    t_refrac = P["t_refrac"]
    all_active = True
    for step in range(n_steps):
        # state update from the old v, w (v frozen while refractory)
        dv = gL * (vrest - v) + gLdT * torch.exp((torch.minimum(v, vcut) - vth) * inv_dT) - w \
            + ge * (E_ge - v) + gi * (E_gi - v)
        w = w + (a * (v - vrest) - w) * dt_inv_tau_w
        v = torch.where(refr_left > 0, v, v + dv * dt_invC)
        ge.mul_(keep_e)
        gi.mul_(keep_i)
        refr_left.sub_(dt)
        # threshold
        spike = (v > vcut) & (refr_left <= 0)
        if not all_active:
            spike &= active
        flat = spike.reshape(-1).nonzero().squeeze(1)
        if flat.numel():
            rows = W_flat[flat]  # (n_spk, N)
            b_of = flat // N
            e_spk = exc_flat[flat]
            ge.index_add_(0, b_of[e_spk], rows[e_spk])
            gi.index_add_(0, b_of[~e_spk], rows[~e_spk])
            record_steps.append(torch.full_like(flat, step))
            record_flat.append(flat)
            if start_step <= step < early_step:
                exc_count += torch.bincount(b_of[e_spk], minlength=B).to(exc_count.dtype)
        if has_drive:
            if step % block == 0:  # Poisson counts of the next `block` steps at once: (block, B, N)
                drive_block = q_poisson * _poisson_counts(torch.rand(block, B, N, generator=gen, device=dev),
                                                          poisson_cdf)
            ge.add_(drive_block[step % block] if all_active else drive_block[step % block] * active)
        if flat.numel():  # reset
            v = torch.where(spike, vreset, v)
            w = w + bw * spike
            refr_left = torch.where(spike, t_refrac, refr_left)
        if step == early_step - 1 and early_step > start_step:
            window_ms = (early_step - start_step) * dt
            flagged = early_stop_flags(t_refrac[:, 0] * exc_count / n_exc / window_ms)
            active = ~flagged[:, None]
            all_active = bool(active.all())
            if not bool(active.any()):
                break
    if record_flat:
        steps = torch.cat(record_steps).cpu().numpy()
        flat = torch.cat(record_flat).cpu().numpy()
    else:
        steps = flat = np.zeros(0, dtype=np.int64)
    time = (steps + 1) * dt * 1e-3
    return Spikes(flat // N, flat % N, time, np.full(B, N), n_exc.cpu().numpy(), float(config.duration),
                  flagged.cpu().numpy())
