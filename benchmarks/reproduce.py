"""Reproduce the EPI paper's claims and print measured vs paper values.

    python benchmarks/reproduce.py                 # every claim (hours on a 2-core CPU)
    python benchmarks/reproduce.py --claim rnn     # one model: stg, v1, sc, rnn
    python benchmarks/reproduce.py --quick         # short versions (minutes), for a smoke check
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CLAIMS = ("stg", "v1", "sc", "rnn")


def format_table(rows: list[dict]) -> str:
    cols = ["claim", "measured", "paper", "wall_time_s", "device"]
    cells = [[str(r.get(c, "")) if not isinstance(r.get(c), float) else f"{r[c]:.1f}" for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) if cells else len(c) for i, c in enumerate(cols)]
    lines = [" | ".join(c.ljust(w) for c, w in zip(cols, widths)), "-+-".join("-" * w for w in widths)]
    lines += [" | ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--claim", choices=CLAIMS, action="append", help="model(s) to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="short runs")
    args = parser.parse_args(argv)
    rows = []
    for name in args.claim or CLAIMS:
        t0 = time.perf_counter()
        module = importlib.import_module(f"benchmarks.claims.{name}")
        claim_rows = module.run(quick=args.quick)
        print(f"[{name}] {len(claim_rows)} rows in {time.perf_counter() - t0:.0f} s", flush=True)
        rows += claim_rows
    print(format_table(rows))
    print("\ncommands:")
    for cmd in dict.fromkeys(r.get("command", "") for r in rows):
        print(f"  {cmd}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
