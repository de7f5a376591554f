"""Cost of watching: EPI iterations/s headless vs through the dashboard's runner with live views.

    .venv/bin/python benchmarks/dashboard_overhead.py [--iters 600] [--repeats 3] [--models lds rnn25]

"headless": ``EPITrainer.train()`` alone. "dashboard": the same training started by a ``Workbench``
(``TrainingRunner`` thread, snapshots of q every 500 iterations, mode searches at epoch ends) whose
Training-tab views are rendered into a Bokeh document, with the periodic drain called every 250 ms
from the main thread exactly as the server's event loop would (HoloViews streams re-render there).
Both use 1 torch thread (the dashboard's default) and the model's paper settings except for short
epochs; iterations/s is measured between the first and last iteration of the epoch (initialization
and the end-of-epoch tests excluded). Runs alternate so machine load affects both alike.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

import torch


def _settings(model_name: str, iters: int):
    from core.model import load_model
    from core.settings import settings_for

    model = load_model("rnn", N=25) if model_name == "rnn25" else load_model(model_name)
    flow, opt = settings_for(model, iters_per_epoch=iters, num_epochs=1, init_iters=20, num_test_batches=10,
                             stop_early=False, device="cpu")
    return model, flow, opt


def _rate(wall_times: list[float]) -> float:
    return (len(wall_times) - 1) / (wall_times[-1] - wall_times[0])


def headless(model_name: str, iters: int, run_dir: Path) -> float:
    from core.epi import EPITrainer
    from core.property import EmergentProperty

    model, flow, opt = _settings(model_name, iters)
    times: list[float] = []
    trainer = EPITrainer(model, EmergentProperty.default_for(model), flow, opt, run_dir=run_dir)
    trainer.add_callback(on_iteration=lambda r: times.append(r.wall_time))
    trainer.train()
    return _rate(times)


def dashboard(model_name: str, iters: int, runs_dir: Path) -> tuple[float, int]:
    """Returns (iterations/s, number of view refreshes)."""
    from bokeh.document import Document

    from epi_dash.workbench import Workbench, ensure_extensions

    ensure_extensions()
    model, flow, opt = _settings(model_name, iters)
    wb = Workbench(runs_dir=runs_dir, model="rnn" if model_name == "rnn25" else model_name)
    if model_name == "rnn25":
        wb.setup.model.N = 25
    wb.setup.flow.param.update(**{k: getattr(flow, k) for k in flow.param if k != "name"})
    wb.setup.opt.param.update(**{k: getattr(opt, k) for k in opt.param if k not in ("name", "device")})
    wb.setup.device = "cpu"
    wb.start()
    wb.tabs.get_root(Document())  # render the Training tab: its HoloViews plots now update on every refresh
    refreshes, times = 0, []
    original = wb.pump.apply

    def counting(events):
        nonlocal refreshes
        refreshes += 1
        times.extend(e.data["wall_time"] for e in events if e.kind == "iteration")
        original(events)

    wb.pump.apply = counting  # what each (throttled) refresh calls
    while wb.runner.running:
        time.sleep(0.25)
        wb.drain()
    wb.runner.join()
    wb.pump.flush()
    return _rate(times), refreshes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iters", type=int, default=600, help="iterations per measured epoch")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=["lds", "rnn25"], choices=["lds", "rnn25"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            plain, watched, refreshes = [], [], []
            for k in range(args.repeats):
                plain.append(headless(name, args.iters, Path(tmp) / f"{name}-h{k}"))
                rate, n = dashboard(name, args.iters, Path(tmp) / "runs")
                watched.append(rate)
                refreshes.append(n)
                print(f"  {name} repeat {k + 1}: headless {plain[-1]:.1f} it/s, dashboard {rate:.1f} it/s "
                      f"({n} view refreshes)", flush=True)
            rows.append((name, plain, watched, refreshes))
    print(f"\nEPI iterations/s, {args.iters} iterations per run, {args.repeats} alternating repeats, "
          f"torch threads = {torch.get_num_threads()}, threads alive = {threading.active_count()}")
    print(f"{'model':<8} {'headless it/s':>18} {'dashboard it/s':>18} {'ratio':>7} {'overhead':>9}")
    for name, plain, watched, _ in rows:
        hp, wp = statistics.mean(plain), statistics.mean(watched)
        sd = lambda v: statistics.stdev(v) if len(v) > 1 else 0.0  # noqa: E731
        print(f"{name:<8} {hp:>10.1f} ± {sd(plain):<5.1f} {wp:>10.1f} ± {sd(watched):<5.1f} {wp / hp:>7.3f} "
              f"{100 * (1 - wp / hp):>8.1f}%")


if __name__ == "__main__":
    main()
