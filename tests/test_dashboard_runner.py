"""The background training runner: start/stop/resume with a tiny LDS, events in order, checkpoints,
failures reported as messages (the runner never raises into the UI)."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from core.model import FreeParameter, Model, Statistic, load_model
from core.property import EmergentProperty
from core.settings import settings_for
from epi_dash.runner import AnalysisSettings, TrainingRunner

TINY = dict(iters_per_epoch=20, num_epochs=2, init_iters=5, num_test_batches=10, batch_size=50, stop_early=False)
QUICK_ANALYSIS = AnalysisSettings(num_starts=1, num_samples=100, steps=10, num_predictive=100)


def _runner(**kw) -> TrainingRunner:
    return TrainingRunner(snapshot_every=10, snapshot_samples=50, analysis=QUICK_ANALYSIS, **kw)


def _lds(**overrides):
    model = load_model("lds")
    flow, opt = settings_for(model, **{**TINY, **overrides})
    return model, EmergentProperty.default_for(model), flow, opt


def _wait(runner: TrainingRunner, timeout: float = 120) -> list:
    events, deadline = [], time.monotonic() + timeout
    while runner.running and time.monotonic() < deadline:
        time.sleep(0.05)
        events += runner.drain()
    runner.join(timeout)
    assert not runner.running, "training did not end in time"
    return events + runner.drain()


def test_events_arrive_in_order_and_the_run_is_saved(tmp_path):
    runner = _runner()
    runner.start(*_lds(), run_dir=tmp_path / "run")
    events = _wait(runner)
    kinds = [e.kind for e in events]
    assert kinds[0] == "started"
    assert events[0].data["iterations_total"] == 40 and events[0].data["parameter_names"] == ["a1", "a2", "a3", "a4"]
    iterations = [e.data["iteration"] for e in events if e.kind == "iteration"]
    assert iterations == list(range(1, 41))
    epochs = [e for e in events if e.kind == "epoch"]
    assert [e.data["epoch"] for e in epochs] == [1, 2]
    # each epoch event comes after its last iteration and before the next epoch's first
    assert kinds.index("epoch") > max(i for i, e in enumerate(events) if e.kind == "iteration" and e.data["iteration"] == 20)
    finished = [e for e in events if e.kind == "finished"]
    assert len(finished) == 1 and finished[0].data["iterations"] == 40 and finished[0].data["error"] is None
    snapshots = [e for e in events if e.kind == "snapshot"]
    assert len(snapshots) >= 4 and snapshots[0].data["z"].shape == (50, 4)
    assert np.isfinite(snapshots[-1].data["log_q"]).all()
    analyses = [e for e in events if e.kind == "analysis"]
    assert analyses, "the final analysis must arrive"
    # the epoch-1 analysis (own thread) and the final one (training thread) overlap here
    assert "analysis_failed" not in kinds, [e.data for e in events if e.kind == "analysis_failed"]
    a = analyses[-1].data
    assert a["mode"].shape == (4,) and a["eigenvectors"].shape == (4, 4) and a["predictive"].shape == (100, 2)
    assert np.all(np.diff(a["eigenvalues"]) >= 0)  # most negative (sensitive) first
    assert kinds.index("finished") < len(kinds) - 1 - kinds[::-1].index("analysis")
    for name in ("run.json", "trace.csv", "checkpoint.pt", "samples.npz"):
        assert (tmp_path / "run" / name).is_file(), name
    assert runner.latest_distribution is not None


def test_stop_writes_a_checkpoint_and_resume_continues(tmp_path):
    runner = _runner()
    runner.start(*_lds(iters_per_epoch=100_000, num_epochs=1), run_dir=tmp_path / "run")
    seen, deadline = [], time.monotonic() + 120
    while not any(e.kind == "iteration" and e.data["iteration"] >= 5 for e in seen):
        assert time.monotonic() < deadline
        time.sleep(0.02)
        seen += runner.drain()
    runner.stop()
    events = seen + _wait(runner)
    finished = next(e for e in events if e.kind == "finished")
    assert finished.data["state"] == "stopped"
    stopped_at = finished.data["iterations"]
    assert 5 <= stopped_at < 100_000
    assert (tmp_path / "run" / "checkpoint.pt").is_file()

    runner.resume(tmp_path / "run")
    time.sleep(0.5)
    runner.stop()  # stop again quickly: only a few more iterations
    events = _wait(runner)
    started = next(e for e in events if e.kind == "started")
    assert started.data["resumed"] and started.data["iteration"] == stopped_at
    iterations = [e.data["iteration"] for e in events if e.kind == "iteration"]
    if iterations:  # continues exactly where it stopped
        assert iterations[0] == stopped_at + 1
        assert iterations == list(range(stopped_at + 1, stopped_at + 1 + len(iterations)))


def test_a_process_that_exits_mid_training_checkpoints_every_run(tmp_path):
    """A server shut down mid-epoch (Ctrl-C, SIGTERM: the interpreter exits with the daemon training
    threads still running) stops each training with a checkpoint at its latest iteration, not the last
    epoch end, and run.json says "stopped", so Resume continues from there."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    run_dir = tmp_path / "run"
    script = f"""
import sys, time
sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})
from tests.test_dashboard_runner import _lds, _runner
runner = _runner()
runner.start(*_lds(iters_per_epoch=10**6, num_epochs=1), run_dir={str(run_dir)!r})
while runner.trainer is None or runner.trainer.iteration < 50:
    time.sleep(0.02)
"""  # ...and the interpreter exits, mid-epoch
    subprocess.run([sys.executable, "-c", script], timeout=120, check=True)
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["state"] == "stopped" and meta["iterations"] >= 50 and meta["epochs"] == 0
    assert torch.load(run_dir / "checkpoint.pt", weights_only=False)["iteration"] == meta["iterations"]


def test_a_second_start_while_running_is_refused(tmp_path):
    from core.errors import InputError

    runner = _runner()
    runner.start(*_lds(iters_per_epoch=100_000, num_epochs=1), run_dir=tmp_path / "a")
    try:
        with pytest.raises(InputError):
            runner.start(*_lds(), run_dir=tmp_path / "b")
    finally:
        runner.stop()
        _wait(runner)


class _NaNAfter(Model):
    """Statistics turn NaN when a1 > 0: the trainer must stop with a message naming the statistic."""

    parameters = (FreeParameter("a1", -1.0, 1.0), FreeParameter("a2", -1.0, 1.0))
    statistics = (Statistic("s", 0.0, 0.5),)

    def simulate(self, z):
        return z

    def measure(self, x, z):
        return torch.where(z[:, :1] > 0, torch.full_like(z[:, :1], float("nan")), z[:, :1])


def test_nan_statistics_end_the_run_with_a_named_cause(tmp_path):
    model = _NaNAfter()
    flow, opt = settings_for(model, **TINY)
    runner = _runner()
    runner.start(model, EmergentProperty.default_for(model), flow, opt, run_dir=tmp_path / "nan")
    events = _wait(runner)
    finished = next(e for e in events if e.kind == "finished")
    assert finished.data["state"] == "failed"
    assert "'s'" in finished.data["error"] and "NaN" in finished.data["error"]
    assert not any(e.kind == "analysis" for e in events)


def test_a_trainer_that_cannot_be_built_is_reported(tmp_path):
    model = load_model("lds")
    bad = EmergentProperty(statistics=model.statistic_names, mean=[0.0, 1.0], std=[0.1, -1.0])
    flow, opt = settings_for(model, **TINY)
    runner = _runner()
    runner.start(model, bad, flow, opt, run_dir=tmp_path / "bad")
    events = _wait(runner)
    assert [e.kind for e in events] == ["failed"]
    assert "std[imag_lambda1]" in events[0].data["message"]


def test_open_a_saved_run_reports_samples_and_analysis(tmp_path):
    runner = _runner()
    runner.start(*_lds(num_epochs=1), run_dir=tmp_path / "run")
    _wait(runner)
    reopened = _runner()
    reopened.open(tmp_path / "run")
    events = _wait(reopened)
    assert [e.kind for e in events] == ["snapshot", "analysis"]
    reopened.open(tmp_path / "missing")
    assert [e.kind for e in _wait(reopened)] == ["open_failed"]


def test_startup_phase_names_what_happens_before_the_first_iteration():
    from core.epi import EPITrainer
    from epi_dash.runner import startup_phase

    assert startup_phase(None) == "building the model and the flow"
    model, prop, flow, opt = _lds()
    trainer = EPITrainer(model, prop, flow, opt)
    assert startup_phase(trainer).startswith("initializing q: Gaussian fit")
    trainer.initialize()
    assert startup_phase(trainer) == "first iteration"
    abc = EPITrainer(*_lds(init="abc", abc_samples=300, abc_keep=30))
    assert "ABC search over 300 simulations" in startup_phase(abc)
    stg = load_model("stg", compile="auto")
    compiling = EPITrainer(stg, flow=settings_for(stg)[0], opt=settings_for(stg)[1])
    compiling.initialized = True  # the phase after initialization, without simulating
    assert "torch.compile" in startup_phase(compiling)
    stg_eager = load_model("stg", compile="off")
    eager = EPITrainer(stg_eager, flow=settings_for(stg_eager)[0], opt=settings_for(stg_eager)[1])
    eager.initialized = True
    assert startup_phase(eager) == "first iteration"


def test_runner_reports_the_startup_phase_until_the_first_iteration(tmp_path):
    import threading

    from core.epi import EPITrainer

    release = threading.Event()

    class SlowStart(EPITrainer):
        def initialize(self):
            release.wait(30)
            super().initialize()

    runner = _runner(trainer_factory=SlowStart)
    assert runner.startup() is None  # nothing launched
    runner.start(*_lds(), run_dir=tmp_path / "run")
    deadline = time.monotonic() + 30
    while runner.startup() != "initializing q: Gaussian fit, then the baseline test" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert runner.startup() == "initializing q: Gaussian fit, then the baseline test"
    release.set()
    events = _wait(runner)
    assert any(e.kind == "iteration" for e in events)
    assert runner.startup() is None
