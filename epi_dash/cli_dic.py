"""``epi-dash dic``: degenerate populations of conductance-based neurons from spike times (DICs).

    epi-dash dic train --model stg [--out DIR]            # simulate the training set, train the network
    epi-dash dic generate --model stg --spikes FILE -n 1000 --out DIR
    epi-dash dic generate --model da --dic=GS,GU -n 1000 --out DIR   (--dic=-2,3: '=' for a negative g_s)

``train`` writes ``DIR/dataset`` (the simulated data set, a resumable job) and ``DIR/network``
(``density.pt``, a resumable job); DIR defaults to ``$EPI_DASH_RUNS_DIR/dic/MODEL`` (``runs/dic/MODEL``),
which is where ``generate`` looks for the network unless ``--network`` says otherwise. Re-running
``train`` resumes an interrupted job and skips finished ones (``--fresh`` starts over).

``generate`` writes ``DIR/population.npz`` (``g`` (n, k) maximal conductances of the kept neurons, ``names``
(k,), ``units``, ``targets`` (n, 2) the (g_s, g_u) targets, ``dics`` (n, 3) achieved (g_f, g_s, g_u),
``V_th``, and ``failed_targets``/``failed_reason`` for neurons compensation could not keep positive) and
``DIR/metrics.csv`` (one row per input unit and generated neuron: source, unit, class, cv and the five
activity metrics).
"""

from __future__ import annotations

import csv
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from core.errors import InputError


def default_dir(model: str) -> Path:
    """Where ``dic train`` puts, and ``dic generate`` finds, a model's data set and network."""
    from .config import runs_dir_from_env

    return runs_dir_from_env() / "dic" / model


def parse_dic(text: str) -> tuple[float, float]:
    parts = [p for p in str(text).replace(" ", "").split(",") if p]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise InputError("dic", f"expected GS,GU (two numbers), got {text!r}") from None
    if len(values) != 2:
        raise InputError("dic", f"expected GS,GU (two numbers), got {text!r}")
    return values[0], values[1]


def _job_state(run_dir: Path) -> str:
    f = run_dir / "run.json"
    if not f.is_file():
        return ""
    return json.loads(f.read_text()).get("state", "")


def _run(fn, settings, run_dir: Path, kind: str, fresh: bool):
    from core.jobs import resume_job, run_job

    state = _job_state(run_dir)
    if fresh and run_dir.exists():
        shutil.rmtree(run_dir)
        state = ""
    if state == "finished":
        print(f"{kind}: already finished in {run_dir} (--fresh to redo)")
        return None
    if state:
        print(f"{kind}: resuming {run_dir} ({state})")
        return resume_job(run_dir, progress_bar=True).raise_for_state()
    return run_job(fn, settings, run_dir, kind=kind, progress_bar=True).raise_for_state()


def cmd_train(args) -> int:
    from core.conductance.dataset import KIND as DKIND, dataset_settings, simulate_dataset
    from core.conductance.models import get_model
    from core.conductance.training import KIND as TKIND, train_density, training_settings

    torch.set_num_threads(max(1, args.threads))
    model = get_model(args.model)
    out = Path(args.out) if args.out else default_dir(model.name)
    n = args.n if args.n is not None else (2000 if model.name == "stg" else 1000)
    ds = dataset_settings(model=model.name, n=n, chunk=args.chunk, noise_fraction=args.noise_fraction,
                          noise_sigma=args.noise_sigma, seed=args.seed, duration=args.duration,
                          transient=args.transient, device=args.device)
    ts = training_settings(dataset=str((out / "dataset").resolve()), epochs=args.epochs, seed=args.seed)
    t0 = time.time()
    _run(simulate_dataset, ds, out / "dataset", DKIND, args.fresh)
    t1 = time.time()
    res = _run(train_density, ts, out / "network", TKIND, args.fresh)
    t2 = time.time()
    print(f"data set: {out / 'dataset'} ({t1 - t0:.0f} s); network: {out / 'network' / 'density.pt'} "
          f"({t2 - t1:.0f} s)" + (f"; validation NLL {res.result['best_val_nll']:.3f}" if res else ""))
    return 0


def _write_metrics(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["source"])
        w.writeheader()
        w.writerows(rows)


def cmd_generate(args) -> int:
    from core.conductance.compensation import compensate
    from core.conductance.density import load_density
    from core.conductance.metrics import activity_metrics
    from core.conductance.models import get_model
    from core.conductance.pipeline import as_numpy_population, compare, generate, metrics_rows
    from core.conductance.simulate import simulate
    from core.conductance.spikes import read_spikes

    torch.set_num_threads(max(1, args.threads))
    model = get_model(args.model)
    if (args.spikes is None) == (args.dic is None):
        raise InputError("spikes", "give exactly one of --spikes FILE or --dic GS,GU")
    if args.n < 1:
        raise InputError("n", f"population size must be >= 1, got {args.n}")
    out = Path(args.out)
    rows: list[dict] = []
    m_in = None
    t0 = time.perf_counter()
    if args.spikes is not None:
        trains = read_spikes(args.spikes)
        net = load_density(Path(args.network) if args.network else default_dir(model.name) / "network")
        comp = generate(model, net, trains, args.n, seed=args.seed)
        m_in = activity_metrics(trains)
        rows += metrics_rows(m_in, "input", trains.units)
    else:
        comp = compensate(model, parse_dic(args.dic), n=args.n, seed=args.seed)
    t_gen = time.perf_counter() - t0
    out.mkdir(parents=True, exist_ok=True)
    pop = as_numpy_population(comp)
    ok = pop["ok"]
    arrays = {"g": pop["g"][ok], "names": pop["names"], "units": pop["units"], "targets": pop["targets"][ok],
              "dics": pop["dics"][ok], "V_th": pop["V_th"], "model": np.array(model.name),
              "failed_targets": pop["targets"][~ok], "failed_reason": pop["reason"][~ok]}
    np.savez(out / "population.npz", **arrays)
    print(f"{int(ok.sum())} of {args.n} neurons compensated in {t_gen * 1000:.0f} ms "
          f"(V_th {model.V_th} mV){'' if ok.all() else f'; {int((~ok).sum())} failed: ' + str(pop['reason'][~ok][0])}")
    if not args.no_simulate and ok.any():
        sim = simulate(model, torch.from_numpy(arrays["g"]), seed=args.seed, device=args.device,
                       duration=args.duration, transient=args.transient)
        m_gen = activity_metrics(sim.spikes)
        rows += metrics_rows(m_gen, "generated")
        counts = torch.bincount(m_gen["cls"], minlength=3).tolist()
        print(f"generated activity: {counts[1]} spiking, {counts[2]} bursting, {counts[0]} silent")
        if m_in is not None:
            c = compare(m_in, m_gen)
            print(f"input regime: {c['regime']}; generated in regime: {100 * c['in_regime']:.1f} %")
            for k, e in c["err"].items():
                print(f"  {k}: input median {c['median_in'].get(k, float('nan')):.3g}, generated median "
                      f"{c['median_gen'].get(k, float('nan')):.3g}, median relative error {100 * e:.1f} %")
    _write_metrics(out / "metrics.csv", rows)
    print(f"wrote {out / 'population.npz'} and {out / 'metrics.csv'}")
    return 0


def add_parser(sub) -> None:
    import argparse

    p = sub.add_parser("dic", help="degenerate conductance-based populations from spike times (DICs)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = p.add_subparsers(dest="dic_command", required=True)

    t = verbs.add_parser("train", help="simulate the training set and train the spike-train -> DIC network")
    t.add_argument("--model", default="stg", help="stg or da (default: %(default)s)")
    t.add_argument("--out", help="folder (default: $EPI_DASH_RUNS_DIR/dic/MODEL, i.e. runs/dic/MODEL)")
    t.add_argument("-n", type=int, default=None, help="simulated neurons (default: 2000 STG, 1000 DA)")
    t.add_argument("--chunk", type=int, default=500, help="neurons per simulated chunk (default: %(default)s)")
    t.add_argument("--epochs", type=int, default=30, help="training epochs (default: %(default)s)")
    t.add_argument("--noise-fraction", type=float, default=0.5,
                   help="fraction of neurons simulated with a noisy current (default: %(default)s)")
    t.add_argument("--noise-sigma", type=float, default=5.0, help="noise std (default: %(default)s)")
    t.add_argument("--duration", type=float, default=None, help="ms kept per neuron (default: the model's)")
    t.add_argument("--transient", type=float, default=None, help="ms discarded (default: the model's)")
    t.add_argument("--seed", type=int, default=1)
    t.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    t.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: %(default)s)")
    t.add_argument("--fresh", action="store_true", help="discard earlier data set and network in --out")
    t.set_defaults(func=cmd_train)

    g = verbs.add_parser("generate", help="a degenerate population from spike times or from target DICs")
    g.add_argument("--model", default="stg", help="stg or da (default: %(default)s)")
    src = g.add_mutually_exclusive_group()
    src.add_argument("--spikes", help="spike-time file (.npz: times, units; .csv: unit,time)")
    src.add_argument("--dic", help="target DICs GS,GU (no network needed); write --dic=-6,7 for a negative g_s")
    g.add_argument("-n", type=int, default=1000, help="neurons to generate (default: %(default)s)")
    g.add_argument("--out", required=True, help="output folder")
    g.add_argument("--network", help="trained network folder or density.pt (default: runs/dic/MODEL/network)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--no-simulate", action="store_true", help="skip simulating the generated population")
    g.add_argument("--duration", type=float, default=None, help="ms simulated after the transient (default: the model's)")
    g.add_argument("--transient", type=float, default=None, help="ms discarded (default: the model's)")
    g.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    g.add_argument("--threads", type=int, default=1)
    g.set_defaults(func=cmd_generate)
