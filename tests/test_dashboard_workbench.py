"""The workbench without a browser: widgets drive the state, Start/Stop/open work end to end."""

from __future__ import annotations

import time

import panel as pn
import pytest
import torch

from epi_dash.runner import AnalysisSettings, TrainingRunner
from epi_dash.serve import websocket_origins
from epi_dash.tutorial import Tutorial
from epi_dash.workbench import Workbench, ensure_extensions

TINY = dict(iters_per_epoch=15, num_epochs=2, num_test_batches=10, batch_size=50, stop_early=False)


@pytest.fixture(autouse=True)
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    ensure_extensions()
    yield
    torch.set_num_threads(before)


def _workbench(tmp_path, **kw) -> Workbench:
    runner = TrainingRunner(snapshot_every=10, snapshot_samples=50,
                            analysis=AnalysisSettings(num_starts=1, num_samples=100, steps=10, num_predictive=100))
    wb = Workbench(runs_dir=tmp_path / "runs", model_path=[], runner=runner, **kw)
    wb.setup.opt.param.update(**TINY)
    wb.setup.flow.init_iters = 5
    return wb


def _pump(wb: Workbench, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while wb.runner.running and time.monotonic() < deadline:
        time.sleep(0.1)
        wb.drain()
    wb.runner.join(timeout)
    wb.drain()


def _property_inputs(wb: Workbench) -> dict[str, object]:
    """"mean-<stat>" / "sd-<stat>" -> the input widget shown in the sidebar."""
    shown = {id(w) for row in wb.property_area.objects for w in getattr(row, "objects", [])}
    out = {f"{'sd' if kind == 'std' else 'mean'}-{stat}": w for (kind, stat), w in wb.target_inputs.items()}
    assert all(id(w) in shown for w in out.values())
    return out


def test_bad_sd_shows_a_message_next_to_the_field_and_disables_start(tmp_path):
    wb = _workbench(tmp_path)
    assert not wb.start_button.disabled and not wb.errors_pane.visible
    sd = _property_inputs(wb)["sd-imag_lambda1"]
    sd.value = -0.5
    assert wb.start_button.disabled
    assert "must be > 0" in wb._target_errors["std[imag_lambda1]"].object
    assert "std[imag_lambda1]" in wb.errors_pane.object and wb.errors_pane.visible
    sd.value = 0.5
    assert not wb.start_button.disabled and not wb.errors_pane.visible
    assert wb.setup.stds["imag_lambda1"] == 0.5


@pytest.mark.parametrize("status, value", [("running", 700), ("stopped", 700), ("converged", 2000)])
def test_progress_bar_is_full_once_a_run_converged_early(tmp_path, status, value):
    wb = _workbench(tmp_path)
    wb.live.state.status, wb.live.state.iteration, wb.live.state.iterations_total = status, 700, 2000
    wb._update_progress()
    assert (wb.progress_bar.value, wb.progress_bar.max) == (value, 2000)
    assert "iteration 700/2000" in wb.status.object  # the text keeps the real count


def test_start_streams_into_views_saves_and_reopens(tmp_path):
    wb = _workbench(tmp_path)
    _property_inputs(wb)["mean-real_lambda1"].value = 0.5
    wb.start()
    assert wb.start_button.disabled and not wb.stop_button.disabled
    _pump(wb)
    state = wb.live.state
    assert state.status in ("finished", "converged") and state.iteration == 30
    assert len(wb.live.progress.data) == 30 and len(state.epochs) == 2
    assert "iteration 30/30" in wb.status.object and "Convergence test: epoch 2" in wb.status.object
    epochs = wb.epoch_table.value
    assert wb.epoch_table.visible and epochs["epoch"].tolist() == [1, 2] and epochs["iter"].tolist() == [15, 30]
    assert wb.epoch_table.height == 29 * 3 + 2  # header and two rows: no blank space under them
    assert epochs["entropy"].tolist() == pytest.approx([e["entropy"] for e in state.epochs])
    assert wb.live.analysis is not None and len(wb.direction_select.options) == 4
    assert "log q(z)" in wb.probe_table.object
    faces = wb.live.analysis["mode_near_faces"]
    assert isinstance(faces, list) and ("at the box faces" in wb.probe_table.object) == bool(faces)
    wb.live.analysis["mode_near_faces"] = ["a2", "a3"]  # as for a broad q (e.g. the RNN's)
    assert "at the box faces** in 2 of 4 parameters (a2, a3)" in wb._probe_markdown(wb.explorer.probe())
    wb.live.analysis["mode_near_faces"] = []
    assert "box faces" not in wb._probe_markdown(wb.explorer.probe())
    assert wb.live.traces.data["mode"] is not None
    table = wb.library.table.value
    assert len(table) == 1 and table["model"].iloc[0] == "lds" and "real_lambda1: 0.5" in table["property"].iloc[0]
    # moving the explorer slider changes the probe and the traces
    mode_traces = wb.live.traces.data["probe"].x.copy()
    import param

    with param.edit_constant(wb.step_slider):
        wb.step_slider.param.update(value=2.0, value_throttled=2.0)  # what a browser drag sends
    assert (wb.live.traces.data["probe"].x != mode_traces).any()

    from core.runs import load_run
    from epi_dash.library import figures_html, run_bundle, samples_csv

    run = load_run(table["path"].iloc[0])
    csv = samples_csv(run).getvalue().decode().splitlines()
    assert csv[0] == "a1,a2,a3,a4,log_q" and len(csv) == 1 + len(run.samples["z"])
    import zipfile

    names = zipfile.ZipFile(run_bundle(run)).namelist()
    assert any(n.endswith("run.json") for n in names) and any(n.endswith("checkpoint.pt") for n in names)
    assert b"<html" in figures_html(run).getvalue()[:2000].lower()

    wb.start()  # a second run, then compare the two side by side
    _pump(wb)
    wb.library.table.selection = [0, 1]
    wb.library._compare()
    (row,) = wb.library.compare_area.objects
    assert len(row.objects) == 2 and "Comparing" in wb.library.message.object
    # both grids fit side by side in the workbench's main column at 1366 px (~880 px; a Row cut the second off)
    grids = [column.objects[1] for column in row.objects]
    assert sum(sum(cell.width for cell in grid.objects[-grid.ncols:]) + 20 for grid in grids) <= 880

    fresh = _workbench(tmp_path)
    assert fresh.setup.means["real_lambda1"] == 0.0
    fresh.open_run(table["path"].iloc[0])  # the first run (the table is newest first: index 1 now)
    assert fresh.setup.means["real_lambda1"] == 0.5
    assert fresh.setup.opt.iters_per_epoch == TINY["iters_per_epoch"]
    assert len(fresh.live.progress.data) == 30 and len(fresh.live.snapshot["z"]) > 0
    _pump(fresh)
    assert fresh.live.analysis is not None


def test_stop_then_resume_continues_the_same_run(tmp_path):
    wb = _workbench(tmp_path)
    wb.setup.opt.param.update(iters_per_epoch=100_000, num_epochs=1)
    wb.start()
    deadline = time.monotonic() + 60
    while wb.live.state.iteration < 3:
        assert time.monotonic() < deadline
        time.sleep(0.05)
        wb.drain()
    wb.stop()
    assert wb.live.state.status == "stopping" and wb.stop_button.disabled
    _pump(wb)
    assert wb.live.state.status == "stopped" and not wb.resume_button.disabled
    stopped_at = wb.live.state.iteration
    wb.resume()
    time.sleep(0.3)
    wb.stop()
    _pump(wb)
    assert wb.live.state.iteration >= stopped_at
    assert wb.live.progress.data["iteration"].is_monotonic_increasing


def test_predictive_histograms_keep_their_own_axes_in_the_page(tmp_path):
    """Panel links the axes of all panes in a page that share a label: the histogram of real_lambda1's
    predictive draws (x) and its training curve (y) must not share one range (they did: a broad first
    epoch widened the histogram's axis for good, and the histogram reset the curve's target band)."""
    from bokeh.document import Document
    from bokeh.models import Plot

    wb = _workbench(tmp_path)
    wb.start()
    _pump(wb)
    assert wb.live.predictive.data.get("predictive") is not None
    root = pn.Column(wb.training_area, wb.predictive_area).get_root(Document())
    figures = {fig.title.text: fig for fig in root.select({"type": Plot}) if fig.title is not None}
    curve, histogram = figures["real_lambda1: mean ± sd vs target"], figures["real_lambda1"]
    assert curve.yaxis[0].axis_label == histogram.xaxis[0].axis_label  # the label Panel links by
    assert histogram.x_range is not curve.y_range
    # the training curves still share their iteration axis
    assert curve.x_range is figures["Entropy of q(z)"].x_range


def test_a_run_whose_process_died_shows_interrupted_and_resumes(tmp_path):
    """A server killed mid-run leaves run.json at "running": the library says "interrupted" and Resume,
    which "running" kept disabled, continues it from the last checkpoint."""
    import json
    import subprocess

    wb = _workbench(tmp_path)
    wb.setup.opt.num_epochs = 1
    wb.start()
    _pump(wb)
    run_dir = wb.live.state.run_dir
    meta_file = tmp_path / "runs" / run_dir.rsplit("/", 1)[-1] / "run.json"
    meta = json.loads(meta_file.read_text())
    gone = subprocess.Popen(["true"])  # a process id that no longer exists
    gone.wait()
    meta.update(state="running", process={**meta["process"], "pid": gone.pid})
    meta["optimizer"]["num_epochs"] = 2  # the killed run had one epoch to go
    meta_file.write_text(json.dumps(meta))

    fresh = _workbench(tmp_path)
    fresh.library.refresh()
    assert fresh.library.table.value["state"].tolist() == ["interrupted"]
    fresh.open_run(str(meta_file.parent))
    _pump(fresh)
    assert fresh.live.state.status == "interrupted" and not fresh.resume_button.disabled
    assert "**Interrupted**" in fresh.status.object and "**Resume** continues" in fresh.status.object
    fresh.resume()
    _pump(fresh)
    assert fresh.live.state.status == "finished" and fresh.live.state.iteration == 2 * TINY["iters_per_epoch"]
    assert json.loads(meta_file.read_text())["state"] == "finished"


def test_sessions_are_independent(tmp_path):
    a, b = _workbench(tmp_path), _workbench(tmp_path)
    _property_inputs(a)["sd-real_lambda1"].value = -1
    assert a.start_button.disabled and not b.start_button.disabled
    assert a.runner is not b.runner and a.live is not b.live


def test_tutorial_and_model_switching(tmp_path, user_model_spec):
    tut = Tutorial(runs_dir=tmp_path, model_path=[str(__import__("pathlib").Path(user_model_spec.split(":")[0]).parent)])
    wb = tut.workbench
    assert wb.explain and any(s.endswith(":DampedOscillator") for s in wb.catalog.specs.values())
    tut.quick_settings()
    assert wb.setup.opt.batch_size == 200
    spec = next(s for s in wb.catalog.specs.values() if s.endswith(":DampedOscillator"))
    wb.model_select.value = spec
    assert wb.setup.model.statistic_names == ["frequency", "decay"]
    assert "sd-decay" in _property_inputs(wb)
    tut.lesson.value = tut.lesson.options[1]
    assert "stomatogastric" in tut.text.object
    tut.template()


def test_tutorial_quick_settings_let_the_first_lesson_converge(tmp_path):
    """The lesson says: Quick settings, Start, then read the converged q. With 6 epochs of 300 its the
    LDS never passed the variance test (c must grow over several epochs first); with 15 such epochs q
    collapsed (entropy -7 nats) just before it converged."""
    from core import EPITrainer

    tut = Tutorial(runs_dir=tmp_path)
    tut.quick_settings()
    model, prop, flow, opt = tut.workbench.setup.build()
    assert model.model_name == "lds" and opt.batch_size == 200
    result = EPITrainer(model, prop, flow, opt).train()
    assert result.converged, [(h["epoch"], h["p_values"]) for h in result.history]
    assert result.entropy > 0  # seed 1: 3.8 nats; a q collapsed onto a point has far below 0


def test_websocket_origins_cover_loopback_and_extra_hosts():
    assert websocket_origins("127.0.0.1", 5006) == ["127.0.0.1:5006", "localhost:5006"]
    assert websocket_origins("0.0.0.0", 80, ["lab:80"])[-1] == "lab:80"


def test_serve_offers_both_apps_on_loopback(tmp_path, monkeypatch):
    import socket
    import urllib.request

    from epi_dash.config import RUNS_DIR_ENV
    from epi_dash.serve import serve

    monkeypatch.setenv(RUNS_DIR_ENV, "unchanged")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = serve(port=port, runs_dir=tmp_path / "runs", threaded=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                index = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read().decode()
                break
            except OSError:
                assert time.monotonic() < deadline, "server did not answer"
                time.sleep(0.2)
        assert "/workbench" in index and "/tutorial" in index
        import os

        assert os.environ[RUNS_DIR_ENV] == str(tmp_path / "runs")  # what the per-session apps read
    finally:
        server.stop()


def test_status_says_what_a_started_run_does_before_its_first_iteration(tmp_path):
    import threading

    from core.epi import EPITrainer

    release = threading.Event()

    class SlowStart(EPITrainer):
        def initialize(self):
            release.wait(30)
            super().initialize()

    wb = _workbench(tmp_path)
    wb.runner.trainer_factory = SlowStart
    wb.start()
    deadline = time.monotonic() + 30
    while "⏳ Initializing q" not in wb.status.object and time.monotonic() < deadline:
        time.sleep(0.05)
        wb.drain()
    assert "⏳ Initializing q: Gaussian fit, then the baseline test…" in wb.status.object
    release.set()
    _pump(wb)
    assert "⏳" not in wb.status.object and "iteration 30/30" in wb.status.object


def test_sessions_starting_in_the_same_millisecond_get_their_own_run_directories(tmp_path, monkeypatch):
    """Workshop: everyone presses Start at once. Two sessions must never train into one directory."""
    import datetime as real_dt

    import epi_dash.workbench as workbench_module

    class FrozenClock(real_dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return real_dt.datetime(2026, 12, 2, 12, 0, 0, 123000)

    monkeypatch.setattr(workbench_module.dt, "datetime", FrozenClock)
    a, b = _workbench(tmp_path), _workbench(tmp_path)
    a.start()
    b.start()
    _pump(a)
    _pump(b)
    assert a.runner.run_dir != b.runner.run_dir
    for wb in (a, b):
        assert wb.live.state.status in ("finished", "converged"), wb.live.state.status
        assert (wb.runner.run_dir / "checkpoint.pt").is_file()
