"""Time to convergence of the paper's models, end to end (model load, flow initialization, training,
the convergence tests), per seed, with a load-robust split: iterations to converge (independent of
machine load) and seconds per iteration (wall / iterations), so time = iterations x s/it.

    .venv/bin/python -m benchmarks.time_to_converge --models stg,v1,sc,rnn --seeds 5 --out benchmarks/out/ttc
    .venv/bin/python -m benchmarks.time_to_converge --quick        (CI-sized: tiny budgets, RNN N = 2)
    .venv/bin/python -m benchmarks.time_to_converge --models rnn --set lr=2e-3   (A/B a setting)
    .venv/bin/python -m benchmarks.time_to_converge --models rnn --defaults paper (the paper's settings)

Rows: STG hub frequency; V1 X(5 Hz) and X(10 Hz); SC p_P, p_A (both regimes are read from the one
property's run by ``benchmarks.claims.sc --analyze``); RNN N = 25 and N = 250. Each run is written to
``--out``/<row>/seed=<s> so the best converged run can be packaged (``epi-dash examples add``) or
analysed with the claim module's ``--analyze``. Wall times on a shared CPU are noisy: compare A/B runs
on the same seeds and read the iteration counts first.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from benchmarks.claims import parse_overrides, train_within
from core import EmergentProperty, EPITrainer, load_model, settings_for


@dataclass(frozen=True)
class Case:
    """One table row: a model, its constructor arguments and the property's means."""

    label: str
    model: str
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    prop_means: dict[str, float] = field(default_factory=dict)
    claim: str = ""  # the claim module that analyses its runs


CASES: dict[str, list[Case]] = {
    "stg": [Case("STG hub frequency 0.55 Hz", "stg", claim="benchmarks.claims.stg")],
    "v1": [Case("V1 X(5 Hz)", "v1", prop_means={"s_E": 5.0}, claim="benchmarks.claims.v1"),
           Case("V1 X(10 Hz)", "v1", prop_means={"s_E": 10.0}, claim="benchmarks.claims.v1")],
    "sc": [Case("SC p_P, p_A 75 +- 7.5 %", "sc", claim="benchmarks.claims.sc")],
    "rnn": [Case("RNN N=25", "rnn", {"N": 25}, claim="benchmarks.claims.rnn"),
            Case("RNN N=250", "rnn", {"N": 250}, claim="benchmarks.claims.rnn")],
}
#: --quick: a path check (seconds), not the paper's budgets; the RNN at N = 2 converges within it
QUICK_CASES: dict[str, list[Case]] = {"rnn": [Case("RNN N=2 (quick)", "rnn", {"N": 2}, claim="benchmarks.claims.rnn")]}
#: --defaults paper: where today's defaults differ from the paper's (Methods 5.2), the paper's values
PAPER = {"rnn": dict(iters_per_epoch=500, num_epochs=10), "v1": dict(iters_per_epoch=2000, num_epochs=10)}
QUICK = dict(iters_per_epoch=250, num_epochs=4, num_test_batches=20, init_iters=50)


def slug(label: str) -> str:
    return "".join(c if c.isalnum() or c in "=." else "_" for c in label).strip("_")


def run_seed(case: Case, seed: int, overrides: dict[str, Any], out: Path | None,
             time_limit_s: float | None) -> dict[str, Any]:
    """Train one seed end to end; returns {seed, converged, epochs, iterations, wall_s, s_per_it, run_dir,
    error}. ``time_limit_s`` stops the trainer (the row then reads not converged)."""
    run_dir = str(out / slug(case.label) / f"seed={seed}") if out else None
    start = time.perf_counter()
    model = load_model(case.model, **case.model_kwargs)
    prop = EmergentProperty.default_for(model, mean=case.prop_means)
    values = {k: v for k, v in overrides.items()}
    values.setdefault("seed", seed)
    flow, opt = settings_for(model, **values)
    trainer = EPITrainer(model, prop, flow, opt, run_dir=run_dir)
    result = train_within(trainer, time_limit_s)
    wall = time.perf_counter() - start
    its = max(result.iterations, 1)
    return dict(seed=seed, converged=bool(result.converged and not result.error), epochs=result.epochs,
                iterations=result.iterations, wall_s=wall, s_per_it=wall / its, run_dir=run_dir,
                error=result.error)


def summarize(case: Case, runs: list[dict[str, Any]], command: str) -> dict[str, Any]:
    """One table row from a case's per-seed runs: median/min/max time to convergence over the
    converged seeds, their iterations and epochs, the seeds converged and the median s/it of all."""
    done = [r for r in runs if r["converged"]]
    times = [r["wall_s"] for r in done]
    its = [r["iterations"] for r in done]

    def stat(values, fn):
        return fn(values) if values else None

    return dict(
        row=case.label, seeds=len(runs), converged=len(done),
        median_s=stat(times, statistics.median), min_s=stat(times, min), max_s=stat(times, max),
        median_its=stat(its, statistics.median), min_its=stat(its, min), max_its=stat(its, max),
        median_epochs=stat([r["epochs"] for r in done], statistics.median),
        s_per_it=statistics.median(r["s_per_it"] for r in runs) if runs else None,
        best_run=min(done, key=lambda r: r["wall_s"])["run_dir"] if done else None,
        errors=sorted({r["error"] for r in runs if r["error"]}), command=command,
    )


def _fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def markdown(rows: list[dict[str, Any]]) -> str:
    """The summary rows as a Markdown table (times in s; '-' where no seed converged)."""
    lines = ["| row | converged | time median (min-max) s | iterations median (min-max) | epochs | s/it | command |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['row']} | {r['converged']}/{r['seeds']} | {_fmt(r['median_s'], '.1f')} "
            f"({_fmt(r['min_s'], '.1f')}-{_fmt(r['max_s'], '.1f')}) | {_fmt(r['median_its'], '.0f')} "
            f"({_fmt(r['min_its'], '.0f')}-{_fmt(r['max_its'], '.0f')}) | {_fmt(r['median_epochs'], '.0f')} "
            f"| {_fmt(r['s_per_it'], '.4f')} | `{r['command']}` |")
    return "\n".join(lines)


def row_command(model: str, seeds: int, quick: bool, overrides: dict[str, Any], time_limit: float | None,
                first_seed: int = 1) -> str:
    parts = [".venv/bin/python", "-m", "benchmarks.time_to_converge", "--models", model, "--seeds", str(seeds)]
    parts += [f"--first-seed {first_seed}"] if first_seed != 1 else []
    parts += ["--quick"] if quick else []
    parts += [f"--set {k}={v}" for k, v in overrides.items()]
    parts += [f"--time-limit {time_limit:g}"] if time_limit else []
    return " ".join(parts)


def run(models: list[str], seeds: int, quick: bool = False, overrides: dict[str, Any] | None = None,
        out: str | None = None, time_limit_s: float | None = None, progress: bool = True,
        only: str | None = None, defaults: str = "current", first_seed: int = 1) -> list[dict[str, Any]]:
    """Every requested model's rows over seeds ``first_seed`` ... ``first_seed + seeds - 1`` (``QUICK_CASES``
    and ``QUICK`` budgets when ``quick``); ``only``: just the row with that label or a word of it (``"N=25"``
    picks RNN N=25, not N=250); ``defaults="paper"``: the paper's settings (``PAPER``) under ``QUICK`` and
    ``overrides``."""
    torch.set_num_threads(1)
    overrides = dict(overrides or {})
    table = QUICK_CASES if quick else CASES
    out_dir = Path(out) if out else None
    rows = []
    for name in models:
        if name not in CASES:
            raise SystemExit(f"--models: unknown model {name!r} (choose from {', '.join(CASES)})")
        for case in table.get(name, []):
            if only and only != case.label and only not in case.label.split():
                continue
            settings = {**(PAPER.get(name, {}) if defaults == "paper" else {}), **(QUICK if quick else {}),
                        **overrides}
            runs = []
            for seed in range(first_seed, first_seed + seeds):
                r = run_seed(case, seed, settings, out_dir, time_limit_s)
                if progress:
                    print(f"{case.label} seed {seed}: converged={r['converged']} {r['iterations']} its "
                          f"{r['epochs']} epochs {r['wall_s']:.1f} s", file=sys.stderr, flush=True)
                runs.append(r)
            command = row_command(name, seeds, quick, overrides, time_limit_s, first_seed)
            if defaults == "paper":
                command += " --defaults paper"
            rows.append(summarize(case, runs, command))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="stg,v1,sc,rnn")
    parser.add_argument("--seeds", type=int, default=5, help="how many seeds (default 5)")
    parser.add_argument("--first-seed", type=int, default=1, help="the first seed (default 1): e.g. --seeds 3 "
                        "--first-seed 3 runs seeds 3, 4, 5")
    parser.add_argument("--quick", action="store_true", help="CI-sized budgets; only the RNN at N = 2 runs")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="flow/optimizer setting override on top of the model's defaults (A/B a change)")
    parser.add_argument("--out", default=None, help="directory for the runs (<out>/<row>/seed=<s>)")
    parser.add_argument("--time-limit", type=float, default=None, help="seconds per seed before stopping it")
    parser.add_argument("--only", default=None, help="only the row with this label or word of a label, e.g. 'N=25'")
    parser.add_argument("--defaults", choices=["current", "paper"], default="current",
                        help="today's defaults, or the paper's (the RNN: 10 epochs of 500 its, not 20 of 250)")
    args = parser.parse_args(argv)
    rows = run([m.strip() for m in args.models.split(",") if m.strip()], args.seeds, args.quick,
               parse_overrides(args.set), args.out, args.time_limit, only=args.only,
               defaults=args.defaults, first_seed=args.first_seed)
    print(markdown(rows))
    print("command:", shlex.join([".venv/bin/python", "-m", "benchmarks.time_to_converge", *(argv or sys.argv[1:])]))


if __name__ == "__main__":
    main()
