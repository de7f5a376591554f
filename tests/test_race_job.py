"""The compare races go through the one job mechanism: each (method, seed) is a core.jobs job of kind
"compare.race" with its own run directory, listed by the run library."""

from __future__ import annotations

import json
import time

import torch

from core.jobs import run_job
from epi_dash.panels import jobs_table


def test_a_race_is_a_job_the_library_lists_and_the_view_still_gets_its_result(tmp_path):
    from epi_dash.compare import CompareView

    torch.set_num_threads(1)
    view = CompareView("lds", {}, None, tmp_path, methods=["smc"], seeds=1, time_limit=20, device="cpu")
    view.run()
    deadline = time.monotonic() + 60
    while not view.status.startswith("done"):
        assert time.monotonic() < deadline, view.status
        time.sleep(0.2)
        view.drain()
    (result,) = view.results
    (meta_file,) = view.out_dir.glob("*/run.json")
    meta = json.loads(meta_file.read_text())
    assert meta["kind"] == "compare.race" and meta["state"] == "finished" and meta["settings"]["method"] == "smc"
    assert meta["result"]["method"] == "smc" and meta["result"]["simulations"] == result.simulations > 0
    steps = [json.loads(line) for line in (meta_file.parent / "events.jsonl").read_text().splitlines()]
    progress = [e for e in steps if e["kind"] == "progress"]
    assert progress and progress[-1]["scalars"]["simulations"] <= result.simulations
    table = jobs_table(tmp_path)
    assert table["kind"].tolist() == ["compare.race"] and table["state"].tolist() == ["finished"]


def test_a_race_job_runs_from_its_settings_alone(tmp_path):
    """What a resume or another executor does: no in-process objects, everything from run.json settings."""
    from core.baselines import MethodSpec
    from core.baselines.race import RACE_KIND, race_job, race_settings
    from core.model import load_model
    from core.property import EmergentProperty

    torch.set_num_threads(1)
    model = load_model("lds")
    spec = MethodSpec.parse("smc", {"population_size": 50, "max_populations": 2, "num_predictive": 50})
    settings = race_settings(spec, "lds", {}, EmergentProperty.default_for(model), seed=1, time_limit_s=10, device="cpu")
    outcome = run_job(race_job, settings, tmp_path / "r", RACE_KIND)
    assert outcome.state == "finished", outcome.error
    assert outcome.result["method"] == "smc" and outcome.result["seed"] == 1 and outcome.result["simulations"] > 0
