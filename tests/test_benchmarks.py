"""The quick versions of the paper-claim benchmarks (``benchmarks/reproduce.py --quick``): every model's
rows come out, with finite numbers, no training error, and the command that made them. The full runs
(hours) are in benchmarks/ and the README's table; these check that the path a user runs still works."""

from __future__ import annotations

import importlib
import math
import re

import pytest

from benchmarks import reproduce
from core.settings import resolve_device

#: claim-name prefixes each quick module must report
EXPECTED_CLAIMS = {
    "stg": ["STG: EPI converges", "STG: predictive hub frequency", "STG: Hessian of log q at the mode"],
    "v1": ["V1: X(5 Hz) converges", "V1: X(10 Hz) converges", "V1: sigma_E^2 + sigma_P^2",
           "V1: sigma_S^2 + sigma_V^2", "V1: sigma_S, sigma_V broad"],
    "sc": ["SC: EPI converges", "SC: predictive p_P", "SC: predictive p_A", "SC: mode z1", "SC: mode z2",
           "SC: delay inactivation gamma=0.75", "SC: p_P vs p_A,opto"],
    "rnn": ["RNN N=2 (D=8), seed 1", "RNN N=2: predictive", "RNN N=10 (D=40), seed 1", "RNN N=10: predictive"],
}
NUMBER = re.compile(r"[-+]?\d+\.?\d*(?:e[-+]?\d+)?")


@pytest.fixture(scope="module")
def quick_rows():
    """Each claim module's quick rows, run once (minutes in all on a 2-core CPU)."""
    cache: dict[str, list[dict]] = {}

    def rows(name: str) -> list[dict]:
        if name not in cache:
            cache[name] = importlib.import_module(f"benchmarks.claims.{name}").run(quick=True)
        return cache[name]

    return rows


@pytest.mark.parametrize("name", sorted(EXPECTED_CLAIMS))
def test_quick_claims_report_every_row(name, quick_rows):
    rows = quick_rows(name)
    claims = [r["claim"] for r in rows]
    for expected in EXPECTED_CLAIMS[name]:
        assert any(c.startswith(expected) for c in claims), f"no row {expected!r} in {claims}"
    for r in rows:
        assert set(r) >= {"claim", "measured", "paper", "wall_time_s", "device", "command"}
        assert "error" not in r["measured"] and "not found" not in r["measured"], r
        assert "nan" not in r["measured"].lower(), r
        assert NUMBER.search(r["measured"]), r
        assert math.isfinite(r["wall_time_s"]) and r["wall_time_s"] >= 0
        assert r["device"] == str(resolve_device("auto"))  # the claims train where the trainer would
        assert r["command"].startswith(f".venv/bin/python -m benchmarks.claims.{name}")
        assert name == "rnn" or "--quick" in r["command"]


def test_quick_rnn_converges_and_reports_the_floor(quick_rows):
    """N = 2 and 10 converge with the paper's settings (seed 1: 1-4 of 10 epochs); the flow-only floor
    is below the measured end-to-end time (it leaves out the statistics and the tests)."""
    timed = [r for r in quick_rows("rnn") if "time to convergence" in r["claim"]]
    assert len(timed) == 2
    for row in timed:
        assert row["measured"].startswith("converged at epoch"), row
        wall = float(re.search(r"([\d.]+) s end to end", row["measured"]).group(1))
        floor = float(re.search(r"flow-only floor ([\d.]+) s", row["measured"]).group(1))
        assert 0 < floor < wall


def test_reproduce_prints_a_table_with_its_commands(quick_rows, monkeypatch, capsys):
    rnn = importlib.import_module("benchmarks.claims.rnn")
    calls = []
    monkeypatch.setattr(rnn, "run", lambda quick: calls.append(quick) or quick_rows("rnn"))
    assert reproduce.main(["--claim", "rnn", "--quick"]) == 0
    assert calls == [True]
    out = capsys.readouterr().out
    assert out.count("RNN N=") >= 4
    assert "commands:" in out and ".venv/bin/python -m benchmarks.claims.rnn --N 10 --seed 1" in out


def test_threads_flag_reaches_the_trainer_settings(monkeypatch):
    """``--threads T`` must set the trainer's num_threads: train() applies that setting process-wide,
    so setting torch's thread count alone would leave training on one thread. --set wins over it."""
    rnn = importlib.import_module("benchmarks.claims.rnn")
    seen = []
    monkeypatch.setattr(rnn, "run_one", lambda N, seed, overrides: seen.append(dict(overrides)) or {})
    monkeypatch.setattr(rnn, "rows_for", lambda run, command: [dict(command=command)])
    rows = rnn.run(Ns=(2,), seeds=(1,), threads=2, overrides={"c0": 10.0})
    assert seen == [{"num_threads": 2, "c0": 10.0}]
    assert rows[0]["command"].endswith("--threads 2 --set c0=10.0")
    rnn.run(Ns=(2,), seeds=(1,), threads=2, overrides={"num_threads": 1})
    assert seen[-1] == {"num_threads": 1}
    rnn.run(Ns=(2,), seeds=(1,))
    assert seen[-1] == {}


def test_sc_seed_selection_analyses_the_converged_run_of_greatest_entropy(tmp_path):
    """``--analyze DIR DIR ...`` applies the paper's selection over seeds: among converged runs the one of
    greatest entropy (a higher-entropy run that did not converge loses), and says how every seed ended."""
    from core.runs import RunWriter

    sc = importlib.import_module("benchmarks.claims.sc")
    seeds = {1: (False, 9.0), 2: (True, 3.5), 3: (True, 4.25)}  # seed: (converged, last epoch's entropy)
    for seed, (converged, entropy) in seeds.items():
        RunWriter(tmp_path / f"seed-{seed}").write_meta(dict(
            seed=seed, converged=converged, epochs=6, iterations=12000, wall_time_s=2000.0 + seed, state="finished",
            device="cpu", history=[dict(entropy=entropy - 1.0), dict(entropy=entropy)]))
    dirs = [str(tmp_path / f"seed-{s}") for s in seeds]
    chosen, row = sc.seed_selection(dirs)
    assert chosen.path == tmp_path / "seed-3" and chosen.entropy == 4.25
    assert row["measured"].startswith("2 of 3 converged")
    assert "seed 1: not converged after 6 epochs" in row["measured"] and row["measured"].endswith("chosen: seed 3")
    assert row["wall_time_s"] == 6006.0
    RunWriter(tmp_path / "seed-3").write_meta(dict(seed=3, converged=False, epochs=15, iterations=30000,
                                                   wall_time_s=5000.0, state="finished", device="cpu", history=[]))
    RunWriter(tmp_path / "seed-2").write_meta(dict(seed=2, converged=False, epochs=15, iterations=30000,
                                                   wall_time_s=5000.0, state="stopped", device="cpu", history=[]))
    rows = sc.run(analyze=dirs)  # nothing converged: one row, nothing to analyse
    assert len(rows) == 1 and "0 of 3 converged" in rows[0]["measured"] and "none chosen" in rows[0]["measured"]
    assert rows[0]["command"].endswith("--analyze " + " ".join(dirs))


def test_concurrent_trainings_use_every_core_with_several_server_processes():
    """benchmarks/concurrent_sessions.py, short: two trainings (LDS) in one process share one Python
    interpreter (GIL); in two processes, as `epi-dash serve --num-procs 2` places them, they run side by
    side. Measured here over 15 s windows: 318 vs 710 it/s in all. Claim tested: > 1.3x, 3 s windows."""
    import os

    from benchmarks.concurrent_sessions import measure

    one = measure("lds", runs=2, procs=1, seconds=3)
    two = measure("lds", runs=2, procs=2, seconds=3)
    for m in (one, two):
        assert m["total_its"] > 0 and math.isfinite(m["lag_p95_ms"]) and m["lag_p95_ms"] < 1000
    if (os.cpu_count() or 1) >= 2:
        assert two["total_its"] > 1.3 * one["total_its"], (one, two)


def test_time_to_converge_quick_row_and_table(tmp_path):
    """benchmarks/time_to_converge.py --quick: the RNN at N = 2 converges (seed 1: 750 its, load-free),
    its run is written where the examples tool can find it, and the table carries the row's command."""
    from benchmarks import time_to_converge as ttc

    rows = ttc.run(["rnn"], seeds=1, quick=True, out=str(tmp_path), progress=False)
    assert len(rows) == 1 and rows[0]["converged"] == 1 and rows[0]["seeds"] == 1
    r = rows[0]
    assert r["min_s"] <= r["median_s"] <= r["max_s"] and 0 < r["median_its"] <= 1000
    assert (tmp_path / ttc.slug(r["row"]) / "seed=1").is_dir() and r["best_run"].endswith("seed=1")
    table = ttc.markdown(rows + [ttc.summarize(ttc.CASES["sc"][0], [dict(
        seed=1, converged=False, epochs=10, iterations=5000, wall_s=9.0, s_per_it=0.0018, run_dir=None,
        error=None)], "cmd")])
    assert "| RNN N=2 (quick) | 1/1 |" in table and "--quick" in table
    assert "| SC p_P, p_A 75 +- 7.5 % | 0/1 | - (---) |" in table and "0.0018" in table


def test_time_to_converge_paper_defaults_stay_reachable():
    """The RNN's default epochs (20 x 250 its) differ from the paper's (10 x 500): --defaults paper
    restores them, with the same 5,000-iteration budget either way."""
    from benchmarks import time_to_converge as ttc
    from core import load_model, settings_for

    model = load_model("rnn", N=2)
    _, now = settings_for(model)
    _, paper = settings_for(model, **ttc.PAPER["rnn"])
    assert (now.iters_per_epoch, now.num_epochs) == (250, 20) and (paper.iters_per_epoch, paper.num_epochs) == (500, 10)
    assert now.iters_per_epoch * now.num_epochs == paper.iters_per_epoch * paper.num_epochs
