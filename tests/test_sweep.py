"""Sweeps over property levels x seeds (core.sweep, ``epi-dash sweep``), in-process and on Dask."""

from __future__ import annotations

import json
import os
import shutil
import time

import numpy as np
import pytest

from core.epi_job import epi_settings, train_epi
from core.errors import InputError
from core.jobs import JobRunner, read_events
from core.model import load_model
from core.property import EmergentProperty
from core.settings import settings_for
from core.sweep import compare_levels, load_sweep, parse_vary, run_sweep, select, sweep_cells
from epi_dash.cli import main

TINY = {"num_epochs": 1, "iters_per_epoch": 20, "batch_size": 50, "num_test_batches": 10, "init_iters": 20, "health": "off",
        "num_units": 8}


@pytest.mark.parametrize("spec, field, text", [
    ("s_E.mean", "vary[s_E.mean]", "expected FIELD=V1,V2"),
    ("s_E.mean=5,ten", "vary[s_E.mean]", "'ten' is not a number"),
    ("s_E.mean=5,nan", "vary[s_E.mean]", "finite"),
])
def test_a_sweep_spec_that_does_not_parse_names_the_field(spec, field, text):
    with pytest.raises(InputError) as info:
        parse_vary([spec])
    assert info.value.field == field and text in info.value.message


def test_parse_vary_reads_levels_and_integer_hyperparameters():
    assert parse_vary(["s_E.mean=5,10", "N=2,10"]) == {"s_E.mean": [5.0, 10.0], "N": [2, 10]}
    assert isinstance(parse_vary(["N=2,10"])["N"][0], int)


@pytest.mark.parametrize("vary, field, text", [
    ({"N": [1, 10]}, "vary[N=1]", "N"),                         # below the hyperparameter's bound
    ({"real_lambda1.std": [0.25, -1]}, "vary[real_lambda1.std=-1]", "std[real_lambda1]"),
    ({"nope.mean": [1]}, "vary[nope.mean=1]", "unknown statistic"),
    ({"bogus": [1]}, "vary[bogus]", "neither"),
    ({"real_lambda1.mean": [1]}, "settings[batch_size]", "at least"),
])
def test_a_level_outside_a_fields_bounds_is_refused_before_anything_runs(tmp_path, vary, field, text):
    model = "rnn" if "N" in vary else "lds"
    with pytest.raises(InputError) as info:
        sweep_cells(model, vary, 1, tmp_path, settings={"batch_size": 1} if field.startswith("settings") else None)
    assert info.value.field == field and text in info.value.message
    assert not any(tmp_path.iterdir())


def test_in_process_sweep_selects_per_level_and_does_not_redo_finished_tasks(tmp_path):
    cells = sweep_cells("lds", {"real_lambda1.mean": [0.0, 0.5]}, 2, tmp_path / "sw", settings=TINY)
    assert len(cells) == 4 and cells[0]["run_dir"].endswith("real_lambda1.mean=0/seed-1")
    manifest = run_sweep(cells, tmp_path / "sw")
    assert [o["state"] for o in manifest["outcomes"]] == ["finished"] * 4
    assert all(not o["skipped"] for o in manifest["outcomes"])
    on_disk = load_sweep(tmp_path / "sw")
    assert on_disk["cells"] == manifest["cells"] and len(on_disk["outcomes"]) == 4
    again = run_sweep(cells, tmp_path / "sw")
    assert all(o["skipped"] for o in again["outcomes"])
    assert [o["entropy"] for o in again["outcomes"]] == [o["entropy"] for o in manifest["outcomes"]]


def test_selection_is_the_converged_run_of_greatest_entropy():
    cells = [{"level": {"x": 1}, "run_dir": d} for d in ("a", "b", "c")] + [{"level": {"x": 2}, "run_dir": "d"}]
    outcomes = [{"converged": True, "entropy": 1.0}, {"converged": False, "entropy": 9.0},
                {"converged": True, "entropy": 2.0}, {"converged": False, "entropy": 3.0}]
    assert select(cells, outcomes) == {"x=1": "c", "x=2": None}


def test_compare_levels_uses_the_papers_statistic_for_v1():
    rng = np.random.default_rng(0)
    low = rng.uniform(0, 0.5, (500, 4))
    high = low.copy()
    high[:, :2] *= 1.3  # E and P larger, S and V the same
    rows = compare_levels({"s_E.mean=5": low, "s_E.mean=10": high}, "v1", ["sigma_E", "sigma_P", "sigma_S", "sigma_V"])
    assert [r["statistic"] for r in rows] == ["sigma_E^2 + sigma_P^2", "sigma_S^2 + sigma_V^2"]
    assert rows[0]["p"] < 1e-6 and rows[0]["t"] > 0
    assert rows[1]["t"] == pytest.approx(0.0) and rows[1]["p"] == pytest.approx(1.0)


def test_sweep_on_a_local_dask_cluster_runs_on_workers_and_a_failing_task_keeps_the_others(tmp_path):
    user_model = tmp_path / "osc.py"
    shutil.copy(os.path.join(os.path.dirname(__file__), "data", "oscillator_model.py"), user_model)
    cells = sweep_cells("lds", {"real_lambda1.mean": [0.0]}, 1, tmp_path / "sw", settings=TINY)
    broken = sweep_cells(f"{user_model}:DampedOscillator", {"frequency.mean": [1.0]}, 1, tmp_path / "sw",
                         settings=TINY)
    user_model.unlink()  # the worker cannot import the user's model file any more
    manifest = run_sweep(cells + broken, tmp_path / "sw", scheduler="local")
    good, bad = manifest["outcomes"]
    assert good["state"] == "finished"
    meta = json.loads((tmp_path / "sw" / "real_lambda1.mean=0" / "seed-1" / "run.json").read_text())
    assert meta["process"]["pid"] != os.getpid()  # trained on a Dask worker
    assert bad["state"] == "failed" and "osc.py" in bad["error"]


def test_cli_sweep_prints_the_table_and_names_bad_fields(tmp_path, capsys):
    args = ["sweep", "lds", "--vary", "real_lambda1.mean=0,0.5", "--seeds", "1", "--out", str(tmp_path / "sw"),
            "--quiet", *[f"--set={k}={v}" for k, v in TINY.items()]]
    code = main(args)
    out = capsys.readouterr().out
    assert code == 3  # one epoch of 20 iterations converges nowhere: said, with the table
    assert "real_lambda1.mean=0.5" in out and "entropy" in out and "no converged run at: real_lambda1.mean=0," in out
    assert (tmp_path / "sw" / "sweep.json").is_file()
    assert main(["sweep", "lds", "--vary", "real_lambda1.mean=a"]) == 2
    assert "error: vary[real_lambda1.mean]: 'a' is not a number" in capsys.readouterr().err
    assert main(["sweep", "lds", "--vary", "real_lambda1.mean=1", "--scheduler", "nowhere"]) == 2
    assert "error: scheduler:" in capsys.readouterr().err


def test_a_stopped_task_is_resumed_from_its_checkpoint_not_restarted(tmp_path):
    settings = {**TINY, "num_epochs": 2, "iters_per_epoch": 200}
    cells = sweep_cells("lds", {"real_lambda1.mean": [0.0]}, 1, tmp_path / "sw", settings=settings)
    model = load_model("lds")
    flow, opt = settings_for(model, **cells[0]["settings"])
    prop = EmergentProperty.default_for(model, mean={"real_lambda1": 0.0})
    runner = JobRunner()
    runner.start(train_epi, epi_settings("lds", model, prop, flow, opt), cells[0]["run_dir"], kind="epi")
    deadline = time.monotonic() + 60
    while (runner.last_progress is None or runner.last_progress.step < 250) and time.monotonic() < deadline:
        time.sleep(0.01)
    runner.stop()
    runner.join(60)
    stopped_at = json.loads((tmp_path / "sw" / "real_lambda1.mean=0" / "seed-1" / "run.json").read_text())["iterations"]
    assert 250 <= stopped_at < 400
    outcome = run_sweep(cells, tmp_path / "sw")["outcomes"][0]
    assert not outcome["skipped"] and outcome["state"] == "finished"
    steps = [e.step for e in read_events(cells[0]["run_dir"])[0] if e.kind == "progress"]
    assert steps == list(range(1, 401))  # continued where it stopped: no iteration twice
