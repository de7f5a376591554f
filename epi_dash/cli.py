"""The ``epi-dash`` command line: train, resume, info, sample, models, serve (and compare)."""

from __future__ import annotations

import argparse
import importlib
import errno
import json
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from core import (
    EmergentProperty,
    EPITrainer,
    InputError,
    available_models,
    best_result,
    load_distribution,
    load_model,
    load_model_class,
    load_run,
    reserve_run_dir,
    settings_for,
)
from core.executors import WORKER_NICE
from core.runs import read_run_json, run_state
from core.settings import FlowSettings, OptimizerSettings

from .runner import startup_phase


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        low = text.lower()
        return {"true": True, "false": False, "none": None}.get(low, text)


def _pairs(items: list[str] | None, flag: str) -> dict[str, Any]:
    out = {}
    for item in items or []:
        if "=" not in item:
            raise InputError(flag, f"expected NAME=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        out[k.strip()] = _parse_value(v.strip())
    return out


def split_sets(model_spec: str, sets: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """--set values go to the model's hyperparameters or to the flow/optimizer settings."""
    cls = load_model_class(model_spec)
    model_keys = set(cls.param) - {"name"}
    setting_keys = (set(FlowSettings.param) | set(OptimizerSettings.param)) - {"name"}
    hyper, settings = {}, {}
    for k, v in sets.items():
        if k in model_keys:
            hyper[k] = v
        elif k in setting_keys:
            settings[k] = v
        else:
            raise InputError(
                f"set[{k}]",
                f"neither a hyperparameter of {cls.__name__} ({', '.join(sorted(model_keys))}) nor a "
                f"flow/optimizer setting",
            )
    return hyper, settings


class ProgressPrinter:
    """tqdm progress bar over iterations (epoch, entropy, max |R|, ETA) + one line per epoch."""

    def __init__(self, total: int, done: int, constraint_names: list[str], quiet: bool):
        from tqdm import tqdm

        self.names = constraint_names
        self.quiet = quiet
        self.bar = None if quiet else tqdm(total=total, initial=done, unit="it", dynamic_ncols=True)
        self._last = 0.0

    def starting(self, trainer: EPITrainer) -> None:
        """Until the first iteration, the bar says what the trainer is doing (initializing q, compiling)."""
        if self.bar is None:
            return
        self.bar.set_postfix_str(startup_phase(trainer))

    def health(self, findings) -> None:
        """Health findings (core.health) as they come, with their advice."""
        for f in findings:
            (self.bar.write if self.bar else print)(f.to_text())

    def iteration(self, rec) -> None:
        self.health(rec.health)
        if self.bar is None:
            return
        self.bar.update(1)
        now = time.monotonic()
        if now - self._last > 0.25:
            self._last = now
            self.bar.set_postfix_str(f"epoch {rec.epoch} H {rec.entropy:.3f} max|R| {max(map(abs, rec.R)):.3g} c {rec.c:.3g}")

    def epoch(self, rec) -> None:
        self.health(rec.health)
        ps = ", ".join(f"{n} p={p:.3f}" for n, p in zip(self.names, rec.p_values))
        msg = (f"epoch {rec.epoch}: {'CONVERGED' if rec.converged else 'not converged'} "
               f"(H {rec.entropy:.3f}; {ps}){'; c increased' if rec.c_increased else ''}")
        (self.bar.write if self.bar else print)(msg)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _train_one(trainer: EPITrainer, quiet: bool):
    opt = trainer.opt
    printer = ProgressPrinter(opt.num_epochs * opt.iters_per_epoch, trainer.iteration,
                              trainer.property.constraint_names, quiet)
    trainer.add_callback(on_iteration=printer.iteration, on_epoch=printer.epoch)
    printer.starting(trainer)
    previous = signal.signal(signal.SIGINT, lambda *_: trainer.request_stop())
    try:
        return trainer.train()
    finally:
        signal.signal(signal.SIGINT, previous)
        printer.close()


def _report(result) -> int:
    where = result.run_dir
    if result.state == "unhealthy":
        print(f"stopped by the health watch after {result.iterations} iterations (findings above, also in "
              f"{where}/run.json); the checkpoint from before the finding is kept. To train on anyway: "
              "--set health=warn", file=sys.stderr)
        return 4
    if result.state == "failed":
        for h in result.health:  # a NaN statistic: the health watch's advice
            print("\n".join([f"health [{h['kind']}] {h['message']}", *(f"    - {a}" for a in h["advice"])]))
        print(f"error: {result.error}", file=sys.stderr)
        return 1
    if result.state == "stopped":
        print(f"stopped after {result.iterations} iterations; checkpoint in {where}; "
              f"continue with: epi-dash resume {where}")
        return 0
    print(f"{'converged' if result.converged else 'NOT converged'} after {result.epochs} epochs, "
          f"{result.iterations} iterations, {result.wall_time_s:.1f} s; entropy {result.entropy:.3f}; run in {where}")
    if not result.converged and getattr(result, "message", ""):
        print(result.message)
    return 0 if result.converged else 3


def cmd_train(args) -> int:
    hyper, settings = split_sets(args.model, _pairs(args.set, "set"))
    model = load_model(args.model, **hyper)
    prop = EmergentProperty.default_for(model, mean=_pairs(args.mean, "mean"), std=_pairs(args.std, "std"))
    prop.validate(model)
    if args.device:
        settings["device"] = args.device
    out = Path(args.out) if args.out else reserve_run_dir("runs", f"{model.model_name}-{time.strftime('%Y%m%d-%H%M%S')}")
    base_seed = settings.pop("seed", 1) if args.seed is None else args.seed
    seeds = [base_seed + k for k in range(args.seeds)]
    if len(seeds) == 1:
        flow, opt = settings_for(model, seed=seeds[0], **settings)
        return _report(_train_one(EPITrainer(model, prop, flow, opt, run_dir=out), args.quiet))
    results = []
    for s in seeds:
        flow, opt = settings_for(model, seed=s, **settings)
        print(f"--- seed {s} ---")
        results.append(_train_one(EPITrainer(load_model(args.model, **hyper), prop, flow, opt,
                                             run_dir=out / f"seed-{s}"), args.quiet))
    best = best_result(results)
    summary = [{"seed": s, "converged": r.converged, "entropy": r.entropy, "run_dir": r.run_dir}
               for s, r in zip(seeds, results)]
    (out / "selection.json").write_text(json.dumps(
        {"rule": "converged run of greatest entropy", "chosen": best.run_dir if best else None, "runs": summary},
        indent=2))
    if best is None:
        print(f"no seed converged; runs in {out}/seed-*")
        return 3
    for name in ("run.json", "trace.csv", "checkpoint.pt", "samples.npz"):
        shutil.copy2(Path(best.run_dir) / name, out / name)
    print(f"best seed: {best.run_dir} (entropy {best.entropy:.3f}); copied to {out}")
    return _report(best.__class__(**{**best.__dict__, "run_dir": str(out)}))


def cmd_resume(args) -> int:
    if (Path(args.run_dir) / "run.json").is_file() and run_state(read_run_json(args.run_dir)) == "running":
        raise InputError("run_dir", f"{args.run_dir} is still training in another process; stop it first "
                         "(or wait until it is listed as interrupted)")
    trainer = EPITrainer.resume(args.run_dir, device=args.device)
    return _report(_train_one(trainer, args.quiet))


def cmd_info(args) -> int:
    run = load_run(args.run_dir)
    meta = run.meta
    if args.json:
        print(json.dumps(meta, indent=2))
        return 0
    print(f"model       {meta['model']}  {meta['model_params']}")
    prop = meta["property"]
    for s, mu, sd in zip(prop["statistics"], prop["mean"], prop["std"]):
        print(f"property    {s}: mean {mu:g}, sd {sd:g}")
    print(f"parameters  {', '.join(meta['parameter_names'][:12])}{' ...' if len(meta['parameter_names']) > 12 else ''}")
    resumable = " (its process is gone: `epi-dash resume` continues from the last checkpoint)"
    print(f"state       {run.state}{resumable if run.state == 'interrupted' else ''}; converged {meta['converged']}; epochs {meta['epochs']}; "
          f"iterations {meta['iterations']}; wall time {meta['wall_time_s']:.1f} s; device {meta['device']}")
    for h in meta["history"]:
        ps = " ".join(f"{p:.2f}" for p in h["p_values"])
        print(f"  epoch {h['epoch']:>3}  it {h['iteration']:>7}  H {h['entropy']:9.3f}  c {h['c']:<9.3g} p [{ps}]"
              f"{'  converged' if h['converged'] else ''}")
    return 0


def cmd_sample(args) -> int:
    run = load_run(args.run_dir)
    dist = load_distribution(run)
    z, log_q = dist.sample_with_log_prob(args.n)
    z, log_q = z.cpu().numpy(), log_q.cpu().numpy()
    out = Path(args.output)
    names = dist.parameter_names
    if out.suffix == ".npz":
        np.savez(out, z=z, log_q=log_q, names=np.array(names))
    elif out.suffix == ".csv":
        np.savetxt(out, np.column_stack([z, log_q]), delimiter=",", header=",".join([*names, "log_q"]), comments="")
    else:
        raise InputError("output", f"must end in .npz or .csv; got {out.name}")
    print(f"wrote {args.n} samples to {out}")
    return 0


def cmd_models(args) -> int:
    for name, cls in available_models().items():
        model = cls()
        doc = (cls.__doc__ or "").strip().split("\n")[0]
        print(f"{name}: {doc}")
        ps = model.free_parameters()
        shown = ", ".join(f"{p.name} [{p.lower:g}, {p.upper:g}]{' ' + p.unit if p.unit else ''}" for p in ps[:8])
        print(f"  parameters ({len(ps)}): {shown}{' ...' if len(ps) > 8 else ''}")
        for s in model.statistic_specs():
            print(f"  statistic {s.name}: mean {s.mean:g}, sd {s.std:g} {s.unit}".rstrip())
        hyper = {k: v for k, v in model.hyperparameters().items() if not isinstance(v, list) or len(v) <= 5}
        print(f"  hyperparameters: {hyper}")
    return 0


def end_like_ctrl_c(signum: int, frame) -> None:
    """SIGTERM handler of ``epi-dash serve`` (systemd, docker stop, kill): end the server as Ctrl-C does, so
    the interpreter exits normally (status 0) and every session's training stops with a checkpoint
    (``runner.stop_all_trainings`` at exit). A serving process hands it to Panel's Ctrl-C handler, which stops
    the IOLoop at its next turn: nothing is raised into whatever the main thread runs then (a ``SystemExit``
    raised inside a finalizer or an exit callback printed "Exception ignored ... SystemExit: 0"). Before the
    server runs, and in the supervisor of ``--num-procs`` workers (waiting on them), it exits at once.
    Once is enough: a second SIGTERM during the shutdown (a process group's, say) is ignored."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    interrupt = signal.getsignal(signal.SIGINT)
    if callable(interrupt) and interrupt is not signal.default_int_handler:
        interrupt(signal.SIGINT, frame)
    else:
        raise SystemExit(0)


def cmd_serve(args) -> int:
    from epi_dash.scheduler import export_limits
    from epi_dash.serve import serve

    export_limits(args)  # EPI_DASH_MAX_*: read by every server process's scheduler

    signal.signal(signal.SIGTERM, end_like_ctrl_c)
    try:
        serve(address=args.address, port=args.port, allow_websocket_origin=args.allow_websocket_origin or None,
              runs_dir=args.runs_dir, model_path=args.model_path or None, show=args.show, num_procs=args.num_procs,
              scheduler=args.scheduler, basic_auth=args.basic_auth, cookie_secret=args.cookie_secret,
              no_auth=args.no_auth, admins=args.admins, oauth_provider=args.oauth_provider,
              oauth_key=args.oauth_key, oauth_secret=args.oauth_secret, worker_nice=args.worker_nice)
    except KeyboardInterrupt:  # Ctrl-C reaching the supervisor of --num-procs workers (they stop on their own)
        return 0
    except OSError as exc:  # raised while binding, before anything is served
        if exc.errno == errno.EADDRINUSE:
            raise InputError("port", f"{args.port} is in use on {args.address} (another server?); "
                             "choose another with --port") from exc
        raise InputError("address", f"cannot listen on {args.address}:{args.port}: {exc}") from exc
    return 0


def integer_in(text: str, low: int, high: int, what: str) -> int:
    """``text`` as an integer in low..high, else an argparse error naming ``what``."""
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"{what} is an integer in {low}..{high}; got {text!r}")
    return value


def port_number(text: str) -> int:
    """argparse type of --port: an integer in 1..65535."""
    return integer_in(text, 1, 65535, "a TCP port")


def nice_level(text: str) -> int:
    """argparse type of --worker-nice: an integer in 0..19."""
    return integer_in(text, 0, 19, "a nice value")


def process_count(text: str) -> int:
    """argparse type of --num-procs: an integer >= 0."""
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"a number of processes is an integer >= 0 (0: one per CPU core); got {text!r}")
    return int(text)


#: modules that add their own verbs (each has ``add_parser(subparsers)``): one per system
VERB_GROUPS = ("cli_compare", "cli_check", "cli_sweep", "cli_amortized", "cli_connectivity", "cli_dic",
               "cli_examples")


def build_parser() -> argparse.ArgumentParser:
    from epi_dash.scheduler import add_limit_arguments

    parser = argparse.ArgumentParser(prog="epi-dash", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="run EPI on a model")
    p.add_argument("model", help="registered model name or path/to/file.py:ClassName")
    p.add_argument("--out", help="run directory (default runs/MODEL-TIMESTAMP)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default 1)")
    p.add_argument("--seeds", type=int, default=1, help="train this many seeds; keep the converged one of max entropy")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None)
    p.add_argument("--set", action="append", metavar="NAME=VALUE", help="model hyperparameter or flow/optimizer setting")
    p.add_argument("--mean", action="append", metavar="STAT=VALUE", help="target mean of a statistic")
    p.add_argument("--std", action="append", metavar="STAT=VALUE", help="target standard deviation of a statistic")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("resume", help="continue a stopped run from its checkpoint")
    p.add_argument("run_dir")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_resume)

    p = sub.add_parser("info", help="summarize a run directory")
    p.add_argument("run_dir")
    p.add_argument("--json", action="store_true", help="print run.json")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("sample", help="draw samples from a trained run")
    p.add_argument("run_dir")
    p.add_argument("-n", type=int, default=1000)
    p.add_argument("-o", "--output", required=True, help="FILE.npz or FILE.csv")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("models", help="list models, their parameters and statistics")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("serve", help="start the dashboard")
    p.add_argument("--address", default="127.0.0.1", help="interface to bind (0.0.0.0 for a lab server)")
    p.add_argument("--port", type=port_number, default=5006)
    p.add_argument("--allow-websocket-origin", action="append", metavar="HOST[:PORT]",
                   help="public host name(s) browsers use to reach the server")
    p.add_argument("--runs-dir", default="runs", help="where runs are saved and listed")
    p.add_argument("--model-path", action="append", metavar="DIR", help="folder of user model files")
    p.add_argument("--show", action="store_true", help="open a browser")
    p.add_argument("--num-procs", type=process_count, default=1, metavar="N",
                   help="server processes sharing the port, each training its own sessions' runs on its own "
                   "core (0: one per CPU core; default 1). Use it when many people train at once")
    p.add_argument("--scheduler", default=None, metavar="local|tcp://HOST:8786",
                   help="run trainings on Dask distributed: 'local' starts a LocalCluster here, an address uses "
                   "that scheduler's workers (they must see the runs directory and model path at the same paths)")
    p.add_argument("--worker-nice", type=nice_level, default=WORKER_NICE, metavar="0..19",
                   help="nice value of the workers of --scheduler local (default 10: trainings take the CPU the "
                   "pages leave, so pages stay quick while the cores train; 0: same priority as the server)")
    p.add_argument("--basic-auth", default=None, metavar="credentials.json",
                   help="sign-in with Panel's basic auth: a JSON file of user: password (or one shared password)")
    p.add_argument("--cookie-secret", default=None, help="secret signing sign-in cookies (default: a random one)")
    p.add_argument("--no-auth", action="store_true",
                   help="serve a non-loopback --address without sign-in (refused otherwise)")
    p.add_argument("--admins", default=None, metavar="alice,bob",
                   help="signed-in users who see, open and stop every user's runs (others: only their own)")
    p.add_argument("--oauth-provider", default=None, metavar="github|google|azure|okta|generic|...",
                   help="sign-in through an OAuth provider (Panel's OAuth) instead of --basic-auth")
    p.add_argument("--oauth-key", default=None, help="the OAuth app's client id")
    p.add_argument("--oauth-secret", default=None, help="the OAuth app's client secret")
    add_limit_arguments(p)
    p.set_defaults(func=cmd_serve)

    for name in VERB_GROUPS:
        try:
            module = importlib.import_module(f"epi_dash.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"epi_dash.{name}":  # a missing dependency of a present module is a real error
                raise
            continue
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except InputError as exc:
        print(f"error: {exc.field}: {exc.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
