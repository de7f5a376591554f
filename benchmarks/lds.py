"""LDS speed and convergence: ms per iteration of the 4-D flow at batch 500, and end-to-end time to
convergence (initialization, training and tests), with and without Adam resets between epochs.

    python benchmarks/lds.py [--device auto|cpu|cuda] [--seeds 1,2,3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core import EPITrainer, load_model, settings_for  # noqa: E402


def ms_per_iteration(device: str, n: int = 500) -> float:
    model = load_model("lds")
    flow, opt = settings_for(model, device=device, init_iters=0, num_test_batches=10)
    tr = EPITrainer(model, None, flow, opt)
    if tr.device.type == "cpu":
        torch.set_num_threads(opt.num_threads)
    tr.initialize()
    for _ in range(20):
        tr.step()
    t0 = time.perf_counter()
    for _ in range(n):
        tr.step()
    if tr.device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / n * 1e3


def time_to_convergence(device: str, seed: int, reset: bool) -> dict:
    model = load_model("lds")
    flow, opt = settings_for(model, device=device, seed=seed, reset_optimizer=reset)
    t0 = time.perf_counter()
    res = EPITrainer(model, None, flow, opt).train()
    wall = time.perf_counter() - t0
    f = res.distribution.predictive(20000)
    return {"seed": seed, "reset_adam": reset, "converged": res.converged, "epochs": res.epochs,
            "iterations": res.iterations, "wall_s": wall, "entropy": res.entropy,
            "real_mean": f[:, 0].mean().item(), "real_sd": f[:, 0].std().item(),
            "imag_mean": f[:, 1].mean().item(), "imag_sd": f[:, 1].std().item()}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="auto")
    p.add_argument("--seeds", default="1,2,3")
    p.add_argument("--skip-reset", action="store_true", help="only the default (no Adam reset)")
    args = p.parse_args()
    dev = "cuda" if args.device == "auto" and torch.cuda.is_available() else ("cpu" if args.device == "auto" else args.device)
    ms = ms_per_iteration(dev)
    print(f"device {dev}; torch {torch.__version__}; threads {torch.get_num_threads()}")
    print(f"iteration (4-D flow, batch 500, forward + backward + Adam): {ms:.2f} ms = {1e3 / ms:.0f} it/s")
    print(f"{'seed':>4} {'reset':>5} {'conv':>5} {'epochs':>6} {'iters':>6} {'wall_s':>7} {'H':>6} "
          f"{'real mean/sd':>14} {'imag mean/sd':>14}")
    for reset in ([False] if args.skip_reset else [False, True]):
        for seed in map(int, args.seeds.split(",")):
            r = time_to_convergence(dev, seed, reset)
            print(f"{r['seed']:>4} {str(r['reset_adam']):>5} {str(r['converged']):>5} {r['epochs']:>6} "
                  f"{r['iterations']:>6} {r['wall_s']:>7.1f} {r['entropy']:>6.2f} "
                  f"{r['real_mean']:>6.3f}/{r['real_sd']:.3f} {r['imag_mean']:>6.3f}/{r['imag_sd']:.3f}", flush=True)
    print("targets: real 0.000/0.250, imag 6.283/0.628")


if __name__ == "__main__":
    main()
