"""EPI training as a core.jobs job: the same run directory, stop/resume and events on every executor."""

from __future__ import annotations

import json
import os
import time

import numpy as np

from core import load_model, settings_for
from core.epi_job import epi_settings, train_epi
from core.executors import DaskExecutor
from core.jobs import JobRunner, read_events, resume_job, run_job
from core.property import EmergentProperty
from core.runs import load_run

TINY = dict(batch_size=50, iters_per_epoch=15, num_epochs=2, num_test_batches=10, init_iters=20, num_units=8,
            device="cpu", seed=3, health="off")  # the job mechanism under test, not the health watch


def lds_settings(**overrides):
    model = load_model("lds")
    flow, opt = settings_for(model, **{**TINY, **overrides})
    return epi_settings("lds", model, EmergentProperty.default_for(model), flow, opt)


def test_an_epi_job_writes_an_ordinary_run_with_its_kind_and_streams_iterations_and_epochs(tmp_path):
    result = run_job(train_epi, lds_settings(), tmp_path / "r", kind="epi")
    assert result.state in ("finished", "converged") and result.result["iterations"] == 30
    run = load_run(tmp_path / "r")
    assert run.meta["kind"] == "epi" and run.meta["function"] == "core.epi_job:train_epi"
    assert run.meta["model"] == "lds" and len(run.meta["history"]) == 2 and run.state == result.state
    assert run.samples["z"].shape[1] == 4 and len(run.trace) == 30
    events = read_events(tmp_path / "r")[0]
    progress = [e for e in events if e.kind == "progress"]
    assert [e.step for e in progress] == list(range(1, 31)) and progress[-1].total == 30
    assert np.allclose([e.scalars["entropy"] for e in progress], run.trace["entropy"], rtol=1e-6)
    assert [e.data["epoch"] for e in events if e.kind == "epoch"] == [1, 2]


def test_a_stopped_epi_job_resumes_to_the_same_weights_as_an_uninterrupted_one(tmp_path):
    settings = lds_settings(num_epochs=3)
    run_job(train_epi, settings, tmp_path / "whole", kind="epi")
    runner = JobRunner()
    runner.start(train_epi, settings, tmp_path / "parts", kind="epi")
    deadline = time.monotonic() + 60
    while (runner.last_progress is None or runner.last_progress.step < 20) and time.monotonic() < deadline:
        time.sleep(0.005)
    runner.stop()
    runner.join(60)
    assert runner.result.state == "stopped"
    assert load_run(tmp_path / "parts").meta["state"] == "stopped"
    assert resume_job(tmp_path / "parts").state in ("finished", "converged")
    a, b = load_run(tmp_path / "whole"), load_run(tmp_path / "parts")
    assert a.meta["iterations"] == b.meta["iterations"] == 45
    assert np.allclose(a.trace["entropy"], b.trace["entropy"], rtol=1e-4, atol=1e-5)
    assert np.allclose(a.meta["eta"], b.meta["eta"], rtol=1e-4, atol=1e-6) and a.meta["c"] == b.meta["c"]


def test_an_epi_job_on_a_dask_worker_streams_through_its_run_directory(tmp_path):
    executor = DaskExecutor("local", n_workers=1)
    try:
        handle = executor.submit(train_epi, lds_settings(), tmp_path / "r", kind="epi")
        seen = []
        deadline = time.monotonic() + 120
        while handle.running and time.monotonic() < deadline:
            seen += handle.drain()
            time.sleep(0.05)
        seen += handle.drain()
        assert handle.result(timeout=10).state in ("finished", "converged")
    finally:
        executor.close()
    kinds = [e.kind for e in seen]
    assert kinds[0] == "started" and kinds[-1] == "finished" and kinds.count("progress") == 30 and kinds.count("epoch") == 2
    meta = json.loads((tmp_path / "r" / "run.json").read_text())
    assert meta["process"]["pid"] != os.getpid() and meta["kind"] == "epi"


def test_a_training_whose_dask_worker_dies_is_run_again_from_its_checkpoint(tmp_path):
    import signal

    executor = DaskExecutor("local", n_workers=1)
    try:
        handle = executor.submit(train_epi, lds_settings(num_epochs=3, iters_per_epoch=150), tmp_path / "r", kind="epi")
        deadline = time.monotonic() + 120
        events = []
        while not any(e.kind == "epoch" for e in events) and time.monotonic() < deadline:
            events += handle.drain()
            time.sleep(0.05)
        worker = json.loads((tmp_path / "r" / "run.json").read_text())["process"]["pid"]
        os.kill(worker, signal.SIGKILL)  # the worker is lost mid-training; its nanny starts a new one
        assert handle.result(timeout=180).state in ("finished", "converged")
        events += handle.drain()
    finally:
        executor.close()
    started = [e.message for e in events if e.kind == "started"]
    assert started == ["epi started", "epi resumed"]
    resumed_at = [e.kind for e in events].index("started", 1)
    first_after = next(e.step for e in events[resumed_at:] if e.kind == "progress")
    assert first_after == 151  # continued from the checkpoint at the end of epoch 1, not from scratch
    meta = json.loads((tmp_path / "r" / "run.json").read_text())
    assert meta["iterations"] > 150 and meta["process"]["pid"] != worker
