"""STG claims (Results 3.1, Fig 1E, Methods 5.2.1): EPI converges to hub frequency 0.55 +- 0.025 Hz;
the Hessian of log q at the mode has two negative eigenvalues (paper: -10.7 and -3.22).

    .venv/bin/python -m benchmarks.claims.stg [--quick] [--set iters_per_epoch=1000 ...] [--out DIR]
    .venv/bin/python -m benchmarks.claims.stg --analyze RUN_DIR
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any


from benchmarks.claims import parse_overrides, print_table
from core import EmergentProperty, EPITrainer, load_model, settings_for

#: a few minutes on a 2-core CPU: enough to exercise the path, not to match the paper
QUICK = dict(batch_size=100, iters_per_epoch=150, num_epochs=2, num_test_batches=50, init_iters=200)


def train_claim(model_name: str, quick: bool, overrides: dict[str, Any], prop_means: dict[str, float] | None = None,
                run_dir: str | None = None, **hyperparameters):
    """Train the paper's settings (``QUICK`` ones when ``quick``, eagerly: a smoke run does not repay
    a minute of torch.compile) with ``overrides``; returns (EPIResult, wall seconds, device name)."""
    if quick:
        hyperparameters.setdefault("compile", "off")
    model = load_model(model_name, **hyperparameters)
    prop = EmergentProperty.default_for(model, mean=prop_means or {})
    flow, opt = settings_for(model, **{**(QUICK if quick else {}), **overrides})
    trainer = EPITrainer(model, prop, flow, opt, run_dir=run_dir)
    start = time.perf_counter()
    result = trainer.train()
    return result, time.perf_counter() - start, str(trainer.device)


def command_line(module: str, quick: bool, overrides: dict[str, Any]) -> str:
    parts = [".venv/bin/python", "-m", module] + (["--quick"] if quick else [])
    parts += [f"--set {k}={v}" for k, v in overrides.items()]
    return " ".join(parts)


def run(quick: bool = False, overrides: dict[str, Any] | None = None, run_dir: str | None = None) -> list[dict]:
    """Full STG inference, then the analysis rows: convergence, predictive hub frequency, Hessian."""
    overrides = dict(overrides or {})
    command = command_line("benchmarks.claims.stg", quick, overrides)
    result, wall, device = train_claim("stg", quick, overrides, run_dir=run_dir)
    row = dict(wall_time_s=round(wall, 1), device=device, command=command)
    rows = [dict(claim="STG: EPI converges (hub freq 0.55 +- 0.025 Hz)",
                 measured=f"converged={result.converged} after {result.epochs} epochs, {result.iterations} its"
                          + (f"; error {result.error}" if result.error else ""),
                 paper="converged after 5 epochs (25,000 its)", **row)]
    if not result.error:
        rows += analysis_rows(result.distribution, device, command)
    return rows


def analysis_rows(q, device: str, command: str) -> list[dict]:
    """Predictive hub frequency, and the Hessian of log q at the mode (``find_mode``: the highest
    interior peak; a thin tail of q can spike log q at a face, which is not the bulk's mode)."""
    start = time.perf_counter()
    f = q.predictive(2000)[:, 0]
    rows = [dict(claim="STG: predictive hub frequency", measured=f"{f.mean():.3f} +- {f.std():.3f} Hz",
                 paper="0.55 +- 0.025 Hz", wall_time_s=round(time.perf_counter() - start, 1), device=device,
                 command=command)]
    start = time.perf_counter()
    mode = q.find_mode(num_starts=10)
    faces = q.near_faces(mode)
    directions = q.hessian_directions(mode)
    vals, v1 = directions.eigenvalues.tolist(), directions.eigenvectors[:, 0].tolist()
    hub = q.statistics_at(mode.expand(100, 2))[:, 0].mean()
    where = f"at the box faces ({', '.join(faces)})" if faces else "interior"
    rows.append(dict(
        claim="STG: Hessian of log q at the mode",
        measured=(f"{where} mode (g_el, g_synA) = ({mode[0]:.3f}, {mode[1]:.3f}) nS (hub {hub:.3f} Hz); "
                  f"eigenvalues {vals[0]:.3g}, {vals[1]:.3g} ({', '.join(directions.kinds)}); sensitive "
                  f"v1 = ({v1[0]:+.2f}, {v1[1]:+.2f})"),
        paper="mode ~ (6.1, 1.3) nS; eigenvalues -10.7, -3.22 (both negative)",
        wall_time_s=round(time.perf_counter() - start, 1), device=device, command=command,
    ))
    return rows


def analyze(run_dir: str) -> list[dict]:
    """The analysis rows for a finished (or stopped) run directory."""
    from core import load_distribution, load_run

    loaded = load_run(run_dir)
    meta = loaded.meta
    command = f".venv/bin/python -m benchmarks.claims.stg --analyze {run_dir}"
    head = dict(claim="STG: EPI converges (hub freq 0.55 +- 0.025 Hz)",
                measured=f"converged={meta['converged']} after {meta['epochs']} epochs, {meta['iterations']} its",
                paper="converged after 5 epochs (25,000 its)", wall_time_s=round(meta["wall_time_s"], 1),
                device=str(meta.get("device")), command=command)
    return [head] + analysis_rows(load_distribution(loaded), str(meta.get("device")), command)


def main(module_run=run, analyze_run=analyze, argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(sys.modules[module_run.__module__].__doc__ or ""))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="flow/optimizer setting override, e.g. iters_per_epoch=1000")
    parser.add_argument("--out", default=None, help="run directory")
    if analyze_run is not None:
        parser.add_argument("--analyze", default=None, metavar="RUN_DIR", help="only analyze a finished run")
    args = parser.parse_args(argv)
    if getattr(args, "analyze", None):
        rows = analyze_run(args.analyze)
    else:
        rows = module_run(quick=args.quick, overrides=parse_overrides(args.set), run_dir=args.out)
    print_table(rows)


if __name__ == "__main__":
    main()
