"""V1 SSSN claims (Results 3.3, Fig 2D-F, Fig 11): X(5 Hz) and X(10 Hz) both converge; sigma_E^2 +
sigma_P^2 is larger under X(10 Hz) (paper p ~ 0), sigma_S^2 + sigma_V^2 is not (paper p = .402);
sigma_S and sigma_V stay broad (degenerate).

    .venv/bin/python -m benchmarks.claims.v1 [--quick] [--set iters_per_epoch=500 ...] [--out DIR]
    .venv/bin/python -m benchmarks.claims.v1 --analyze DIR   (DIR/s_E=5, DIR/s_E=10: finished runs)
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from scipy import stats

from .stg import command_line, main, train_claim

LEVELS = (5.0, 10.0)
#: sd of U[0, 0.5]: what a fully degenerate (unconstrained) marginal would show
UNIFORM_SD = 0.5 / 12**0.5


def run(quick: bool = False, overrides: dict[str, Any] | None = None, run_dir: str | None = None) -> list[dict]:
    """EPI for X(5 Hz) and X(10 Hz) (runs in ``run_dir``/s_E=5 and s_E=10), then ``comparison_rows``."""
    overrides = dict(overrides or {})
    command = command_line("benchmarks.claims.v1", quick, overrides)
    rows, distributions, devices = [], {}, set()
    for level in LEVELS:
        out = str(Path(run_dir) / f"s_E={level:g}") if run_dir else None
        result, wall, device = train_claim("v1", quick, overrides, prop_means={"s_E": level}, run_dir=out)
        devices.add(device)
        if not result.error:
            distributions[level] = result.distribution
        rows.append(convergence_row(level, result.converged, result.epochs, result.iterations, result.error,
                                    result.distribution if not result.error else None, wall, device, command))
    if len(distributions) == len(LEVELS):
        rows += comparison_rows(distributions, "/".join(sorted(devices)), command)
    return rows


def convergence_row(level, converged, epochs, iterations, error, q, wall, device, command) -> dict:
    measured = f"converged={converged} after {epochs} epochs, {iterations} its" + (f"; error {error}" if error else "")
    if q is not None:
        f = q.predictive(1000)[:, 0]
        measured += f"; predictive s_E {f.mean():.2f} +- {f.std():.2f} Hz"
    return dict(claim=f"V1: X({level:g} Hz) converges", measured=measured, paper=f"converged; s_E {level:g} +- 1 Hz",
                wall_time_s=round(wall, 1), device=device, command=command)


def comparison_rows(distributions: dict, device: str, command: str, n: int = 2000) -> list[dict]:
    """Sums of squares under X(10 Hz) vs X(5 Hz) (two-sided Welch t-tests on ``n`` samples of each q)
    and the marginal widths."""
    start = time.perf_counter()
    samples = {level: q.sample(n).cpu().numpy() for level, q in distributions.items()}
    low, high = samples[LEVELS[0]], samples[LEVELS[1]]
    common = dict(device=device, command=command)
    rows = []
    for name, cols, paper in (("sigma_E^2 + sigma_P^2", [0, 1], "larger at 10 Hz, p ~ 0 (Fig 2F)"),
                              ("sigma_S^2 + sigma_V^2", [2, 3], "not different, p = .402 (Fig 11)")):
        a, b = (low[:, cols] ** 2).sum(1), (high[:, cols] ** 2).sum(1)
        test = stats.ttest_ind(b, a, equal_var=False)
        rows.append(dict(claim=f"V1: {name}, X(10 Hz) vs X(5 Hz)",
                         measured=f"{b.mean():.4f} vs {a.mean():.4f}; Welch t = {test.statistic:.1f}, "
                                  f"p = {test.pvalue:.3g}",
                         paper=paper, wall_time_s=round(time.perf_counter() - start, 1), **common))
    sds = {level: s.std(0) for level, s in samples.items()}
    rows.append(dict(
        claim="V1: sigma_S, sigma_V broad (degenerate)",
        measured="; ".join(f"X({lv:g} Hz) marginal sd E {sd[0]:.3f} P {sd[1]:.3f} S {sd[2]:.3f} V {sd[3]:.3f}"
                           for lv, sd in sds.items()) + f" (uniform: {UNIFORM_SD:.3f})",
        paper="S and V spread over [0, 0.5] (Fig 2D)", wall_time_s=0.0, **common))
    return rows


def analyze(root: str) -> list[dict]:
    """The rows for finished runs ``root``/s_E=5 and ``root``/s_E=10."""
    from core import load_distribution, load_run

    command = f".venv/bin/python -m benchmarks.claims.v1 --analyze {root}"
    rows, distributions = [], {}
    for level in LEVELS:
        loaded = load_run(Path(root) / f"s_E={level:g}")
        meta = loaded.meta
        distributions[level] = load_distribution(loaded)
        rows.append(convergence_row(level, meta["converged"], meta["epochs"], meta["iterations"], None,
                                    load_distribution(loaded), meta["wall_time_s"], str(meta.get("device")), command))
    return rows + comparison_rows(distributions, rows[0]["device"], command)


if __name__ == "__main__":
    main(run, analyze_run=analyze)
