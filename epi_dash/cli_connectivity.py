"""``epi-dash connectivity``: maximum-entropy loading distributions of low-rank RNNs.

``infer --teacher bistable|cycle|ring[-heavy] [--method fm|epi|gd] --out DIR`` or ``infer --data FILE --rank R
--out DIR`` writes DIR/loadings.npz (``samples`` (n, k), ``names`` (k,), ``rank``, ``phi``, ``tau``), DIR/run.json
(settings, state, result with the constraint error, entropy and validation) and a resumable checkpoint;
``resume DIR`` continues a stopped run; ``teachers`` lists the teachers; ``identify`` prints what the
dynamics pin down."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from core.errors import InputError


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``connectivity`` verb group."""
    p = subparsers.add_parser("connectivity", help="max-entropy connectivity distributions of low-rank RNNs",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="connectivity_command", required=True)

    q = sub.add_parser("infer", help="infer the max-ent loading distribution from a teacher or a data file")
    src = q.add_mutually_exclusive_group(required=True)
    src.add_argument("--teacher", help="bistable, cycle, ring, or one of them with -heavy")
    src.add_argument("--data", help="latent trajectories or activity (.csv / .npz; formats in the README)")
    q.add_argument("--rank", type=int, default=None, help="rank R (required with --data)")
    q.add_argument("--method", default="fm", choices=["fm", "epi", "gd"],
                   help="fm: CNF by flow matching (default); epi: Real NVP + augmented Lagrangian; gd: "
                        "gradient-descent lrRNN fit")
    q.add_argument("--out", required=True, help="run directory")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--latent-only", action="store_true",
                   help="observe only the latent dynamics (p(m) free); default: also the units' m loadings")
    q.add_argument("--observation", default="field", choices=["field", "trajectories"],
                   help="teacher observation: vector field at probe states or finite differences of trajectories")
    q.add_argument("--steps", type=int, default=None, help="flow-matching steps (default 3000)")
    q.add_argument("--n-noise", type=float, default=None, help="data: sd of n left free by the dynamics (0.5)")
    q.add_argument("--no-validate", action="store_true", help="skip the N = 1,000 resampling validation")
    q.add_argument("--quick", action="store_true", help="tiny settings (seconds; for smoke tests)")
    q.set_defaults(func=run_infer)

    r = sub.add_parser("resume", help="continue a stopped or interrupted inference")
    r.add_argument("run_dir")
    r.set_defaults(func=run_resume)

    t = sub.add_parser("teachers", help="list the teachers")
    t.set_defaults(func=run_teachers)

    i = sub.add_parser("identify", help="which statistics of p a teacher's dynamics pin down")
    i.add_argument("--teacher", required=True)
    i.add_argument("--latent-only", action="store_true")
    i.set_defaults(func=run_identify)
    return p


def _print_result(res) -> int:
    if res.state == "failed":
        field, _, msg = res.error.partition(": ")
        if msg and " " not in field:
            raise InputError(field, msg)
        print(f"error: {res.error}", file=sys.stderr)
        return 1
    if res.state == "stopped":
        print(f"stopped; continue with: epi-dash connectivity resume {res.run_dir}")
        return 130
    r = res.result
    line = (f"{r.get('method')}: constraint error {r.get('constraint_error'):.4f}, entropy {r.get('entropy'):.3f}"
            + (f" (teacher {r['teacher_entropy']:.3f})" if "teacher_entropy" in r else "")
            + f", {r.get('wall_time_s', 0):.1f} s")
    print(line)
    v = r.get("validation", {})
    if "dynamics_error" in v:
        print(f"N = 1,000 networks: dynamics error {v['dynamics_error']:.3f} (tolerance {v['tolerance']}); "
              f"networks {json.dumps({k: round(x, 3) for k, x in v['networks'].items()})}; "
              f"teacher mean field {json.dumps({k: round(x, 3) for k, x in v['reference'].items()})}")
    if r.get("message"):
        print(r["message"])
    print(f"wrote {res.run_dir}/loadings.npz")
    return 0


def run_infer(args: argparse.Namespace) -> int:
    from core.connectivity.inference import infer_job, normalize_settings
    from core.jobs import run_job

    settings: dict[str, Any] = {"teacher": args.teacher, "data": args.data, "rank": args.rank,
                                "method": args.method, "seed": args.seed, "pin_m": not args.latent_only,
                                "observation": args.observation, "fm_steps": args.steps, "n_noise": args.n_noise,
                                "validate": not args.no_validate, "quick": args.quick}
    settings = {k: v for k, v in settings.items() if v is not None}
    normalize_settings(dict(settings))  # bad input: error: FIELD: MESSAGE before a run dir exists
    res = run_job(infer_job, settings, args.out, kind="connectivity.infer", progress_bar=True)
    return _print_result(res)


def run_resume(args: argparse.Namespace) -> int:
    from core.jobs import resume_job

    return _print_result(resume_job(args.run_dir, progress_bar=True))


def run_teachers(args: argparse.Namespace) -> int:
    from core.connectivity.teachers import TEACHERS, make_teacher

    for name in TEACHERS:
        t = make_teacher(name)
        print(f"{name:15s} rank {t.rank}  H = {t.entropy():.3f} nats  {t.description}")
    return 0


def run_identify(args: argparse.Namespace) -> int:
    from core.connectivity.identifiability import identifiability_report
    from core.connectivity.teachers import make_teacher

    t = make_teacher(args.teacher)
    print(identifiability_report(t.observation(pin_m=not args.latent_only)).text())
    return 0
