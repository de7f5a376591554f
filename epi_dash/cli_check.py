"""``epi-dash check MODEL [--mean STAT=V ...] [--std STAT=V ...] [--set NAME=VALUE ...]``: the pre-flight
check (core.preflight) before training: per statistic, where the target sits in what the box produces,
non-finite values, zero or non-finite gradients and jumps, with advice. Exit 0: no finding; 1: findings."""

from __future__ import annotations

import argparse
import json

from core.errors import InputError
from core.model import load_model
from core.preflight import preflight
from core.property import EmergentProperty
from core.settings import settings_for

from .cli import _pairs, split_sets


def cmd_check(args: argparse.Namespace) -> int:
    hyper, settings = split_sets(args.model, _pairs(args.set, "set"))
    model = load_model(args.model, **hyper)
    prop = EmergentProperty.default_for(model, mean=_pairs(args.mean, "mean"), std=_pairs(args.std, "std"))
    prop.validate(model)
    flow, _ = settings_for(model, **settings)  # the init the training would start from (init, init_mean, ...)
    if args.num_samples < 10:
        raise InputError("num_samples", f"must be at least 10; got {args.num_samples}")
    report = preflight(model, prop, num_samples=args.num_samples, seed=args.seed, flow=flow, device=args.device)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.to_markdown() if args.markdown else report.to_text())
    return 0 if report.ok else 1


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``check`` subcommand."""
    p = subparsers.add_parser(
        "check", help="pre-flight check: can EPI's gradients train this model and property?", description=__doc__,
    )
    p.add_argument("model", help="registered model name or path/to/file.py:ClassName")
    p.add_argument("--set", action="append", metavar="NAME=VALUE",
                   help="model hyperparameter or flow setting (e.g. init=abc: the initial q checked)")
    p.add_argument("--mean", action="append", metavar="STAT=VALUE", help="target mean of a statistic")
    p.add_argument("--std", action="append", metavar="STAT=VALUE", help="target standard deviation of a statistic")
    p.add_argument("-n", "--num-samples", type=int, default=1000,
                   help="draws from the box and from the initial q, each simulated twice (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the draws (default: %(default)s)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--markdown", action="store_true", help="print the report as Markdown")
    out.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_check)
    return p
