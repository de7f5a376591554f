"""Every long job goes through the server's one scheduler: JobPanel jobs (the random walk example) and sweeps
share the fair queue with EPI trainings: K at once, the rest queued with their position and a Cancel button,
cancel by the owner (or an admin) only, max_runs_per_user and max_wall_time_s apply, a slot is freed
however a job ends."""

from __future__ import annotations

import time

import pytest

from core.errors import InputError
from core.limits import ServerLimits
from epi_dash.examples.random_walk import RandomWalkApp
from epi_dash.panels import load_extensions
from epi_dash.scheduler import reset_scheduler

SLOW = dict(walkers=20, steps=400, dims=2, delay=0.02)  # ~8 s unless stopped
QUICK = dict(walkers=20, steps=5, dims=2, delay=0.0)


@pytest.fixture(autouse=True)
def no_admins(monkeypatch):
    monkeypatch.delenv("EPI_DASH_ADMINS", raising=False)
    monkeypatch.delenv("EPI_DASH_SIGN_IN", raising=False)
    load_extensions()
    yield
    reset_scheduler(None)  # the next test reads the environment again


def _app(tmp_path, name: str, **settings) -> RandomWalkApp:
    app = RandomWalkApp(tmp_path / name)
    app.settings.param.update(**settings)
    return app


def _until(condition, job, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, job.state
        time.sleep(0.02)
        job.pump.pump()


def _ended(job, timeout: float = 60) -> None:
    job.runner.join(timeout)
    _until(lambda: not job.runner.running and job.state not in ("queued", "starting", "running", "stopping"), job)


def test_a_second_job_waits_with_its_position_and_starts_when_the_first_ends(tmp_path):
    sched = reset_scheduler(ServerLimits(max_concurrent=1))
    first, second = _app(tmp_path, "a", **SLOW), _app(tmp_path, "b", **QUICK)
    first.job.start()
    _until(lambda: first.job.state == "running", first.job)
    second.job.start()
    job, controls = second.job, second.job.controls
    assert job.state == "queued" and job.runner.running and job.runner.queue_position() == (1, 1)
    assert controls.status.object.startswith("**Queued: position 1 of 1**") and controls.cancel_queued_button.visible
    assert controls.start_button.disabled and not controls.stop_button.disabled
    assert [row["state"] for row in sched.jobs()] == ["running", "queued"]
    time.sleep(0.3)
    job.pump.pump()
    assert job.state == "queued" and job.step == 0  # still waiting while the first runs
    first.job.stop()
    _ended(first.job)
    assert first.job.state == "stopped"
    _ended(job)  # admitted when the first freed its slot
    assert job.state == "finished" and (job.step, job.total) == (5, 5) and not controls.cancel_queued_button.visible
    assert "**Finished**" in controls.status.object
    assert sched.queue.running() == [] and sched.queue.order() == []


def test_cancel_a_queued_job_owner_or_admin_only(tmp_path):
    sched = reset_scheduler(ServerLimits(max_concurrent=1))
    first, second = _app(tmp_path, "a", **SLOW), _app(tmp_path, "b", **QUICK)
    second.job.runner.owner = "alice"  # whose turn it is in the queue
    first.job.start()
    second.job.start()
    job = second.job
    reserved = tmp_path / "b" / job.run_dir.rsplit("/", 1)[-1]
    assert job.state == "queued" and reserved.is_dir()
    with pytest.raises(InputError) as err:
        job.runner.cancel("bob")
    assert err.value.field == "job" and err.value.message.endswith("belongs to alice, not to bob")
    assert job.runner.queue_position() == (1, 1)
    job.runner.cancel("alice")
    job.pump.pump()
    assert job.state == "cancelled" and "cancelled while queued" in job.error and not job.runner.running
    assert not reserved.exists() and job.run_dir == ""  # the folder reserved for it is gone
    assert not job.controls.cancel_queued_button.visible and not job.controls.start_button.disabled
    assert job.controls.resume_button.disabled
    with pytest.raises(InputError, match="not queued"):
        job.runner.cancel("alice")
    # the Cancel button (the session's user: "local", admin of a server without sign-in), and a stop of a
    # queued job (what a closed tab does) also take it out of the queue
    job.start()
    assert job.state == "queued"
    job.controls.cancel_queued_button.clicks += 1
    assert job.state == "cancelled" and "cancelled while queued by local" in job.error
    job.start()
    job.runner.stop()
    job.pump.pump()
    assert job.state == "cancelled" and sched.queue.order() == []
    first.job.stop()
    _ended(first.job)
    assert sched.queue.running() == []


def test_runs_per_user_counts_every_kind_of_job_and_the_refusal_names_the_limit(tmp_path):
    sched = reset_scheduler(ServerLimits(max_concurrent=1, max_runs_per_user=1))
    first, second = _app(tmp_path, "a", **SLOW), _app(tmp_path, "b", **QUICK)
    first.job.start()
    second.job.start()
    status = second.job.controls.status.object
    assert "runs: you have 1 jobs (trainings, simulations, sweeps) queued or running" in status
    assert "(max_runs_per_user)" in status
    assert not second.job.runner.running and second.job.state == "idle"
    assert not (tmp_path / "b").exists() or list((tmp_path / "b").iterdir()) == []  # no folder left behind
    first.job.stop()
    _ended(first.job)
    second.job.start()  # the count is free again
    _ended(second.job)
    assert second.job.state == "finished" and sched.runs_of("local") == 0


def test_wall_time_stops_a_job_with_a_checkpoint_naming_the_limit(tmp_path):
    sched = reset_scheduler(ServerLimits(max_concurrent=1, max_wall_time_s=0.5))
    app = _app(tmp_path, "a", **SLOW)
    app.job.start()
    _ended(app.job, timeout=30)
    job = app.job
    assert job.state == "stopped" and 0 < job.step < 400
    assert "max_wall_time_s" in job.error and "⚠" in job.controls.status.object
    assert not job.controls.resume_button.disabled and sched.queue.running() == []


def test_a_job_that_cannot_start_frees_its_slot(tmp_path, monkeypatch):
    import core.jobs

    sched = reset_scheduler(ServerLimits(max_concurrent=1))

    class NoThread(core.jobs.threading.Thread):  # as when the process may start no more threads
        def start(self):
            raise RuntimeError("can't start new thread")

    app = _app(tmp_path, "a", **QUICK)
    with monkeypatch.context() as m:
        m.setattr(core.jobs.threading, "Thread", NoThread)
        app.job.start()
    app.job.pump.pump()
    assert app.job.state == "failed" and "can't start new thread" in app.job.error
    assert sched.queue.running() == [] and not app.job.runner.running
    app.job._settings = lambda: {"walkers": 5, "dims": 2, "steps": 3}  # no step_size: the job itself fails
    app.job.start()
    _ended(app.job)
    assert app.job.state == "failed" and "step_size" in app.job.error and sched.queue.running() == []


def test_a_sweep_waits_for_a_running_training_and_a_training_for_a_job(tmp_path):
    from core.model import load_model
    from core.property import EmergentProperty
    from core.settings import settings_for
    from epi_dash.runner import AnalysisSettings, TrainingRunner
    from epi_dash.sweep_view import SweepView

    sched = reset_scheduler(ServerLimits(max_concurrent=1))
    model = load_model("lds")
    flow, opt = settings_for(model, iters_per_epoch=100_000, num_epochs=1, init_iters=5, num_test_batches=10,
                             batch_size=50, stop_early=False)
    training = TrainingRunner(snapshot_every=1000, snapshot_samples=20,
                              analysis=AnalysisSettings(num_starts=1, num_samples=50, steps=5, num_predictive=50))
    training.start(model, EmergentProperty.default_for(model), flow, opt, run_dir=tmp_path / "epi")
    assert not training.queued
    view = SweepView(tmp_path / "sweeps")
    view.setup.param.update(model="lds", vary="real_lambda1.mean=0,0.5", seeds=1,
                            settings="num_epochs=1, iters_per_epoch=20, batch_size=50, num_test_batches=10")
    view.launch()
    assert view.runner.queued and view.runner.queue_position() == (1, 1)
    assert view.status.object.startswith("**Queued: position 1 of 1** · this sweep") and view.cancel_button.visible
    assert [row["state"] for row in sched.jobs()] == ["running", "queued"]
    training.stop()
    training.join(60)
    deadline = time.monotonic() + 30
    while view.runner.queued:  # admitted once the training freed its slot
        assert time.monotonic() < deadline
        time.sleep(0.02)
    view.drain()
    assert not view.cancel_button.visible and view.status.object.startswith("**Running** sweep")
    # the other way round: a training waits for the sweep's slot
    waiting = TrainingRunner(snapshot_every=1000, snapshot_samples=20)
    waiting.start(model, EmergentProperty.default_for(model), flow, opt, run_dir=tmp_path / "epi2")
    assert waiting.queued and waiting.queue_position() == (1, 1)
    waiting.cancel()
    view.runner.stop()
    view.runner.join(120)
    view.drain()
    assert "**Stopped**" in view.status.object or "**Finished**" in view.status.object
    assert sched.queue.running() == [] and sched.queue.order() == []


def _race_view(tmp_path, **params):
    from epi_dash.compare import CompareView

    return CompareView("rnn", {"N": 2}, {"statistics": ["real_lambda1", "lambda_s"], "mean": [0.5, 1.5],
                                         "std": [0.25, 0.25]}, tmp_path / "races", methods=["smc"],
                       **{"seeds": 1, "time_limit": 30, "device": "cpu", **params})


def _drain_until(view, condition, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, view.status
        time.sleep(0.1)
        view.drain()


def test_a_compare_race_waits_for_a_slot_in_the_servers_queue(tmp_path):
    sched = reset_scheduler(ServerLimits(max_concurrent=1))
    training = _app(tmp_path, "a", **SLOW)
    training.job.start()  # holds the only slot
    view = _race_view(tmp_path)
    view.run()
    _drain_until(view, lambda: view.status.startswith("waiting for a slot on this server: smc"))
    rows = sched.jobs()
    assert [(r["state"], r["owner"]) for r in rows] == [("running", "local"), ("queued", "local")]
    assert rows[1]["job"].endswith("smc-seed1") and view.last_step is None  # the race has not started
    training.job.stop()  # the slot frees: the race runs
    _drain_until(view, lambda: view.last_step is not None)
    assert view.status.startswith("running smc")
    view.stop()
    _drain_until(view, lambda: view.status.startswith("done"))
    assert sched.queue.running() == [] and sched.jobs() == []


def test_a_compare_race_counts_towards_runs_per_user_and_obeys_the_wall_time(tmp_path):
    reset_scheduler(ServerLimits(max_concurrent=1, max_runs_per_user=1))
    training = _app(tmp_path, "a", **SLOW)
    training.job.start()
    view = _race_view(tmp_path)
    view.run()
    _drain_until(view, lambda: view.status.startswith("error"))
    assert "smc seed 1: runs: you have 1 jobs (trainings, simulations, sweeps)" in view.status
    assert "(max_runs_per_user)" in view.status
    training.job.stop()
    _ended(training.job)

    sched = reset_scheduler(ServerLimits(max_concurrent=1, max_wall_time_s=1.0))
    view = _race_view(tmp_path, seeds=2)
    said: list[str] = []
    view.param.watch(lambda event: said.append(event.new), "status")
    view.run()
    _drain_until(view, lambda: view.status.startswith("done"), timeout=90)
    limit = "error: stopped at this server's limit of 1 s on one job's wall time (max_wall_time_s)"
    assert said.count(limit) == 2 and len(view.results) == 2  # the limit stopped each race, not the comparison
    assert all(r.wall_time_s < 5 and not r.converged for r in view.results)  # 30 s without the limit
    assert sched.queue.running() == []


def test_a_conductances_run_waits_for_a_slot_and_counts_towards_runs_per_user(tmp_path, monkeypatch):
    import threading

    from epi_dash.conductances_app import ConductancesState

    monkeypatch.setenv("EPI_DASH_RUNS_DIR", str(tmp_path / "runs"))  # no trained network there
    sched = reset_scheduler(ServerLimits(max_concurrent=1, max_runs_per_user=2))
    training = _app(tmp_path, "a", **SLOW)
    training.job.start()  # holds the only slot
    state = ConductancesState(n_input=1, duration=50.0, transient=0.0)
    admitted, outcomes = threading.Event(), []
    worker = threading.Thread(target=lambda: outcomes.append(
        state.scheduled_outcome(None, "", "local", on_admitted=admitted.set)))
    worker.start()
    _until(lambda: len(sched.jobs()) == 2, training.job)
    assert sched.jobs()[1]["state"] == "queued" and not admitted.is_set()
    result, message = state.scheduled_outcome(None, "", "local")  # a third job of the same user
    assert result is None and "(max_runs_per_user)" in message and message.startswith("runs: ")
    training.job.stop()  # the slot frees: the run computes
    worker.join(60)
    assert admitted.is_set() and outcomes[0][0] is None
    assert outcomes[0][1].startswith("network") and "dic train" in outcomes[0][1]  # it ran, and said what is missing
    assert sched.jobs() == []
