"""The server's scheduler with real trainings (tiny LDS): K at once, the rest queued with their position,
cancel by the owner only, limits refused naming the limit, wall time stops a training, the workbench shows
the queue and the refusal."""

from __future__ import annotations

import time

import pytest

from core.errors import InputError
from core.limits import ServerLimits
from core.model import load_model
from core.property import EmergentProperty
from core.runs import read_run_json, reserve_run_dir
from core.settings import settings_for
from epi_dash.runner import AnalysisSettings, TrainingRunner
from epi_dash.scheduler import Scheduler, reset_scheduler, scheduler

TINY = dict(iters_per_epoch=10, num_epochs=1, init_iters=5, num_test_batches=10, batch_size=50, stop_early=False)
LONG = dict(TINY, iters_per_epoch=100_000)
QUICK = AnalysisSettings(num_starts=1, num_samples=50, steps=5, num_predictive=50)


@pytest.fixture(autouse=True)
def no_admins(monkeypatch):
    monkeypatch.delenv("EPI_DASH_ADMINS", raising=False)


def _runner(sched: Scheduler, owner: str = "alice") -> TrainingRunner:
    return TrainingRunner(snapshot_every=1000, snapshot_samples=20, analysis=QUICK, scheduler=sched, owner=owner)


def _lds(**settings):
    model = load_model("lds")
    flow, opt = settings_for(model, **{**TINY, **settings})
    return model, EmergentProperty.default_for(model), flow, opt


def _until(condition, runner: TrainingRunner, timeout: float = 60) -> list:
    events, deadline = [], time.monotonic() + timeout
    while not condition(events):
        assert time.monotonic() < deadline, [e.kind for e in events]
        time.sleep(0.02)
        events += runner.drain()
    return events


def _iterating(events) -> bool:
    return any(e.kind == "iteration" for e in events)


def _finished(runner: TrainingRunner) -> list:
    events = _until(lambda ev: any(e.kind == "finished" for e in ev), runner)
    runner.join(60)
    assert not runner.running
    return events + runner.drain()


def test_second_training_waits_for_a_slot_then_starts(tmp_path):
    sched = Scheduler(ServerLimits(max_concurrent=1))
    first, second = _runner(sched), _runner(sched, owner="bob")
    first.start(*_lds(**LONG), run_dir=tmp_path / "a")
    second.start(*_lds(), run_dir=tmp_path / "b")
    assert second.queued and second.running and second.queue_position() == (1, 1)
    assert second.startup() == "queued: position 1 of 1"
    assert sched.runs_of("bob") == 1 and sched.runs_of("alice") == 1
    _until(_iterating, first)
    assert second.queued and second.drain() == []  # still waiting while the first trains
    first.stop()
    assert [e.data["state"] for e in _finished(first) if e.kind == "finished"] == ["stopped"]
    events = _finished(second)  # admitted when the first freed its slot
    finished = [e.data for e in events if e.kind == "finished"]
    assert [e.kind for e in events][0] == "started" and finished[0]["state"] == "finished"
    assert finished[0]["iterations"] == 10 and sched.queue.running() == [] and sched.queue.order() == []


def test_cancel_a_queued_training_owner_only(tmp_path):
    sched = Scheduler(ServerLimits(max_concurrent=1))
    first, queued = _runner(sched, owner="carol"), _runner(sched)
    first.start(*_lds(**LONG), run_dir=tmp_path / "a")
    reserved = reserve_run_dir(tmp_path, "b", owner="alice")  # as the workbench does before it starts
    queued.start(*_lds(), run_dir=reserved)
    with pytest.raises(InputError) as err:
        queued.cancel("bob")
    assert err.value.field == "job" and err.value.message.endswith("belongs to alice, not to bob")
    assert queued.queue_position() == (1, 1)
    queued.cancel("alice")
    assert not queued.queued and not queued.running and queued.queue_position() is None
    finished = [e.data for e in queued.drain() if e.kind == "finished"]
    assert finished[0]["state"] == "cancelled" and finished[0]["message"] == "cancelled while queued"
    assert not (tmp_path / "b").exists()  # its empty folder is removed
    with pytest.raises(InputError, match="not queued"):
        queued.cancel("alice")
    first.stop()
    _finished(first)
    assert sched.queue.running() == []


@pytest.mark.parametrize("limits, settings, message", [
    (ServerLimits(max_batch_size=40), {}, "batch_size: 50 exceeds this server's limit of 40 (max_batch_size)"),
    (ServerLimits(max_iterations=5), {}, "iterations: 10 exceeds this server's limit of 5 (max_iterations)"),
    (ServerLimits(max_parameters=3), {}, "parameters: 4 exceeds this server's limit of 3 (max_parameters)"),
])
def test_limits_refuse_naming_the_limit(tmp_path, limits, settings, message):
    runner = _runner(Scheduler(limits))
    with pytest.raises(InputError) as err:
        runner.start(*_lds(**settings), run_dir=tmp_path / "a")
    assert str(err.value) == message
    assert not runner.running and not (tmp_path / "a").exists()


def test_runs_per_user_counts_queued_and_running(tmp_path):
    sched = Scheduler(ServerLimits(max_concurrent=1, max_runs_per_user=1))
    first, again, other = _runner(sched), _runner(sched), _runner(sched, owner="bob")
    first.start(*_lds(**LONG), run_dir=tmp_path / "a")
    with pytest.raises(InputError) as err:
        again.start(*_lds(), run_dir=tmp_path / "b")
    assert str(err.value) == ("runs: you have 1 trainings queued or running; this server's limit is 1 per user "
                              "(max_runs_per_user): wait for one to end or stop one")
    other.start(*_lds(), run_dir=tmp_path / "c")  # another user's run is queued
    assert other.queued
    other.stop()  # a stop while queued cancels
    assert not other.running
    first.stop()
    _finished(first)
    again.start(*_lds(), run_dir=tmp_path / "b")  # the slot and the count are free again
    assert [e.data["state"] for e in _finished(again) if e.kind == "finished"] == ["finished"]


def test_wall_time_limit_stops_with_a_checkpoint(tmp_path):
    runner = _runner(Scheduler(ServerLimits(max_wall_time_s=3)))
    started = time.monotonic()
    runner.start(*_lds(**LONG), run_dir=tmp_path / "a")
    events = _finished(runner)
    assert time.monotonic() - started >= 3
    finished = [e.data for e in events if e.kind == "finished"][0]
    assert finished["state"] == "stopped" and read_run_json(tmp_path / "a")["state"] == "stopped"
    assert finished["message"] == ("it reached this server's limit of 3 s on one training's wall time "
                                   "(max_wall_time_s); its checkpoint is kept and Resume continues it")
    assert any(e.kind == "message" and "max_wall_time_s" in e.data["text"] for e in events)
    if finished["iterations"]:  # 0 only on a machine so loaded that it was still initializing q
        assert (tmp_path / "a" / "checkpoint.pt").is_file()


def test_process_scheduler_reads_the_environment(monkeypatch):
    import os

    monkeypatch.delenv("EPI_DASH_MAX_CONCURRENT", raising=False)
    assert reset_scheduler().max_concurrent == (os.cpu_count() or 1)
    monkeypatch.setenv("EPI_DASH_MAX_CONCURRENT", "3")
    monkeypatch.setenv("EPI_DASH_MAX_PER_USER", "2")
    monkeypatch.setenv("EPI_DASH_MAX_BATCH_SIZE", "100")
    sched = reset_scheduler()
    assert sched is scheduler() and sched.max_concurrent == 3 and sched.queue.per_user == 2
    assert sched.limits.max_batch_size == 100
    monkeypatch.delenv("EPI_DASH_MAX_CONCURRENT")
    monkeypatch.delenv("EPI_DASH_MAX_PER_USER")
    monkeypatch.delenv("EPI_DASH_MAX_BATCH_SIZE")
    reset_scheduler()


def test_serve_limit_flags_set_the_environment(capsys):
    from epi_dash.cli import build_parser
    from epi_dash.scheduler import export_limits

    args = build_parser().parse_args(["serve", "--max-concurrent", "2", "--max-per-user", "1", "--max-batch-size",
                                      "2000", "--max-iterations", "50000", "--max-parameters", "30",
                                      "--max-wall-time", "3600", "--max-runs-per-user", "3"])
    env: dict[str, str] = {}
    export_limits(args, env)
    assert env["EPI_DASH_MAX_CONCURRENT"] == "2" and env["EPI_DASH_MAX_WALL_TIME_S"] == "3600.0"
    assert ServerLimits.from_env(env) == ServerLimits(max_batch_size=2000, max_iterations=50000, max_parameters=30,
                                                      max_wall_time_s=3600.0, max_runs_per_user=3,
                                                      max_concurrent=2, max_per_user=1)
    env = {}
    export_limits(build_parser().parse_args(["serve"]), env)
    assert env == {}  # unset flags leave the environment (and the server's limits) alone
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--max-batch-size", "0"])
    assert "--max-batch-size: a positive integer; got '0'" in capsys.readouterr().err


def _workbench(tmp_path, sched: Scheduler, name: str):
    from epi_dash.workbench import Workbench, ensure_extensions

    ensure_extensions()
    wb = Workbench(runs_dir=tmp_path / name, model_path=[], runner=_runner(sched))
    wb.setup.opt.param.update(**{k: v for k, v in TINY.items() if k != "init_iters"})
    wb.setup.flow.init_iters = 5
    return wb


def test_workbench_shows_the_queue_position_cancel_and_a_refusal(tmp_path):
    sched = Scheduler(ServerLimits(max_concurrent=1, max_iterations=1000))
    busy, waiting = _workbench(tmp_path, sched, "a"), _workbench(tmp_path, sched, "b")
    busy.setup.opt.param.update(iters_per_epoch=1000)
    busy.start()
    waiting.start()
    assert waiting.status.object.startswith("**Queued: position 1 of 1**")
    assert waiting.cancel_button.visible and not waiting.stop_button.disabled and waiting.start_button.disabled
    assert not busy.cancel_button.visible
    waiting.cancel_button.clicks += 1  # the Cancel button
    waiting.drain()
    assert waiting.live.state.status == "cancelled" and not waiting.cancel_button.visible
    assert "cancelled while queued" in waiting.status.object and not waiting.start_button.disabled
    busy.stop()
    busy.runner.join(60)
    waiting.setup.opt.param.update(iters_per_epoch=2000)  # 2000 iterations > max_iterations
    waiting.start()
    assert waiting.live.state.status == "refused" and not waiting.runner.running
    assert "⚠ iterations: 2000 exceeds this server's limit of 1000 (max_iterations)" in waiting.status.object
    assert list((tmp_path / "b").iterdir()) == []  # no run folder left behind


def test_the_training_records_its_owner(tmp_path):
    runner = _runner(Scheduler(), owner="dora")
    runner.start(*_lds(iters_per_epoch=2), run_dir=tmp_path / "a")
    _finished(runner)
    assert read_run_json(tmp_path / "a")["owner"] == "dora"


def test_join_waits_for_a_queued_training(tmp_path):
    sched = Scheduler(ServerLimits(max_concurrent=1))
    first, second = _runner(sched), _runner(sched)
    first.start(*_lds(), run_dir=tmp_path / "a")
    second.start(*_lds(), run_dir=tmp_path / "b")
    assert second.queued
    second.join(120)  # through its wait for the first and its own training
    assert not second.running and not first.running
    assert [e.data["state"] for e in second.drain() if e.kind == "finished"] == ["finished"]
