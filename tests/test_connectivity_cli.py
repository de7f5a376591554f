"""`epi-dash connectivity`: quick end-to-end runs of each method, user data files, bad input, stop/resume."""

import json
import threading

import numpy as np
import pytest
import torch

from core.connectivity import make_teacher, simulate_network
from core.connectivity.inference import infer_job
from core.jobs import resume_job, run_job
from epi_dash.cli import main


def _result(out):
    return json.loads((out / "run.json").read_text())


def test_fm_quick_writes_loadings_npz(tmp_path, capsys):
    out = tmp_path / "bistable"
    assert main(["connectivity", "infer", "--teacher", "bistable", "--method", "fm", "--quick", "--out", str(out)]) == 0
    d = np.load(out / "loadings.npz")
    assert d["samples"].shape == (2000, 2) and list(d["names"]) == ["m1", "n1"]
    assert int(d["rank"]) == 1 and str(d["phi"]) == "tanh" and float(d["tau"]) == 1.0
    meta = _result(out)
    assert meta["state"] == "finished" and meta["kind"] == "connectivity.infer"
    r = meta["result"]
    assert r["constraint_error"] < 0.1 and "validation" in r and r["validation"]["networks"]["origin_unstable"] == 1.0
    assert "constraint error" in capsys.readouterr().out


@pytest.mark.parametrize("method", ["epi", "gd"])
def test_epi_and_gd_quick(tmp_path, method):
    out = tmp_path / method
    assert main(["connectivity", "infer", "--teacher", "ring", "--method", method, "--quick", "--no-validate",
                 "--out", str(out)]) == 0
    d = np.load(out / "loadings.npz")
    assert list(d["names"]) == ["m1", "n1", "m2", "n2"] and str(d["method"]) == method
    assert np.isfinite(d["samples"]).all()


def _latent_npz(path, nan=False):
    t = make_teacher("cycle")
    tr = t.trajectories(duration=10.0, dt=0.1)
    kappa = tr["kappa"].numpy().copy()
    if nan:
        kappa[1, 5, 0] = np.nan
    np.savez(path, kappa=kappa, t=tr["t"].numpy())


def test_user_latent_trajectories_npz_and_csv(tmp_path):
    f = tmp_path / "latents.npz"
    _latent_npz(f)
    out = tmp_path / "run"
    assert main(["connectivity", "infer", "--data", str(f), "--rank", "2", "--quick", "--out", str(out)]) == 0
    r = _result(out)["result"]
    assert r["kind"] == "latents" and not r["pinned_m"] and r["constraint_error"] < 0.15
    # the same as CSV (t, trial, kappa1, kappa2)
    d = np.load(f)
    rows = ["t,trial,kappa1,kappa2"] + [f"{d['t'][j]},{i},{d['kappa'][i, j, 0]},{d['kappa'][i, j, 1]}"
                                         for i in range(d["kappa"].shape[0]) for j in range(d["kappa"].shape[1])]
    c = tmp_path / "latents.csv"
    c.write_text("\n".join(rows))
    assert main(["connectivity", "infer", "--data", str(c), "--rank", "2", "--quick", "--out", str(tmp_path / "c")]) == 0


def test_user_activity_fits_an_lrrnn_first(tmp_path):
    t = make_teacher("bistable")
    z = t.sample(60, seed=0)[None].repeat(4, 1, 1)
    out = simulate_network(z, 1, torch.tensor([[1.5], [0.3], [-0.3], [-1.5]], dtype=torch.float64), 8.0, 0.2,
                           return_activity=True)
    f = tmp_path / "activity.npz"
    np.savez(f, x=out["x"].numpy(), t=out["t"].numpy())
    run = tmp_path / "act"
    assert main(["connectivity", "infer", "--data", str(f), "--rank", "1", "--quick", "--out", str(run)]) == 0
    r = _result(run)["result"]
    assert r["kind"] == "activity" and r["pinned_m"] and r["units"] == 60


@pytest.mark.parametrize("args, field", [
    (["--teacher", "spiral"], "teacher"),
    (["--data", "{nan}"], "rank"),
    (["--data", "{nan}", "--rank", "2"], "kappa"),
    (["--data", "{ok}", "--rank", "3"], "rank"),
    (["--data", "{shape}", "--rank", "1"], "kappa"),
    (["--data", "{missing}", "--rank", "1"], "data"),
    (["--teacher", "cycle", "--rank", "1"], "rank"),
])
def test_bad_input_names_the_field(tmp_path, capsys, args, field):
    _latent_npz(tmp_path / "nan.npz", nan=True)
    _latent_npz(tmp_path / "ok.npz")
    np.savez(tmp_path / "shape.npz", kappa=np.zeros((2, 3, 4, 5)), dt=0.1)
    paths = {"nan": tmp_path / "nan.npz", "ok": tmp_path / "ok.npz", "shape": tmp_path / "shape.npz",
             "missing": tmp_path / "none.npz"}
    args = [a.format(**paths) for a in args]
    rc = main(["connectivity", "infer", *args, "--quick", "--out", str(tmp_path / "bad")])
    assert rc == 2
    assert capsys.readouterr().err.startswith(f"error: {field}: ")


def test_stop_then_resume_finishes(tmp_path):
    stop = threading.Event()

    def on_event(ev):
        if ev.kind == "progress" and ev.step >= 200:
            stop.set()

    settings = {"teacher": "bistable", "quick": True, "fm_steps": 400, "validate": False}
    res = run_job(infer_job, settings, tmp_path, kind="connectivity.infer", on_event=on_event, stop_event=stop)
    assert res.state == "stopped"
    assert (tmp_path / "checkpoint.pt").is_file() and not (tmp_path / "loadings.npz").exists()
    res = resume_job(tmp_path)
    assert res.state == "finished" and (tmp_path / "loadings.npz").is_file()
    assert res.result["constraint_error"] < 0.1
