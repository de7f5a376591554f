"""Bad-input catalogue (issue 28). The run-file part: run names that would escape the runs directory,
disk full while saving, a torn last line in events.jsonl, damaged runs and checkpoints. The EPI part: bad
targets, statistics and bounds, broken model files, models that fail while training, CUDA, an unachievable
property, two sessions stopping one run. Each asserts the exact user-facing message."""
from __future__ import annotations

import errno
import json
import math
from pathlib import Path

import pytest
import torch

from core.errors import InputError
from core.jobs import EVENTS_FILE, read_events
from core.runs import atomic_write, reserve_run_dir, validate_run_name


@pytest.mark.parametrize("name, message", [
    ("../x", "'../x' is not a plain name: a run name cannot contain '/' or be '.' or '..'"),
    ("a/../../b", "'a/../../b' is not a plain name: a run name cannot contain '/' or be '.' or '..'"),
    ("/etc/passwd", "'/etc/passwd' is not a plain name: a run name cannot contain '/' or be '.' or '..'"),
    ("..", "'..' is not a plain name: a run name cannot contain '/' or be '.' or '..'"),
    ("", "a run name is required"),
    ("a\x00b", "a run name cannot contain control characters (NUL, newline, ...)"),
])
def test_run_name_cannot_escape_runs_dir(tmp_path: Path, name: str, message: str) -> None:
    runs = tmp_path / "runs"
    with pytest.raises(InputError) as info:
        reserve_run_dir(runs, name)
    assert info.value.field == "run_name"
    assert message in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ([] if not runs.exists() else ["runs"])
    assert not runs.exists() or list(runs.iterdir()) == []


def test_plain_run_name_accepted(tmp_path: Path) -> None:
    assert validate_run_name("lds-20261205-120000") == "lds-20261205-120000"
    assert reserve_run_dir(tmp_path, "lds-1").name == "lds-1"
    assert reserve_run_dir(tmp_path, "lds-1").name == "lds-1-2"


def test_disk_full_while_saving_keeps_previous_file(tmp_path: Path) -> None:
    f = tmp_path / "run.json"
    atomic_write(f, lambda p: p.write_text('{"state": "running"}'))

    def full(p: Path) -> None:
        p.write_text('{"sta')
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError) as info:
        atomic_write(f, full)
    assert info.value.errno == errno.ENOSPC
    assert json.loads(f.read_text()) == {"state": "running"}
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]  # no temp file left behind


def test_torn_event_line_is_harmless(tmp_path: Path) -> None:
    good = json.dumps({"kind": "message", "data": {"text": "a"}, "time": 1.0})
    (tmp_path / EVENTS_FILE).write_text(good + "\n" + '{"kind": "mess' + "\n" + good + "\n" + '{"kin')
    events, offset = read_events(tmp_path)
    assert [e.kind for e in events] == ["message", "message"]
    assert offset == len((good + "\n" + '{"kind": "mess' + "\n" + good + "\n").encode())


@pytest.mark.parametrize("content, reason", [
    ('{"state": "runn', "run.json in {path} is not valid JSON"),
    ("[1, 2]", "run.json in {path} is not a JSON object"),
    (b"\xff\xfe garbage", "run.json in {path} is not valid JSON: 'utf-8' codec can't decode"),
])
def test_damaged_run_listed_not_fatal(tmp_path: Path, content, reason: str) -> None:
    from core.runs import damaged_runs, list_runs
    from epi_dash.library import runs_table
    from epi_dash.panels.library import JobLibrary, jobs_table

    good = reserve_run_dir(tmp_path, "good")
    atomic_write(good / "run.json", lambda p: p.write_text(json.dumps({"state": "finished", "kind": "epi"})))
    bad = reserve_run_dir(tmp_path, "bad")
    (bad / "run.json").write_bytes(content if isinstance(content, bytes) else content.encode())
    assert [r.path.name for r in list_runs(tmp_path)] == ["good"]
    [(path, why)] = damaged_runs(tmp_path)
    assert path == bad and reason.format(path=bad) in why
    for table in (jobs_table(tmp_path), runs_table(tmp_path)):
        states = dict(zip(table["run"], table["state"]))
        assert states["good"] == "finished"
        assert states["bad"].startswith("damaged: ") and reason.format(path=bad) in states["bad"]
    opened = []
    lib = JobLibrary(tmp_path, on_open=lambda p, k: opened.append(p))
    lib.table.selection = [list(lib.table.value["run"]).index("bad")]
    lib.open_selected()
    assert opened == [] and lib.message.object.startswith("⚠️ **bad** cannot be opened: it is damaged: ")


def test_corrupt_checkpoint_on_resume(tmp_path: Path) -> None:
    from core.jobs import CHECKPOINT_FILE, JobContext

    ctx = JobContext(tmp_path, {}, resumed=True)
    ctx.save_checkpoint({"step": 3})
    assert ctx.load_checkpoint() == {"step": 3}
    f = tmp_path / CHECKPOINT_FILE
    f.write_bytes(f.read_bytes()[:20])  # truncated
    with pytest.raises(InputError) as info:
        ctx.load_checkpoint()
    assert info.value.field == "checkpoint"
    assert info.value.message.startswith(f"{CHECKPOINT_FILE} in {tmp_path} is damaged (truncated or not a "
                                         "checkpoint) and cannot be resumed; start a new run (")


def test_missing_checkpoint_on_resume_says_so(tmp_path: Path) -> None:
    from core.jobs import JobContext

    events = []
    ctx = JobContext(tmp_path, {}, resumed=True, emit=events.append)
    assert ctx.load_checkpoint() is None
    assert [(e.level, e.message) for e in events if e.kind == "message"] == [
        ("warning", f"no checkpoint.pt in {tmp_path.name} (it stopped before its first checkpoint): "
                    "starting from the beginning")]


# --- the EPI set-up and training part: each case through the path a user takes (the workbench's SetupState
# and its TrainingRunner session, the CLI), its exact message, and another session of the same server process
# training the LDS afterwards ------------------------------------------------------------------------------

BAD_MODELS = '''
import time

import torch

from core.model import Model, FreeParameter, Statistic
from core.models.lds import LDS


class SomeNaN(LDS):
    """Every fourth draw's statistics are NaN."""

    def emergent_statistics(self, z):
        f = super().emergent_statistics(z)
        return torch.where((torch.arange(z.shape[0]) % 4 == 0)[:, None], torch.nan, f)


class AllNaN(LDS):
    def emergent_statistics(self, z):
        return torch.full((z.shape[0], 2), torch.nan)


class WrongShape(LDS):
    def emergent_statistics(self, z):
        return super().emergent_statistics(z)[:, :1]


class OutOfMemory(LDS):
    def emergent_statistics(self, z):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")


class SlowLDS(LDS):
    model_name = ""

    def emergent_statistics(self, z):
        time.sleep(0.01)
        return super().emergent_statistics(z)


class Diverges(Model):
    parameters = (FreeParameter("a", -1.0, 1.0), FreeParameter("b", -1.0, 1.0))
    statistics = (Statistic("s", 0.0, 1.0),)

    def simulate(self, z):
        raise RuntimeError("the solver diverged")

    def measure(self, x, z):
        return x
'''
SYNTAX_ERROR = "from core.model import Model\n\nclass Broken(Model)\n    pass\n"
BAD_BOUNDS = '''
from core.model import Model, FreeParameter, Statistic


class BadBounds(Model):
    parameters = (FreeParameter("a", 1.0, 1.0), FreeParameter("b", 0.0, 1.0))
    statistics = (Statistic("s", 0.0, 1.0),)
'''
TINY = dict(batch_size=16, iters_per_epoch=3, num_epochs=1, num_test_batches=10, init_iters=2, num_units=8, seed=3)
KEPT = "training stopped, the last checkpoint is kept"


def small_analysis():
    """The runner's analysis after a training (mode search, Hessian, predictive draws), made cheap."""
    from epi_dash.runner import AnalysisSettings

    return AnalysisSettings(num_starts=1, num_samples=10, steps=1, num_predictive=10)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A user's model folder: good models with bad statistics, a file with a syntax error, bad bounds."""
    folder = tmp_path_factory.mktemp("user_models")
    (folder / "bad_models.py").write_text(BAD_MODELS)
    (folder / "syntax_error.py").write_text(SYNTAX_ERROR)
    (folder / "bad_bounds.py").write_text(BAD_BOUNDS)
    return folder


def setup_state(spec: str = "lds", **settings):
    """A workbench session's set-up of ``spec`` with tiny CPU settings."""
    from epi_dash.state import SetupState

    state = SetupState([spec], spec)
    state.device = "cpu"
    values = {**TINY, **settings}
    state.flow.param.update(**{k: v for k, v in values.items() if k in state.flow.param})
    state.opt.param.update(**{k: v for k, v in values.items() if k in state.opt.param})
    return state


def train_session(run_dir: Path, model, prop, flow, opt, model_spec: str | None = None) -> dict:
    """Start a training as the workbench's Start does (a TrainingRunner); its last finished/failed event."""
    from epi_dash.runner import TrainingRunner

    runner = TrainingRunner(snapshot_every=10**9, analyze_each_epoch_max_dim=0, analysis=small_analysis())
    runner.start(model, prop, flow, opt, run_dir, model_spec=model_spec)
    runner.join(120)
    [end] = [{"kind": e.kind, **e.data} for e in runner.drain() if e.kind in ("finished", "failed")]
    return end


def assert_server_keeps_serving(tmp_path: Path) -> None:
    """Another session of this server process sets up the LDS and trains it to its end."""
    state = setup_state()
    assert state.errors() == {}
    end = train_session(tmp_path / "other-session", *state.build(), model_spec="lds")
    assert (end["kind"], end["state"], end["error"], end["iterations"]) == ("finished", "finished", None, 3)


def cli_error(capsys, *args: str) -> tuple[int, str]:
    """``epi-dash train ...``: exit code and the stderr line."""
    from epi_dash.cli import main

    code = main(["train", *args, "--quiet", *[a for k, v in TINY.items() for a in ("--set", f"{k}={v}")]])
    return code, capsys.readouterr().err.strip()


@pytest.mark.parametrize("std", [0.0, -0.5])
def test_std_not_positive(tmp_path: Path, capsys, std: float) -> None:
    state = setup_state()
    state.set_target("std", "real_lambda1", std)
    assert state.errors() == {"std[real_lambda1]": f"standard deviation must be > 0 (got {std:g})"}
    with pytest.raises(InputError) as info:
        state.build()
    assert info.value.field == "std[real_lambda1]"
    assert cli_error(capsys, "lds", "--out", str(tmp_path / "cli"), "--std", f"real_lambda1={std}") == (
        2, f"error: std[real_lambda1]: standard deviation must be > 0; got {std!r}")
    assert_server_keeps_serving(tmp_path)


@pytest.mark.parametrize("text, value", [("nan", math.nan), ("inf", math.inf), ("-inf", -math.inf)])
def test_mean_not_finite(tmp_path: Path, capsys, text: str, value: float) -> None:
    state = setup_state()
    state.set_target("mean", "imag_lambda1", value)
    assert state.errors() == {"mean[imag_lambda1]": "enter a finite number"}
    assert cli_error(capsys, "lds", "--out", str(tmp_path / "cli"), "--mean", f"imag_lambda1={text}") == (
        2, f"error: mean[imag_lambda1]: must be a finite number; got {value!r}")
    assert_server_keeps_serving(tmp_path)


def test_unknown_statistic(tmp_path: Path, capsys) -> None:
    from core import EmergentProperty

    assert cli_error(capsys, "lds", "--out", str(tmp_path / "cli"), "--mean", "lambda9=1") == (
        2, "error: mean[lambda9]: unknown statistic 'lambda9'; known: real_lambda1, imag_lambda1")
    state = setup_state()  # a property naming a statistic the model lacks (a hand-edited run, the API)
    model, _prop, flow, opt = state.build()
    prop = EmergentProperty(statistics=["real_lambda1", "lambda9"], mean=[0.0, 1.0], std=[1.0, 1.0])
    end = train_session(tmp_path / "run", model, prop, flow, opt)
    assert (end["kind"], end["message"]) == (
        "failed", "statistics[lambda9]: LDS has no statistic 'lambda9'; known: real_lambda1, imag_lambda1")
    assert_server_keeps_serving(tmp_path)


@pytest.mark.parametrize("statistics, mean, message", [
    (["real_lambda1"], [0.0], "statistics: must list every statistic of the model in order: real_lambda1, "
                              "imag_lambda1"),
    (["real_lambda1", "imag_lambda1"], [0.0], "mean: need one value per statistic (2); got 1 means, 2 sds"),
])
def test_wrong_number_of_statistics(tmp_path: Path, statistics, mean, message: str) -> None:
    from core import EmergentProperty

    model, _prop, flow, opt = setup_state().build()
    prop = EmergentProperty(statistics=statistics, mean=mean, std=[1.0] * len(statistics))
    end = train_session(tmp_path / "run", model, prop, flow, opt)
    assert (end["kind"], end["message"]) == ("failed", message)
    assert_server_keeps_serving(tmp_path)


def test_lower_bound_not_below_upper(tmp_path: Path, model_dir: Path) -> None:
    from epi_dash.config import discover_models

    path = model_dir / "bad_bounds.py"
    message = f"could not import {path}: bounds[a]: lower (1.0) must be < upper (1.0)"
    assert setup_state(f"{path}:BadBounds").errors() == {"model": message}
    catalog = discover_models([model_dir])
    assert f"bad_bounds.py: {message}" in catalog.problems
    assert "lds" in catalog.specs and "SomeNaN (bad_models.py)" in catalog.specs  # the other models stay
    assert_server_keeps_serving(tmp_path)


def test_model_file_with_a_syntax_error(tmp_path: Path, model_dir: Path) -> None:
    from epi_dash.config import discover_models

    path = model_dir / "syntax_error.py"
    assert setup_state(f"{path}:Broken").errors() == {
        "model": f"could not import {path}: syntax error at line 3: expected ':'"}
    catalog = discover_models([model_dir])
    assert "syntax_error.py: expected ':' (syntax_error.py, line 3)" in catalog.problems
    assert {"lds", "Diverges (bad_models.py)", "WrongShape (bad_models.py)"} <= set(catalog.specs)
    assert_server_keeps_serving(tmp_path)


@pytest.mark.parametrize("name, message", [
    ("SomeNaN", f"statistic 'real_lambda1' is NaN or infinite for 25.0% of the batch (epoch 1, iteration 1); {KEPT}"),
    ("AllNaN", f"statistic 'real_lambda1' is NaN or infinite for 100.0% of the batch (epoch 1, iteration 1); {KEPT}"),
    ("WrongShape", "WrongShape.measure: must return a tensor of shape (batch, 2) = (160, 2); got (160, 1)"),
    ("Diverges", f"Diverges.simulate raised RuntimeError: the solver diverged (epoch 1, iteration 1); {KEPT}"),
    ("OutOfMemory", "CUDA out of memory at batch_size 16: lower batch_size or use the CPU; the last checkpoint "
                    "is kept"),
])
def test_model_that_fails_while_training(tmp_path: Path, model_dir: Path, name: str, message: str) -> None:
    """Statistics NaN for part of a batch or all of it, of the wrong shape, a simulate that raises, CUDA out of
    memory (raised by the model as torch raises it): the run ends "failed" with the message, its files kept."""
    spec = f"{model_dir / 'bad_models.py'}:{name}"
    state = setup_state(spec)
    assert state.errors() == {}
    run_dir = tmp_path / "run"
    end = train_session(run_dir, *state.build(), model_spec=spec)
    assert (end["kind"], end["state"], end["error"]) == ("finished", "failed", message)
    meta = json.loads((run_dir / "run.json").read_text())
    assert (meta["state"], meta["error"]) == ("failed", message)
    assert (run_dir / "checkpoint.pt").is_file()  # the initialized q: a fixed model can be resumed
    assert_server_keeps_serving(tmp_path)


def test_model_that_raises_from_the_cli(tmp_path: Path, model_dir: Path, capsys) -> None:
    spec = f"{model_dir / 'bad_models.py'}:Diverges"
    code, err = cli_error(capsys, spec, "--out", str(tmp_path / "cli"))
    assert (code, err) == (1, "error: Diverges.simulate raised RuntimeError: the solver diverged (epoch 1, "
                              f"iteration 1); {KEPT}")
    assert json.loads((tmp_path / "cli" / "run.json").read_text())["state"] == "failed"


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu(tmp_path: Path, capsys) -> None:
    message = "CUDA was requested but no CUDA device is available"
    state = setup_state()
    state.device = "cuda"
    assert state.errors() == {"device": message}
    assert cli_error(capsys, "lds", "--out", str(tmp_path / "cli"), "--device", "cuda") == (
        2, f"error: device: {message}")
    model, prop, flow, opt = setup_state().build()
    opt.device = "cuda"  # settings from elsewhere (a run made on a GPU machine)
    end = train_session(tmp_path / "run", model, prop, flow, opt)
    assert (end["kind"], end["message"]) == ("failed", f"device: {message}")
    assert_server_keeps_serving(tmp_path)


def test_unachievable_property_ends_not_converged_keeping_q(tmp_path: Path) -> None:
    """Re(lambda1) = 100 is outside what the LDS box (entries in [-10, 10]) allows: the run uses its epochs,
    ends "finished" (not failed) with converged false, says why, and keeps its q."""
    from core import load_distribution

    state = setup_state(num_epochs=2)
    state.set_target("mean", "real_lambda1", 100.0)
    assert state.errors() == {}  # a finite target: only training can tell it is out of reach
    run_dir = tmp_path / "run"
    end = train_session(run_dir, *state.build(), model_spec="lds")
    assert (end["state"], end["converged"], end["error"], end["epochs"]) == ("finished", False, None, 2)
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["message"].startswith("did not converge in 2 epochs: the last test rejects E[real_lambda1] (p = 0)")
    assert meta["message"].endswith("(Bonferroni threshold 0.013); the last q is kept")
    assert (run_dir / "samples.npz").is_file()
    assert load_distribution(run_dir).sample(5).shape == (5, 4)
    assert_server_keeps_serving(tmp_path)


def test_two_sessions_stopping_one_run(tmp_path: Path, model_dir: Path, monkeypatch) -> None:
    """Session A trains; session B stops it from the run library while A presses Stop too: it stops once,
    with a checkpoint; a later stop says it is not running; it resumes."""
    import time

    from epi_dash.library import stop_run
    from epi_dash.runner import TrainingRunner

    monkeypatch.delenv("EPI_DASH_SIGN_IN", raising=False)
    spec = f"{model_dir / 'bad_models.py'}:SlowLDS"
    run_dir = tmp_path / "run"
    a = TrainingRunner(snapshot_every=10**9, analyze_each_epoch_max_dim=0, analysis=small_analysis())
    a.start(*setup_state(spec, iters_per_epoch=60).build(), run_dir, model_spec=spec)
    deadline = time.monotonic() + 60
    while a.last_iteration is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert stop_run(run_dir) == "run"  # session B, from the library
    a.stop()  # session A, at the same time
    a.join(60)
    [end] = [e.data for e in a.drain() if e.kind == "finished"]
    assert (end["state"], end["error"]) == ("stopped", None) and 0 < end["iterations"] < 60
    assert json.loads((run_dir / "run.json").read_text())["state"] == "stopped"
    with pytest.raises(InputError) as info:
        stop_run(run_dir)  # B again
    assert (info.value.field, info.value.message) == ("run", "run is not running (state: stopped)")
    a.resume(run_dir)  # A continues it
    a.join(60)
    assert [e.data["state"] for e in a.drain() if e.kind == "finished"] == ["finished"]
    assert_server_keeps_serving(tmp_path)
