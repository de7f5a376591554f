"""The clustered AdEx network's free parameters (AutoMIND's 28, in the reference's order), their prior box,
the fixed defaults (Zerlaut et al. 2018, as the reference) and the simulation settings.

Units are the reference's (brian2) units: mV, ms, nS, pF, pA, Hz. The reference's exact prior bounds are
not public (only the figshare ``prior.pickle``); the box below encloses every posterior-sample span the
reference's demos show (``shared/spec/automind-notes.md`` section 1) and brackets the defaults for the
parameters the demos do not show. ``tau_w`` is the one deliberate change: see ``TAU_W_NOTE``.
"""

from __future__ import annotations

import numpy as np
import param
import torch
from torch import Tensor

from ..errors import InputError, parameter_error
from ..model import FreeParameter

#: bump when the simulator, parameters or features change: data sets and estimators record it and a
#: data set from another version is refused
MODEL_VERSION = "adex-clustered-1"

TAU_W_NOTE = ("tau_w: the reference's posterior samples span 2.4-14.1 s, fitted to 120-200 s runs with "
              "~20 s burst intervals; with the 2-3 s runs this CPU affords, a 15 s adaptation never "
              "recovers within a run, so the box is 0.1-5 s (bursting regimes with sub-second intervals)")

PARAMETERS: tuple[FreeParameter, ...] = (
    FreeParameter("net.exc_prop", 0.6, 0.95, "", "fraction of excitatory cells"),
    FreeParameter("net.p_e2e", 0.01, 0.1, "", "E->E connection probability (at N=2000; see degree scaling)"),
    FreeParameter("net.p_e2i", 0.01, 0.1, "", "E->I connection probability"),
    FreeParameter("net.p_i2e", 0.05, 0.2, "", "I->E connection probability"),
    FreeParameter("net.p_i2i", 0.05, 0.2, "", "I->I connection probability"),
    FreeParameter("net.R_pe2e", 1.0, 5.0, "", "in-cluster / out-of-cluster E->E probability ratio"),
    FreeParameter("net.R_Qe2e", 1.0, 2.0, "", "in-cluster E->E weight ratio"),
    FreeParameter("Epop.p_igniters", 0.1, 1.0, "", "fraction of E cells receiving the Poisson drive"),
    FreeParameter("net.n_clusters", 1.0, 20.0, "", "number of E clusters (floored)"),
    FreeParameter("Epop.C", 100.0, 300.0, "pF", "membrane capacitance"),
    FreeParameter("Epop.g_L", 5.0, 15.0, "nS", "leak conductance"),
    FreeParameter("Epop.v_rest", -75.0, -55.0, "mV", "resting potential"),
    FreeParameter("Epop.v_thresh", -55.0, -45.0, "mV", "exponential threshold"),
    FreeParameter("Epop.v_reset", -75.0, -55.0, "mV", "reset potential"),
    FreeParameter("Epop.t_refrac", 1.0, 10.0, "ms", "refractory period"),
    FreeParameter("Epop.delta_T", 0.5, 4.0, "mV", "exponential slope factor"),
    FreeParameter("Epop.a", 0.0, 10.0, "nS", "subthreshold adaptation"),
    FreeParameter("Epop.b", 0.0, 100.0, "pA", "spike-triggered adaptation"),
    FreeParameter("Epop.tau_w", 100.0, 5000.0, "ms", "adaptation time constant (scaled: TAU_W_NOTE)"),
    FreeParameter("Epop.E_gi", -85.0, -65.0, "mV", "inhibitory reversal potential"),
    FreeParameter("Epop.Q_ge", 1.0, 5.0, "nS", "E->E quantal conductance"),
    FreeParameter("Epop.Q_gi", 1.0, 20.0, "nS", "I->E quantal conductance"),
    FreeParameter("Epop.tau_ge", 2.0, 20.0, "ms", "excitatory synaptic decay in E cells"),
    FreeParameter("Epop.tau_gi", 1.5, 20.0, "ms", "inhibitory synaptic decay in E cells"),
    FreeParameter("Epop.poisson_rate", 1.0, 5.0, "Hz", "rate of each of the 500 drive sources (E igniters)"),
    FreeParameter("Ipop.Q_ge", 1.0, 5.0, "nS", "E->I quantal conductance"),
    FreeParameter("Ipop.Q_gi", 1.0, 20.0, "nS", "I->I quantal conductance"),
    FreeParameter("Ipop.poisson_rate", 1.0, 5.0, "Hz", "rate of each of the 500 drive sources (I cells)"),
)
PARAMETER_NAMES: tuple[str, ...] = tuple(p.name for p in PARAMETERS)
INDEX = {name: i for i, name in enumerate(PARAMETER_NAMES)}

#: fixed values (Zerlaut et al. 2018, the reference's defaults) for everything not sampled. The I
#: population keeps these intrinsics (the public code overwrites only Epop's).
DEFAULTS: dict[str, float] = {
    "C": 200.0, "g_L": 10.0, "v_rest": -65.0, "v_thresh": -50.0, "delta_T": 2.0, "a": 4.0, "tau_w": 500.0,
    "b": 20.0, "v_reset": -65.0, "t_refrac": 5.0, "E_ge": 0.0, "E_gi": -80.0, "Q_ge": 1.0, "Q_gi": 5.0,
    "tau_ge": 5.0, "tau_gi": 5.0, "N_poisson": 500, "Q_poisson": 1.0, "poisson_rate": 1.0, "I_bias": 0.0,
}


class NetworkConfig(param.Parameterized):
    """Simulation settings of the network (sizes, duration, step, analysis window, early stop)."""

    n_neurons = param.Integer(400, bounds=(2, 5000), doc="cells, E and I together (reference: 2000)")
    duration = param.Number(2.5, bounds=(0.2, None), doc="simulated time (s) (reference: ~200 s)")
    dt = param.Number(0.2, bounds=(0.01, 1.0), doc="Euler step (ms), as the reference")
    reference_n = param.Integer(2000, bounds=(2, None), doc=(
        "connection probabilities are given for a network of this size; a smaller network scales them by "
        "reference_n / n_neurons (capped at 1) so each cell keeps the reference's in-degree p*N_pre"))
    t_start = param.Number(0.1, bounds=(0, None), doc="analysis window start (s): the first 0.1 s is skipped")
    t_early_stop = param.Number(0.6, bounds=(0, None), doc=(
        "early-stop check time (s): the normalized E rate t_refrac * spikes per E cell / window over "
        "[t_start, t_early_stop] <= 1e-4 (silent) or >= 0.99 (exploding) freezes that network (flagged)"))
    v_cut_rule = param.Selector(default="per_sample", objects=["per_sample", "default"], doc=(
        "spike cut v_cut = v_thresh + 5 delta_T of each sample ('per_sample'), or of the defaults "
        "(-40 mV for all, the public code's quirk: 'default')"))

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.param if k != "name"}

    @classmethod
    def from_dict(cls, d: dict | None, field: str = "network") -> "NetworkConfig":
        d = dict(d or {})
        unknown = set(d) - set(cls.param)
        if unknown:
            key = sorted(unknown)[0]
            raise InputError(f"{field}[{key}]", f"unknown network setting {key!r}")
        try:
            return cls(**d)
        except (ValueError, TypeError) as exc:
            raise parameter_error(field, exc) from exc


def bounds(device: torch.device | str = "cpu") -> tuple[Tensor, Tensor]:
    """Lower and upper prior bounds, each (28,)."""
    lo = torch.tensor([p.lower for p in PARAMETERS], dtype=torch.float32, device=device)
    hi = torch.tensor([p.upper for p in PARAMETERS], dtype=torch.float32, device=device)
    return lo, hi


def sample_prior(n: int, seed: int = 0) -> Tensor:
    """n draws from the uniform prior box: (n, 28)."""
    lo, hi = bounds()
    g = torch.Generator().manual_seed(int(seed))
    return lo + (hi - lo) * torch.rand(n, len(PARAMETERS), generator=g)


def to_unit(theta: Tensor | np.ndarray) -> Tensor:
    """Min-max scale to [0, 1] by the prior bounds (the reference's 'unity prior' space)."""
    theta = torch.as_tensor(np.asarray(theta) if not isinstance(theta, Tensor) else theta, dtype=torch.float32)
    lo, hi = bounds(theta.device)
    return (theta - lo) / (hi - lo)


def from_unit(u: Tensor | np.ndarray) -> Tensor:
    """Inverse of :func:`to_unit`."""
    u = torch.as_tensor(np.asarray(u) if not isinstance(u, Tensor) else u, dtype=torch.float32)
    lo, hi = bounds(u.device)
    return lo + (hi - lo) * u


def default_theta() -> Tensor:
    """The reference's defaults as a (28,) vector (clipped into the box): an asynchronous-ish network."""
    d = {"net.exc_prop": 0.8, "net.p_e2e": 0.05, "net.p_e2i": 0.05, "net.p_i2e": 0.05, "net.p_i2i": 0.05,
         "net.R_pe2e": 1.0, "net.R_Qe2e": 1.0, "Epop.p_igniters": 1.0, "net.n_clusters": 1.0,
         "Epop.poisson_rate": 2.0, "Ipop.poisson_rate": 2.0}
    for key in ("C", "g_L", "v_rest", "v_thresh", "v_reset", "t_refrac", "delta_T", "a", "b", "tau_w", "E_gi",
                "Q_ge", "Q_gi", "tau_ge", "tau_gi"):
        d[f"Epop.{key}"] = DEFAULTS[key]
    d["Ipop.Q_ge"], d["Ipop.Q_gi"] = DEFAULTS["Q_ge"], DEFAULTS["Q_gi"]
    lo, hi = bounds()
    return torch.minimum(torch.maximum(torch.tensor([d[n] for n in PARAMETER_NAMES]), lo), hi)


def check_theta(theta: Tensor, field: str = "theta") -> Tensor:
    """theta as a finite float tensor (B, 28); an InputError naming ``field`` otherwise."""
    theta = torch.as_tensor(theta, dtype=torch.float32)
    if theta.ndim == 1:
        theta = theta[None]
    if theta.ndim != 2 or theta.shape[1] != len(PARAMETERS):
        raise InputError(field, f"expected shape (batch, {len(PARAMETERS)}), got {tuple(theta.shape)}")
    if not torch.isfinite(theta).all():
        raise InputError(field, "contains NaN or infinite values")
    return theta
