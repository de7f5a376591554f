"""``epi-dash amortized build --out DIR [--budget N] [--scheduler ADDR]`` and
``epi-dash amortized infer DIR --target heldout:K|FILE -n 1000 --out OUT``: AutoMIND-style amortized
inference of a clustered AdEx spiking network (see README, "Amortized inference of a spiking network")."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from core.errors import InputError


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``amortized build`` and ``amortized infer``."""
    p = subparsers.add_parser("amortized", help="amortized inference of a spiking network (AutoMIND)",
                              description=__doc__)
    sub = p.add_subparsers(dest="amortized_command", required=True)
    b = sub.add_parser("build", help="simulate (or resume) the training set and train the estimator")
    b.add_argument("--out", required=True, help="data set directory (created or resumed)")
    b.add_argument("--budget", type=int, default=None, help="training simulations (default 2000)")
    b.add_argument("--heldout", type=int, default=None, help="held-out simulations for targets (default 20)")
    b.add_argument("--chunk-size", type=int, default=None, help="simulations per chunk (default 50)")
    b.add_argument("--scheduler", default=None,
                   help="Dask scheduler address (tcp://host:8786); default: a local process pool; 'sync': inline")
    b.add_argument("--neurons", type=int, default=None, help="network size (default 400)")
    b.add_argument("--duration", type=float, default=None, help="simulated seconds (default 2.5)")
    b.add_argument("--seed", type=int, default=None)
    b.add_argument("--max-epochs", type=int, default=None, help="estimator training epochs at most (default 300)")
    b.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"], help="simulation device")
    b.add_argument("--quiet", action="store_true")
    b.set_defaults(func=cmd_build)
    i = sub.add_parser("infer", help="posterior samples, predictive check and geometry for a target")
    i.add_argument("dataset", help="data set directory made by `amortized build`")
    i.add_argument("--target", required=True, help="heldout:K or a spike file (.npz, .csv, .nwb)")
    i.add_argument("-n", type=int, default=1000, help="posterior samples (default 1000)")
    i.add_argument("--out", required=True, help="output directory: samples.npz, check.json, geometry.json")
    i.add_argument("-k", "--resimulate", type=int, default=50, help="samples re-simulated by the check (default 50)")
    i.add_argument("--tol", type=float, default=0.5, help="tolerance in training-set sds (default 0.5)")
    i.add_argument("--duration", type=float, default=None, help="recording length (s) for a spike file")
    i.add_argument("--compare", default=None, help="a second target: geometry side by side")
    i.add_argument("--seed", type=int, default=0)
    i.set_defaults(func=cmd_infer)
    return p


def _build_settings(args: argparse.Namespace, existing: dict | None) -> dict:
    from core.amortized.dataset import default_settings

    base = dict(existing or {})
    over = {k: v for k, v in (("budget", args.budget), ("heldout", args.heldout), ("chunk_size", args.chunk_size),
                              ("seed", args.seed), ("scheduler", args.scheduler)) if v is not None}
    network = dict(base.get("network", {}))
    if args.neurons is not None:
        network["n_neurons"] = args.neurons
    if args.duration is not None:
        network["duration"] = args.duration
    from core.amortized.prior import NetworkConfig

    network = NetworkConfig.from_dict(network).to_dict()
    if existing and network != NetworkConfig.from_dict(existing.get("network")).to_dict():
        raise InputError("out", f"{args.out} holds a data set of another network ({existing.get('network')}); "
                         "use a new --out")
    if existing and over.get("seed", existing["seed"]) != existing["seed"]:
        raise InputError("seed", f"{args.out} was built with seed {existing['seed']}; use a new --out")
    base.update(over)
    base["network"] = network
    base["device"] = args.device
    base.setdefault("scheduler", None)
    return default_settings(**{k: v for k, v in base.items()})


def cmd_build(args: argparse.Namespace) -> int:
    from core.amortized.dataset import DATASET_FILE, DATASET_KIND, build_dataset, check_version, load_dataset
    from core.amortized.posterior import ESTIMATOR_DIR, POSTERIOR_KIND, train_posterior
    from core.jobs import run_job
    from core.runs import read_run_json

    torch.set_num_threads(1)
    out = Path(args.out)
    existing = None
    if (out / DATASET_FILE).is_file():
        existing = check_version(out)["settings"]
    settings = _build_settings(args, existing)
    resume = (out / "run.json").is_file() and read_run_json(out).get("kind") == DATASET_KIND
    res = run_job(build_dataset, settings, out, kind=DATASET_KIND, resume=resume, progress_bar=not args.quiet)
    if res.state != "finished":
        print(f"data set {res.state}{': ' + res.error if res.error else ''}; run the same command to resume",
              file=sys.stderr)
        res.raise_for_state()
        return 1
    print(f"data set: {res.result['simulations']} simulations ({res.result['valid']} valid, not silent or "
          f"exploding), {res.result['heldout']} held out, in {out}")
    est = out / ESTIMATOR_DIR
    n_sim = len(load_dataset(out)["theta"])
    summary_file = est / "posterior.json"
    if summary_file.is_file() and json.loads(summary_file.read_text()).get("n_simulated") == n_sim:
        print(f"estimator: up to date ({summary_file})")
        return 0
    train = {} if args.max_epochs is None else {"max_epochs": args.max_epochs}
    res = run_job(train_posterior, {"dataset": str(out.resolve()), "train": train}, est, kind=POSTERIOR_KIND,
                  progress_bar=not args.quiet)
    if res.state != "finished":
        print(f"estimator training {res.state}{': ' + res.error if res.error else ''}; run the same command "
              "to train again", file=sys.stderr)
        res.raise_for_state()
        return 1
    r = res.result
    print(f"estimator: NPE ({'converged' if r['converged'] else 'not converged'} after {r['epochs']} epochs, "
          f"{r['n_train']} simulations, {r['train_s']:.0f} s) in {est}")
    return 0


def cmd_infer(args: argparse.Namespace) -> int:
    from core.amortized.geometry import compare_geometries, compare_text
    from core.amortized.inference import analyze_target
    from core.amortized.posterior import load_posterior
    from core.amortized.targets import resolve_target
    from core.runs import atomic_write

    torch.set_num_threads(1)
    if args.n < 1:
        raise InputError("n", f"must be >= 1, got {args.n}")
    if args.resimulate < 1:
        raise InputError("resimulate", f"must be >= 1, got {args.resimulate}")
    posterior = load_posterior(args.dataset)
    target = resolve_target(args.dataset, args.target, args.duration)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    a = analyze_target(posterior, target, n=args.n, k=args.resimulate, tol=args.tol, seed=args.seed)
    np.savez(out / "samples.npz", z=a.z.numpy(), names=np.array(posterior.parameter_names))
    check = a.check.to_json()
    atomic_write(out / "check.json", lambda p: p.write_text(json.dumps(check, indent=2)))
    print(f"{args.n} posterior samples in {a.sample_s:.2f} s -> {out / 'samples.npz'}")
    print(a.check.table())
    print(f"{a.geometry_source}:")
    print(a.geometry.summary())
    geometry = {"target": a.to_json()}
    if args.compare:
        other = analyze_target(posterior, resolve_target(args.dataset, args.compare, args.duration), n=args.n,
                               k=args.resimulate, tol=args.tol, seed=args.seed)
        print(other.geometry.summary())
        c = compare_geometries(a.geometry, other.geometry)
        print(compare_text(c))
        geometry.update(compare=other.to_json(), comparison=c)
    atomic_write(out / "geometry.json", lambda p: p.write_text(json.dumps(geometry, indent=2, default=float)))
    return 0
