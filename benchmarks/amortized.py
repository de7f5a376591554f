"""Amortized inference of the clustered AdEx network (AutoMIND): simulator speed against brian2, agreement
with brian2, time to build and train, sampling latency, posterior-predictive acceptance on held-out
targets, calibration (expected coverage), and the regimes of the training set.

    python benchmarks/amortized.py --quick                 # every row on a tiny network and budget (minutes)
    python benchmarks/amortized.py --dataset DIR           # the rows on a data set made by `amortized build`
    python benchmarks/amortized.py --dataset DIR --targets 20 -k 10 --brian2-seeds 3

Without --dataset (and without --quick) it builds the default data set first (default network and budget).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.amortized.check import DEFAULT_TOL, compare  # noqa: E402
from core.amortized.dataset import build_dataset, default_settings, load_dataset  # noqa: E402
from core.amortized.features import FeatureSettings, classify_regimes, compute_features, feature_names  # noqa: E402
from core.amortized.network import simulate  # noqa: E402
from core.amortized.posterior import load_posterior, train_posterior  # noqa: E402
from core.amortized.prior import NetworkConfig, default_theta, sample_prior, to_unit  # noqa: E402
from core.amortized.reference import simulate_brian2  # noqa: E402
from core.jobs import resume_job, run_job  # noqa: E402

QUICK_NET = dict(n_neurons=60, duration=0.8, reference_n=300, t_early_stop=0.4)


def cpu_time() -> float:
    t = os.times()
    return t.user + t.system


def row(rows: list, name: str, value: str, goal: str = "", note: str = "") -> None:
    rows.append((name, value, goal, note))
    print(f"{name:<44} {value:<26} {goal:<22} {note}", flush=True)


def speed_rows(rows, net: NetworkConfig, batch: int, device: str, brian2_target: str) -> None:
    th = default_theta()
    t0, c0 = time.perf_counter(), cpu_time()
    simulate(th.repeat(batch, 1), net, seed=0, device=device)
    if device == "cuda":
        torch.cuda.synchronize()
    wt, ct = time.perf_counter() - t0, cpu_time() - c0
    t0, c0 = time.perf_counter(), cpu_time()
    simulate_brian2(th, net, seed=0, target=brian2_target)
    wb, cb = time.perf_counter() - t0, cpu_time() - c0
    row(rows, f"sims/s torch ({device}, batch {batch})", f"{batch / wt:.2f} ({batch / max(ct, 1e-9):.2f}/CPU-s)")
    row(rows, f"sims/s brian2 ({brian2_target})", f"{1 / wb:.3f} ({1 / max(cb, 1e-9):.3f}/CPU-s)")
    row(rows, "speed-up torch / brian2 (CPU time)", f"{(batch / ct) / (1 / cb):.1f}x", ">= 20x batched",
        f"wall {(batch / wt) / (1 / wb):.1f}x")
    c0 = cpu_time()
    simulate(sample_prior(50, seed=123), net, seed=0, device=device)
    per = (cpu_time() - c0) / 50
    row(rows, "CPU s per prior simulation (batch 50)", f"{per:.2f} s", "",
        f"2000 sims on 2 idle cores: {2000 * per / 2 / 60:.0f} min")


def agreement_rows(rows, net: NetworkConfig, seeds: int, brian2_target: str) -> None:
    names = feature_names()
    th = default_theta()
    xt = compute_features(simulate(th.repeat(seeds, 1), net, seed=5))
    xb = np.concatenate([compute_features(simulate_brian2(th, net, seed=s, target=brian2_target))
                         for s in range(seeds)])
    for name in ("rate_mu", "isi_cv_mu", "burst_rate"):
        j = names.index(name)
        a, b = xt[:, j], xb[:, j]
        se = np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b)) if seeds > 1 else 0.0
        ok = abs(a.mean() - b.mean()) <= 3 * se + 0.1 * abs(b.mean()) + 0.05
        row(rows, f"brian2 agreement {name}", f"{a.mean():.3f} vs {b.mean():.3f}",
            "|diff| <= 3 se + 10 %", "ok" if ok else "DIFFERS")
    psd = [i for i, n in enumerate(names) if n.startswith("psd_")]
    d = np.abs(xt[:, psd].mean(0) - xb[:, psd].mean(0))
    se = np.sqrt(xt[:, psd].var(0, ddof=1) / len(xt) + xb[:, psd].var(0, ddof=1) / len(xb)) if seeds > 1 else 0 * d
    ok = (d <= 3 * se + 0.1).all()
    row(rows, "brian2 agreement PSD bands (log10)", f"max |diff| {d.max():.2f}", "each <= 3 se + 0.1",
        "ok" if ok else "DIFFERS")


def build_rows(rows, root: Path, settings: dict, train: dict) -> None:
    t0, c0 = time.perf_counter(), cpu_time()
    if (root / "run.json").is_file():
        r = resume_job(root, progress_bar=True)
    else:
        r = run_job(build_dataset, settings, root, kind="amortized.dataset", progress_bar=True)
    r.raise_for_state()
    tb = time.perf_counter() - t0
    t1 = time.perf_counter()
    r2 = run_job(train_posterior, {"dataset": str(root), "train": train}, root / "estimator",
                 kind="amortized.posterior", progress_bar=True).raise_for_state()
    tt = time.perf_counter() - t1
    row(rows, f"build {r.result['simulations']}+{r.result['heldout']} sims", f"{tb:.0f} s wall",
        "", f"{settings['scheduler'] or 'local pool'}")
    row(rows, "train NPE", f"{tt:.0f} s wall, {r2.result['epochs']} epochs", "build+train < 30 min",
        f"main-process CPU {cpu_time() - c0:.0f} s")


def dataset_cost_rows(rows, root: Path) -> None:
    """Build and training times recorded by a finished data set (its chunks' own wall times)."""
    walls, n = [], 0
    for f in sorted((root / "chunks").glob("train_*.npz")):
        with np.load(f) as d:
            walls.append(float(d["wall_s"]))
            n += len(d["theta"])
    est = json.loads((root / "estimator" / "posterior.json").read_text())
    per = sum(walls) / max(n, 1)
    row(rows, f"data set {root.name}: {n} training sims", f"{per:.2f} s/sim in a worker",
        "", "chunk wall times (contended CPU)")
    row(rows, "train NPE (recorded)", f"{est['train_s']:.0f} s, {est['epochs']} epochs",
        "", f"{est['n_train']} valid sims")
    budget = 2000
    total = per * budget / 2 + est["train_s"] * budget / max(est["n_train"], 1)
    row(rows, f"default budget {budget} on 2 workers (extrap.)", f"{total / 60:.0f} min", "< 30 min",
        "at this run's per-sim cost")


def inference_rows(rows, root: Path, n_targets: int, k: int, tol: float) -> None:
    post = load_posterior(root)
    held = load_dataset(root, split="heldout")
    idx = np.flatnonzero(held["valid"])[:n_targets]
    x0 = held["x"][idx[0]]
    post.sample(x0, 1000)  # warm-up
    lat = []
    for i in idx[:5]:
        t0 = time.perf_counter()
        post.sample(held["x"][i], 1000, seed=int(i))
        lat.append(time.perf_counter() - t0)
    row(rows, "sampling latency, 1000 samples", f"median {np.median(lat):.3f} s (max {max(lat):.3f})", "< 1 s")
    # predictive check: k samples of each target, re-simulated in one batch
    net = NetworkConfig.from_dict(post.meta["network"])
    fs = FeatureSettings.from_dict(post.meta["feature_settings"])
    thetas = torch.cat([post.sample(held["x"][i], k, seed=100 + int(i)) for i in idx])
    t0 = time.perf_counter()
    sp = simulate(thetas, net, seed=7)
    xs = compute_features(sp, fs, t_start=net.t_start)
    fr = []
    for j, i in enumerate(idx):
        c = compare(xs[j * k:(j + 1) * k], sp.flagged[j * k:(j + 1) * k], held["x"][i], post, tol)
        fr.append(c.fraction_overall)
    fr = np.array(fr)
    # noise floor: the true parameters re-simulated with new noise (what any tolerance must allow)
    reps = 3
    sp0 = simulate(torch.as_tensor(held["theta"][idx]).repeat_interleave(reps, 0), net, seed=11)
    x0s = compute_features(sp0, fs, t_start=net.t_start)
    floor = [compare(x0s[j * reps:(j + 1) * reps], sp0.flagged[j * reps:(j + 1) * reps], held["x"][i], post,
                     tol).fraction_overall for j, i in enumerate(idx)]
    row(rows, "noise floor: true theta re-simulated", f"{100 * np.mean(floor):.0f} % within tol",
        "", f"{reps} new seeds x {len(idx)} targets")
    row(rows, f"predictive acceptance ({len(idx)} targets x {k})",
        f"{100 * (fr >= 0.5).mean():.0f} % of targets >= 50 %", ">= 80 % of targets",
        f"median {100 * np.median(fr):.0f} % within tol {tol}; re-sim {time.perf_counter() - t0:.0f} s")
    # calibration: expected coverage from the flow's density ranks, and marginal interval coverage
    ranks, marg50, marg90 = [], [], []
    for i in idx:
        z = post.sample_unit(held["x"][i], 500, seed=200 + int(i))
        true = to_unit(torch.as_tensor(held["theta"][i]))[None]
        with torch.no_grad():  # ranks by the flow's own (logit-space) density: drop the logit Jacobian
            jac = lambda u: torch.log(u.clamp(1e-5, 1 - 1e-5) * (1 - u.clamp(1e-5, 1 - 1e-5))).sum(-1)  # noqa: E731
            lq = post.log_prob_unit(z, held["x"][i]) + jac(z)
            lt = post.log_prob_unit(true, held["x"][i]) + jac(true)
        ranks.append(float((lq > lt).float().mean()))
        for lev, store in ((0.5, marg50), (0.9, marg90)):
            lo, hi = torch.quantile(z, (1 - lev) / 2, 0), torch.quantile(z, (1 + lev) / 2, 0)
            store.append(((true[0] >= lo) & (true[0] <= hi)).float().mean().item())
    ranks = np.array(ranks)
    row(rows, "expected coverage (HPD) at 50 % / 90 %",
        f"{100 * (ranks <= 0.5).mean():.0f} % / {100 * (ranks <= 0.9).mean():.0f} %", "50 % / 90 %",
        f"{len(idx)} held-out sims")
    row(rows, "marginal 50 % / 90 % interval coverage", f"{100 * np.mean(marg50):.0f} % / {100 * np.mean(marg90):.0f} %",
        "50 % / 90 %", "per parameter, averaged")


def regime_rows(rows, root: Path) -> None:
    d = load_dataset(root)
    net = d["meta"]["settings"]["network"]
    r = classify_regimes(d["x"], d["flagged"], FeatureSettings.from_dict(d["meta"]["settings"]["features"]),
                         window=net["duration"] - net["t_start"])
    counts = {k: int((r == k).sum()) for k in ("asynchronous", "oscillatory", "bursting", "silent")}
    row(rows, "regimes of the training set", ", ".join(f"{k} {v}" for k, v in counts.items()),
        "all of async/osc/burst", f"N={net['n_neurons']}, {net['duration']} s")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny network and budget: every row in minutes")
    ap.add_argument("--dataset", default=None, help="a data set directory (built if it does not exist)")
    ap.add_argument("--targets", type=int, default=20)
    ap.add_argument("-k", type=int, default=10, help="re-simulated samples per target")
    ap.add_argument("--brian2-seeds", type=int, default=3)
    ap.add_argument("--brian2-target", default="numpy", choices=["numpy", "cython"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--skip-brian2", action="store_true")
    ap.add_argument("--batch", type=int, default=50, help="networks per torch call in the speed row (the chunk size)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    rows: list = []
    print(f"# amortized benchmark, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.node()}, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; command: python benchmarks/amortized.py "
          + " ".join(sys.argv[1:] if argv is None else argv))
    print(f"{'row':<44} {'measured':<26} {'goal':<22} note")
    if args.quick:
        net = NetworkConfig(**QUICK_NET)
        root = Path(args.dataset or "/tmp/epi-dash-amortized-quick")
        settings = default_settings(budget=200, heldout=max(args.targets, 10), chunk_size=50, network=QUICK_NET,
                                    scheduler="sync")
        train = {"max_epochs": 60, "hidden": 30, "transforms": 3}
    else:
        net = NetworkConfig()
        root = Path(args.dataset or "runs/amortized-default")
        settings = default_settings(heldout=max(args.targets, 20))
        train = {}
    if not args.skip_brian2:
        speed_rows(rows, net, args.batch, args.device, args.brian2_target)
        agreement_rows(rows, net, args.brian2_seeds, args.brian2_target)
    if args.quick or not (root / "estimator" / "posterior.json").is_file():
        build_rows(rows, root, settings, train)
    dataset_cost_rows(rows, root)
    regime_rows(rows, root)
    inference_rows(rows, root, args.targets, args.k, DEFAULT_TOL)
    return 0


if __name__ == "__main__":
    sys.exit(main())
