"""Baselines (SNPE, SMC-ABC), the EPI contestant and the shared criterion: tiny budgets, real code."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from core.baselines import (
    Budget,
    ConvergenceCriterion,
    InferenceProblem,
    MethodSpec,
    SMCABCSettings,
    SNPESettings,
    abc_distances,
    parse_methods,
    predictive_distance,
    run_comparison,
    run_epi,
    run_smc_abc,
    run_snpe,
)
from core.baselines.smc_abc import pyabc_box_prior
from core.errors import InputError
from core.model import load_model
from core.property import EmergentProperty

TINY_SNPE = dict(simulations_per_round=300, max_rounds=2, stop_after_epochs=2, num_atoms=10,
                 num_predictive=200, patience_rounds=None)
TINY_SMC = dict(population_size=40, max_populations=3, num_predictive=200)
TINY_EPI = dict(iters_per_epoch=15, batch_size=40, init_iters=5, num_test_batches=10, num_epochs=2)


def problem_for(name: str, **hyper) -> InferenceProblem:
    model = load_model(name, **hyper)
    return InferenceProblem(model, EmergentProperty.default_for(model), device="cpu")


def assert_inside_box(problem: InferenceProblem, z: np.ndarray) -> None:
    lower, upper = (b.numpy() for b in (problem.lower, problem.upper))
    assert z.ndim == 2 and z.shape[1] == problem.dim and len(z) > 0
    assert np.all(z >= lower) and np.all(z <= upper)


# --- the shared criterion -------------------------------------------------------------------------
def test_predictive_distance_is_l2_norm_of_the_mean_error():
    rng = np.random.default_rng(0)
    f = rng.normal([1.0, -2.0], 0.1, size=(4000, 2))
    mu = np.array([1.3, -2.4])
    assert predictive_distance(f, mu) == pytest.approx(np.linalg.norm(f.mean(0) - mu), rel=1e-12)
    # the mean of f is within 3 standard errors of [1, -2]: d ~ 0.5 (a 3-4-5 triangle)
    assert predictive_distance(f, mu) == pytest.approx(0.5, abs=3 * 0.1 / math.sqrt(4000) * 2)


def test_criterion_uses_the_mean_not_the_median():
    # a skewed predictive: median 0, mean 0.3 -> d measures the mean (the reference SNPE used the median)
    f = np.concatenate([np.zeros((700, 1)), np.ones((300, 1))])
    assert np.median(f) == 0.0
    assert predictive_distance(f, [0.0]) == pytest.approx(0.3)
    assert not ConvergenceCriterion().met(f, [0.0])
    assert ConvergenceCriterion().met(f, [0.2])


def test_criterion_threshold_is_strict_and_drops_non_finite_rows():
    crit = ConvergenceCriterion()
    assert crit.threshold == 0.25 and crit.abc_epsilon == 0.5
    assert crit.met_by_distance(0.2499) and not crit.met_by_distance(0.25)
    assert not crit.met_by_distance(float("nan"))
    f = np.array([[0.1, 0.0], [np.nan, 5.0], [0.1, 0.0]])
    assert predictive_distance(f, [0.0, 0.0]) == pytest.approx(0.1)
    assert predictive_distance(np.full((3, 2), np.nan), [0.0, 0.0]) == math.inf
    assert crit.met_by_epsilon(0.5) and not crit.met_by_epsilon(0.51)
    np.testing.assert_allclose(abc_distances([[3.0, 4.0], [0.0, 0.0]], [0.0, 0.0]), [5.0, 0.0])


def test_criterion_rejects_bad_input():
    with pytest.raises(InputError) as err:
        ConvergenceCriterion(threshold=0.0)
    assert err.value.field == "threshold"
    with pytest.raises(InputError) as err:
        predictive_distance(np.zeros((5, 3)), [0.0, 0.0])
    assert err.value.field == "statistics"


def test_method_specs_parse_and_name_the_field():
    specs = parse_methods("epi, snpe:unbounded:aggressive,smc", {"smc": {"population_size": 10}})
    assert [s.method for s in specs] == ["epi", "snpe", "smc"]
    assert specs[1].setting_name() == "unbounded/aggressive"
    assert specs[2].settings == {"population_size": 10}
    for bad in ("epi,abc", "snpe:fast", ""):
        with pytest.raises(InputError) as err:
            parse_methods(bad)
        assert err.value.field == "methods"


# --- priors and budgets ----------------------------------------------------------------------------
def test_both_priors_cover_the_whole_box():
    """Guards the reference's U[-1, 0] slip: box prior draws fill [lower, upper] for both tools."""
    problem = problem_for("rnn", N=2)
    problem.seed(3)
    z = problem.sample_prior(20_000).numpy()
    keys = [f"z{i}" for i in range(problem.dim)]
    prior = pyabc_box_prior(problem, keys)
    np.random.seed(3)
    zp = np.array([[p[k] for k in keys] for p in (prior.rvs() for _ in range(2000))])
    for sample, n in ((z, 20_000), (zp, 2000)):
        assert_inside_box(problem, sample)
        # uniform on [-1, 1]: mean 0 (sd 1/sqrt(3n)), extremes within 0.01 of the bounds
        assert np.all(np.abs(sample.mean(0)) < 4 / math.sqrt(3 * n))
        assert np.all(sample.min(0) < -0.99) and np.all(sample.max(0) > 0.99)


def test_budget_validates_and_times_out():
    with pytest.raises(InputError) as err:
        Budget(0)
    assert err.value.field == "time_limit"
    problem = problem_for("lds")
    result = run_snpe(problem, SNPESettings(**{**TINY_SNPE, "max_rounds": 50, "stop_at_criterion": False}),
                      budget=Budget(1.5))
    assert result.timed_out and not result.converged
    assert result.wall_time_s < 1.5 + 10  # stops within one simulation/sampling call of the limit


# --- the methods, end to end on tiny budgets -------------------------------------------------------
@pytest.mark.parametrize("model,hyper", [("lds", {}), ("rnn", {"N": 2})])
@pytest.mark.parametrize("density", ["bounded", "unbounded"])
def test_snpe_runs_and_returns_samples_inside_bounds(model, hyper, density):
    problem = problem_for(model, **hyper)
    steps = []
    result = run_snpe(problem, SNPESettings(density=density, **TINY_SNPE), seed=1, on_step=steps.append)
    assert result.error is None, result.error
    assert_inside_box(problem, result.samples)
    assert result.predictive.shape == (len(result.samples), 2)
    assert 1 <= len(result.history) <= 2 and steps == result.history
    assert result.simulations == 300 * len(result.history)  # prior round + posterior rounds
    assert all(0 <= h.extra["in_box_fraction"] <= 1 for h in result.history)
    assert result.distance == pytest.approx(predictive_distance(result.predictive, problem.x0))


@pytest.mark.parametrize("model,hyper", [("lds", {}), ("rnn", {"N": 2})])
def test_smc_abc_runs_and_shrinks_epsilon(model, hyper):
    problem = problem_for(model, **hyper)
    result = run_smc_abc(problem, SMCABCSettings(**TINY_SMC), seed=2)
    assert result.error is None, result.error
    assert_inside_box(problem, result.samples)
    eps = [h.extra["epsilon"] for h in result.history]
    assert len(eps) >= 2 and all(b <= a for a, b in zip(eps, eps[1:]))
    assert result.converged == any(e <= 0.5 for e in eps)
    # every population needs >= population_size simulations (plus pyabc's prior calibration)
    assert result.simulations >= 40 * len(eps)


def test_epi_contestant_checks_the_criterion_each_epoch():
    problem = problem_for("rnn", N=2)
    result = run_epi(problem, seed=1, settings=TINY_EPI, num_predictive=200, stop_at_criterion=False)
    assert result.error is None, result.error
    assert_inside_box(problem, result.samples)
    assert [h.extra["epoch"] for h in result.history] == [1, 2]
    assert result.simulations == 40 * 15 * 2
    assert result.converged == any(h.distance < 0.25 for h in result.history)


def test_smc_abc_is_reproducible_for_a_seed():
    problem = problem_for("lds")
    a = run_smc_abc(problem, SMCABCSettings(**TINY_SMC), seed=5)
    b = run_smc_abc(problem_for("lds"), SMCABCSettings(**TINY_SMC), seed=5)
    assert [h.extra["epsilon"] for h in a.history] == [h.extra["epsilon"] for h in b.history]


# --- the race and its files ------------------------------------------------------------------------
def test_run_comparison_writes_rows_json_and_samples(tmp_path):
    model = load_model("lds")
    prop = EmergentProperty.default_for(model)
    specs = [MethodSpec.parse("snpe", TINY_SNPE), MethodSpec.parse("smc", TINY_SMC)]
    seen = []
    results = run_comparison(model, prop, specs, [1, 2], time_limit_s=60, out_dir=tmp_path,
                             device="cpu", on_result=seen.append)
    assert len(results) == 4 and seen == results
    table = pd.read_csv(tmp_path / "compare.csv")
    assert list(table["method"]) == ["snpe", "snpe", "smc", "smc"] and list(table["seed"]) == [1, 2, 1, 2]
    for col in ("converged", "wall_time_s", "simulations", "distance", "mean[real_lambda1]", "sd[imag_lambda1]"):
        assert col in table
    meta = json.loads((tmp_path / "compare.json").read_text())
    assert meta["model"] == "lds" and len(meta["runs"]) == 4
    for run in meta["runs"]:
        saved = np.load(tmp_path / run["samples_file"])
        assert saved["z"].shape[1] == 4 and saved["f"].shape == (len(saved["z"]), 2)
        assert run["history"] and run["history"][-1]["simulations"] <= run["simulations"]


def test_cli_compare_prints_rows_and_rejects_bad_input(tmp_path, capsys):
    from epi_dash import cli_compare
    from epi_dash.cli import build_parser

    parser = build_parser()  # the real `epi-dash` parser, with `compare` registered
    args = parser.parse_args(["compare", "rnn", "--set", "N=2", "--methods", "smc", "--seeds", "2",
                              "--time-limit", "60", "--out", str(tmp_path), "--device", "cpu",
                              *[f"--smc={k}={v}" for k, v in TINY_SMC.items()],
                              "--mean", "lambda_s=1.4"])
    assert args.func is cli_compare.run
    assert args.func(args) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("smc ")]
    assert len(rows) == 2 and "lambda_s=" in rows[0]
    assert json.loads((tmp_path / "compare.json").read_text())["property"]["mean"][1] == 1.4
    bad = parser.parse_args(["compare", "rnn", "--methods", "epi,nope", "--out", str(tmp_path)])
    assert cli_compare.run(bad) == 2
    assert "methods" in capsys.readouterr().err


# --- the dashboard's compare view (logic only; the browser test drives the page) -------------------
def _drain_until(view, predicate, timeout=120.0):
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out; status: {view.status}"
        time.sleep(0.2)
        view.drain()


def test_compare_view_queues_jobs_and_stop_ends_them(tmp_path):
    import holoviews as hv

    from epi_dash.compare import CompareView

    view = CompareView("rnn", {"N": 2}, {"statistics": ["real_lambda1", "lambda_s"], "mean": [0.5, 1.5],
                                         "std": [0.25, 0.25]}, tmp_path, methods=["smc", "snpe"],
                       seeds=2, time_limit=30, device="cpu")
    view.run()
    assert view.status == "queued 4 run(s)"
    _drain_until(view, lambda: view.last_step is not None)  # the first SMC population arrived
    view.stop()
    _drain_until(view, lambda: view.status.startswith("done"))
    # the running job reports what it had; the three queued ones were dropped
    assert len(view.results) == 1 and view.results[0].method == "smc"
    assert view.results[0].wall_time_s < 30 and not view.results[0].timed_out
    table = view.table()
    assert list(table["method"]) == ["smc"] and "mean[lambda_s]" in table
    assert (view.out_dir / "compare.csv").is_file()
    hv.extension("bokeh")
    for plot in (view.predictive_plot(), view.samples_plot(), view.timing_plot()):
        hv.render(plot)  # renders with real data without error
