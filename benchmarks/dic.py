"""DIC pipeline benchmark (issue #24): generation time, simulation throughput, and the agreement of
activity metrics between input and generated populations (the seed's Fig. 4/5 comparison).

    python benchmarks/dic.py [--quick] [--device auto|cpu|cuda] [--models stg,da] [--runs-dir runs]

Needs the trained networks of ``epi-dash dic train --model stg`` / ``--model da`` (in
``RUNS_DIR/dic/MODEL/network``). For each target (g_s, g_u) an input population of ``n_in`` neurons is
compensated and simulated; each input neuron's spike train goes through the network, one (g_s, g_u) is
sampled from its density and one neuron is compensated to it (so n_in generated neurons); the generated
population is simulated with the same settings and both are compared per metric of the input's regime:
median over generated neurons of |m - median_in| / median_in ("err"), the same for the input neurons
("spread": the floor set by the input's own diversity), and the fraction of generated neurons in the
input's regime. ``--quick`` uses 16 input neurons per target (simulations keep their length: the network
was trained on trains of that length, and the step count, not the batch, sets the cost on a CPU).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.conductance import (activity_metrics, compare, compensate, get_model, load_density,  # noqa: E402
                              sample_targets, simulate)
from core.conductance.pipeline import REGIME_METRICS  # noqa: E402
from core.settings import resolve_device  # noqa: E402

TARGETS = {
    "stg": [(6.0, 5.0), (12.0, 12.0), (-8.0, 6.0), (-14.0, 12.0)],
    "da": [(0.5, 5.0), (-2.0, 3.0)],
}
SHORT = {"generation_ms": "gen 1000 (ms)", "throughput": "neuron-s/s"}


def generation_ms(model, net, trains, n: int = 1000, repeats: int = 5) -> float:
    """Median wall time (ms) of spike train -> density samples -> 1000 compensated neurons."""
    times = []
    for r in range(repeats):
        t0 = time.perf_counter()
        targets = sample_targets(net, trains, n, seed=r)
        compensate(model, targets, seed=r)
        times.append((time.perf_counter() - t0) * 1e3)
    return sorted(times)[len(times) // 2]


def throughput(model, device: str, n: int, ms: float) -> float:
    """Simulated neuron-seconds per wall second (n neurons, ms of model time, default step)."""
    g = compensate(model, TARGETS[model.name][0], n=n, seed=0).g
    simulate(model, g[:2], duration=5.0, transient=0.0, device=device)  # warm-up
    if resolve_device(device).type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    simulate(model, g, duration=ms, transient=0.0, device=device)
    if resolve_device(device).type == "cuda":
        torch.cuda.synchronize()
    return n * ms / 1000.0 / (time.perf_counter() - t0)


def agreement(model, net, n_in: int, device: str, scale: float, seed: int = 0) -> list[dict]:
    """One row per target: regime, fraction in regime, err and spread per metric."""
    targets = TARGETS[model.name]
    comps = [compensate(model, t, n=n_in, seed=seed + i) for i, t in enumerate(targets)]
    g_in = torch.cat([c.g[c.ok] for c in comps])
    sizes = [int(c.ok.sum()) for c in comps]
    dur = (model.t_total - model.t_transient) * scale
    sim_in = simulate(model, g_in, duration=dur, device=device, seed=seed)
    m_in_all = activity_metrics(sim_in.spikes)
    rows, gens, starts = [], [], [0]
    for s in sizes:
        starts.append(starts[-1] + s)
    for i, t in enumerate(targets):
        idx = torch.arange(starts[i], starts[i + 1])
        tr = sim_in.spikes.subset(idx)
        live = torch.nonzero(tr.counts >= 3).flatten()
        y = sample_targets(net, tr.subset(live), len(live), seed=seed + i) if len(live) else torch.zeros(0, 2)
        gens.append(compensate(model, y, seed=seed + 100 + i) if len(live) else None)
    g_gen = torch.cat([c.g[c.ok] for c in gens if c is not None])
    gsizes = [int(c.ok.sum()) if c is not None else 0 for c in gens]
    sim_gen = simulate(model, g_gen, duration=dur, device=device, seed=seed + 1)
    m_gen_all = activity_metrics(sim_gen.spikes)
    g0 = 0
    for i, t in enumerate(targets):
        sl_in = slice(starts[i], starts[i + 1])
        sl_gen = slice(g0, g0 + gsizes[i])
        g0 += gsizes[i]
        m_in = {k: v[sl_in] for k, v in m_in_all.items()}
        m_gen = {k: v[sl_gen] for k, v in m_gen_all.items()}
        c = compare(m_in, m_gen)
        rows.append({"model": model.name, "target": t, "n_in": sizes[i], "n_gen": gsizes[i], **c})
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--device", default="auto")
    p.add_argument("--models", default="stg,da")
    p.add_argument("--runs-dir", default="runs")
    p.add_argument("--n-in", type=int, default=None, help="input neurons per target (default 128; quick 16)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    device = str(resolve_device(args.device))
    n_in = args.n_in or (16 if args.quick else 128)
    print(f"# benchmarks/dic.py{' --quick' if args.quick else ''} on {device}, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, n_in {n_in} per target")
    status = 0
    for name in args.models.split(","):
        model = get_model(name)
        scale = 1.0   # the network reads trains as long as its training set's: quick runs keep the length
        net = load_density(Path(args.runs_dir) / "dic" / model.name / "network")
        probe = compensate(model, TARGETS[model.name][0], n=4, seed=9)
        tr = simulate(model, probe.g, seed=9, device=device, duration=(model.t_total - model.t_transient) * scale).spikes
        tr = tr.subset(torch.nonzero(tr.counts >= 3).flatten()[:1])
        gen = generation_ms(model, net, tr, repeats=3 if args.quick else 7)
        thr_n = 200 if args.quick else 1000
        thr = throughput(model, device, thr_n, 100.0 if args.quick else 500.0)
        print(f"{model.name.upper()}: generate 1000 neurons from a spike train: {gen:.1f} ms (goal < 100); "
              f"simulation: {thr:.0f} neuron-s/s ({thr_n} neurons, dt {model.dt} ms)")
        rows = agreement(model, net, n_in, device, scale)
        print(f"{'model':<5} {'target (g_s,g_u)':<17} {'regime':<9} {'in regime':>9}  metric: err (input spread)")
        for r in rows:
            errs = "  ".join(f"{k}: {100 * r['err'].get(k, math.nan):.1f}% ({100 * r['spread'].get(k, math.nan):.1f}%)"
                             for k in REGIME_METRICS.get(r["regime"], ()))
            print(f"{r['model']:<5} {str(r['target']):<17} {r['regime']:<9} {100 * r['in_regime']:>8.1f}%  {errs}")
            if not (r["in_regime"] >= 0.0):
                status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
