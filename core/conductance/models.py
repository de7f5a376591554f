"""Conductance-based neuron models: the STG neuron (Liu et al. 1998) and the dopaminergic (DA) neuron
(Qian et al. 2014), exactly as coded by Brandoit et al. (see ``shared/spec/dic-notes.md`` sections 1-2).

Everything needed to re-simulate a generated neuron with your own code is here.

Conventions (both models)
-------------------------
* Time in ms, voltage in mV, maximal conductances ``g`` in the units of the authors' code (called mS/cm2
  there), currents in the same units times mV. The membrane capacitance is implicit and equal to 1::

      dV/dt = -sum_c g_c * P_c * (V - E_c) + I_ext(t)

* Generalised sigmoid ``s(V; A, B, C, D) = A + B / (1 + exp((V + D) / C))``. Steady states use A=0, B=1;
  each gate relaxes as ``dx/dt = (x_inf(V) - x) / tau_x(V)``.

STG (``STG``), conductances ``Na, Kd, CaT, CaS, KCa, A, H, leak``
    Na  g m^3 h (V - 50)     m_inf s(-5.29, 25.5)   tau_m s(1.32, -1.26, -25, 120)
                             h_inf s(5.18, 48.9)    tau_h s(0, 0.67, -10, 62.9) * s(1.5, 1, 3.6, 34.9)
    Kd  g m^4 (V + 80)       m_inf s(-11.8, 12.3)   tau s(7.2, -6.4, -19.2, 28.3)
    CaT g m^3 h (V - 80)     m_inf s(-7.2, 27.1)    tau s(21.7, -21.3, -20.5, 68.1)
                             h_inf s(5.5, 32.1)     tau s(105, -89.8, -16.9, 55)
    CaS g m^3 h (V - 80)     m_inf s(-8.1, 33)      tau 1.4 + 7 / (exp((V+27)/10) + exp(-(V+70)/13))
                             h_inf s(6.2, 60)       tau 60 + 150 / (exp((V+55)/9) + exp(-(V+65)/16))
    KCa g m^4 (V + 80)       m_inf Ca/(Ca+3) * s(-12.6, 28.3)   tau s(90.3, -75.1, -22.7, 46)
    A   g m^3 h (V + 80)     m_inf s(-8.7, 27.2)    tau s(11.6, -10.4, -15.2, 32.9)
                             h_inf s(4.9, 56.9)     tau s(38.6, -29.2, -26.5, 38.9)
    H   g m (V + 20)         m_inf s(6, 70)         tau s(272, 1499, -8.73, 42.2)
    leak g (V + 50)
    calcium: 20 dCa/dt = -0.94 (I_CaT + I_CaS) - Ca + 0.05
    initial state: V = -70, Ca = 0.5, gates at x_inf(-70). Threshold voltage for the DICs: -51 mV.

DA (``DA``), conductances ``Na, Kd, CaL, CaN, ERG, NMDA, leak``
    Na  g m^3 h (V - 60)     m_inf s(-9.7264, 30.0907), h_inf s(10.7665, 54.0289)
          tau_m = 0.01 + 1 / (-(15.6504 + 0.4043 V) / (exp(-19.565 - 0.5052 V) - 1) + 3.0212 exp(-0.007463 V))
          tau_h = 0.4 + 1 / (5.0754e-4 exp(-0.063213 V) + 9.7529 exp(0.13442 V))
    Kd  g n^3 (V + 85)       n_inf s(-12, 25)       tau s(20, -18, -10, 38)
    CaL g m^2 (V - 60)       m_inf s(-2, 50)        tau s(30, -28, -3, 45)
    CaN g m (V - 60)         m_inf s(-7, 30)        tau s(30, -25, -6, 55)
    ERG g o (V + 85)         do/dt = a0 (1 - o - i) + bi i - o (ai + b0),  di/dt = ai o - bi i
          a0 = 0.0036 e^{0.0759 V}, b0 = 1.2523e-5 e^{-0.0671 V}, ai = 0.1 e^{0.1189 V}, bi = 0.003 e^{-0.0733 V}
    NMDA g B(V) (V - 0)      B = 1 / (1 + 1.4 e^{-0.08 V} / 10)   (instantaneous Mg block)
    leak g (V + 50)
    initial state: V = -90, gates at x_inf(-90), o = a0(-90) (as the authors' code), i = 0.
    Threshold voltage for the DICs: -55.5 mV.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

Tensor = torch.Tensor


def gsig(V: Tensor, A: float, B: float, C: float, D: float) -> Tensor:
    """Generalised sigmoid ``A + B / (1 + exp((V + D) / C))``."""
    return A + B / (1 + torch.exp((V + D) / C))


def d_gsig(V: Tensor, A: float, B: float, C: float, D: float) -> Tensor:
    """``d/dV`` of :func:`gsig`."""
    e = torch.exp((V + D) / C)
    return -B * e / (C * (1 + e) ** 2)


def gamma_matching_uniform(lo: float, hi: float) -> tuple[float, float]:
    """(shape k, scale theta) of the gamma law with the mean and variance of Uniform(lo, hi)."""
    p, q2 = lo + hi, (hi - lo) ** 2
    return 3 * p**2 / q2, q2 / (6 * p)


@dataclass(frozen=True)
class ConductanceModel:
    """Shared description of a model: names, reversal potentials, threshold, ranges, simulation defaults.

    ``names``: conductance names, ``leak`` last; ``E``: reversal potential of each (mV).
    ``dic_box``: {"g_s": (lo, hi), "g_u": (lo, hi)} the (g_s, g_u) range of the training data (notes sec. 4).
    ``seed_ranges``: uniform ranges of the drawn conductances of the seed spiking population (leak: gamma
    matched to the uniform range), ``seed_solved``: the three conductances solved for, ``seed_dics``:
    (g_f, g_s, g_u) of the seed population. ``upper``: the Monte-Carlo upper bounds (an "in range" check).
    """

    name: str
    names: tuple[str, ...]
    E: tuple[float, ...]
    V_th: float
    V0: float
    dic_box: dict = field(default_factory=dict)
    seed_ranges: dict = field(default_factory=dict)
    seed_solved: tuple[str, ...] = ()
    seed_dics: tuple[float, float, float] = (0.0, 0.0, 0.0)
    upper: dict = field(default_factory=dict)
    t_total: float = 3000.0      # ms simulated (our CPU-sized default; authors: STG 6000, DA 12000)
    t_transient: float = 1000.0  # ms discarded (authors: 3000)
    dt: float = 0.05             # ms integration step (exponential Euler)
    dt_noise: float = 0.1        # ms grid of the noisy current (the authors' output grid)
    units: str = "mS/cm2"

    @property
    def k(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        return self.names.index(name)

    # --- to be provided by subclasses -------------------------------------------------------------
    def init_state(self, n: int, dtype=torch.float32, device=None) -> Tensor:  # pragma: no cover
        raise NotImplementedError

    def vgates(self, V: Tensor) -> tuple[Tensor, Tensor]:  # pragma: no cover
        """Steady states and time constants of the voltage-only gates: two (..., G) tensors."""
        raise NotImplementedError

    def step(self, state: Tensor, g: Tensor, I_ext: Tensor, dt: float, inf: Tensor, decay: Tensor) -> Tensor:  # pragma: no cover
        raise NotImplementedError

    def open_fraction(self, state: Tensor) -> Tensor:  # pragma: no cover
        """(N, k) open fraction P_c of every channel (leak = 1) for states (N, S)."""
        raise NotImplementedError

    def currents(self, state: Tensor, g: Tensor) -> Tensor:
        """(N, k) ionic currents g_c P_c (V - E_c); ``dV/dt = -currents.sum(-1) + I_ext``."""
        V = state[..., :1]
        E = torch.tensor(self.E, dtype=state.dtype, device=state.device)
        return g * self.open_fraction(state) * (V - E)

    def steady_state(self, V: Tensor, g: Tensor) -> Tensor:  # pragma: no cover
        """(N, S) state with every gate (and calcium) at its steady state for the clamped voltages V (N,)."""
        raise NotImplementedError

    def dic_terms(self, V: Tensor, g: Tensor):  # pragma: no cover
        raise NotImplementedError

    def pair_rule(self, g_s: Tensor, g_u: Tensor) -> Tensor:  # pragma: no cover
        raise NotImplementedError


_E_CACHE: dict = {}


def _E(E: tuple, like: Tensor) -> Tensor:
    """Reversal potentials as a tensor on ``like``'s device and dtype (cached: built once per run)."""
    key = (E, like.dtype, like.device)
    if key not in _E_CACHE:
        _E_CACHE[key] = torch.tensor(E, dtype=like.dtype, device=like.device)
    return _E_CACHE[key]


def _exp_euler_V(V: Tensor, G: Tensor, GE: Tensor, I_ext: Tensor, dt: float) -> Tensor:
    """Exact update of ``dV/dt = -G V + GE + I_ext`` with G, GE frozen over dt (stable for stiff G)."""
    V_inf = (GE + I_ext) / G
    return V_inf + (V - V_inf) * torch.exp(-dt * G)


# ============================================================================== STG
@dataclass(frozen=True)
class STGModel(ConductanceModel):
    """The STG neuron: state columns V, m_Na, h_Na, m_Kd, m_CaT, h_CaT, m_CaS, h_CaS, m_A, h_A, m_H,
    m_KCa, Ca (13). Gate order of :meth:`vgates`: m_Na, h_Na, m_Kd, m_CaT, h_CaT, m_CaS, h_CaS, m_A, h_A,
    m_H, s_KCa (the voltage factor of m_KCa_inf; its tau is tau_m_KCa)."""

    alpha_Ca: float = 0.94
    beta_Ca: float = 0.05
    tau_Ca: float = 20.0
    Ca0: float = 0.5

    def vgates(self, V: Tensor) -> tuple[Tensor, Tensor]:
        inf = torch.stack([
            gsig(V, 0, 1, -5.29, 25.5), gsig(V, 0, 1, 5.18, 48.9), gsig(V, 0, 1, -11.8, 12.3),
            gsig(V, 0, 1, -7.2, 27.1), gsig(V, 0, 1, 5.5, 32.1), gsig(V, 0, 1, -8.1, 33.0),
            gsig(V, 0, 1, 6.2, 60.0), gsig(V, 0, 1, -8.7, 27.2), gsig(V, 0, 1, 4.9, 56.9),
            gsig(V, 0, 1, 6.0, 70.0), gsig(V, 0, 1, -12.6, 28.3)], -1)
        tau = torch.stack([
            gsig(V, 1.32, -1.26, -25, 120), gsig(V, 0, 0.67, -10, 62.9) * gsig(V, 1.5, 1, 3.6, 34.9),
            gsig(V, 7.2, -6.4, -19.2, 28.3), gsig(V, 21.7, -21.3, -20.5, 68.1),
            gsig(V, 105, -89.8, -16.9, 55), 1.4 + 7 / (torch.exp((V + 27) / 10) + torch.exp(-(V + 70) / 13)),
            60 + 150 / (torch.exp((V + 55) / 9) + torch.exp(-(V + 65) / 16)),
            gsig(V, 11.6, -10.4, -15.2, 32.9), gsig(V, 38.6, -29.2, -26.5, 38.9),
            gsig(V, 272, 1499, -8.73, 42.2), gsig(V, 90.3, -75.1, -22.7, 46)], -1)
        return inf, tau

    def _dinf(self, V: Tensor) -> Tensor:
        """(..., 11) d x_inf / dV of the gates of :meth:`vgates`."""
        return torch.stack([
            d_gsig(V, 0, 1, -5.29, 25.5), d_gsig(V, 0, 1, 5.18, 48.9), d_gsig(V, 0, 1, -11.8, 12.3),
            d_gsig(V, 0, 1, -7.2, 27.1), d_gsig(V, 0, 1, 5.5, 32.1), d_gsig(V, 0, 1, -8.1, 33.0),
            d_gsig(V, 0, 1, 6.2, 60.0), d_gsig(V, 0, 1, -8.7, 27.2), d_gsig(V, 0, 1, 4.9, 56.9),
            d_gsig(V, 0, 1, 6.0, 70.0), d_gsig(V, 0, 1, -12.6, 28.3)], -1)

    def init_state(self, n: int, dtype=torch.float32, device=None) -> Tensor:
        V = torch.full((n,), self.V0, dtype=dtype, device=device)
        inf, _ = self.vgates(V)
        Ca = torch.full((n,), self.Ca0, dtype=dtype, device=device)
        m_kca = Ca / (Ca + 3) * inf[:, 10]
        return torch.cat([V[:, None], inf[:, :10], m_kca[:, None], Ca[:, None]], 1)

    def open_fraction(self, state: Tensor) -> Tensor:
        x = state
        return torch.stack([
            x[..., 1] ** 3 * x[..., 2], x[..., 3] ** 4, x[..., 4] ** 3 * x[..., 5], x[..., 6] ** 3 * x[..., 7],
            x[..., 11] ** 4, x[..., 8] ** 3 * x[..., 9], x[..., 10], torch.ones_like(x[..., 0])], -1)

    def step(self, state, g, I_ext, dt, inf, decay):
        """One exponential-Euler step. ``inf``, ``decay`` = exp(-dt/tau): (N, 11) at the current V."""
        V, Ca = state[:, 0], state[:, 12]
        gates = inf[:, :10] + (state[:, 1:11] - inf[:, :10]) * decay[:, :10]
        m_kca_inf = Ca / (Ca + 3) * inf[:, 10]
        m_kca = m_kca_inf + (state[:, 11] - m_kca_inf) * decay[:, 10]
        new = torch.cat([V[:, None], gates, m_kca[:, None], Ca[:, None]], 1)
        Gc = g * self.open_fraction(new)  # (N, 8)
        V_new = _exp_euler_V(V, Gc.sum(1), Gc @ _E(self.E, state), I_ext, dt)
        # calcium with the currents at the new voltage (I_Ca = G_Ca (V - E_Ca)) and gates
        I_Ca = (Gc[:, 2] + Gc[:, 3]) * (V_new - self.E[2])
        Ca_inf = self.beta_Ca - self.alpha_Ca * I_Ca
        Ca_new = Ca_inf + (Ca - Ca_inf) * math.exp(-dt / self.tau_Ca)
        return torch.cat([V_new[:, None], gates, m_kca[:, None], Ca_new[:, None]], 1)

    def ca_inf(self, V: Tensor, g: Tensor, inf: Tensor | None = None) -> Tensor:
        """Steady-state calcium at clamped V: ``beta - alpha * (I_CaT,inf + I_CaS,inf)``. V (N,), g (N, 8)."""
        if inf is None:
            inf, _ = self.vgates(V)
        I_Ca = (g[..., 2] * inf[..., 3] ** 3 * inf[..., 4] + g[..., 3] * inf[..., 5] ** 3 * inf[..., 6]) * (V - self.E[2])
        return self.beta_Ca - self.alpha_Ca * I_Ca

    def steady_state(self, V: Tensor, g: Tensor) -> Tensor:
        inf, _ = self.vgates(V)
        Ca = self.ca_inf(V, g)
        return torch.cat([V[..., None], inf[..., :10], (Ca / (Ca + 3) * inf[..., 10])[..., None], Ca[..., None]], -1)

    def dic_terms(self, V: Tensor, g: Tensor):
        """Ingredients of the DICs at clamped V (N,) for conductances g (N, 8) (notes sec. 3).

        Returns ``P0`` (N, 8) steady open fractions (the ohmic part, all fast), ``terms``: a list of
        (channel index, value (N,), tau (N,)) where value = dP/dx * dx_inf/dV * (V - E) for each gate x
        with time constant tau, and the boundaries ``(tau_f, tau_s, tau_u)`` (N,) each."""
        inf, tau = self.vgates(V)
        dinf = self._dinf(V)
        Ca = self.ca_inf(V, g, inf)
        cfac = Ca / (Ca + 3)
        m_kca = cfac * inf[:, 10]
        state = torch.cat([V[:, None], inf[:, :10], m_kca[:, None], Ca[:, None]], 1)
        P0 = self.open_fraction(state)
        E = self.E
        mNa, hNa, mKd, mT, hT, mS, hS, mA, hA, mH = inf[:, :10].unbind(1)
        d = dinf.unbind(1)
        t = tau.unbind(1)
        # d I_Ca,inf / dV (ohmic term included), for the calcium chain of KCa
        dICa = (g[:, 2] * (3 * mT**2 * hT * d[3] * (V - E[2]) + mT**3 * d[4] * (V - E[2]) + mT**3 * hT)
                + g[:, 3] * (3 * mS**2 * hS * d[5] * (V - E[3]) + mS**3 * d[6] * (V - E[3]) + mS**3 * hS))
        dCa_dV = -self.alpha_Ca * dICa
        dm_dCa = 3 * inf[:, 10] / (Ca + 3) ** 2
        terms = [
            (0, 3 * mNa**2 * hNa * d[0] * (V - E[0]), t[0]), (0, mNa**3 * d[1] * (V - E[0]), t[1]),
            (1, 4 * mKd**3 * d[2] * (V - E[1]), t[2]),
            (2, 3 * mT**2 * hT * d[3] * (V - E[2]), t[3]), (2, mT**3 * d[4] * (V - E[2]), t[4]),
            (3, 3 * mS**2 * hS * d[5] * (V - E[3]), t[5]), (3, mS**3 * d[6] * (V - E[3]), t[6]),
            (4, 4 * m_kca**3 * cfac * d[10] * (V - E[4]), t[10]),
            (4, 4 * m_kca**3 * dm_dCa * dCa_dV * (V - E[4]), torch.full_like(V, self.tau_Ca)),
            (5, 3 * mA**2 * hA * d[7] * (V - E[5]), t[7]), (5, mA**3 * d[8] * (V - E[5]), t[8]),
            (6, d[9] * (V - E[6]), t[9]),
        ]
        return P0, terms, (t[0], t[2], t[9])

    def pair_rule(self, g_s: Tensor, g_u: Tensor) -> Tensor:
        """(N, 2) indices of the two conductances modulated toward (g_s, g_u) (notes sec. 4, step B):
        g_u < 0 -> (CaS, A); g_s >= 0 -> (A, H); else (CaS, H)."""
        CaS, A, H = 3, 5, 6
        first = torch.where((g_u < 0) | (g_s < 0), CaS, A)
        second = torch.where(g_u < 0, A, H)
        first = torch.where((g_u >= 0) & (g_s >= 0), A, first)
        return torch.stack([first, second], -1)


# ============================================================================== DA
def _tau_m_na_da(V: Tensor) -> Tensor:
    return 0.01 + 1.0 / (-(15.6504 + 0.4043 * V) / (torch.exp(-19.565 - 0.5052 * V) - 1.0)
                         + 3.0212 * torch.exp(-7.4630e-3 * V))


def _tau_h_na_da(V: Tensor) -> Tensor:
    return 0.4 + 1.0 / (5.0754e-4 * torch.exp(-6.3213e-2 * V) + 9.7529 * torch.exp(0.13442 * V))


def _erg_rates(V: Tensor):
    return (0.0036 * torch.exp(0.0759 * V), 1.2523e-5 * torch.exp(-0.0671 * V),
            0.1 * torch.exp(0.1189 * V), 0.003 * torch.exp(-0.0733 * V))


@dataclass(frozen=True)
class DAModel(ConductanceModel):
    """The DA neuron: state columns V, m_Na, h_Na, n_Kd, m_CaL, m_CaN, o_ERG, i_ERG (8). Gate order of
    :meth:`vgates`: m_Na, h_Na, n_Kd, m_CaL, m_CaN."""

    Mg: float = 1.4
    tau_u_const: float = 100.0

    def vgates(self, V: Tensor) -> tuple[Tensor, Tensor]:
        inf = torch.stack([gsig(V, 0, 1, -9.7264, 30.0907), gsig(V, 0, 1, 10.7665, 54.0289),
                           gsig(V, 0, 1, -12, 25), gsig(V, 0, 1, -2, 50), gsig(V, 0, 1, -7, 30)], -1)
        tau = torch.stack([_tau_m_na_da(V), _tau_h_na_da(V), gsig(V, 20, -18, -10, 38),
                           gsig(V, 30, -28, -3, 45), gsig(V, 30, -25, -6, 55)], -1)
        return inf, tau

    def _dinf(self, V: Tensor) -> Tensor:
        return torch.stack([d_gsig(V, 0, 1, -9.7264, 30.0907), d_gsig(V, 0, 1, 10.7665, 54.0289),
                            d_gsig(V, 0, 1, -12, 25), d_gsig(V, 0, 1, -2, 50), d_gsig(V, 0, 1, -7, 30)], -1)

    def nmda_block(self, V: Tensor) -> Tensor:
        return 1 / (1 + self.Mg * torch.exp(-0.08 * V) / 10.0)

    def erg_steady(self, V: Tensor) -> tuple[Tensor, Tensor]:
        """Steady (o, i) of the 3-state ERG scheme at clamped V."""
        a0, b0, ai, bi = _erg_rates(V)
        o = a0 * bi / (a0 * (ai + bi) + b0 * bi)
        return o, ai * o / bi

    def init_state(self, n: int, dtype=torch.float32, device=None) -> Tensor:
        V = torch.full((n,), self.V0, dtype=dtype, device=device)
        inf, _ = self.vgates(V)
        o = _erg_rates(V)[0]
        return torch.cat([V[:, None], inf, o[:, None], torch.zeros_like(V)[:, None]], 1)

    def open_fraction(self, state: Tensor) -> Tensor:
        x = state
        return torch.stack([x[..., 1] ** 3 * x[..., 2], x[..., 3] ** 3, x[..., 4] ** 2, x[..., 5], x[..., 6],
                            self.nmda_block(x[..., 0]), torch.ones_like(x[..., 0])], -1)

    def step(self, state, g, I_ext, dt, inf, decay):
        V = state[:, 0]
        gates = inf + (state[:, 1:6] - inf) * decay
        # ERG: semi-implicit (backward Euler in o then i), stable for the fast rates at high V
        a0, b0, ai, bi = _erg_rates(V)
        o, i = state[:, 6], state[:, 7]
        o = (o + dt * (a0 * (1 - i) + bi * i)) / (1 + dt * (a0 + ai + b0))
        i = (i + dt * ai * o) / (1 + dt * bi)
        new = torch.cat([V[:, None], gates, o[:, None], i[:, None]], 1)
        Gc = g * self.open_fraction(new)
        V_new = _exp_euler_V(V, Gc.sum(1), Gc @ _E(self.E, state), I_ext, dt)
        return torch.cat([V_new[:, None], gates, o[:, None], i[:, None]], 1)

    def steady_state(self, V: Tensor, g: Tensor) -> Tensor:
        inf, _ = self.vgates(V)
        o, i = self.erg_steady(V)
        return torch.cat([V[..., None], inf, o[..., None], i[..., None]], -1)

    def dic_terms(self, V: Tensor, g: Tensor):
        """As :meth:`STGModel.dic_terms`; ERG is forced all-ultraslow (tau = inf) and the NMDA block
        all-fast (tau = 0); boundaries tau_m_Na, tau_n_Kd and a constant 100 ms (notes sec. 3)."""
        inf, tau = self.vgates(V)
        dinf = self._dinf(V)
        P0 = self.open_fraction(self.steady_state(V, g))
        E = self.E
        mNa, hNa, n, mL, mN = inf.unbind(1)
        d = dinf.unbind(1)
        t = tau.unbind(1)
        a0, b0, ai, bi = _erg_rates(V)
        da0, db0, dai, dbi = 0.0759 * a0, -0.0671 * b0, 0.1189 * ai, -0.0733 * bi
        f, fp = a0 * bi, da0 * bi + a0 * dbi
        h = a0 * (ai + bi) + b0 * bi
        hp = da0 * (ai + bi) + a0 * (dai + dbi) + db0 * bi + b0 * dbi
        do = (fp * h - f * hp) / h**2
        B = self.nmda_block(V)
        dB = 0.08 * self.Mg * torch.exp(-0.08 * V) * B**2 / 10.0
        inf_t, zero_t = torch.full_like(V, math.inf), torch.zeros_like(V)
        terms = [
            (0, 3 * mNa**2 * hNa * d[0] * (V - E[0]), t[0]), (0, mNa**3 * d[1] * (V - E[0]), t[1]),
            (1, 3 * n**2 * d[2] * (V - E[1]), t[2]), (2, 2 * mL * d[3] * (V - E[2]), t[3]),
            (3, d[4] * (V - E[3]), t[4]), (4, do * (V - E[4]), inf_t), (5, dB * (V - E[5]), zero_t),
        ]
        return P0, terms, (t[0], t[2], torch.full_like(V, self.tau_u_const))

    def pair_rule(self, g_s: Tensor, g_u: Tensor) -> Tensor:
        """(N, 2): g_s < 0 -> (ERG, CaL); else (ERG, Kd) (notes sec. 4, the app's rule)."""
        ERG, CaL, Kd = 4, 2, 1
        return torch.stack([torch.full_like(g_s, ERG, dtype=torch.long),
                            torch.where(g_s < 0, CaL, Kd)], -1)


STG = STGModel(
    name="stg", names=("Na", "Kd", "CaT", "CaS", "KCa", "A", "H", "leak"),
    E=(50.0, -80.0, 80.0, 80.0, -80.0, -80.0, -20.0, -50.0), V_th=-51.0, V0=-70.0,
    dic_box={"g_s": (-20.0, 20.0), "g_u": (0.0, 20.0)},
    seed_ranges={"Kd": (70.0, 140.0), "CaT": (3.0, 7.0), "CaS": (6.0, 22.0), "KCa": (140.0, 180.0),
                 "leak": (0.007, 0.014)},
    seed_solved=("Na", "A", "H"), seed_dics=(-6.2, 4.0, 5.0),
    upper={"Na": 8000.0, "Kd": 350.0, "CaT": 12.0, "CaS": 50.0, "KCa": 250.0, "A": 600.0, "H": 0.7,
           "leak": 0.02},
    t_total=3000.0, t_transient=1000.0, dt=0.05, dt_noise=0.1,
)

DA = DAModel(
    name="da", names=("Na", "Kd", "CaL", "CaN", "ERG", "NMDA", "leak"),
    E=(60.0, -85.0, 60.0, 60.0, -85.0, 0.0, -50.0), V_th=-55.5, V0=-90.0,
    dic_box={"g_s": (-10.0, 15.0), "g_u": (0.0, 20.0)},
    seed_ranges={"Kd": (6.0, 10.0), "CaL": (0.015, 0.075), "NMDA": (0.012, 0.012), "leak": (0.0087, 0.017)},
    seed_solved=("Na", "CaN", "ERG"), seed_dics=(-3.9 * 0.5 - 11.0, 0.5, 5.0),
    upper={},
    t_total=10000.0, t_transient=2000.0, dt=0.05, dt_noise=0.05,
)

MODELS: dict[str, ConductanceModel] = {"stg": STG, "da": DA}


def get_model(name: str) -> ConductanceModel:
    """The model called ``name`` ("stg" or "da"); anything else is an InputError on ``model``."""
    from core.errors import InputError

    key = str(name).lower()
    if key not in MODELS:
        raise InputError("model", f"unknown conductance model {name!r}; choose one of {', '.join(MODELS)}")
    return MODELS[key]
