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


def print_table(rows: list[dict]) -> None:
    """The claim rows as a Markdown table, then the command that produced them."""
    print("| claim | measured | paper | wall time | device |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['claim']} | {r['measured']} | {r['paper']} | {r['wall_time_s']} s | {r['device']} |")
    print("command:", rows[0]["command"] if rows else shlex.join(sys.argv))
