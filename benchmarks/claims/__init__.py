"""Paper claims, one module per model: each exposes ``run(quick=False, ...) -> list[dict]`` with rows
{claim, measured, paper, wall_time_s, device, command}; ``benchmarks/reproduce.py`` prints them all."""

from __future__ import annotations

import shlex
import sys
from typing import Any

from epi_dash.cli import _parse_value


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """``["iters_per_epoch=1000", ...]`` -> {"iters_per_epoch": 1000, ...} (JSON values, else strings)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        out[key.strip()] = _parse_value(value.strip())
    return out


THREADS_HELP = ("CPU threads while training: the trainer's num_threads setting, which train() applies "
                "process-wide (default: the setting's default, 1)")


def with_threads(overrides: dict[str, Any], threads: int | None) -> dict[str, Any]:
    """``overrides`` with ``num_threads=threads`` unless ``threads`` is None or --set already gives it:
    setting torch's thread count alone has no effect, since ``EPITrainer.train`` applies num_threads."""
    return {"num_threads": threads, **overrides} if threads else dict(overrides)


def train_within(trainer, seconds: float | None):
    """``trainer.train()``, asking it to stop (after its iteration, with a checkpoint) once ``seconds`` passed."""
    import threading

    timer = threading.Timer(seconds, trainer.request_stop) if seconds else None
    if timer:
        timer.start()
    try:
        return trainer.train()
    finally:
        if timer:
            timer.cancel()


def print_table(rows: list[dict]) -> None:
    """The claim rows as a Markdown table, then the command that produced them."""
    print("| claim | measured | paper | wall time | device |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['claim']} | {r['measured']} | {r['paper']} | {r['wall_time_s']} s | {r['device']} |")
    print("command:", rows[0]["command"] if rows else shlex.join(sys.argv))
