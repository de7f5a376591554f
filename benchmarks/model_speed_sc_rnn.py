"""Iterations/s of the SC and rank-2 RNN models, before and after optimization.

    .venv/bin/python benchmarks/model_speed_sc_rnn.py [--repeats 5] [--threads 1] [--device cpu]

Part 1, the statistic alone (simulate a batch, compute f, backpropagate):
  SC  (batch 100 x 2 tasks x 200 trials, 75 Euler steps): "straightforward" = a per-step transcription of
      eqs 72-75 (tanh, separate drift terms); "optimized" = core/models/sc.py (logit coordinates, one fused
      matmul-add and a sigmoid per step).
  RNN (batch 200): "straightforward" = the N x N matrices: eigvals(W) and eigvalsh((W + W^T)/2), O(N^3);
      "optimized" = core/models/rnn.py, 2x2 and 4x4 matrices from Gram products, O(N).
Part 2, one whole EPI iteration with the paper's settings (flow sample + log q, statistic, augmented
Lagrangian loss, backward, Adam), for the RNN with the flow's LU and permutation mixing.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from benchmarks.model_speed_stg_v1 import _python_fraction, _time_iterations, python_fraction, speed_parser  # noqa: E402
from core import EPITrainer, load_model, settings_for  # noqa: E402
from core.models.sc import sc_connectivity  # noqa: E402


def straightforward_sc_accuracies(z: torch.Tensor, model) -> torch.Tensor:
    """(batch, 2) [p_P, p_A]: u += dt/tau (-u + W x + h + noise), x = 0.5 tanh((u - a)/b) + 0.5."""
    W = sc_connectivity(z)[:, None]
    h = model.inputs(z)
    shape = (z.shape[0], 2, model.num_trials, 4)
    x = (model.x0_mean + model.x0_std * model.randn(*shape, like=z)).clamp(1e-4, 1 - 1e-4)
    u = model.a + model.b * torch.atanh(2 * x - 1)
    for k in range(model.num_steps):
        drive = x @ W + h[k][:, None] + model.noise_std * model.randn(*shape, like=z)
        u = u + model.dt / model.tau * (-u + drive)
        x = 0.5 * torch.tanh((u - model.a) / model.b) + 0.5
    return model.accuracies(x)


def straightforward_rnn_statistics(z: torch.Tensor, model) -> torch.Tensor:
    """(batch, 2) from the full N x N W (its repeated zero eigenvalues make eigvals' gradient unsafe)."""
    U, V = model.factors(z)
    W = U @ V.transpose(-1, -2)
    real_l1 = torch.linalg.eigvals(W).real.max(-1).values
    lam_s = torch.linalg.eigvalsh(0.5 * (W + W.transpose(-1, -2)))[..., -1]
    return torch.stack([real_l1, lam_s], -1)


def statistic_rows(device: torch.device, gen: torch.Generator):
    sc = load_model("sc")
    sc_z = lambda: 10 * torch.rand(100, 4, device=device, generator=gen) - 5  # noqa: E731
    yield "sc", "straightforward (tanh, separate terms)", lambda z: straightforward_sc_accuracies(z, sc), sc_z
    yield "sc", "optimized (logit coords, fused baddbmm)", sc.emergent_statistics, sc_z
    for N in (10, 100, 250):
        rnn = load_model("rnn", N=N)
        rnn_z = lambda N=N: 2 * torch.rand(200, 4 * N, device=device, generator=gen) - 1  # noqa: E731
        yield f"rnn{N}", "straightforward (N x N eigvals + eigvalsh)", \
            lambda z, m=rnn: straightforward_rnn_statistics(z, m), rnn_z
        yield f"rnn{N}", "optimized (2x2 + 4x4 from Gram, O(N))", rnn.emergent_statistics, rnn_z


def epi_step_rows():
    yield "sc", "paper settings", load_model("sc"), {}
    for N in (10, 100, 250):
        for mixing in ("lu", "permutation"):
            yield f"rnn{N}", f"paper settings, {mixing} mixing", load_model("rnn", N=N), {"mixing": mixing}


def time_epi_steps(model, overrides: dict, device: str, repeats: int) -> tuple[list[float], float]:
    """Wall seconds of ``repeats`` EPI iterations and the Python share of one (``python_fraction``)."""
    flow, opt = settings_for(model, device=device, init_iters=0, **overrides)
    trainer = EPITrainer(model, flow=flow, opt=opt)
    trainer.step()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        trainer.step()
        times.append(time.perf_counter() - start)
    return times, python_fraction(trainer.step)


def main() -> None:
    parser = speed_parser(__doc__)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    gen = torch.Generator(device=device).manual_seed(0)
    print(f"device {device}, torch threads {args.threads}, {args.repeats} timed iterations each "
          f"(shared CPU: compare rows of one run, not across runs)")

    print("\n1) statistic only: forward + backward")
    print(f"{'model':7} {'variant':45} {'it/s (median)':>13} {'s/it min':>9} {'s/it max':>9} {'python %':>8}")
    baseline: dict[str, float] = {}
    for name, variant, statistic, sampler in statistic_rows(device, gen):
        times = _time_iterations(statistic, sampler, args.repeats)
        median = statistics.median(times)
        baseline.setdefault(name, median)
        py = _python_fraction(statistic, sampler)
        print(f"{name:7} {variant:45} {1 / median:13.2f} {min(times):9.4f} {max(times):9.4f} "
              f"{100 * py:7.1f}%  x{baseline[name] / median:.1f}", flush=True)

    print("\n2) one EPI iteration (flow + statistic + loss + backward + Adam)")
    print(f"{'model':7} {'variant':45} {'it/s (median)':>13} {'s/it min':>9} {'s/it max':>9} {'python %':>8}")
    for name, variant, model, overrides in epi_step_rows():
        times, py = time_epi_steps(model, overrides, args.device, args.repeats)
        median = statistics.median(times)
        print(f"{name:7} {variant:45} {1 / median:13.2f} {min(times):9.4f} {max(times):9.4f} "
              f"{100 * py:7.1f}%", flush=True)


if __name__ == "__main__":
    main()
