"""Model and property declarations, validation messages, user model files."""

import math

import pytest
import torch

from core import EmergentProperty, EPITrainer, InputError, load_model, settings_for
from core.model import FreeParameter


def test_property_defaults_and_sufficient_statistics():
    model = load_model("lds")
    prop = EmergentProperty.default_for(model)
    prop.validate(model)
    assert torch.allclose(prop.mu_opt(), torch.tensor([0.0, 2 * math.pi, 0.25**2, (0.2 * math.pi) ** 2]))
    f = torch.tensor([[1.0, 2 * math.pi + 1.0]])
    assert torch.allclose(prop.sufficient_statistics(f), torch.tensor([[1.0, 2 * math.pi + 1, 1.0, 1.0]]))


@pytest.mark.parametrize(
    "mean, std, field",
    [
        ({}, {"real_lambda1": 0.0}, "std[real_lambda1]"),
        ({}, {"imag_lambda1": -1.0}, "std[imag_lambda1]"),
        ({"real_lambda1": float("nan")}, {}, "mean[real_lambda1]"),
        ({"real_lambda1": float("inf")}, {}, "mean[real_lambda1]"),
    ],
)
def test_bad_property_values_name_the_field(mean, std, field):
    model = load_model("lds")
    prop = EmergentProperty.default_for(model, mean=mean, std=std)
    with pytest.raises(InputError) as err:
        prop.validate(model)
    assert err.value.field == field


def test_unknown_statistic_and_mismatched_names():
    model = load_model("lds")
    with pytest.raises(InputError) as err:
        EmergentProperty.default_for(model, mean={"freq": 1.0})
    assert err.value.field == "mean[freq]"
    prop = EmergentProperty(statistics=["real_lambda1", "nope"], mean=[0.0, 1.0], std=[1.0, 1.0])
    with pytest.raises(InputError) as err:
        prop.validate(model)
    assert err.value.field == "statistics[nope]"


def test_bounds_and_hyperparameter_errors():
    with pytest.raises(InputError) as err:
        FreeParameter("g", 2.0, 1.0)
    assert err.value.field == "bounds[g]"
    with pytest.raises(InputError) as err:
        load_model("lds", nonsense=3)
    assert err.value.field == "set[nonsense]"
    with pytest.raises(InputError) as err:
        load_model("no_such_model")
    assert err.value.field == "model"
    with pytest.raises(InputError) as err:
        load_model("/nonexistent/file.py:Thing")
    assert err.value.field == "model" and "not found" in err.value.message


def test_wrong_statistic_shape_is_reported(user_model_spec):
    model = load_model(user_model_spec)
    model.measure = lambda x, z: z[:, :1]  # one column instead of two
    with pytest.raises(InputError) as err:
        model.checked_statistics(torch.rand(5, 2))
    assert "DampedOscillator.measure" in err.value.field and "(5, 2)" in err.value.message


def test_user_model_file_trains(user_model_spec):
    model = load_model(user_model_spec, mass=2.0)
    assert model.parameter_names == ["k", "b"] and model.mass == 2.0
    flow, opt = settings_for(model, batch_size=64, iters_per_epoch=20, num_epochs=1, num_test_batches=20,
                             init_iters=5, num_units=8)
    res = EPITrainer(model, None, flow, opt).train()
    assert res.iterations == 20 and res.state in ("finished", "converged")
    z = res.distribution.sample(100)
    assert ((z[:, 0] >= 0.1) & (z[:, 0] <= 50) & (z[:, 1] >= 0) & (z[:, 1] <= 5)).all()
