"""The reusable panels (epi_dash.panels) and the example app built from them, without a browser."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from epi_dash.examples.random_walk import KIND, RandomWalkApp, WalkSettings, simulate_walk
from epi_dash.panels import EventPump, JobLibrary, SetupPanel, jobs_table, load_extensions, pairplot, table_height


@pytest.fixture(autouse=True, scope="module")
def extensions():
    load_extensions()


def _pump(job, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while job.runner.running and time.monotonic() < deadline:
        time.sleep(0.05)
        job.pump.pump()
    job.runner.join(timeout)
    job.pump.pump()


def test_setup_panel_names_the_bad_field_beside_it_and_in_the_summary():
    panel = SetupPanel(WalkSettings())
    assert panel.valid and not panel.messages.summary.visible
    panel.form._widgets["step_size"].value = -1.0  # what typing into the field does
    assert not panel.valid and panel.errors() == {"step_size": "must be > 0; got -1"}
    assert "`step_size`: must be > 0" in panel.messages.summary.object and panel.messages.summary.visible
    inline = [row.objects[1].object for row in panel._rows]
    assert sum("must be > 0" in text for text in inline) == 1  # beside step_size only
    panel.obj.step_size = 0.5
    assert panel.valid and panel.settings()["step_size"] == 0.5


def test_setup_panel_turns_an_input_error_into_a_field_message():
    from core.errors import InputError

    def validate(obj):
        raise InputError("walkers", "no walkers today")

    panel = SetupPanel(WalkSettings(), validate=validate)
    assert panel.errors() == {"walkers": "no walkers today"} and not panel.valid


def test_the_walk_job_streams_progress_and_its_result_matches_theory(tmp_path):
    app = RandomWalkApp(tmp_path / "runs")
    app.settings.param.update(walkers=2000, steps=30, dims=3)
    app.job.start()
    assert app.job.controls.start_button.disabled
    _pump(app.job)
    job = app.job
    assert job.state == "finished" and (job.step, job.total) == (30, 30)
    assert "**Finished** · step 30/30" in job.controls.status.object and job.controls.progress_bar.value == 30
    assert list(job.table.value.columns) == ["step", "msd", "theory"] and len(job.table.value) == 30
    assert job.table.height == table_height(30)
    # E|x|^2 = steps x dims x size^2 = 90; the mean over 2000 walkers has sd 90 * sqrt(2 / (3 * 2000)) ~ 1.6
    assert job.result["theory"] == 90 and abs(job.result["msd"] - 90) < 4 * 90 * (2 / 6000) ** 0.5
    assert app.results.objects, "the result view appears once the job finished"
    meta = json.loads((tmp_path / "runs" / job.run_dir.rsplit("/", 1)[-1] / "run.json").read_text())
    assert meta["kind"] == KIND and meta["state"] == "finished" and meta["settings"]["walkers"] == 2000
    table = app.library.table.value
    assert table["kind"].tolist() == [KIND] and table["state"].tolist() == ["finished"]


def test_a_stopped_walk_resumes_to_the_same_positions(tmp_path):
    from core.jobs import run_job

    settings = dict(walkers=50, steps=40, dims=2, step_size=1.0, seed=4, delay=0.0)
    whole = run_job(simulate_walk, settings, tmp_path / "whole", kind=KIND)
    app = RandomWalkApp(tmp_path / "runs")
    app.settings.param.update(walkers=50, steps=40, seed=4, delay=0.05)
    app.job.start()
    deadline = time.monotonic() + 30
    while (last := app.job.runner.last_progress) is None or last.step < 3:
        assert time.monotonic() < deadline
        time.sleep(0.02)
        app.job.pump.pump()
    app.job.stop()
    _pump(app.job)
    assert app.job.state == "stopped" and not app.job.controls.resume_button.disabled
    assert app.job.step < 40
    app.job.resume()
    _pump(app.job)
    assert app.job.state == "finished"
    assert app.job.result["msd"] == pytest.approx(whole.result["msd"], rel=1e-12)
    from pathlib import Path

    assert np.allclose(np.load(Path(app.job.run_dir) / "positions.npy"), np.load(tmp_path / "whole" / "positions.npy"))


def test_a_failing_job_says_why_and_the_library_lists_every_kind(tmp_path):
    app = RandomWalkApp(tmp_path / "runs")
    app.job._settings = lambda: {"walkers": 5, "dims": 2, "steps": 3}  # no step_size: the job fails
    app.job.start()
    _pump(app.job)
    assert app.job.state == "failed" and "step_size" in app.job.error and "⚠" in app.job.controls.status.object
    assert not app.results.objects
    other = tmp_path / "runs" / "old-epi-run"
    other.mkdir()
    (other / "run.json").write_text(json.dumps({"model": "lds", "state": "finished", "iterations": 7}))
    table = jobs_table(tmp_path / "runs")
    assert sorted(table["kind"]) == ["epi", KIND] and "7" in table["progress"].tolist()
    assert JobLibrary(tmp_path / "runs", kinds=["epi"]).table.value["run"].tolist() == ["old-epi-run"]


def test_a_saved_job_opens_with_its_history_and_result(tmp_path):
    from core.jobs import run_job

    run_job(simulate_walk, dict(walkers=20, steps=12, dims=2, step_size=0.5, seed=1), tmp_path / "runs" / "w", kind=KIND)
    app = RandomWalkApp(tmp_path / "runs")
    app.library.table.selection = [0]
    app.library.open_selected()
    assert app.job.state == "finished" and app.job.step == 12 and len(app.job.table.value) == 12
    assert app.results.objects and app.job.result["theory"] == pytest.approx(12 * 2 * 0.25)


def test_event_pump_throttles_while_busy_and_applies_everything_in_order():
    queued, applied, moved = [], [], []
    busy = [True]
    pump = EventPump(lambda: [queued.pop(0) for _ in range(len(queued))], applied.extend, busy=lambda: busy[0],
                     between=lambda: bool(moved.append(1)) or True)
    queued += [1, 2]
    pump.pump()
    assert applied == [1, 2]
    queued += [3]
    pump.pump()  # within the refresh period of a running job: only the cheap update
    assert applied == [1, 2] and moved == [1]
    busy[0] = False
    pump.pump()  # the job ended: everything at once
    assert applied == [1, 2, 3]


def test_pairplot_reports_the_clicked_row():
    clicked = []
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 3))
    grid = pairplot(["a", "b", "c"], -np.ones(3) * 4, np.ones(3) * 4, x, on_tap=clicked.append)
    assert len(grid.objects) == 9 and grid.ncols == 3
    grid.figure.source.selected.indices = [7]
    assert len(clicked) == 1 and np.allclose(clicked[0], x[7])
