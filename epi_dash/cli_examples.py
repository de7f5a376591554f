"""``epi-dash examples``: finished runs shipped with the package (core.examples).

``epi-dash examples``                         list them (name, model, size, shipped, description)
``epi-dash examples fetch NAME [--runs-dir runs] [--build]``  copy one into the runs dir (then ``epi-dash
    info``); ``--build`` trains one that is not shipped, from its recorded settings
``epi-dash examples add RUN_DIR --name NAME --description TEXT [--command CMD] [--allow-unconverged]``
    developer: copy a converged run stripped into epi_dash/examples/runs and update index.json
"""

from __future__ import annotations

import argparse

from core import examples
from core.errors import InputError


def cmd_examples(args: argparse.Namespace) -> int:
    action = args.action or "list"
    if action == "list":
        rows = examples.list_examples()
        print(f"{'name':<18} {'model':<6} {'size':>9}  {'status':<13} description")
        for ex in rows:
            size = f"{ex.meta.get('size_kb', 0):.0f} KB" if ex.shipped else "-"
            status = "shipped" if ex.shipped else "built on use"
            print(f"{ex.name:<18} {str(ex.meta.get('model')):<6} {size:>9}  {status:<13} {ex.meta.get('description', '')}")
        return 0
    if action == "fetch":
        ex = examples.locate(args.name)
        if ex.shipped:  # the copy's owner: the OS login name, as for every CLI run (core.runs.default_owner)
            print(examples.fetch(args.name, args.runs_dir))
            return 0
        if not args.build:
            raise InputError("name", f"example {ex.name!r} is not shipped; --build trains it (about as long as: "
                                     f"{ex.meta.get('command')})")
        from core.runs import reserve_run_dir

        from .cli import main

        out = reserve_run_dir(args.runs_dir, ex.name)
        out.rmdir()  # train writes it (and refuses an existing run.json), owned by the OS login name
        print(f"building example {ex.name} (not shipped) in {out}")
        return main(examples.train_argv(ex, out))
    entry = examples.add(args.run_dir, args.name, args.description, command=args.command,
                         allow_unconverged=args.allow_unconverged)
    print(f"added {entry['name']} ({entry['size_kb']} KB, converged={entry['converged']})")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``examples`` subcommand and its ``fetch`` and ``add`` actions."""
    p = subparsers.add_parser("examples", help="finished example runs: list, fetch, add", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(func=cmd_examples, action=None)
    sub = p.add_subparsers(dest="action")
    sub.add_parser("list", help="list the examples")
    f = sub.add_parser("fetch", help="copy an example into the runs dir")
    f.add_argument("name")
    f.add_argument("--runs-dir", default="runs", help="parent directory (default: %(default)s)")
    f.add_argument("--build", action="store_true", help="train an example that is not shipped (with progress)")
    a = sub.add_parser("add", help="developer: ship a converged run as an example")
    a.add_argument("run_dir")
    a.add_argument("--name", required=True)
    a.add_argument("--description", required=True, help="one line")
    a.add_argument("--command", help="the command that produced the run (default: from run.json)")
    a.add_argument("--allow-unconverged", action="store_true")
    return p
