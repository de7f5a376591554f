"""``epi-dash sweep``: EPI over property levels (or hyperparameters) x seeds, the paper's X(y) sweeps.

    epi-dash sweep v1 --vary s_E.mean=5,10 --seeds 3 [--scheduler local|tcp://host:8786] [--out DIR]
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from core.executors import check_scheduler
from core.model import load_model_class
from core.sweep import compare_levels, level_label, level_samples, parse_vary, run_sweep, sweep_cells


def sweep_table(manifest: dict) -> list[str]:
    """Plain-text rows: one per (level, seed), the selected run of each level marked."""
    selected = set(v for v in manifest.get("selection", {}).values() if v)
    lines = [f"{'level':<24} {'seed':>4} {'state':<10} {'conv':<5} {'entropy':>9} {'epochs':>6} {'time s':>8}  selected"]
    for cell, outcome in zip(manifest["cells"], manifest["outcomes"]):
        outcome = outcome or {}
        entropy = outcome.get("entropy", math.nan)
        lines.append(f"{level_label(cell['level']):<24} {cell['seed']:>4} {str(outcome.get('state', '-')):<10} "
                     f"{'yes' if outcome.get('converged') else 'no':<5} {entropy:>9.3f} {str(outcome.get('epochs', '-')):>6} "
                     f"{(outcome.get('wall_time_s') or 0):>8.1f}  {'*' if cell['run_dir'] in selected else ''}")
    return lines


def cmd_sweep(args) -> int:
    from tqdm import tqdm

    from .cli import _pairs, split_sets

    check_scheduler(args.scheduler)
    vary = parse_vary(args.vary or [])
    hyper, settings = split_sets(args.model, _pairs(args.set, "set"))
    if args.device:
        settings["device"] = args.device
    cls = load_model_class(args.model)
    model_name = getattr(cls, "model_name", "") or cls.__name__
    out = Path(args.out or Path(args.runs_dir) / f"sweep-{Path(model_name).stem}-{time.strftime('%Y%m%d-%H%M%S')}")
    cells = sweep_cells(args.model, vary, args.seeds, out, hyper=hyper, means=_pairs(args.mean, "mean"),
                        stds=_pairs(args.std, "std"), settings=settings, first_seed=args.first_seed)
    print(f"sweep of {model_name}: {len(cells)} tasks ({len(cells) // args.seeds} levels x {args.seeds} seeds) "
          f"on {args.scheduler or 'this process'}; results in {out}")
    bar = tqdm(total=len(cells), unit="run", disable=args.quiet, dynamic_ncols=True)

    def arrived(k: int, outcome: dict) -> None:
        bar.update(1)
        bar.write(f"{level_label(cells[k]['level'])} seed {cells[k]['seed']}: {outcome['state']}"
                  f"{' (already done)' if outcome.get('skipped') else ''}"
                  f"{', converged' if outcome['converged'] else ''}, entropy {outcome['entropy']:.3f}")

    description = {"model": args.model, "vary": vary, "seeds": args.seeds, "hyper": hyper, "settings": settings,
                   "means": _pairs(args.mean, "mean"), "stds": _pairs(args.std, "std")}
    manifest = run_sweep(cells, out, scheduler=args.scheduler, on_result=arrived, description=description)
    bar.close()
    print("\n".join(sweep_table(manifest)))
    samples = level_samples(manifest)
    if len(samples) >= 2:
        print("\ncomparison across levels (Welch t-test on samples of each level's selected q):")
        for row in compare_levels(samples, model_name, _parameter_names(args.model, hyper)):
            print(f"  {row['statistic']}: {row['levels']}: {row['mean_high']:.4f} vs {row['mean_low']:.4f}, "
                  f"t = {row['t']:.2f}, p = {row['p']:.3g}")
    missing = [label for label, run in manifest["selection"].items() if run is None]
    if missing:
        print(f"no converged run at: {', '.join(missing)}")
        return 3
    return 0


def _parameter_names(model_spec: str, hyper: dict) -> list[str]:
    from core.model import load_model

    return load_model(model_spec, **hyper).parameter_names


def add_parser(sub) -> None:
    p = sub.add_parser("sweep", help="EPI over a grid of property levels x seeds (the paper's X(y))")
    p.add_argument("model", help="registered model name or path/to/file.py:ClassName")
    p.add_argument("--vary", action="append", metavar="FIELD=V1,V2", required=True,
                   help="a property field (STAT.mean, STAT.std) or model hyperparameter and its levels")
    p.add_argument("--seeds", type=int, default=3, help="seeds per level (default 3)")
    p.add_argument("--first-seed", type=int, default=1)
    p.add_argument("--scheduler", default=None,
                   help="'local' (a Dask LocalCluster on this machine) or tcp://host:8786; default: this process")
    p.add_argument("--out", help="sweep directory (default RUNS_DIR/sweep-MODEL-TIME)")
    p.add_argument("--runs-dir", default="runs")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None)
    p.add_argument("--set", action="append", metavar="NAME=VALUE", help="model hyperparameter or flow/optimizer setting")
    p.add_argument("--mean", action="append", metavar="STAT=VALUE")
    p.add_argument("--std", action="append", metavar="STAT=VALUE")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_sweep)

