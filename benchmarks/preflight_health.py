"""False alarms of the pre-flight check and of the health watch on the built-in models, and the
health watch's cost per iteration.

    python -m benchmarks.preflight_health [--quick] [--seeds 3] [--epochs 2] [--models lds,rnn]

1. ``preflight`` of lds, stg, v1, sc, rnn at their default properties, one report per seed: its findings.
2. short trainings (paper settings, ``--epochs`` epochs, ``health="warn"`` so every finding is counted
   and the run goes on) of the LDS and the RNN over ``--seeds`` seeds: the health findings.
3. ms per iteration of the LDS with the watch on and off (same seed, same steps).
``--quick``: 300 pre-flight draws, 1 seed, 1 epoch of 200 iterations (the test suite's smoke run)."""

from __future__ import annotations

import argparse
import time

import torch

from core import EPITrainer, load_model, settings_for
from core.preflight import preflight

PREFLIGHT_MODELS = ("lds", "stg", "v1", "sc", "rnn")


def preflight_rows(models, seeds, num_samples):
    rows = []
    for name in models:
        for seed in seeds:
            report = preflight(load_model(name), num_samples=num_samples, seed=seed, device="cpu")
            rows.append((name, seed, report.wall_time_s, [f"{f.verdict}:{f.statistic}" for f in report.findings]))
            print(f"preflight {name:4} seed {seed}: {report.wall_time_s:5.1f} s  findings {rows[-1][3] or 'none'}",
                  flush=True)
    return rows


def health_rows(models, seeds, epochs, iters):
    rows = []
    for name in models:
        for seed in seeds:
            model = load_model(name)
            extra = {"iters_per_epoch": iters} if iters else {}
            flow, opt = settings_for(model, seed=seed, health="warn", num_epochs=epochs, stop_early=False,
                                     device="cpu", **extra)
            t0 = time.perf_counter()
            result = EPITrainer(model, None, flow, opt).train()
            kinds = [f"{h['kind']}{'' if h['stop'] else '(notice)'}:{h['statistic'] or '-'}@{h['iteration']}"
                     for h in result.health]
            rows.append((name, seed, result.iterations, time.perf_counter() - t0, kinds))
            print(f"health    {name:4} seed {seed}: {result.iterations} its, {rows[-1][3]:5.1f} s, "
                  f"p {[round(p, 2) for p in result.history[-1]['p_values']]}  findings {kinds or 'none'}", flush=True)
    return rows


def overhead(n: int = 100, rounds: int = 6) -> tuple[float, float]:
    """LDS CPU ms per iteration with the health watch on and off (the watch probes every 20th), in
    interleaved blocks of ``n`` steps (process time: other processes on the cores count less)."""
    trainers = {}
    for health in ("warn", "off"):
        model = load_model("lds")
        flow, opt = settings_for(model, seed=1, init_iters=0, num_test_batches=10, health=health, device="cpu")
        tr = EPITrainer(model, None, flow, opt)
        tr.initialize()
        for _ in range(20):
            tr.step()
        trainers[health] = tr
    spent = dict.fromkeys(trainers, 0.0)
    for _ in range(rounds):
        for health, tr in trainers.items():
            t0 = time.process_time()
            for _ in range(n):
                rec = tr.step()
                if tr.health_watch is not None:
                    tr.health_watch.observe_iteration(rec)
            spent[health] += time.process_time() - t0
    return spent["warn"] / (n * rounds) * 1e3, spent["off"] / (n * rounds) * 1e3


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--samples", type=int, default=1000, help="pre-flight draws")
    p.add_argument("--models", default=",".join(PREFLIGHT_MODELS), help="pre-flight models")
    p.add_argument("--train-models", default="lds,rnn", help="health-watch trainings")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    seeds = [1] if args.quick else list(range(1, args.seeds + 1))
    models = args.models.split(",") if args.models else []
    train_models = args.train_models.split(",") if args.train_models else []
    pre = preflight_rows(models, seeds, 300 if args.quick else args.samples)
    health = health_rows(train_models, seeds, 1 if args.quick else args.epochs, 200 if args.quick else None)
    on, off = overhead(rounds=2 if args.quick else 6)
    print("\n| check | model | seeds | findings (false alarms unless noted) |\n|---|---|---|---|")
    for name in models:
        found = [f for r in pre if r[0] == name for f in r[3]]
        print(f"| pre-flight | {name} | {len(seeds)} | {len(found)} {sorted(set(found)) if found else ''} |")
    for name in train_models:
        found = [f for r in health if r[0] == name for f in r[4]]
        its = sum(r[2] for r in health if r[0] == name)
        print(f"| health watch ({its} its in all) | {name} | {len(seeds)} | {len(found)} {found if found else ''} |")
    print(f"\nLDS CPU ms per iteration: watch on {on:.2f}, off {off:.2f} ({100 * (on / off - 1):+.0f} %)")


if __name__ == "__main__":
    main()
