"""Health watch (core.health) alone on made-up records and batches, and inside EPITrainer and the CLI."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from core import EPITrainer, load_model, settings_for
from core.health import KINDS, HealthWatch
from epi_dash.cli import main

MODELS = "tests/data/preflight_models.py"


def watch(**kw):
    return HealthWatch(["rate"], [1.0], [0.1], torch.tensor([2.0, 2.0]), "m.py:M", **kw)


def record(iteration, entropy, cost, epoch=1, c=1e3):
    return SimpleNamespace(iteration=iteration, epoch=epoch, entropy=entropy, cost=cost, c=c)


def test_entropy_collapse_is_reported_with_the_numbers():
    w = watch()
    found = []
    for k in range(1, 60):  # 2 dimensions: a fall of 10 nats each is collapse, 10 nats in all is not
        found += w.observe_iteration(record(k, 3.0 - (k > 20) * 10.0 - (k > 40) * 10.0, 0.0))
    (f,) = found
    # the median of the latest 10 entropies: -7 up to k = 44, (-7 - 17) / 2 = -12 at k = 45 (7.5 nats each)
    assert f.kind == "collapse" and f.iteration == 45 and not f.stop  # a notice within the epoch
    assert "entropy fell from 3 to -12 nats (7.5 nats per parameter" in f.message
    assert "lr=1e-4" in " ".join(f.advice) and "epi-dash compare m.py:M --methods snpe,smc" in " ".join(f.advice)
    (stop,) = w.observe_epoch(SimpleNamespace(epoch=1, iteration=60, entropy=-15.0))  # the test confirms it
    assert stop.kind == "collapse" and stop.stop and "to -15 nats (9 nats per parameter" in stop.message
    recovered = watch()
    recovered.observe_iteration(record(1, 3.0, 0.0))
    assert recovered.observe_epoch(SimpleNamespace(epoch=1, iteration=60, entropy=-3.0)) == []  # 3 nats each: fine


def test_a_cost_rising_within_an_epoch_is_a_notice_then_a_stop_and_noise_is_nothing():
    rng = np.random.default_rng(0)
    quiet, rising = watch(), watch()
    found_quiet, found_rising = [], []
    for k in range(1, 401):  # a cost that falls, with noise; one that grows 2 % per iteration (the run)
        found_quiet += quiet.observe_iteration(record(k, 1.0, 480.0 - 0.2 * k + rng.normal(0, 20)))
        found_rising += rising.observe_iteration(record(k, 1.0, 480.0 * 1.02**k + rng.normal(0, 20)))
    assert found_quiet == []
    # medians of the first 50 and the latest 50: 787 vs 2,110 at k = 100 (a rise over the cost's size: a
    # notice); over 10x its size from the window ending at k = 200 (15,400), and again at 250: a stop
    assert [(f.kind, f.stop, f.iteration) for f in found_rising] == [("rising_cost", False, 100), ("rising_cost", True, 250)]
    assert found_rising[1].values["cost_now"] > 10 * found_rising[1].values["cost_start"]
    rising.observe_epoch(SimpleNamespace(epoch=1, iteration=400, entropy=1.0))  # a new epoch starts a new comparison, once per run
    assert all(rising.observe_iteration(record(k, 1.0, 1e6 * k, epoch=2)) == [] for k in range(401, 601))


def test_a_rise_within_the_penalty_of_a_one_sd_violation_is_no_finding():
    # STG at c = 1e5 (target sd 0.025 Hz): its cost wandered -1 -> 19 (|R| up to 0.03) on the way to converging;
    # one-sd penalty c/2 sd^2 = 31: no finding. The same rise at c = 1e3 (penalty 0.3) is one.
    stg = HealthWatch(["hub_freq"], [0.55], [0.025], torch.tensor([4.0, 4.0]), "stg")
    small_c = HealthWatch(["hub_freq"], [0.55], [0.025], torch.tensor([4.0, 4.0]), "stg")
    costs = [-1.0] * 400 + [19.0] * 100
    found_stg = [f for k, cost in enumerate(costs, 1) for f in stg.observe_iteration(record(k, 1.0, cost, c=1e5))]
    found_small = [f for k, cost in enumerate(costs, 1) for f in small_c.observe_iteration(record(k, 1.0, cost, c=1e3))]
    assert found_stg == []
    assert [f.kind for f in found_small] == ["rising_cost", "rising_cost"] and found_small[-1].stop


def test_identical_samples_and_a_vanishing_gradient_are_reported_from_the_batch():
    w = watch(probe_every=1)
    z = torch.full((64, 2), 0.3, requires_grad=True)  # every sample the same; rate = relu(z1 - 0.8) = 0
    f = 10 * (z[:, :1] - 0.8).clamp(min=0)
    for k in range(1, 6):
        w.observe_batch(f, z, 1, k)
    found = w.take()
    assert [(x.kind, x.stop) for x in found] == [("identical_samples", True), ("vanishing_gradient", False)]
    assert "vanishes on 100% of the batch (epoch 1, iteration 5; 5 probes in a row)" in found[1].message
    w2 = watch(probe_every=1)
    z2 = torch.rand(64, 2, requires_grad=True) * 2 - 1
    w2.observe_batch(10 * (z2[:, :1] - 0.8).clamp(min=0) + 1.0, z2, 1, 1)  # flat, but at the target: fine
    w2.observe_batch(torch.sqrt(z2[:, :1] * (z2[:, :1] > 0)), z2, 1, 2)  # NaN gradient on about half
    (nf,) = w2.take()
    assert nf.kind == "non_finite" and nf.statistic == "rate" and 0.3 < nf.values["fraction"] < 0.7


def test_a_vanishing_gradient_is_a_notice_until_it_holds_through_a_whole_later_epoch():
    z = (torch.rand(64, 2) * 0.5 - 1).requires_grad_(True)  # z1 < -0.5: relu(z1 - 0.8) flat everywhere
    flat = 10 * (z[:, :1] - 0.8).clamp(min=0)
    w = watch(probe_every=1)
    kinds = []
    for k, epoch in enumerate([1] * 10 + [2] * 10 + [3] * 2, start=1):
        w.observe_batch(flat, z, epoch, k)
        kinds += [(x.kind, x.stop, x.epoch, x.iteration) for x in w.take()]
    assert kinds == [("vanishing_gradient", False, 1, 5), ("vanishing_gradient", True, 3, 21)]
    recovered = watch(probe_every=1)  # pulled out during epoch 2: a notice only
    for k, epoch in enumerate([1] * 10 + [2] * 10 + [3] * 2, start=1):
        recovered.observe_batch(flat if k < 15 else 10 * z[:, :1] + 1.0, z, epoch, k)
    assert [(x.kind, x.stop) for x in recovered.take()] == [("vanishing_gradient", False)]


def tiny(model, **kw):
    base = dict(batch_size=200, iters_per_epoch=200, num_epochs=2, num_test_batches=20, init_iters=50,
                num_units=16, stop_early=False)
    return settings_for(model, **{**base, **kw})


def test_the_lds_trains_without_a_health_notice(tmp_path):
    model = load_model("lds")
    trainer = EPITrainer(model, None, *tiny(model, seed=3), run_dir=tmp_path)
    notices = []
    trainer.add_callback(on_iteration=lambda r: notices.extend(r.health), on_epoch=lambda r: notices.extend(r.health))
    result = trainer.train()
    assert result.state == "finished" and result.iterations == 400
    assert notices == [] and result.health == [] and trainer.health_watch.last_probe["iteration"] == 381
    assert json.loads((tmp_path / "run.json").read_text())["health"] == []


def test_a_flat_statistic_gets_a_notice_in_the_first_epoch_and_trains_on(tmp_path):
    model = load_model(f"{MODELS}:FlatCorner")
    trainer = EPITrainer(model, None, *tiny(model, num_epochs=1), run_dir=tmp_path)
    notices = []
    trainer.add_callback(on_iteration=lambda r: notices.extend(r.health))
    result = trainer.train()
    assert result.state == "finished" and result.iterations == 200
    (notice,) = notices
    assert notice.kind == "vanishing_gradient" and not notice.stop and notice.iteration < 200
    assert "the gradient of rate vanishes on" in notice.message and "init=abc" in " ".join(notice.advice)
    assert json.loads((tmp_path / "run.json").read_text())["health"] == [notice.to_dict()]


def test_a_statistic_flat_for_good_stops_training_keeping_the_checkpoint(tmp_path):
    """Dead: zero everywhere. A notice after 5 probes; a stop at epoch 3's first probe (it held through the
    whole of epoch 2), before any checkpoint of epoch 3: the checkpoint on disk is epoch 2's end."""
    model = load_model(f"{MODELS}:Dead")
    trainer = EPITrainer(model, None, *tiny(model, num_epochs=4, iters_per_epoch=60), run_dir=tmp_path)
    result = trainer.train()
    assert result.state == "unhealthy" and result.epochs == 2 and result.iterations == 121
    # probes at iterations 1, 21, 41 (epoch 1), 61, 81, 101 (epoch 2), 121 (epoch 3): the 5th is the notice
    assert [(h["kind"], h["stop"], h["iteration"]) for h in result.health] == [
        ("vanishing_gradient", False, 81), ("vanishing_gradient", True, 121)]
    assert "it held through all of epoch 2 and its multiplier update" in result.error
    meta = json.loads((tmp_path / "run.json").read_text())
    assert meta["state"] == "unhealthy" and meta["health"][1]["statistic"] == "rate"
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert ckpt["iteration"] == 120 and ckpt["epoch"] == 2  # from before the finding


def test_health_warn_reports_and_goes_on(tmp_path):
    model = load_model(f"{MODELS}:Dead")
    result = EPITrainer(model, None, *tiny(model, health="warn", num_epochs=3, iters_per_epoch=60),
                        run_dir=tmp_path).train()
    assert result.state == "finished" and result.iterations == 180
    assert [(h["kind"], h["stop"]) for h in result.health] == [("vanishing_gradient", False),
                                                               ("vanishing_gradient", True)]
    off = EPITrainer(model, None, *tiny(model, health="off", num_epochs=3, iters_per_epoch=60)).train()
    assert off.health == [] and off.state == "finished"


def test_a_nan_statistic_fails_with_the_health_advice(tmp_path):
    model = load_model(f"{MODELS}:NaNRegion")
    result = EPITrainer(model, None, *tiny(model), run_dir=tmp_path).train()
    assert result.state == "failed" and "NaN" in result.error
    (h,) = json.loads((tmp_path / "run.json").read_text())["health"]
    assert h["kind"] == "non_finite" and h["statistic"] == "log_rate" and "clamp" in h["advice"][0]


@pytest.mark.parametrize("health, code", [("stop", 4), ("warn", 3)])
def test_cli_train_prints_the_finding_and_its_advice(tmp_path, capsys, health, code):
    argv = ["train", f"{MODELS}:Dead", "--out", str(tmp_path / health), "--quiet", "--set", f"health={health}",
            "--set", "iters_per_epoch=60", "--set", "num_epochs=3", "--set", "init_iters=20",
            "--set", "num_test_batches=10"]
    assert main(argv) == code
    out = capsys.readouterr()
    assert "health [vanishing_gradient, notice] the gradient of rate vanishes on" in out.out
    assert "health [vanishing_gradient] the gradient of rate vanishes on" in out.out
    assert "epi-dash check tests/data/preflight_models.py:Dead" in out.out
    assert ("stopped by the health watch" in out.err) == (health == "stop")


def test_kinds_are_documented():
    import core.health

    assert all(k in core.health.__doc__ for k in KINDS)
