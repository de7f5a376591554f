"""Pre-flight check (core.preflight, `epi-dash check`): each synthetic model gets exactly its verdict."""

import json

import pytest
import torch

from core import EmergentProperty, load_model, settings_for
from core.preflight import VERDICTS, preflight, statistic_gradients
from epi_dash.cli import main

MODELS = "tests/data/preflight_models.py"


def model(name):
    return load_model(f"{MODELS}:{name}")


@pytest.mark.parametrize("name, means, expected", [
    ("Flat", {}, ["flat"]),  # relu: zero gradient on half the box
    ("FlatCorner", {}, ["flat"]),  # zero gradient on 95 % of the box
    ("SoftCorner", {}, []),  # the same statistic through softplus: fixed
    ("Dead", {}, ["flat", "unreachable"]),  # zero everywhere, target 1 +- 0.1
    ("Step", {}, ["step"]),  # a staircase
    ("Sawtooth", {}, ["jumps"]),  # a gradient everywhere, but jumps
    ("NaNRegion", {}, ["non_finite"]),  # log of a negative number on a quarter of the box
    ("SqrtRate", {}, ["non_finite_gradient"]),  # finite, but d/dz sqrt(0) * 0 = NaN
    ("Linear", {}, []),  # well posed
    ("Linear", {"total": 10.0}, ["unreachable"]),  # range [-2, 2]
    ("Linear", {"total": 1.85}, ["tail"]),  # beyond the 99th percentile (99.7th) of box and initial q
])
@pytest.mark.parametrize("seed", [0, 1])
def test_each_synthetic_model_gets_exactly_its_verdict(name, means, expected, seed):
    m = model(name)
    report = preflight(m, EmergentProperty.default_for(m, mean=means), num_samples=1000, seed=seed, device="cpu")
    stat = m.statistic_names[0]
    assert report.verdicts() == {stat: expected}
    assert report.ok == (not expected)
    assert all(f.verdict in VERDICTS and f.advice for f in report.findings)


def test_an_abc_start_answers_a_tail_target():
    """The same tail target is no finding when q starts near it (init=abc), and the box rank stays."""
    m = model("Linear")
    prop = EmergentProperty.default_for(m, mean={"total": 1.8})  # the 99.5th percentile of the box
    flow, _ = settings_for(m, init="abc")
    report = preflight(m, prop, num_samples=4000, seed=0, flow=flow, device="cpu")
    check = report.statistics[0]
    assert report.ok and check.target == "tail"
    assert check.box.target_rank > 0.99 and check.init.target_rank < 0.99


def test_flat_verdict_states_the_numbers_and_the_advice():
    report = preflight(model("Flat"), num_samples=2000, seed=0, device="cpu")
    (finding,) = report.findings
    assert 0.45 < finding.values["flat"] < 0.55  # relu(z1 + z2) is flat on exactly half the box
    assert f"rate is flat (zero gradient) on {100 * finding.values['flat']:.0f} % of the box" in finding.message
    advice = " ".join(finding.advice)
    assert "softplus" in advice and "init=abc" in advice
    assert f"epi-dash compare {MODELS}:Flat --methods snpe,smc --mean rate=1 --std rate=0.1" in advice
    text, md = report.to_text(), report.to_markdown()
    assert "[flat] rate is flat" in text and "- **flat**: rate is flat" in md
    assert "| rate | 1 ± 0.1 | inside |" in md


def test_unreachable_and_tail_messages_name_the_percentiles():
    m = model("Linear")
    far = preflight(m, EmergentProperty.default_for(m, mean={"total": 10.0}), num_samples=1000, seed=0, device="cpu")
    assert "beyond every box draw" in far.findings[0].message
    assert "--mean total=V with V between" in far.findings[0].advice[0]
    tail = preflight(m, EmergentProperty.default_for(m, mean={"total": 1.85}), num_samples=1000, seed=0, device="cpu")
    assert "beyond the 99th percentile of the box" in tail.findings[0].message
    assert "--set init=abc" in tail.findings[0].advice[0]


def test_the_lds_passes_with_no_finding():
    """imag(lambda_1) is flat (0) wherever the eigenvalues are real, most of the box, but real(lambda_1)
    always has a gradient there: no draw goes without a pull, so it is no finding."""
    for seed in (0, 1):
        report = preflight(load_model("lds"), num_samples=1000, seed=seed, device="cpu")
        assert report.ok, report.to_text()
        imag = report.statistics[1]
        assert imag.box.flat > 0.5 and imag.box.flat_alone == 0.0


def test_per_draw_gradients_and_the_model_left_as_found():
    m = model("Linear")
    z = torch.rand(7, 2, requires_grad=True)
    with torch.enable_grad():
        g = statistic_gradients(m.checked_statistics(z), z)
    assert g.shape == (7, 1, 2) and torch.equal(g, torch.ones(7, 1, 2))
    generator = torch.Generator().manual_seed(3)
    m.set_generator(generator)
    preflight(m, num_samples=50, seed=0, device="cpu")
    assert m._generator is generator


def test_cli_check_exit_codes_and_output(capsys):
    assert main(["check", "lds", "-n", "300"]) == 0
    assert "no finding" in capsys.readouterr().out
    assert main(["check", f"{MODELS}:FlatCorner", "-n", "300"]) == 1
    out = capsys.readouterr().out
    assert "[flat] rate is flat (zero gradient) on" in out and "epi-dash compare" in out
    assert main(["check", f"{MODELS}:Linear", "--mean", "total=10", "-n", "300", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False and data["findings"][0]["verdict"] == "unreachable"
    assert main(["check", f"{MODELS}:Linear", "--set", "init=abc", "--mean", "total=1.8", "-n", "4000", "--markdown"]) == 0
    assert "init=abc" in capsys.readouterr().out
    assert main(["check", "lds", "--mean", "nope=1"]) == 2
    assert "error: mean[nope]" in capsys.readouterr().err
    assert main(["check", "lds", "--set", "bogus=1"]) == 2
    assert main(["check", "lds", "-n", "3"]) == 2


def test_the_issues_rate_oscillator_is_caught_before_training():
    """Issue 26's model: a soft-argmax spectral peak is the grid's mean frequency wherever the E-I network
    settles (most of the box) and moves in jumps at the onset of oscillation: a step function."""
    m = load_model("tests/data/rate_oscillator.py:RateOscillator")
    report = preflight(m, num_samples=200, seed=2, device="cpu")
    check = report.statistics[0]
    assert report.verdicts()["frequency"][0] == "step"
    assert check.box.flat > 0.6 and check.box.jumps >= 0.005
    assert "epi-dash compare tests/data/rate_oscillator.py:RateOscillator --methods snpe,smc" in report.to_text()
