"""Past one machine: a sweep on the embedded executor vs a Dask LocalCluster, and the cost of streaming
a Dask-executed training live (through its run directory) against an in-process one.

    .venv/bin/python -m benchmarks.distributed [--quick] [--workers 2] [--set NAME=VALUE ...]

Rows:
* sweep: V1 X(y), y in {5, 10} Hz, 3 seeds (6 EPI runs): wall time in this process one after the other,
  and on a LocalCluster of ``--workers`` single-threaded worker processes (cluster start included).
  Default settings: the paper's, but ``num_epochs=2, iters_per_epoch=250`` so the row measures the
  executor, not convergence (``--set num_epochs=... `` for more; ``--quick``: 1 epoch of 30).
* streaming: an LDS training of a fixed length (``2 x 1,000`` iterations, quick ``2 x 100``) run as a job
  in this process (events on a queue) and on one Dask worker (events tailed from events.jsonl every 0.25 s,
  as the workbench does): iterations/s, time from submit to the first streamed iteration, and the delay
  of the last event behind the job's end.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch


def _overrides(items: list[str]) -> dict:
    from epi_dash.sweep_view import parse_settings

    return parse_settings(",".join(items))


def sweep_rows(quick: bool, workers: int, overrides: dict) -> list[dict]:
    from core.sweep import run_sweep, sweep_cells

    settings = {"num_epochs": 1, "iters_per_epoch": 30} if quick else {"num_epochs": 2, "iters_per_epoch": 250}
    settings.update(overrides, device="cpu")
    if _has_health():  # measure the executor, not a stop by the health watch
        settings.setdefault("health", "off")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, scheduler in (("embedded (this process)", None), (f"LocalCluster, {workers} workers", "local")):
            out = Path(tmp) / name.split()[0]
            cells = sweep_cells("v1", {"s_E.mean": [5.0, 10.0]}, 3, out, settings=settings)
            start = time.perf_counter()
            if scheduler == "local":
                from core.executors import dask_client

                with dask_client("local", n_workers=workers) as client:
                    from core.executors import map_tasks
                    from core.sweep import train_cell

                    outcomes = map_tasks(train_cell, cells, client=client)
            else:
                outcomes = run_sweep(cells, out)["outcomes"]
            wall = time.perf_counter() - start
            failed = [o["error"] for o in outcomes if o["state"] == "failed"]
            rows.append({"row": f"sweep V1 s_E in {{5, 10}} x 3 seeds: {name}", "value": f"{wall:.1f} s",
                         "note": f"{len(cells)} runs, {settings['num_epochs']} x {settings['iters_per_epoch']} its"
                                 + (f"; failed: {failed[0]}" if failed else "")})
    base = float(rows[0]["value"].split()[0])
    rows[1]["note"] += f"; speed-up {base / float(rows[1]['value'].split()[0]):.2f}x"
    return rows


def _has_health() -> bool:
    from core.settings import OptimizerSettings

    return "health" in OptimizerSettings.param


def streaming_rows(quick: bool) -> list[dict]:
    from core import load_model, settings_for
    from core.epi_job import epi_settings, train_epi
    from core.executors import DaskExecutor, InProcessExecutor
    from core.property import EmergentProperty

    model = load_model("lds")
    its = 100 if quick else 1000
    extra = {"health": "off"} if _has_health() else {}
    flow, opt = settings_for(model, num_epochs=2, iters_per_epoch=its, stop_early=False, device="cpu", **extra)
    settings = epi_settings("lds", model, EmergentProperty.default_for(model), flow, opt)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("in-process", "dask"):
            executor = InProcessExecutor() if name == "in-process" else DaskExecutor("local", n_workers=1)
            try:
                start = time.perf_counter()
                handle = executor.submit(train_epi, settings, Path(tmp) / name, kind="epi")
                first, steps, lags = None, [], []
                while True:
                    running = handle.running
                    for event in handle.drain():
                        if event.kind == "progress":
                            first = first or time.perf_counter() - start
                            steps.append((event.step, event.time))
                            lags.append(time.time() - event.time)  # emitted (worker clock) -> seen here
                    if not running:
                        break
                    time.sleep(0.25)
                handle.result(timeout=60)
                (s0, t0), (s1, t1) = steps[0], steps[-1]
                rows.append({"row": f"LDS 2 x {its:,} its streamed live: {name}",
                             "value": f"{(s1 - s0) / max(t1 - t0, 1e-9):,.0f} it/s",
                             "note": f"first iteration seen {first:.1f} s after submit; events seen "
                                     f"{sorted(lags)[len(lags) // 2]:.2f} s (median) after they happened"})
            finally:
                executor.close()
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = sweep_rows(args.quick, args.workers, _overrides(args.set)) + streaming_rows(args.quick)
    print("| benchmark | measured | note |\n|---|---|---|")
    for r in rows:
        print(f"| {r['row']} | {r['value']} | {r['note']} |")
    print(f"\n{os.cpu_count()} CPU cores, torch {torch.__version__}, {time.strftime('%Y-%m-%d')}; command: "
          f".venv/bin/python -m benchmarks.distributed{' --quick' if args.quick else ''}")


if __name__ == "__main__":
    main()
