"""Dynamic input conductances (Drion et al. 2015, as implemented by Brandoit et al.; notes sec. 3).

For a channel with gating product P and each gate x of time constant tau_x(V), the term
``g * dP/dx * dx_inf/dV * (V - E)`` is split over the fast, slow and ultraslow DICs by log-interpolated
shares between the model's boundary time constants (tau_f, tau_s, tau_u); the ohmic term ``g * P_inf(V)``
goes to g_f. Everything is divided by the cell's g_leak, so leak adds 1 to g_f and
``g_f + g_s + g_u = (dI_ss/dV) / g_leak``. For a fixed calcium linearisation the DICs are linear in g:
``dics = S g`` with the sensitivity matrix ``S`` (N, 3, k).
"""

from __future__ import annotations

import torch

from .models import ConductanceModel

Tensor = torch.Tensor


def log_share(tau: Tensor, t1: Tensor, t2: Tensor) -> Tensor:
    """w(tau; t1, t2): 1 if tau <= t1, 0 if tau > t2, else (ln t2 - ln tau) / (ln t2 - ln t1)."""
    mid = (torch.log(t2) - torch.log(tau.clamp_min(1e-300))) / (torch.log(t2) - torch.log(t1))
    return torch.where(tau <= t1, torch.ones_like(mid), torch.where(tau > t2, torch.zeros_like(mid), mid))


def timescale_shares(tau: Tensor, tau_f: Tensor, tau_s: Tensor, tau_u: Tensor) -> Tensor:
    """(..., 3) fast, slow, ultraslow shares of a gate with time constant tau (they sum to 1)."""
    w_fs = log_share(tau, tau_f, tau_s)
    w_su = log_share(tau, tau_s, tau_u)
    return torch.stack([w_fs, w_su - w_fs, 1 - w_su], -1)


def _voltage(model: ConductanceModel, V, n: int, dtype, device) -> Tensor:
    if V is None:
        V = model.V_th
    V = torch.as_tensor(V, dtype=dtype, device=device)
    return V.expand(n).clone() if V.ndim == 0 else V


def sensitivity(model: ConductanceModel, g: Tensor, V=None, g_ca: Tensor | None = None) -> Tensor:
    """S (N, 3, k) with ``dics = S @ g`` at voltage V (default: the model's V_th; scalar or (N,)).

    g: (N, k) conductances (``model.names`` order). For the STG model S depends on g_CaT, g_CaS through
    the steady-state calcium; ``g_ca`` (N, k), when given, supplies those values instead (the
    linearisation point of the compensation)."""
    g = torch.as_tensor(g)
    if not g.is_floating_point():
        g = g.double()
    n = g.shape[0]
    Vt = _voltage(model, V, n, g.dtype, g.device)
    P0, terms, (tf, ts, tu) = model.dic_terms(Vt, g if g_ca is None else g_ca)
    chans = torch.tensor([c for c, _, _ in terms], device=g.device)
    values = torch.stack([v for _, v, _ in terms], 1)                    # (N, T)
    taus = torch.stack([t for _, _, t in terms], 1)                      # (N, T)
    shares = timescale_shares(taus, tf[:, None], ts[:, None], tu[:, None])  # (N, T, 3)
    contrib = (shares * values[..., None]).transpose(1, 2)               # (N, 3, T)
    S = torch.zeros(n, 3, model.k, dtype=g.dtype, device=g.device)
    S[:, 0, :] = P0
    S.index_add_(2, chans, contrib.to(S.dtype))
    return S / g[:, -1, None, None]


def dics(model: ConductanceModel, g: Tensor, V=None) -> Tensor:
    """(N, 3) dynamic input conductances (g_f, g_s, g_u) of conductance vectors g (N, k) at V (default V_th)."""
    g = torch.as_tensor(g)
    if not g.is_floating_point():
        g = g.double()
    return torch.einsum("njk,nk->nj", sensitivity(model, g, V), g)


def dic_curves(model: ConductanceModel, g: Tensor, V: Tensor) -> Tensor:
    """(N, M, 3) DICs of g (N, k) over a voltage grid V (M,), vectorized over neurons and voltages."""
    g = torch.as_tensor(g, dtype=torch.float64)
    n, m = g.shape[0], V.shape[0]
    gg = g[:, None, :].expand(n, m, g.shape[1]).reshape(n * m, -1)
    VV = torch.as_tensor(V, dtype=torch.float64)[None, :].expand(n, m).reshape(-1)
    return dics(model, gg, VV).reshape(n, m, 3)
