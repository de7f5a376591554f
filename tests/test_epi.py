"""The augmented Lagrangian machinery: gradient estimator, update rules, tests, stop/resume, failures."""

import numpy as np
import pytest
import torch

from core import (
    EmergentProperty,
    EPITrainer,
    FreeParameter,
    Model,
    Statistic,
    augmented_lagrangian_loss,
    convergence_test,
    load_model,
    penalty_increase_test,
    settings_for,
)
from core.errors import InputError


class NoiseOnly(Model):
    """f = standard normal noise, independent of z: E[T] = [0, 1] exactly."""

    parameters = (FreeParameter("a", 0, 1), FreeParameter("b", 0, 1))
    statistics = (Statistic("noise", 0.0, 1.0),)

    def simulate(self, z):
        return self.randn(z.shape[0], 1, like=z)

    def measure(self, x, z):
        return x


class SometimesNaN(Model):
    parameters = (FreeParameter("a", 0, 1), FreeParameter("b", 0, 1))
    statistics = (Statistic("s", 0.5, 0.1), Statistic("t", 0.5, 0.1))

    def simulate(self, z):
        return z

    def measure(self, x, z):
        t = torch.where(z[:, 0] > 0.75, torch.full_like(z[:, 0], float("nan")), z[:, 1])
        return torch.stack([z[:, 0], t], -1)


def tiny_settings(model, **kw):
    base = dict(batch_size=64, iters_per_epoch=30, num_epochs=3, num_test_batches=20, init_iters=10,
                num_units=8, stop_early=False)
    return settings_for(model, **{**base, **kw})


def test_split_half_gradient_is_unbiased():
    """z = theta + eps, T = z^2: the split-half gradient averages to d/dtheta c/2 (E T - mu)^2,
    while autograd of c/2 ||R||^2 on the batch is biased (checked, so the test can fail)."""
    theta0, mu, c, n = 0.7, 1.2, 2.0, 16
    exact = c * (theta0**2 + 1 - mu) * 2 * theta0
    g = torch.Generator().manual_seed(0)
    split, naive = [], []
    for _ in range(4000):
        theta = torch.tensor(theta0, requires_grad=True)
        z = theta + torch.randn(n, generator=g)
        T = (z**2)[:, None]
        loss, _, R = augmented_lagrangian_loss(torch.zeros(n), T, torch.tensor([mu]), torch.zeros(1), c)
        split.append(torch.autograd.grad(loss, theta, retain_graph=True)[0].item())
        naive.append(torch.autograd.grad(0.5 * c * (R**2).sum(), theta)[0].item())
    se = np.std(split) / np.sqrt(len(split))
    assert abs(np.mean(split) - exact) < 4 * se
    assert abs(np.mean(naive) - exact) > 4 * np.std(naive) / np.sqrt(len(naive))


def test_entropy_and_multiplier_terms():
    log_q = torch.tensor([-1.0, -3.0, -2.0, -2.0])
    T = torch.tensor([[1.0], [3.0], [1.0], [3.0]])
    loss, H, R = augmented_lagrangian_loss(log_q, T, torch.tensor([1.0]), torch.tensor([0.5]), c=0.0)
    assert H.item() == pytest.approx(2.0)
    assert R.item() == pytest.approx(1.0)
    assert loss.item() == pytest.approx(-2.0 + 0.5)


def test_penalty_increase_rule():
    rng = np.random.default_rng(0)
    prev = rng.exponential(1.0, 200)
    # error did not shrink by gamma: c grows (probability 1 - p, p tiny)
    assert penalty_increase_test(rng.exponential(1.0, 200), prev, 0.25, u=0.5)[0]
    # error shrank far below gamma times the previous one: c stays
    assert not penalty_increase_test(rng.exponential(0.01, 200), prev, 0.25, u=0.0)[0]


def test_epoch_end_updates_eta_and_c():
    model = NoiseOnly()
    prop = EmergentProperty(statistics=["noise"], mean=[3.0], std=[1.0])  # unreachable: stays violated
    flow, opt = tiny_settings(model, c0=2.0, beta=4.0)
    tr = EPITrainer(model, prop, flow, opt)
    tr.initialize()
    tr.step()
    eta_before, R_last, c_before = tr.eta.clone(), tr._last_R.clone(), tr.c
    rec = tr.end_epoch()
    assert torch.allclose(tr.eta, eta_before + c_before * R_last)
    assert not rec.converged
    # the violation cannot shrink, so the one-sided test says increase (p ~ 0): c <- beta c
    assert rec.c_increased and tr.c == pytest.approx(4.0 * c_before)


def test_convergence_test_false_positive_rate():
    """With E[T] = mu_opt exactly, the Bonferroni sign test rejects in at most ~alpha of repeats
    (100 repeats; binomial 99.9 % bound for rate 0.05 is 0.12)."""
    model = NoiseOnly()
    flow, opt = tiny_settings(model)
    tr = EPITrainer(model, None, flow, opt)
    rejections = 0
    for _ in range(100):
        _, converged = convergence_test(tr.constraint_batches(200, 50), alpha=0.05)
        rejections += not converged
    assert rejections <= 12
    # and it does reject a real violation
    shifted = tr.constraint_batches(200, 50) + torch.tensor([0.6, 0.0])
    assert not convergence_test(shifted, alpha=0.05)[1]


def test_resume_from_checkpoint_equals_uninterrupted(tmp_path):
    model = load_model("lds")
    flow, opt = tiny_settings(model)
    full = EPITrainer(model, None, flow, opt, run_dir=tmp_path / "full")
    res_full = full.train()

    flow, opt = tiny_settings(model)
    part = EPITrainer(load_model("lds"), None, flow, opt, run_dir=tmp_path / "part")
    part.add_callback(on_iteration=lambda r: part.request_stop() if r.iteration == 45 else None)
    stopped = part.train()
    assert stopped.state == "stopped" and stopped.iterations == 45
    assert (tmp_path / "part" / "checkpoint.pt").is_file()

    resumed = EPITrainer.resume(tmp_path / "part")
    assert resumed.iteration == 45
    res = resumed.train()
    assert res.iterations == res_full.iterations == 90
    for k, v in full.flow.state_dict().items():
        assert torch.equal(v, resumed.flow.state_dict()[k]), k
    assert torch.equal(full.eta, resumed.eta) and full.c == resumed.c
    assert [h["p_values"] for h in res.history] == [h["p_values"] for h in res_full.history]
    trace_full = (tmp_path / "full" / "trace.csv").read_text().splitlines()
    trace_part = (tmp_path / "part" / "trace.csv").read_text().splitlines()
    assert [r.split(",")[:5] for r in trace_full] == [r.split(",")[:5] for r in trace_part]


def test_run_state_tells_an_interrupted_run_from_a_running_one(tmp_path):
    import os
    import socket
    import subprocess

    from core.runs import load_run, run_state

    model = load_model("lds")
    flow, opt = tiny_settings(model, num_epochs=1)
    EPITrainer(model, None, flow, opt, run_dir=tmp_path).train()
    run = load_run(tmp_path)
    assert run.meta["process"] == {"host": socket.gethostname(), "pid": os.getpid()}
    assert run.state == "finished"
    gone = subprocess.Popen(["true"])  # a process id that no longer exists
    gone.wait()
    here = socket.gethostname()
    assert run_state({"state": "running", "process": {"host": here, "pid": os.getpid()}}) == "running"
    assert run_state({"state": "running", "process": {"host": here, "pid": gone.pid}}) == "interrupted"
    # on another host (a shared disk) it cannot be checked; runs from before this field stay as written
    assert run_state({"state": "running", "process": {"host": here + "-other", "pid": gone.pid}}) == "running"
    assert run_state({"state": "running"}) == "running"
    assert run_state({"state": "stopped", "process": {"host": here, "pid": gone.pid}}) == "stopped"


def test_stop_requested_before_train_is_honoured_once(tmp_path):
    """A UI may ask to stop while the trainer is still being built: train() must not drop it."""
    model = load_model("lds")
    flow, opt = tiny_settings(model)
    tr = EPITrainer(model, None, flow, opt, run_dir=tmp_path)
    tr.request_stop()
    res = tr.train()
    assert res.state == "stopped" and res.iterations == 0 and tr.initialized
    assert tr.train().iterations == 90  # the request was consumed: the next call runs to the end


def test_nan_statistics_stop_training_with_message(tmp_path):
    model = SometimesNaN()
    flow, opt = tiny_settings(model)
    tr = EPITrainer(model, None, flow, opt, run_dir=tmp_path)
    res = tr.train()
    assert res.state == "failed"
    assert "'t'" in res.error and "%" in res.error
    frac = float(res.error.split("for ")[1].split("%")[0])
    assert 5 < frac < 60  # z_a > 0.75 under the initial logit-normal q on [0, 1]
    assert (tmp_path / "checkpoint.pt").is_file()
    assert '"state": "failed"' in (tmp_path / "run.json").read_text()


def test_streaming_records_arrive_in_order():
    model = load_model("lds")
    flow, opt = tiny_settings(model)
    tr = EPITrainer(model, None, flow, opt)
    its, eps = [], []
    tr.add_callback(on_iteration=its.append, on_epoch=eps.append)
    tr.train()
    assert [r.iteration for r in its] == list(range(1, 91))
    assert [e.epoch for e in eps] == [1, 2, 3] and [e.iteration for e in eps] == [30, 60, 90]
    r = its[-1]
    assert len(r.R) == 4 and len(r.f_mean) == 2 and len(r.eta) == 4 and np.isfinite(r.entropy)
    assert all(b.wall_time >= a.wall_time for a, b in zip(its, its[1:]))


class Identity(Model):
    """f = z on the unit square; the property asks for z near (0.8, 0.3)."""

    parameters = (FreeParameter("a", 0, 1), FreeParameter("b", 0, 1))
    statistics = (Statistic("s", 0.8, 0.05), Statistic("t", 0.3, 0.05))

    def simulate(self, z):
        return z

    def measure(self, x, z):
        return x


def test_abc_initialization_starts_q_at_the_draws_closest_to_the_property():
    # 100 of 5,000 uniform draws: a disc of radius ~0.08 around (0.8, 0.3), so the kept mean is within
    # ~0.005 of it (sd 0.04 / sqrt(100)); 0.03 leaves a wide margin. A box-centre start would be (0.5, 0.5).
    model = Identity()
    flow, opt = tiny_settings(model, init="abc", abc_samples=5000, abc_keep=100, init_iters=30, seed=4)
    trainer = EPITrainer(model, flow=flow, opt=opt)
    mean, sd = trainer.abc_gaussian(*model.bounds())
    torch.testing.assert_close(mean, torch.tensor([0.8, 0.3]), atol=0.03, rtol=0)
    assert (sd < 0.1).all() and (sd >= 0.01).all()
    trainer.initialize()
    with torch.no_grad():
        z, _ = trainer.flow.rsample_and_log_prob(4000)
    torch.testing.assert_close(z.mean(0), torch.tensor([0.8, 0.3]), atol=0.05, rtol=0)
    assert (z.std(0) < 0.12).all()
    assert trainer.init_info["abc_distance"] < 2.0  # the farthest kept draw, in property sds


def test_abc_initialization_skips_non_finite_statistics_and_checks_its_settings():
    model = SometimesNaN()  # t is NaN wherever a > 0.75
    flow, opt = tiny_settings(model, init="abc", abc_samples=2000, abc_keep=50)
    mean, _ = EPITrainer(model, flow=flow, opt=opt).abc_gaussian(*model.bounds())
    assert mean[0] < 0.75
    flow, opt = tiny_settings(model, init="abc", abc_samples=20, abc_keep=50)
    with pytest.raises(InputError, match="abc_keep"):
        EPITrainer(model, flow=flow, opt=opt).initialize()


def test_reserve_run_dir_gives_every_concurrent_start_its_own_directory(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from core import reserve_run_dir

    with ThreadPoolExecutor(8) as pool:
        dirs = list(pool.map(lambda _: reserve_run_dir(tmp_path / "runs", "lds-20261202-120000"), range(16)))
    assert len(set(dirs)) == 16 and all(d.is_dir() and not any(d.iterdir()) for d in dirs)
    assert tmp_path / "runs" / "lds-20261202-120000" in dirs
    assert tmp_path / "runs" / "lds-20261202-120000-16" in dirs
