"""Max-ent connectivity of low-rank RNNs: per teacher and method, the constraint error, entropy (inferred vs
teacher), dynamics error of N = 1,000 networks sampled from the inferred p, tail indices, and wall time.

Methods: fm (CNF by flow matching, p(m) pinned by recorded units' m loadings), fm-free (same, latent
dynamics only: p(m) free up to E[m m^T]), epi (Real NVP + augmented Lagrangian on the free-m problem, the
same constraints as fm-free), gd (one lrRNN fitted by gradient descent on the latent trajectories).

    python benchmarks/maxent_connectivity.py [--quick] [--teachers bistable,cycle] [--methods fm,gd] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.connectivity.inference import infer, normalize_settings  # noqa: E402
from core.connectivity.teachers import TEACHERS  # noqa: E402

METHODS = {"fm": {"method": "fm"}, "fm-free": {"method": "fm", "pin_m": False},
           "epi": {"method": "epi", "pin_m": False}, "gd": {"method": "gd"}}


def run_row(teacher: str, method: str, quick: bool, seed: int = 0) -> dict:
    s = normalize_settings({"teacher": teacher, **METHODS[method], "seed": seed, "quick": quick})
    t0 = time.perf_counter()
    r = infer(s)
    r.pop("_samples", None)
    r["total_s"] = time.perf_counter() - t0
    return r


def fmt(x, nd=3):
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{nd}f}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="every row briefly (tiny settings, 1 network)")
    ap.add_argument("--teachers", default=",".join(TEACHERS))
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="also write the rows here")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.node()}, "
          f"{'CUDA' if torch.cuda.is_available() else 'CPU'}, torch {torch.__version__}, one thread"
          + (", --quick" if args.quick else ""))
    print("| teacher | method | constraint err | entropy (teacher) | dyn. err (tol) | networks | tail m / n|m (teacher) | fit s | total s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for teacher in args.teachers.split(","):
        for method in args.methods.split(","):
            r = run_row(teacher, method, args.quick, args.seed)
            rows.append({"teacher": teacher, "method_row": method, **r})
            v = r.get("validation", {})
            nets = v.get("networks", {})
            key = {k: round(x, 3) for k, x in nets.items() if k in ("fixed_point", "amplitude", "period", "radius",
                                                                    "slowness")}
            tails = (f"{fmt(v['tail_m'][0], 2)} / {fmt(v['tail_n_given_m'][0], 2)} "
                     f"({fmt(v['teacher_tail_m'][0], 2)} / {fmt(v['teacher_tail_n_given_m'][0], 2)})") if v else "-"
            print(f"| {teacher} | {method} | {fmt(r['constraint_error'], 4)} | {fmt(r['entropy'])} ({fmt(r.get('teacher_entropy'))}) "
                  f"| {fmt(v.get('dynamics_error'))} ({v.get('tolerance', '-')}) | {json.dumps(key)} | {tails} "
                  f"| {r['fit_wall_time_s']:.1f} | {r['total_s']:.1f} |", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
