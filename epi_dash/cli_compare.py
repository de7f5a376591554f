"""``epi-dash compare MODEL --methods epi,snpe,smc [--set N=25] [--seeds K] [--time-limit S] [--out DIR]``:
EPI, SNPE and SMC-ABC under the shared criterion, one printed row per (method, seed)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from core.baselines import MethodResult, parse_methods, run_comparison
from core.errors import InputError
from core.model import load_model
from core.property import EmergentProperty


def _assignment(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    name, value = text.split("=", 1)
    return name.strip(), value.strip()


def _value(text: str) -> Any:
    """'25' -> 25, '0.1' -> 0.1, 'true' -> True, anything else stays a string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``compare`` subcommand."""
    p = subparsers.add_parser(
        "compare", help="race EPI against SNPE and SMC-ABC under the shared convergence criterion",
        description=__doc__,
    )
    p.add_argument("model", help="registered model name (see `epi-dash models`) or path.py:Class")
    p.add_argument("--methods", default="epi,snpe,smc",
                   help="comma-separated: epi, snpe[:unbounded][:aggressive], smc (default: %(default)s)")
    p.add_argument("--set", dest="model_params", type=_assignment, action="append", default=[],
                   metavar="NAME=VALUE", help="model hyperparameter, e.g. N=25")
    p.add_argument("--mean", type=_assignment, action="append", default=[], metavar="STAT=V",
                   help="target mean of a statistic")
    p.add_argument("--std", type=_assignment, action="append", default=[], metavar="STAT=V",
                   help="target standard deviation of a statistic")
    for method in ("epi", "snpe", "smc"):
        p.add_argument(f"--{method}", dest=f"{method}_settings", type=_assignment, action="append",
                       default=[], metavar="NAME=VALUE", help=f"{method} setting override")
    p.add_argument("--seeds", type=int, default=1, help="seeds 1..K per method (default: %(default)s)")
    p.add_argument("--time-limit", type=float, default=600.0,
                   help="wall-time limit per run in seconds (default: %(default)s)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--out", default="compare-out", help="output folder (default: %(default)s)")
    p.set_defaults(func=run)
    return p


def format_row(r: MethodResult) -> str:
    stats = "  ".join(
        f"{name}={r.predictive_summary()[f'mean[{name}]']:.3f}±{r.predictive_summary()[f'sd[{name}]']:.3f}"
        for name in r.statistic_names
    )
    status = "yes" if r.converged else ("timeout" if r.timed_out else "no")
    t = r.time_to_criterion_s if r.time_to_criterion_s is not None else r.wall_time_s
    sims = r.simulations_to_criterion if r.simulations_to_criterion is not None else r.simulations
    line = (f"{r.method:<5} {r.setting:<20} {r.seed:>4} {status:>9} {t:>9.1f} {sims:>12,d} "
            f"{r.distance:>8.3f}  {stats}")
    return line + (f"  [{r.error}]" if r.error else "")


HEADER = (f"{'method':<5} {'setting':<20} {'seed':>4} {'converged':>9} {'time_s':>9} {'simulations':>12} "
          f"{'distance':>8}  predictive mean±sd")


def run(args: argparse.Namespace) -> int:
    """Run the comparison; exit 0 when every run finished (converged or not), 2 on bad input."""
    try:
        model = load_model(args.model, **{k: _value(v) for k, v in args.model_params})
        prop = EmergentProperty.default_for(
            model, mean={k: _value(v) for k, v in args.mean}, std={k: _value(v) for k, v in args.std})
        prop.validate(model)
        if args.seeds < 1:
            raise InputError("seeds", f"must be >= 1; got {args.seeds}")
        if not args.time_limit > 0:
            raise InputError("time_limit", f"must be > 0; got {args.time_limit}")
        overrides = {m: {k: _value(v) for k, v in getattr(args, f"{m}_settings")} for m in ("epi", "snpe", "smc")}
        specs = parse_methods(args.methods, overrides)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    print(f"# {model.model_name} {model.hyperparameters()}  dim={model.dim}  "
          f"criterion ||E f - mu|| < 0.25 (smc: eps <= 0.5)  limit {args.time_limit:g} s/run  -> {out}")
    print(HEADER, flush=True)
    try:
        results = run_comparison(model, prop, specs, list(range(1, args.seeds + 1)), args.time_limit, out,
                                 args.device, on_result=lambda r: print(format_row(r), flush=True))
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"# wrote {out / 'compare.csv'}, {out / 'compare.json'}, {out / 'samples'}/ ({len(results)} runs)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (``python -m epi_dash.cli_compare``) until the main CLI wires it in."""
    parser = argparse.ArgumentParser(prog="epi-dash")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
