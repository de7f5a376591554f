"""The seed's pipeline: spike times -> density over (g_s, g_u) -> sampled targets -> compensated
population -> simulated activity -> metrics, compared with the input's as distributions.

* :func:`generate` is the fast part (network + sampling + compensation, no simulation).
* :func:`input_population` builds a ground-truth population for a (g_s, g_u) target (compensation +
  simulation), used by the benchmark, the tests and the ``--dic`` mode of the CLI.
* :func:`compare` gives, per metric, the median relative error of the generated neurons to the input
  population's median, and the fraction of generated neurons in the input's regime.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from core.errors import InputError

from .compensation import CompensationResult, compensate
from .density import DICDensity, check_trains
from .metrics import CLASSES, METRICS, activity_metrics
from .models import ConductanceModel
from .simulate import SimulationResult, simulate
from .spikes import SpikeTrains

Tensor = torch.Tensor

#: the metrics compared for each regime
REGIME_METRICS = {"spiking": ("f_spiking",),
                  "bursting": ("burst_duration", "intra_burst_f", "inter_burst_f", "spikes_per_burst")}


def sample_targets(density: DICDensity, trains: SpikeTrains, n: int, seed: int = 0) -> Tensor:
    """(n, 2) (g_s, g_u) targets: one density sample per input train, cycling over the trains (the
    seed's Fig. 4: one sampled target per input neuron)."""
    check_trains(trains)
    m = -(-n // len(trains))
    s = density.sample(trains, m, generator_seed=seed)          # (T, m, 2)
    return s.transpose(0, 1).reshape(-1, 2)[:n]


def generate(model: ConductanceModel, density: DICDensity, trains: SpikeTrains, n: int, seed: int = 0,
             **kw: Any) -> CompensationResult:
    """A degenerate population of n neurons for spike trains (network -> targets -> compensation)."""
    if density.config["model"] != model.name:
        raise InputError("network", f"the network was trained for the {density.config['model'].upper()} model, "
                                    f"not {model.name.upper()}")
    targets = sample_targets(density, trains, n, seed)
    return compensate(model, targets, seed=seed, **kw)


def input_population(model: ConductanceModel, target, n: int, seed: int = 0, noise_sigma: float = 0.0,
                     record: int = 0, **sim_kw: Any) -> tuple[CompensationResult, SimulationResult]:
    """Ground truth: n neurons compensated to ``target`` (g_s, g_u), simulated."""
    comp = compensate(model, target, n=n, seed=seed)
    sim = simulate(model, comp.g[comp.ok], noise_sigma=noise_sigma, seed=seed, record=record, **sim_kw)
    return comp, sim


def regime(metrics: dict[str, Tensor]) -> str:
    """The majority class of a population ('silent', 'spiking' or 'bursting')."""
    counts = torch.bincount(metrics["cls"], minlength=3)
    return CLASSES[int(counts.argmax())]


def compare(m_in: dict[str, Tensor], m_gen: dict[str, Tensor]) -> dict[str, Any]:
    """Agreement of generated vs input metrics: ``regime`` (input's), ``in_regime`` (fraction of generated
    neurons of that class), and per metric of the regime ``err[metric]`` = median over generated
    neurons in regime of |m - median_in| / |median_in|, ``spread[metric]`` the same for the input neurons
    themselves (the floor set by the input population's own diversity)."""
    reg = regime(m_in)
    code = CLASSES.index(reg)
    gen_in = m_gen["cls"] == code
    out: dict[str, Any] = {"regime": reg, "in_regime": float(gen_in.double().mean()) if len(gen_in) else float("nan"),
                           "err": {}, "spread": {}, "median_in": {}, "median_gen": {}}
    inp = m_in["cls"] == code
    for k in REGIME_METRICS.get(reg, ()):
        a = m_in[k][inp]
        a = a[~torch.isnan(a)]
        b = m_gen[k][gen_in]
        b = b[~torch.isnan(b)]
        if len(a) == 0 or len(b) == 0:
            out["err"][k] = float("nan")
            continue
        med = float(a.median())
        out["median_in"][k], out["median_gen"][k] = med, float(b.median())
        out["err"][k] = float(((b - med).abs() / abs(med)).median())
        out["spread"][k] = float(((a - med).abs() / abs(med)).median())
    return out


@dataclass
class PipelineResult:
    """Everything the pipeline produced for one input (``trains``)."""

    model: ConductanceModel
    targets: Tensor
    population: CompensationResult
    simulation: SimulationResult | None
    metrics_in: dict[str, Tensor]
    metrics_gen: dict[str, Tensor] | None
    comparison: dict[str, Any] | None = None
    timings: dict[str, float] = field(default_factory=dict)


def run_pipeline(model: ConductanceModel, trains: SpikeTrains, density: DICDensity, n: int, seed: int = 0,
                 simulate_population: bool = True, record: int = 0, **sim_kw: Any) -> PipelineResult:
    """Spike trains -> generated population (n neurons) -> simulated activity -> metrics and comparison."""
    import time

    t0 = time.perf_counter()
    comp = generate(model, density, trains, n, seed)
    t1 = time.perf_counter()
    m_in = activity_metrics(trains)
    sim = m_gen = cmp = None
    if simulate_population and comp.ok.any():
        sim = simulate(model, comp.g[comp.ok], seed=seed, record=record, **sim_kw)
        m_gen = activity_metrics(sim.spikes)
        cmp = compare(m_in, m_gen)
    t2 = time.perf_counter()
    return PipelineResult(model, comp.targets, comp, sim, m_in, m_gen, cmp,
                          {"generate_s": t1 - t0, "simulate_s": t2 - t1})


def metrics_rows(m: dict[str, Tensor], source: str, units: list | None = None) -> list[dict[str, Any]]:
    """Rows for metrics.csv: source, unit, class and the metrics."""
    cls = m["cls"].numpy()
    cols = {k: m[k].numpy() for k in ("cv",) + METRICS}
    labels = units if units is not None else list(range(len(cls)))
    return [{"source": source, "unit": labels[i], "class": CLASSES[int(cls[i])],
             **{k: float(cols[k][i]) for k in cols}} for i in range(len(cls))]


def as_numpy_population(comp: CompensationResult) -> dict[str, np.ndarray]:
    """Arrays of ``population.npz`` (format in the README): g (n, k), names, units, targets, dics, ok,
    reason, V_th."""
    return {"g": comp.g.numpy(), "names": np.array(comp.names), "units": np.array("mS/cm2"),
            "targets": comp.targets.numpy(), "dics": comp.dics.numpy(), "ok": comp.ok.numpy(),
            "reason": np.array([str(r) for r in comp.reason]), "V_th": np.float64(comp.V_th)}
