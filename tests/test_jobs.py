"""The one job mechanism (core.jobs) and its executors (core.executors)."""

from __future__ import annotations

import json
import os
import time

import pytest

from core.errors import InputError
from core.executors import DaskExecutor, InProcessExecutor, check_scheduler, dask_client, map_tasks
from core.jobs import JobRunner, read_events, request_stop, resume_job, run_job
from core.runs import list_runs, load_run
from tests.data import jobs_example


def test_run_job_writes_state_progress_events_and_result(tmp_path):
    seen = []
    result = run_job(jobs_example.count, {"n": 5}, tmp_path / "r", kind="test.count", on_event=seen.append)
    assert result.state == "finished" and result.result == {"sum": 10, "resumed": False}
    meta = json.loads((tmp_path / "r" / "run.json").read_text())
    assert meta["kind"] == "test.count" and meta["function"] == "tests.data.jobs_example:count"
    assert meta["state"] == "finished" and meta["progress"] == {"step": 5, "total": 5}
    assert meta["process"]["pid"] > 0 and meta["result"]["sum"] == 10
    kinds = [e.kind for e in seen]
    assert kinds[0] == "started" and kinds[-1] == "finished" and kinds.count("progress") == 5
    events, offset = read_events(tmp_path / "r")
    assert [e.kind for e in events] == kinds and offset == (tmp_path / "r" / "events.jsonl").stat().st_size
    assert [e.scalars["total_so_far"] for e in events if e.kind == "progress"] == [0, 1, 3, 6, 10]


def test_stopped_job_resumes_from_its_checkpoint_to_the_same_answer(tmp_path):
    runner = JobRunner()
    runner.start(jobs_example.count, {"n": 40, "delay": 0.02}, tmp_path / "r", kind="test.count")
    deadline = time.monotonic() + 20
    while (runner.last_progress is None or runner.last_progress.step < 3) and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(InputError) as info:
        runner.start(jobs_example.count, {"n": 1}, tmp_path / "other", kind="test.count")
    assert info.value.field == "job"
    runner.stop()
    runner.join(20)
    assert runner.result.state == "stopped"
    stopped_at = load_run(tmp_path / "r").meta["progress"]["step"]
    assert 3 <= stopped_at < 40
    resumed = resume_job(tmp_path / "r")
    assert resumed.state == "finished" and resumed.result == {"sum": sum(range(40)), "resumed": True}
    steps = [e.step for e in read_events(tmp_path / "r")[0] if e.kind == "progress"]
    assert steps == list(range(1, 41))  # no unit of work redone, none skipped


def test_a_failing_job_is_recorded_with_the_field_and_listed_in_the_library(tmp_path):
    result = run_job(jobs_example.bad_input, {}, tmp_path / "bad", kind="test.bad")
    assert result.state == "failed" and result.error == "budget: must be > 0; got 0"
    with pytest.raises(InputError) as info:
        result.raise_for_state()
    assert info.value.field == "budget"
    run_job(jobs_example.count, {"n": 1}, tmp_path / "ok", kind="test.count")
    kinds = {r.path.name: (r.meta["kind"], r.state) for r in list_runs(tmp_path)}
    assert kinds == {"bad": ("test.bad", "failed"), "ok": ("test.count", "finished")}


def test_bad_job_definitions_name_the_field(tmp_path):
    with pytest.raises(InputError) as info:
        run_job(lambda ctx: {}, {}, tmp_path / "x", kind="t")
    assert info.value.field == "function"
    with pytest.raises(InputError) as info:
        run_job(jobs_example.count, {"n": object()}, tmp_path / "y", kind="t")
    assert info.value.field == "settings"
    with pytest.raises(InputError) as info:
        run_job("tests.data.jobs_example:nope", {}, tmp_path / "z", kind="t")
    assert info.value.field == "function"
    with pytest.raises(InputError) as info:
        check_scheduler("localhost:8786")
    assert info.value.field == "scheduler"


def test_a_job_killed_with_its_process_reads_interrupted(tmp_path):
    run_job(jobs_example.count, {"n": 2}, tmp_path / "r", kind="test.count")
    meta = json.loads((tmp_path / "r" / "run.json").read_text())
    meta.update(state="running", process={**meta["process"], "pid": 2**22 + 12345})  # no such process
    (tmp_path / "r" / "run.json").write_text(json.dumps(meta))
    assert load_run(tmp_path / "r").state == "interrupted"
    assert resume_job(tmp_path / "r").state == "finished"


def test_in_process_executor_streams_and_stops(tmp_path):
    handle = InProcessExecutor().submit(jobs_example.count, {"n": 1000, "delay": 0.01}, tmp_path / "r", "test.count")
    time.sleep(0.2)
    handle.stop()
    assert handle.result(timeout=20).state == "stopped"
    assert any(e.kind == "progress" for e in handle.drain())


def test_map_tasks_inline_and_on_a_local_dask_cluster():
    got = []
    assert map_tasks(jobs_example.square, [1, 2, 3], scheduler="sync", on_result=lambda k, v: got.append(k)) == [1, 4, 9]
    assert got == [0, 1, 2]
    with dask_client("local", n_workers=1) as client:
        arrived = []
        assert map_tasks(jobs_example.square, range(6), client=client, on_result=lambda k, v: arrived.append(v)) == [
            0, 1, 4, 9, 16, 25]
        assert sorted(arrived) == [0, 1, 4, 9, 16, 25]


def test_an_unreachable_scheduler_is_named():
    with pytest.raises(InputError) as info:
        with dask_client("tcp://127.0.0.1:1"):
            pass
    assert info.value.field == "scheduler" and "cannot reach" in info.value.message


def test_dask_executor_runs_a_job_on_a_worker_streams_it_and_stops_it_by_file(tmp_path):
    executor = DaskExecutor("local", n_workers=1)
    try:
        done = executor.submit(jobs_example.count, {"n": 3}, tmp_path / "a", "test.count")
        assert done.result(timeout=60).state == "finished"
        assert [e.kind for e in done.drain()][-1] == "finished"
        slow = executor.submit(jobs_example.count, {"n": 10_000, "delay": 0.01}, tmp_path / "b", "test.count")
        deadline = time.monotonic() + 60
        while not any(e.kind == "progress" for e in slow.drain()) and time.monotonic() < deadline:
            time.sleep(0.05)
        slow.stop()
        assert slow.result(timeout=60).state == "stopped"
        assert load_run(tmp_path / "b").meta["process"]["pid"] != os.getpid()  # it ran on the worker
        resumed = executor.submit(jobs_example.count, {}, tmp_path / "b", "test.count", resume=True)
        request_stop(tmp_path / "b")
        assert resumed.result(timeout=60).state == "stopped"
    finally:
        executor.close()
