"""Dashboard trainings on a Dask worker (``epi-dash serve --scheduler``): the session's runner streams the
worker's events from the run directory and looks like an in-process training to the views."""

from __future__ import annotations

import json
import os
import time

import pytest

from core import EmergentProperty, load_model, settings_for
from core.executors import DaskExecutor
from core.runs import load_run
from epi_dash.runner import TrainingRunner

TINY = dict(batch_size=50, iters_per_epoch=40, num_epochs=2, num_test_batches=10, init_iters=20, num_units=8,
            device="cpu", seed=3, health="off")  # the job mechanism under test, not the health watch


@pytest.fixture(scope="module")
def dask_executor():
    executor = DaskExecutor("local", n_workers=1)
    yield executor
    executor.close()


def _collect(runner: TrainingRunner, timeout: float = 120.0) -> list:
    events, deadline = [], time.monotonic() + timeout
    while runner.running and time.monotonic() < deadline:
        events += runner.drain()
        time.sleep(0.05)
    runner.join(timeout)
    return events + runner.drain()


def test_a_training_on_a_dask_worker_streams_like_an_in_process_one(tmp_path, dask_executor):
    model = load_model("lds")
    flow, opt = settings_for(model, **TINY)
    runner = TrainingRunner(executor=dask_executor)
    runner.start(model, EmergentProperty.default_for(model), flow, opt, tmp_path / "r", model_spec="lds")
    events = _collect(runner)
    kinds = [e.kind for e in events]
    assert kinds[0] == "started" and "finished" in kinds, kinds[:5]
    assert events[0].data["parameter_names"] == model.parameter_names and events[0].data["iterations_total"] == 80
    iterations = [e.data for e in events if e.kind == "iteration"]
    assert [r["iteration"] for r in iterations] == list(range(1, 81))
    trace = load_run(tmp_path / "r").trace
    assert [round(r["entropy"], 5) for r in iterations] == [round(v, 5) for v in trace["entropy"]]
    assert len(iterations[0]["R"]) == 4 and len(iterations[0]["f_mean"]) == 2
    assert [e.data["epoch"] for e in events if e.kind == "epoch"] == [1, 2]
    assert "snapshot" in kinds and "analysis" in kinds  # from the worker's checkpoints
    finished = next(e.data for e in events if e.kind == "finished")
    assert finished["iterations"] == 80 and finished["state"] in ("finished", "converged")
    assert json.loads((tmp_path / "r" / "run.json").read_text())["process"]["pid"] != os.getpid()


def test_stop_and_resume_of_a_training_on_a_dask_worker(tmp_path, dask_executor):
    model = load_model("lds")
    flow, opt = settings_for(model, **{**TINY, "iters_per_epoch": 3000})
    runner = TrainingRunner(executor=dask_executor)
    runner.start(model, EmergentProperty.default_for(model), flow, opt, tmp_path / "r", model_spec="lds")
    deadline = time.monotonic() + 120
    while (runner.last_iteration is None or runner.last_iteration["iteration"] < 50) and time.monotonic() < deadline:
        runner.drain()
        time.sleep(0.05)
    runner.stop()
    events = _collect(runner)
    finished = next(e.data for e in events if e.kind == "finished")
    assert finished["state"] == "stopped" and 50 <= finished["iterations"] < 6000
    runner.resume(tmp_path / "r")
    deadline = time.monotonic() + 120
    while (runner.last_iteration is None or runner.last_iteration["iteration"] <= finished["iterations"] + 5) \
            and time.monotonic() < deadline:
        runner.drain()
        time.sleep(0.05)
    first_resumed = runner.last_iteration["iteration"]
    runner.stop()
    events = _collect(runner)
    assert events[0].kind == "started" and events[0].data["resumed"]
    assert first_resumed > finished["iterations"]
    assert next(e.data for e in events if e.kind == "finished")["state"] == "stopped"
