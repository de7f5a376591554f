"""Issue 28, item 4: a training process killed with SIGKILL mid-training leaves a run listed as "interrupted"
that resumes from its last checkpoint to the same end state as an uninterrupted run with the same seed:
flow weights, eta, c, per-epoch tests and every trace row (wall time aside).

Two ways a user meets it: ``epi-dash train`` killed, continued with ``epi-dash resume``; and a dashboard
server (its ``TrainingRunner``, a ``core.jobs`` job) killed, continued with the workbench's Resume.
The model is the LDS slowed by 10 ms per simulation (same numbers), so the kill lands mid-training."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from core.epi import EPITrainer
from core.runs import list_runs, read_trace_rows

ROOT = Path(__file__).parents[1]
SETTINGS = dict(batch_size=32, iters_per_epoch=20, num_epochs=4, num_test_batches=10, init_iters=5, num_units=8,
                stop_early=False, device="cpu")
SEED = 3
SLOW_LDS = '''
import time
from core.models.lds import LDS


class SlowLDS(LDS):
    """The LDS, 10 ms slower per simulation: a kill after the first epoch lands before the last."""

    model_name = ""  # named by its file in run.json, so a resume loads this class

    def emergent_statistics(self, z):
        time.sleep(0.01)
        return super().emergent_statistics(z)
'''
WALL_TIME = 5  # trace.csv's wall_time column: the only one that differs


def cli_args(spec: str, out: Path) -> list[str]:
    sets = [a for k, v in SETTINGS.items() for a in ("--set", f"{k}={json.dumps(v)}")]
    return ["train", spec, "--out", str(out), "--seed", str(SEED), "--quiet", *sets]


@pytest.fixture(scope="module")
def slow_lds(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("models") / "slow_lds.py"
    path.write_text(SLOW_LDS)
    return f"{path}:SlowLDS"


@pytest.fixture(scope="module")
def uninterrupted(slow_lds, tmp_path_factory) -> Path:
    """The same training, never interrupted (``epi-dash train`` in this process)."""
    from epi_dash.cli import main

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("ref") / "run"
    assert main(cli_args(slow_lds, out)) == 3  # 4 epochs, not converged: stop_early is off anyway
    return out


def kill_after_first_epoch(command: list[str], run_dir: Path) -> None:
    """Start ``command``, SIGKILL it as soon as run.json reports a finished epoch (a checkpoint beyond the
    initial one), and check that it was killed mid-training."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if json.loads((run_dir / "run.json").read_text()).get("epochs", 0) >= 1:
                    break
            except (OSError, ValueError):
                pass  # not written yet
            time.sleep(0.002)
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL


def assert_interrupted(root: Path, run_dir: Path) -> None:
    [run] = [r for r in list_runs(root) if r.path == run_dir]
    assert run.meta["state"] == "running" and run.state == "interrupted"
    assert run.meta["iterations"] < SETTINGS["num_epochs"] * SETTINGS["iters_per_epoch"]
    # the checkpoint is the first epoch's end: trained weights, eta and c moved, Adam has moments
    ckpt = torch.load(run_dir / "checkpoint.pt", weights_only=False)
    assert ckpt["epoch"] >= 1 and ckpt["iteration"] == 20 * ckpt["epoch"]
    assert ckpt["optimizer"]["state"] and torch.any(ckpt["eta"] != 0)


def assert_same_end_state(resumed: Path, reference: Path) -> None:
    a, b = EPITrainer.resume(resumed, device="cpu"), EPITrainer.resume(reference, device="cpu")
    assert a.iteration == b.iteration == 80 and a.epoch == b.epoch == 4
    flow_b = b.flow.state_dict()
    for name, tensor in a.flow.state_dict().items():
        torch.testing.assert_close(tensor, flow_b[name], atol=1e-5, rtol=1e-5, msg=name)
    torch.testing.assert_close(a.eta, b.eta, atol=1e-5, rtol=1e-5)
    assert a.c == pytest.approx(b.c, rel=1e-6) and a.c > 1.0  # c0 = 1 rose: the c-test ran
    np.testing.assert_allclose([h["p_values"] for h in a.history], [h["p_values"] for h in b.history], atol=1e-6)
    assert [h["c_increased"] for h in a.history] == [h["c_increased"] for h in b.history]
    rows_a, rows_b = np.array(read_trace_rows(resumed)), np.array(read_trace_rows(reference))
    assert rows_a.shape == rows_b.shape == (80, len(a.trace_columns))
    np.testing.assert_array_equal(rows_a[:, 0], np.arange(1, 81))
    keep = [j for j in range(rows_a.shape[1]) if j != WALL_TIME]
    np.testing.assert_allclose(rows_a[:, keep], rows_b[:, keep], rtol=1e-5, atol=1e-5)
    meta_a, meta_b = (json.loads((p / "run.json").read_text()) for p in (resumed, reference))
    assert meta_a["state"] == meta_b["state"] == "finished"
    assert meta_a["health"] == meta_b["health"]


def test_cli_training_killed_resumes_to_the_uninterrupted_end_state(tmp_path, slow_lds, uninterrupted):
    from epi_dash.cli import main

    run_dir = tmp_path / "killed"
    kill_after_first_epoch([sys.executable, "-m", "epi_dash.cli", *cli_args(slow_lds, run_dir)], run_dir)
    assert_interrupted(tmp_path, run_dir)
    assert main(["resume", str(run_dir), "--quiet"]) == 3  # what `epi-dash info` tells the user to run
    assert_same_end_state(run_dir, uninterrupted)


SERVER = '''
import sys
import torch
from core import EmergentProperty, load_model, settings_for
from epi_dash.runner import TrainingRunner

torch.set_num_threads(1)
spec, run_dir, settings = sys.argv[1], sys.argv[2], __import__("json").loads(sys.argv[3])
model = load_model(spec)
flow, opt = settings_for(model, **settings)
runner = TrainingRunner(snapshot_every=10**9, analyze_each_epoch_max_dim=0)
runner.start(model, EmergentProperty.default_for(model), flow, opt, run_dir, model_spec=spec)
runner.join()
'''


def test_server_killed_mid_training_resumes_from_the_workbench(tmp_path, slow_lds, uninterrupted):
    from epi_dash.runner import AnalysisSettings, TrainingRunner

    run_dir = tmp_path / "killed"
    settings = json.dumps({**SETTINGS, "seed": SEED})
    kill_after_first_epoch([sys.executable, "-c", SERVER, slow_lds, str(run_dir), settings], run_dir)
    assert_interrupted(tmp_path, run_dir)
    assert json.loads((run_dir / "run.json").read_text())["kind"] == "epi"  # a job: the library's Resume
    runner = TrainingRunner(snapshot_every=10**9, analyze_each_epoch_max_dim=0,
                            analysis=AnalysisSettings(num_starts=1, num_samples=10, steps=1, num_predictive=10))
    runner.resume(run_dir)
    runner.join(120)
    events = runner.drain()
    [started] = [e.data for e in events if e.kind == "started"]
    assert started["resumed"] and started["iteration"] == 20
    [finished] = [e.data for e in events if e.kind == "finished"]
    assert finished["state"] == "finished" and finished["error"] is None
    assert_same_end_state(run_dir, uninterrupted)
