"""Python share of an EPI iteration, by sampling the running process's stacks (py-spy --native).

    .venv/bin/python -m benchmarks.python_share [--model rnn --set N=25 ...] [--iterations 1000] [--rate 40]
    .venv/bin/python -m benchmarks.python_share --all      # the table: RNN N=25 / N=250, STG, V1, SC

The profiler figure of the speed benchmarks (``python_fraction``) counts every microsecond outside
aten ops as Python, autograd's C++ engine and the profiler's own cost per op included, so it
overstates the share for steps of many small ops. Here a sample taken inside the measured EPI steps
counts by its innermost frame (frames in libc/libstdc++ count as their caller):
- "interpreter": Python bytecode (py-spy reports libpython's frames as the Python frames they run);
- "binding": libtorch_python.so, the argument parsing and tensor wrapping of every torch call;
- "native": everything else (kernels, the dispatcher, autograd's engine, the allocator).
Python overhead = interpreter + binding.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

#: the --all table: (model, --set pairs); the paper's settings otherwise
ALL_RUNS = (("rnn", ["N=25"]), ("rnn", ["N=250"]), ("stg", []), ("v1", []), ("sc", []))
#: innermost frames in these libraries count as their caller (malloc, memcpy, ...)
_PASS_THROUGH = ("libc.so", "libstdc++.so", "ld-linux", "libm.so", "libgcc_s.so")
_MEASURED = "_measured_steps"
_LIBRARY = re.compile(r"\(([^()]*\.so[^()]*)\)$")
#: py-spy's Python frames: "func (path/file.py:line)"; native frames with debug info name a C/C++ source
_PYTHON_FRAME = re.compile(r"\((?:[^()]*\.py|<[^()]*>):\d+\)$")


@dataclass
class Share:
    samples: int
    interpreter: float
    binding: float

    @property
    def overhead(self) -> float:
        return self.interpreter + self.binding


def classify(frame: str) -> str | None:
    """'interpreter', 'binding', 'native', or None for a pass-through library frame."""
    if _PYTHON_FRAME.search(frame):
        return "interpreter"
    lib = _LIBRARY.search(frame)
    if lib is None:
        return "native"  # e.g. an inlined intrinsic of a compiled kernel: "_mm512_add_ps (avx512fintrin.h:12600)"
    name = lib.group(1)
    if any(p in name for p in _PASS_THROUGH):
        return None
    if "libtorch_python" in name:
        return "binding"
    return "interpreter" if "libpython" in name else "native"


def share_of(raw_lines: list[str], marker: str = _MEASURED) -> Share:
    """Shares from py-spy's raw (folded) output: one "frame;frame;...;leaf count" per line."""
    counts: collections.Counter[str] = collections.Counter()
    for line in raw_lines:
        stack, _, n = line.rstrip().rpartition(" ")
        if marker not in stack or not n.isdigit():
            continue
        kind = "native"
        for frame in reversed(stack.split(";")):
            k = classify(frame)
            if k is not None:
                kind = k
                break
        counts[kind] += int(n)
    total = sum(counts.values())
    if total == 0:
        raise RuntimeError(f"no samples inside {marker}(): the run was too short for the sampling rate")
    return Share(total, counts["interpreter"] / total, counts["binding"] / total)


def _measured_steps(trainer, n: int) -> float:
    """Seconds per EPI step over n steps (the stacks under this frame are the ones counted)."""
    start = time.perf_counter()
    for _ in range(n):
        trainer.step()
    return (time.perf_counter() - start) / n


def run_child(model_name: str, sets: list[str], iterations: int, warmup: int, threads: int) -> None:
    """The sampled process: build the trainer at the paper's settings, warm up, time ``iterations`` steps."""
    import torch

    from core import EPITrainer, load_model, settings_for
    from epi_dash.cli import split_sets
    from benchmarks.claims import parse_overrides

    torch.set_num_threads(threads)
    hyper, settings = split_sets(model_name, parse_overrides(sets))
    model = load_model(model_name, **hyper)
    flow, opt = settings_for(model, **settings)
    trainer = EPITrainer(model, flow=flow, opt=opt)
    trainer.initialize()
    for _ in range(warmup):  # the first steps compile a compile='auto' simulator
        trainer.step()
    print(f"seconds_per_step={_measured_steps(trainer, iterations):.6f}", flush=True)


def measure(model_name: str, sets: list[str], iterations: int, warmup: int, rate: int, threads: int,
            py_spy: str) -> tuple[Share, float]:
    """Run the child under ``py-spy record --native``; returns the shares and its seconds per step."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "stacks.txt")
        child = [sys.executable, "-m", "benchmarks.python_share", "--child", "--model", model_name,
                 "--iterations", str(iterations), "--warmup", str(warmup), "--threads", str(threads)]
        for s in sets:
            child += ["--set", s]
        cmd = [py_spy, "record", "--native", "--rate", str(rate), "--format", "raw", "--output", out, "--"]
        proc = subprocess.run(cmd + child, capture_output=True, text=True)
        found = re.search(r"seconds_per_step=([0-9.]+)", proc.stdout)
        if proc.returncode != 0 or found is None or not os.path.exists(out):
            raise RuntimeError(f"py-spy run failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
        with open(out) as fh:
            return share_of(fh.readlines()), float(found.group(1))


def _py_spy() -> str:
    candidate = os.path.join(os.path.dirname(sys.executable), "py-spy")
    return candidate if os.path.exists(candidate) else "py-spy"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="rnn")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--all", action="store_true", help="the table over " + ", ".join(m for m, _ in ALL_RUNS))
    p.add_argument("--iterations", type=int, default=None, help="measured steps (default: about 20 s of them)")
    p.add_argument("--warmup", type=int, default=30)
    p.add_argument("--rate", type=int, default=40, help="samples/s (native unwinding is slow on 2 cores)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        run_child(args.model, args.set, args.iterations, args.warmup, args.threads)
        return
    runs = ALL_RUNS if args.all else ((args.model, args.set),)
    print("| model | settings | ms/step (sampled) | samples | interpreter | binding | Python overhead |")
    print("|---|---|---|---|---|---|---|")
    for model_name, sets in runs:
        iterations = args.iterations or _default_iterations(model_name, sets)
        share, seconds = measure(model_name, sets, iterations, args.warmup, args.rate, args.threads, _py_spy())
        print(f"| {model_name} | {' '.join(sets) or 'paper'} | {1e3 * seconds:.2f} | {share.samples} | "
              f"{share.interpreter:.1%} | {share.binding:.1%} | **{share.overhead:.1%}** |", flush=True)
    print("command:", " ".join(["python -m benchmarks.python_share", *(sys.argv[1:] if argv is None else argv)]))


def _default_iterations(model_name: str, sets: list[str]) -> int:
    """About 20 s of steps at this CPU's speed (sampling slows the process by up to ~2x)."""
    guess_ms = {"rnn": 25.0 if "N=250" in sets else 6.0, "stg": 50.0, "v1": 60.0, "sc": 120.0}.get(model_name, 10.0)
    return max(50, int(20_000 / guess_ms))


if __name__ == "__main__":
    main()
