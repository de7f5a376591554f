"""Many people training at once: total EPI iterations/s of K concurrent trainings, each a
``TrainingRunner`` thread as the dashboard starts them, in P server processes (K/P runs each, as
``epi-dash serve --num-procs P`` spreads sessions), and the lag of each process's event loop.

    .venv/bin/python -m benchmarks.concurrent_sessions [--model lds] [--runs 1 2 4 12] [--procs 1 2] [--seconds 15]

Every run uses 1 torch thread (the server's default) and the model's paper settings with one long
epoch. A process first waits until all its runs have made their first iteration, then all processes
count iterations over the same ``--seconds`` window while an asyncio loop in each sleeps 10 ms at a
time and records how late it wakes (the delay a page's update would see in that server process).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import tempfile
import time

import numpy as np


def _measure_process(model_name: str, runs: int, seconds: float, warmup_timeout: float, barrier, results) -> None:
    """One server process: ``runs`` trainings in threads; puts (iterations/s, loop lags in s) on ``results``."""
    import torch

    from core import EmergentProperty, load_model, settings_for
    from core.limits import ServerLimits
    from epi_dash.runner import TrainingRunner
    from epi_dash.scheduler import reset_scheduler

    torch.set_num_threads(1)
    reset_scheduler(ServerLimits(max_concurrent=runs))  # every run trains at once (no queue): what is measured
    runners = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(runs):
            model = load_model(model_name)
            flow, opt = settings_for(model, iters_per_epoch=10**7, num_epochs=1, seed=k + 1, device="cpu")
            runner = TrainingRunner()
            runner.start(model, EmergentProperty.default_for(model), flow, opt, f"{tmp}/run{k}")
            runners.append(runner)

        def iterations() -> int:
            return sum((r.last_iteration or {}).get("iteration", 0) for r in runners)

        deadline = time.monotonic() + warmup_timeout
        while any(r.last_iteration is None for r in runners) and time.monotonic() < deadline:
            for r in runners:
                r.drain()
            time.sleep(0.1)
        barrier.wait()

        async def loop_lags() -> list[float]:
            lags, end = [], time.perf_counter() + seconds
            while time.perf_counter() < end:
                t0 = time.perf_counter()
                await asyncio.sleep(0.01)
                lags.append(time.perf_counter() - t0 - 0.01)
                for r in runners:  # the workbench drains its runner's events on the loop too
                    r.drain()
            return lags

        start_its, start = iterations(), time.perf_counter()
        lags = asyncio.run(loop_lags())
        rate = (iterations() - start_its) / (time.perf_counter() - start)
        for r in runners:
            r.stop()
        for r in runners:
            r.join(60)
    results.put((rate, lags))


def measure(model_name: str, runs: int, procs: int, seconds: float, warmup_timeout: float = 120) -> dict:
    """Total iterations/s of ``runs`` trainings spread over ``procs`` processes, and loop-lag percentiles."""
    if runs < procs:
        raise ValueError(f"runs ({runs}) must be >= procs ({procs})")
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(procs), ctx.Queue()
    shares = [runs // procs + (i < runs % procs) for i in range(procs)]
    workers = [ctx.Process(target=_measure_process, args=(model_name, k, seconds, warmup_timeout, barrier, results))
               for k in shares]
    for w in workers:
        w.start()
    out = [results.get(timeout=warmup_timeout + seconds + 120) for _ in workers]
    for w in workers:
        w.join(60)
    lags = np.concatenate([np.asarray(lag) for _, lag in out]) * 1e3
    total = sum(rate for rate, _ in out)
    return dict(model=model_name, runs=runs, procs=procs, total_its=total, per_run_its=total / runs,
                lag_p50_ms=float(np.percentile(lags, 50)), lag_p95_ms=float(np.percentile(lags, 95)),
                lag_max_ms=float(lags.max()))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="lds")
    p.add_argument("--runs", type=int, nargs="+", default=[1, 2, 4, 12])
    p.add_argument("--procs", type=int, nargs="+", default=[1, 2])
    p.add_argument("--seconds", type=float, default=15.0)
    args = p.parse_args(argv)
    print("| model | runs | processes | total it/s | it/s per run | loop lag p50 / p95 / max (ms) |")
    print("|---|---|---|---|---|---|")
    for runs in args.runs:
        for procs in args.procs:
            if procs > runs:
                continue
            m = measure(args.model, runs, procs, args.seconds)
            print(f"| {m['model']} | {runs} | {procs} | {m['total_its']:.0f} | {m['per_run_its']:.0f} | "
                  f"{m['lag_p50_ms']:.1f} / {m['lag_p95_ms']:.1f} / {m['lag_max_ms']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
