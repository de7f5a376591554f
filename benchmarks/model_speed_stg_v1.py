"""Iterations/s of the STG and V1 statistics (forward + backward), before and after optimization.

    .venv/bin/python benchmarks/model_speed_stg_v1.py [--repeats 5] [--device cpu] [--models stg v1] [--no-compile]

"Straightforward" = a per-step transcription of the equations, one tensor op per term, as the
reference code is written (kept only here, as the baseline). "Optimized" = the models in core/models;
for V1 also the previous optimized version (reverse-mode autograd, kept only here). One iteration =
simulate a batch (STG 400, V1 100 x 100 trials), compute the statistic, backpropagate.
"""

from __future__ import annotations

import argparse
import functools
import math
import statistics
import time

import torch
import torch.nn.functional as F

from core.model import load_model


# --- straightforward STG: the reference's structure, in torch -------------------------------------
def straightforward_stg_hub_freq(z: torch.Tensor, model) -> torch.Tensor:
    """(batch,) hub frequency; one op per current term, per-step noise draws, conv1d + complex DFT."""
    MV, US, NS = 1e-3, 1e-6, 1e-9
    dt, T = model.dt, model.num_steps
    g_el, g_synA = z[:, 0] * NS, z[:, 1] * NS
    g_ca = torch.tensor(model.g_Ca) * US
    g_k = torch.tensor(model.g_K) * US
    g_h = torch.tensor(model.g_hyp) * US
    g_leak, g_synB, C_m = model.g_leak * US, model.g_synB * NS, model.C_m * NS
    v = {k: getattr(model, k) * MV for k in ("v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v_th",
                                               "V_leak", "V_Ca", "V_K", "V_hyp", "V_syn")}
    zeros = torch.zeros_like(g_el)

    def f(x):
        V, N, H = x[:, :5], x[:, 5:10], x[:, 10:]
        M_inf = 0.5 * (1.0 + torch.tanh((V - v["v1"]) / v["v2"]))
        N_inf = 0.5 * (1.0 + torch.tanh((V - v["v3"]) / v["v4"]))
        H_inf = 1.0 / (1.0 + torch.exp((V + v["v5"]) / v["v6"]))
        S_inf = 1.0 / (1.0 + torch.exp((v["v_th"] - V) / v["v9"]))
        I_leak = g_leak * (V - v["V_leak"])
        I_Ca = g_ca * M_inf * (V - v["V_Ca"])
        I_k = g_k * N * (V - v["V_K"])
        I_h = g_h * H * (V - v["V_hyp"])
        I_elec = torch.stack([
            zeros,
            g_el * (V[:, 1] - V[:, 2]),
            g_el * (V[:, 2] - V[:, 1] + V[:, 2] - V[:, 4]),
            zeros,
            g_el * (V[:, 4] - V[:, 2]),
        ], dim=1)
        I_syn = torch.stack([
            g_synB * S_inf[:, 1] * (V[:, 0] - v["V_syn"]),
            g_synB * S_inf[:, 0] * (V[:, 1] - v["V_syn"]),
            g_synA * S_inf[:, 0] * (V[:, 2] - v["V_syn"]) + g_synA * S_inf[:, 3] * (V[:, 2] - v["V_syn"]),
            g_synB * S_inf[:, 4] * (V[:, 3] - v["V_syn"]),
            g_synB * S_inf[:, 3] * (V[:, 4] - v["V_syn"]),
        ], dim=1)
        I_total = I_leak + I_Ca + I_k + I_h + I_elec + I_syn
        lambda_N = model.phi_N * torch.cosh((V - v["v3"]) / (2 * v["v4"]))
        tau_h = (272.0 - (-1499.0 / (1.0 + torch.exp((-V + v["v7"]) / v["v8"])))) / 1000.0
        dV = (1.0 / C_m) * (-I_total + model.sigma_I * model.randn(*I_total.shape, like=I_total))
        dN = lambda_N * (N_inf - N)
        dH = (H_inf - H) / tau_h
        return torch.cat((dV, dN, dH), dim=1)

    x = torch.tensor(model.x0).expand(z.shape[0], 15)
    hub = [x[:, 2]]
    for _ in range(T):
        x = x + f(x) * dt
        hub.append(x[:, 2])
    v_hub = torch.stack(hub, dim=1)[:, model.drop_samples:, None].transpose(1, 2)
    w = model.average_window
    lpf = F.conv1d(F.relu(v_hub), torch.full((1, 1, w), 1.0 / w))[:, 0]
    lpf = lpf - lpf.mean(dim=1, keepdim=True)
    n = torch.arange(lpf.shape[1])
    freqs = torch.tensor(model.frequencies, dtype=torch.float32)
    phi = torch.exp(-2j * math.pi * freqs[None, :] * n[:, None] * dt)
    X = lpf.to(torch.complex64) @ phi
    weights = torch.softmax(model.softmax_beta * X.abs(), dim=1)
    return model.freq_resolution * (weights @ torch.arange(len(freqs), dtype=torch.float32))


# --- straightforward V1: the reference's structure (x and eps in autograd, traces kept) -------------
def straightforward_v1_s_e(z: torch.Tensor, model) -> torch.Tensor:
    """(batch,) s_E with every Euler update recorded by autograd and the whole trace stored."""
    batch, trials = z.shape[0], model.num_trials
    W = torch.tensor(model.W)
    h = torch.tensor(model.h_baseline) + model.contrast * torch.tensor(model.h_contrast)
    sigma = model.noise_scale * z[:, None, :, None] * math.sqrt(1 + model.tau / model.tau_noise)
    x = model.x0_low + (model.x0_high - model.x0_low) * model.rand(batch, trials, 4, 1, like=z)
    eps = torch.zeros_like(x)
    xs = [x]
    for _ in range(model.num_steps):
        B = model.randn(batch, trials, 4, 1, like=z) * math.sqrt(model.dt)
        dx = (-x + torch.relu(W @ x + h[:, None] + eps) ** 2) / model.tau
        deps = (-eps + math.sqrt(2 * model.tau_noise) * sigma * B / model.dt) / model.tau_noise
        x, eps = x + dx * model.dt, eps + deps * model.dt
        xs.append(x)
    x_t = torch.cat(xs, dim=3)[:, :, 0, model.window_start:]
    return x_t.std(dim=-1, unbiased=False).mean(dim=1)


# --- previous optimized V1: trial-major state, reverse-mode autograd through every step --------------
def previous_v1_s_e(z: torch.Tensor, model) -> torch.Tensor:
    """(batch,) s_E: (batch, trials, 4) state, unit OU noise outside autograd, running moments, and
    a graph of 200 steps for backward (V1 before forward-mode tangents and compiled chunks)."""
    batch, trials = z.shape[0], model.num_trials
    w_t = torch.tensor(model.W).T.contiguous()
    h = torch.tensor(model.h_baseline) + model.contrast * torch.tensor(model.h_contrast)
    decay = model.dt / model.tau_noise
    scale = (model.noise_scale * math.sqrt(1 + model.tau / model.tau_noise) * math.sqrt(2 * decay)) * z[:, None, :]
    x = model.x0_low + (model.x0_high - model.x0_low) * model.rand(batch, trials, 4, like=z)
    w = torch.zeros(batch, trials, 4)
    start, shift = model.window_start, None
    for step in range(1, model.num_steps + 1):
        recurrent = torch.addmm(h, x.reshape(-1, 4), w_t).reshape(batch, trials, 4)
        x = torch.lerp(x, torch.relu(torch.addcmul(recurrent, scale, w)).square(), model.dt / model.tau)
        with torch.no_grad():
            w = torch.add(model.randn(batch, trials, 4, like=z), w, alpha=1 - decay)
        if step >= start:
            if shift is None:
                shift = x[..., 0].detach()
                sum_d = sum_d2 = torch.zeros_like(shift)
            d = x[..., 0] - shift
            sum_d, sum_d2 = sum_d + d, torch.addcmul(sum_d2, d, d)
    n = model.num_steps - start + 1
    return torch.sqrt((sum_d2 / n - (sum_d / n) ** 2).clamp_min(0.0) + 1e-8).mean(dim=1)


# --- harness -------------------------------------------------------------------------------------
def _time_iterations(statistic, z_sampler, repeats: int) -> list[float]:
    """Wall seconds of ``repeats`` forward + backward passes (after one warm-up call)."""
    times = []
    for i in range(repeats + 1):
        z = z_sampler().requires_grad_()
        start = time.perf_counter()
        statistic(z).sum().backward()
        if i:
            times.append(time.perf_counter() - start)
    return times


def _python_fraction(statistic, z_sampler) -> float:
    """Share of one iteration's wall time outside torch ops (Python interpreting, dispatch glue):
    1 - (CPU time of top-level aten ops and compiled-graph calls, incl. backward) / wall time."""
    z = z_sampler().requires_grad_()
    return python_fraction(lambda: statistic(z).sum().backward())


def python_fraction(run) -> float:
    """1 - (CPU time of the outermost aten ops and compiled-graph calls) / wall time of ``run()``,
    under the profiler (whose own per-op cost makes this an overestimate for many tiny ops)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        run()
        wall = time.perf_counter() - start
    op_names = ("aten::", "## Call CompiledFxGraph")
    in_ops = 0.0
    for event in prof.events():
        if not event.name.startswith(op_names):
            continue
        parent = event.cpu_parent
        while parent is not None and not parent.name.startswith(op_names):
            parent = parent.cpu_parent
        if parent is None:  # outermost op: its time covers its children
            in_ops += event.cpu_time_total / 1e6
    return max(0.0, 1.0 - in_ops / wall)


def _overhead_bound(statistic, z_sampler, repeats: int, median: float) -> float:
    """Upper bound on the per-iteration overhead (Python, dispatch, autograd bookkeeping): the time
    of the same code on a batch of one sample, over the full batch's time."""
    tiny = _time_iterations(statistic, lambda: z_sampler()[:1], repeats)
    return statistics.median(tiny) / median


def speed_parser(description: str | None) -> argparse.ArgumentParser:
    """Arguments shared by the model speed benchmarks: --repeats, --device, --threads."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: least disturbed by "
                        "other jobs on a shared 2-core machine)")
    return parser


def _compile_seconds(model, z_sampler) -> float:
    """Wall seconds of the first iteration of a compile='on' model: compiling (or loading the
    compiled code from inductor's cache) plus one iteration."""
    start = time.perf_counter()
    model.emergent_statistics(z_sampler().requires_grad_()).sum().backward()
    return time.perf_counter() - start


#: per model: the baselines (label, statistic(z, model)), then the labels of the core model eager / compiled
VARIANTS = {
    "stg": ([("straightforward (autograd, per-term ops)", straightforward_stg_hub_freq)],
            "optimized eager (forward-mode tangents)", "optimized compiled (30-step chunks)"),
    "v1": ([("straightforward (autograd incl. noise, traces kept)", straightforward_v1_s_e),
            ("previous optimized eager (reverse mode, trial-major)", previous_v1_s_e)],
           "optimized eager (forward-mode tangents, pop.-major)", "optimized compiled (25-step chunks)"),
}


def main() -> None:
    parser = speed_parser(__doc__)
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile variants")
    parser.add_argument("--models", nargs="+", choices=["stg", "v1"], default=["stg", "v1"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    gen = torch.Generator(device=device).manual_seed(0)

    stg_lo, stg_hi = torch.tensor([4.0, 0.01], device=device), torch.tensor([8.0, 4.0], device=device)
    stg_z = lambda: stg_lo + (stg_hi - stg_lo) * torch.rand(400, 2, device=device, generator=gen)  # noqa: E731
    v1_z = lambda: 0.5 * torch.rand(100, 4, device=device, generator=gen)  # noqa: E731

    samplers = {"stg": stg_z, "v1": v1_z}
    rows, compile_s = [], {}
    for name in args.models:
        baselines, eager_label, compiled_label = VARIANTS[name]
        eager = load_model(name, compile="off")
        rows += [(name, label, functools.partial(fn, model=eager), samplers[name]) for label, fn in baselines]
        rows.append((name, eager_label, eager.emergent_statistics, samplers[name]))
        if not args.no_compile:
            compiled = load_model(name, compile="on")
            compile_s[name] = _compile_seconds(compiled, samplers[name])
            rows.append((name, compiled_label, compiled.emergent_statistics, samplers[name]))
    print(f"device {device}, torch threads {args.threads}, {args.repeats} timed iterations each "
          f"(shared CPU: compare rows of one run, not across runs)")
    for model_name, seconds in compile_s.items():
        print(f"{model_name} compile + first iteration: {seconds:.1f} s")
    print("python %: profiler (1 - time in torch ops / wall); overhead <=: same code on 1 sample / full batch")
    print(f"{'model':5} {'variant':58} {'it/s (median)':>13} {'s/it min':>9} {'s/it max':>9} {'python %':>8} "
          f"{'overhead <=':>11}  speedup")
    baseline = {}
    for model_name, variant, statistic, sampler in rows:
        times = _time_iterations(statistic, sampler, args.repeats)
        median = statistics.median(times)
        baseline.setdefault(model_name, median)
        py = _python_fraction(statistic, sampler)
        bound = _overhead_bound(statistic, sampler, args.repeats, median)
        speedup = baseline[model_name] / median
        print(f"{model_name:5} {variant:58} {1 / median:13.2f} {min(times):9.3f} {max(times):9.3f} "
              f"{100 * py:7.1f}% {100 * bound:10.1f}%  x{speedup:.1f}", flush=True)


if __name__ == "__main__":
    main()
