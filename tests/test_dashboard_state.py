"""Set-up state of the dashboard: validation names the field; model discovery; settings defaults."""

from __future__ import annotations

import math

import pytest

from core.errors import InputError
from core.settings import OptimizerSettings
from epi_dash.config import MODEL_PATH_ENV, RUNS_DIR_ENV, discover_models, model_path_from_env, runs_dir_from_env
from epi_dash.state import SetupState, max_batch_size

from pathlib import Path

DATA = Path(__file__).parent / "data"


@pytest.fixture
def state() -> SetupState:
    return SetupState(["lds"], model_spec="lds")


def test_default_lds_setup_is_valid_and_uses_the_paper_settings(state):
    assert state.errors() == {}
    assert state.means == {"real_lambda1": 0.0, "imag_lambda1": pytest.approx(2 * math.pi)}
    # every per-model paper setting (epi_defaults) reaches the advanced card
    for key, value in type(state.model).epi_defaults.items():
        settings = state.flow if key in state.flow.param else state.opt
        assert getattr(settings, key) == value, key


@pytest.mark.parametrize("value, fragment", [(-1.0, "> 0"), (0.0, "> 0"), (float("nan"), "finite"),
                                             (None, "finite"), (float("inf"), "finite")])
def test_bad_standard_deviation_is_reported_on_its_field(state, value, fragment):
    state.set_target("std", "real_lambda1", value)
    errs = state.errors()
    assert list(errs) == ["std[real_lambda1]"]
    assert fragment in errs["std[real_lambda1]"]
    with pytest.raises(InputError) as info:
        state.build()
    assert info.value.field == "std[real_lambda1]"


def test_bad_mean_and_fix(state):
    state.set_target("mean", "imag_lambda1", float("nan"))
    assert "mean[imag_lambda1]" in state.errors()
    state.set_target("mean", "imag_lambda1", 3.0)
    assert state.errors() == {}
    _model, prop, _flow, _opt = state.build()
    assert prop.mean[1] == 3.0


def test_batch_too_large_for_the_device_is_reported(state):
    limit = max_batch_size(state.flow, state.model.dim, __import__("torch").device("cpu"))
    state.opt.batch_size = limit + 1
    assert "batch_size" in state.errors()
    state.opt.batch_size = 100
    assert "batch_size" not in state.errors()


def test_cuda_without_a_gpu_is_reported_on_device(state):
    import torch

    state.device = "cuda"
    assert ("device" in state.errors()) == (not torch.cuda.is_available())


def test_build_returns_independent_copies(state):
    model, prop, flow, opt = state.build()
    assert model is not state.model and opt is not state.opt
    state.opt.batch_size = 123
    state.set_target("mean", "real_lambda1", 0.5)
    assert opt.batch_size != 123 and prop.mean[0] == 0.0
    assert opt.device == state.device


def test_every_edit_bumps_the_revision(state):
    r0 = state.revision
    state.opt.lr = 2e-3
    state.flow.num_units = 20
    state.model.tau = 2.0
    assert state.revision >= r0 + 3


def test_switching_model_resets_property_and_settings(user_model_spec):
    state = SetupState(["lds", user_model_spec], model_spec="lds")
    state.opt.iters_per_epoch = 7
    state.model_spec = user_model_spec
    assert state.model.statistic_names == ["frequency", "decay"]
    assert state.stds == {"frequency": 0.05, "decay": 0.1}
    assert state.opt.iters_per_epoch == OptimizerSettings().iters_per_epoch != 7
    assert state.errors() == {}


def test_unknown_model_is_an_error_not_a_crash():
    state = SetupState(["lds", "no-such-model"], model_spec="lds")
    state.model_spec = "no-such-model"
    assert "model" in state.errors()


def test_discover_models_finds_user_files_and_reports_broken_ones(tmp_path):
    (tmp_path / "broken.py").write_text("import not_a_module_xyz\nclass Thing: pass\n")
    (tmp_path / "syntax.py").write_text("def (:\n")
    (tmp_path / "osc.py").write_text((DATA / "oscillator_model.py").read_text())
    catalog = discover_models([tmp_path])
    assert "lds" in catalog.specs.values()
    user = [spec for spec in catalog.specs.values() if spec.endswith(":DampedOscillator")]
    assert user == [f"{tmp_path / 'osc.py'}:DampedOscillator"]
    assert any("broken.py" in p for p in catalog.problems)
    assert any("syntax.py" in p for p in catalog.problems)


def test_environment_configuration(monkeypatch, tmp_path):
    monkeypatch.setenv(RUNS_DIR_ENV, str(tmp_path / "r"))
    monkeypatch.setenv(MODEL_PATH_ENV, f"{tmp_path / 'a'}:{tmp_path / 'b'}")
    assert runs_dir_from_env() == tmp_path / "r"
    assert model_path_from_env() == [tmp_path / "a", tmp_path / "b"]
    monkeypatch.delenv(RUNS_DIR_ENV)
    assert str(runs_dir_from_env("x")) == "x"
