"""Rank-2 RNN stable amplification: EPI vs SNPE vs SMC-ABC as N grows (paper Fig 4, Figs 18-20).

    .venv/bin/python benchmarks/rnn_scaling.py --N 2,10,25,50,100 --seeds 2 --time-limit 300 \
        --out benchmarks/out/rnn_scaling

Every (method, N, seed) runs under the shared criterion (||E f - mu||_2 < 0.25, checked per EPI
epoch / SNPE round; SMC-ABC: a population at epsilon <= 0.5) with a wall-time limit, one after the
other in this process. EPI keeps training to its own convergence test (the paper's EPI), so both its
time to the shared criterion and to its own convergence are reported. SMC-ABC, once it timed out on
every seed at some N, is skipped at the N run after it (``--skip-after-timeout``).

Writes ``scaling.csv`` / ``scaling.json`` / ``samples/``, ``fig4ab_time_sims.png`` (time and
simulations to the criterion vs N), ``fig4c_predictive.png`` (predictive distributions),
``fig4d_dynamics.png`` (fraction stable-amplified / decaying / unstable) and, with ``--fig19``,
``fig19.csv``: predictive mean and sd across N in {2, 10} x g in {0.01, 0.1} for EPI and SNPE.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch

from core.baselines import MethodResult, parse_methods, run_method, save_comparison
from core.model import load_model
from core.property import EmergentProperty

COLUMNS = ["method", "setting", "N", "seed", "converged", "t_criterion_s", "sims_criterion", "wall_s",
           "simulations", "distance", "epi_own_conv_s", "stable_amp", "decaying", "unstable"]


def epi_own_convergence_time(r: MethodResult) -> float | None:
    """Wall time of the first epoch whose EPI convergence test passed."""
    hits = [h.wall_time_s for h in r.history if h.extra.get("epi_converged")]
    return hits[0] if hits else None


def table_row(r: MethodResult, N: int, model) -> dict:
    fractions = model.dynamics_fractions(torch.as_tensor(r.predictive)) if len(r.predictive) else {}
    own = epi_own_convergence_time(r)
    return {
        "method": r.method, "setting": r.setting, "N": N, "seed": r.seed,
        "converged": "yes" if r.converged else ("timeout" if r.timed_out else "no"),
        "t_criterion_s": r.time_to_criterion_s, "sims_criterion": r.simulations_to_criterion,
        "wall_s": round(r.wall_time_s, 1), "simulations": r.simulations, "distance": round(r.distance, 3),
        "epi_own_conv_s": None if own is None else round(own, 1),
        "stable_amp": fractions.get("stable amplified"), "decaying": fractions.get("decaying"),
        "unstable": fractions.get("unstable"), "error": r.error or "",
        **{k: round(v, 4) for k, v in r.predictive_summary().items()},
    }


def fmt(row: dict) -> str:
    def num(v, spec):
        width = int(spec.split(".")[0].rstrip("d,f") or 0)
        return f"{'-':>{width}}" if v is None or (isinstance(v, float) and np.isnan(v)) else format(v, spec)
    return (f"{row['method']:<5} {row['setting']:<20} {row['N']:>4} {row['seed']:>4} {row['converged']:>8} "
            f"{num(row['t_criterion_s'], '9.1f')} {num(row['sims_criterion'], '11,.0f')} {row['wall_s']:>8.1f} "
            f"{row['simulations']:>11,d} {row['distance']:>8.3f} {num(row['epi_own_conv_s'], '9.1f')} "
            f"{num(row['stable_amp'], '6.2f')} {num(row['decaying'], '6.2f')} {num(row['unstable'], '6.2f')}"
            + (f"  [{row['error'][:80]}]" if row["error"] else ""))


HEADER = (f"{'method':<5} {'setting':<20} {'N':>4} {'seed':>4} {'conv':>8} {'t_crit_s':>9} {'sims_crit':>11} "
          f"{'wall_s':>8} {'sims':>11} {'dist':>8} {'epi_own_s':>9} {'stbamp':>6} {'decay':>6} {'unstab':>6}")


def per_n(text: str) -> Callable[[int], float]:
    """``"300"`` -> 300 for every N; ``"2:90,10:90,300"`` -> 90 at N = 2 and 10, else 300."""
    default, table = None, {}
    for part in text.split(","):
        if ":" in part:
            n, v = part.split(":")
            table[int(n)] = float(v)
        else:
            default = float(part)
    return lambda N: table.get(N, default)


def run_scaling(args) -> pd.DataFrame:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    specs = parse_methods(args.methods, {"epi": {"check_every": args.epi_check_every} if args.epi_check_every else {}})
    seeds = list(range(1, args.seeds + 1))
    rows: list[dict] = []
    given_up: set[str] = set()
    print(HEADER, flush=True)
    for N in args.N:
        model = load_model("rnn", N=N, g=args.g)
        prop = EmergentProperty.default_for(model)
        results: list[MethodResult] = []
        for spec in specs:
            if spec.name in given_up:
                print(f"{spec.method:<5} {spec.setting_name():<20} {N:>4}    - skipped: timed out on every seed "
                      "at an earlier N", flush=True)
                continue
            mine = []
            limit = args.time_limit(N)
            n_seeds = len(seeds) if spec.method == "epi" else int(args.baseline_seeds(N) or len(seeds))
            for seed in seeds[:n_seeds]:
                run_spec = spec.copy()
                if spec.method == "epi":
                    run_spec.settings["stop_at_criterion"] = False
                r = run_method(run_spec, model, prop, seed, limit, args.device)
                mine.append(r)
                results.append(r)
                row = table_row(r, N, model)
                rows.append(row)
                print(fmt(row), flush=True)
                save_comparison(results, out / f"N{N}", model, prop, limit)
                pd.DataFrame(rows).to_csv(out / "scaling.csv", index=False)
            if spec.method in args.skip_after_timeout and all(r.timed_out and not r.converged for r in mine):
                given_up.add(spec.name)
    return pd.DataFrame(rows)


def plot_scaling(table: pd.DataFrame, out: Path, N_for_predictive: list[int]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = table.assign(label=table["method"] + " " + table["setting"])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for label, group in table.groupby("label"):
        done = group[group["converged"] == "yes"]
        for ax, col in zip(axes, ("t_criterion_s", "sims_criterion")):
            if len(done):
                stats = done.groupby("N")[col].agg(["mean", "std"]).reset_index()
                ax.errorbar(stats["N"], stats["mean"], yerr=stats["std"].fillna(0), marker="o", capsize=3,
                            label=label)
            fails = group[group["converged"] != "yes"]
            if len(fails):  # a time-out is drawn at its wall time with an x
                y = fails["wall_s"] if col == "t_criterion_s" else fails["simulations"]
                ax.scatter(fails["N"], y, marker="x", color="gray")
    for ax, title in zip(axes, ("wall time to criterion (s)", "simulations to criterion")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("N")
        ax.set_title(title)
    axes[0].legend(fontsize=7)
    fig.suptitle("Rank-2 RNN stable amplification (x: time-out / not converged)")
    fig.tight_layout()
    fig.savefig(out / "fig4ab_time_sims.png", dpi=120)
    plt.close(fig)

    runs = []
    for N in N_for_predictive:
        path = out / f"N{N}" / "compare.json"
        if path.is_file():
            for run in json.loads(path.read_text())["runs"]:
                if run["seed"] == 1:
                    runs.append((N, run))
    if runs:
        colors: dict[str, str] = {}
        fig, axes = plt.subplots(len(N_for_predictive), 2, figsize=(10, 2.6 * len(N_for_predictive)), squeeze=False)
        for row, N in enumerate(N_for_predictive):
            for N_, run in runs:
                if N_ != N:
                    continue
                f = np.load(out / f"N{N}" / run["samples_file"])["f"]
                label = f"{run['method']} {run['setting']}"
                color = colors.setdefault(label, f"C{len(colors)}")
                for j, (ax, mu) in enumerate(zip(axes[row], (0.5, 1.5))):
                    if len(f):
                        ax.hist(f[:, j], bins=50, range=(mu - 1.5, mu + 1.5), histtype="step", density=True,
                                label=label, color=color)
                    ax.axvline(mu, color="k", lw=0.8)
                    ax.set_title(f"N={N}: {('real(lambda_1)', 'lambda^s')[j]}", fontsize=9)
        for row_axes in axes:
            row_axes[0].legend(fontsize=6)
        fig.tight_layout()
        fig.savefig(out / "fig4c_predictive.png", dpi=120)
        plt.close(fig)

    fig, ax = plt.subplots(figsize=(10, 4))
    seed1 = table[(table["seed"] == 1) & table["stable_amp"].notna()]
    labels = [f"{r.method} {r.setting}\nN={r.N}" for r in seed1.itertuples()]
    bottom = np.zeros(len(seed1))
    for col, color in (("stable_amp", "tab:green"), ("decaying", "tab:blue"), ("unstable", "tab:red")):
        ax.bar(range(len(seed1)), seed1[col], bottom=bottom, color=color, label=col)
        bottom += seed1[col].to_numpy()
    ax.set_xticks(range(len(seed1)), labels, rotation=90, fontsize=6)
    ax.set_ylabel("fraction of predictive samples")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "fig4d_dynamics.png", dpi=120)
    plt.close(fig)


def run_fig19(args) -> pd.DataFrame:
    """EPI's predictive mean/sd stay at the targets across N and g; SNPE's (posterior at x0) move."""
    rows = []
    specs = parse_methods(args.fig19_methods)
    print("\n# Fig 19 check: predictive mean and sd across N and g (seed 1)", flush=True)
    for N in (2, 10):
        for g in (0.01, 0.1):
            model = load_model("rnn", N=N, g=g)
            prop = EmergentProperty.default_for(model)
            for spec in specs:
                run_spec = spec.copy()
                if spec.method == "epi":
                    run_spec.settings["stop_at_criterion"] = False
                elif spec.method == "snpe":
                    run_spec.settings["stop_at_criterion"] = False  # the full SNPE posterior, not the first hit
                r = run_method(run_spec, model, prop, 1, args.fig19_time_limit, args.device)
                s = r.predictive_summary()
                row = {"method": r.method, "setting": r.setting, "N": N, "g": g,
                       "converged": r.converged, "epi_own_converged": bool(r.extra.get("epi_converged")),
                       **{k: round(v, 3) for k, v in s.items()}, "wall_s": round(r.wall_time_s, 1),
                       "error": r.error or ""}
                rows.append(row)
                print("  ".join(f"{k}={v}" for k, v in row.items()), flush=True)
    table = pd.DataFrame(rows)
    table.to_csv(Path(args.out) / "fig19.csv", index=False)
    return table


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--N", type=lambda s: [int(v) for v in s.split(",")], default=[2, 10, 25, 50, 100])
    p.add_argument("--g", type=float, default=0.01)
    p.add_argument("--methods", default="epi,snpe,snpe:unbounded,smc")
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--time-limit", type=per_n, default=per_n("300"),
                   help="wall-time limit per run (s): one number or N:seconds pairs plus a default, e.g. 2:90,10:90,300")
    p.add_argument("--baseline-seeds", type=per_n, default=per_n("0"),
                   help="seeds for SNPE/SMC (0: as --seeds); same N:value syntax")
    p.add_argument("--epi-check-every", type=int, default=0,
                   help="also check EPI's criterion every k iterations (0: per epoch only, like SNPE per round)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (1 is fastest on a shared 2-core box; every method gets the same)")
    p.add_argument("--device", default="auto")
    p.add_argument("--skip-after-timeout", type=lambda s: s.split(","), default=["smc"],
                   help="methods skipped at later N once they timed out on every seed (default: smc)")
    p.add_argument("--fig19", action="store_true", help="also run the Fig 19 check")
    p.add_argument("--fig19-only", action="store_true")
    p.add_argument("--plot-only", action="store_true", help="redraw the figures from OUT/scaling.csv")
    p.add_argument("--fig19-methods", default="epi,snpe")
    p.add_argument("--fig19-time-limit", type=float, default=120.0)
    p.add_argument("--out", default="benchmarks/out/rnn_scaling")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    print(f"# rnn scaling: N={args.N} seeds={args.seeds} limits={[args.time_limit(n) for n in args.N]}s "
          f"threads={args.threads} "
          f"device={args.device} torch {torch.__version__}", flush=True)
    if args.plot_only:
        table = pd.read_csv(out / "scaling.csv").replace({np.nan: None})
        plot_scaling(table.astype({"stable_amp": float, "decaying": float, "unstable": float}), out,
                     [n for n in args.N if n in (2, 25, 100)] or args.N[:1])
        return 0
    if not args.fig19_only:
        table = run_scaling(args)
        plot_scaling(table, out, [n for n in args.N if n in (2, 25, 100)] or args.N[:1])
        print("\n# summary (mean over converged seeds; n_conv / seeds)")
        conv = table.assign(ok=table["converged"] == "yes")
        summary = conv.groupby(["method", "setting", "N"]).agg(
            n_conv=("ok", "sum"), runs=("ok", "size"), t_criterion_s=("t_criterion_s", "mean"),
            sims_criterion=("sims_criterion", "mean"), epi_own_conv_s=("epi_own_conv_s", "mean"))
        print(summary.to_string(float_format=lambda v: f"{v:,.1f}"), flush=True)
    if args.fig19 or args.fig19_only:
        run_fig19(args)
    print(f"# total {time.perf_counter() - t0:.0f} s; wrote {out}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
