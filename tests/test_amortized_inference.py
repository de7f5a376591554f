"""Data set job, NPE end to end on a tiny budget, targets from files, the check, the CLI and bad input."""

import json
import shutil
import threading

import numpy as np
import pytest
import torch

from core.amortized.check import compare, predictive_check
from core.amortized.dataset import build_dataset, default_settings, load_dataset
from core.amortized.features import compute_features
from core.amortized.geometry import compare_geometries, global_geometry, local_geometry, subspace_overlap
from core.amortized.posterior import load_posterior, train_posterior
from core.amortized.prior import PARAMETERS
from core.amortized.targets import heldout_target, load_spike_file, resolve_target, save_spike_file
from core.errors import InputError
from core.jobs import resume_job, run_job
from epi_dash.cli import main

NET = dict(n_neurons=30, duration=0.5, reference_n=150, t_early_stop=0.3)
TRAIN = {"max_epochs": 8, "hidden": 16, "transforms": 2, "stop_after_epochs": 3}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("amortized") / "ds"
    s = default_settings(budget=60, heldout=4, chunk_size=20, network=NET, scheduler="sync")
    stop = threading.Event()

    def on_event(e):  # stop after the first chunk: the job must end "stopped" and resume from disk
        if e.kind == "progress" and e.step > 0:
            stop.set()

    r = run_job(build_dataset, s, root, kind="amortized.dataset", on_event=on_event, stop_event=stop)
    assert r.state == "stopped"
    first = sorted((root / "chunks").glob("*.npz"))
    assert len(first) == 1
    mtime = first[0].stat().st_mtime_ns
    r = resume_job(root)
    assert r.state == "finished", r.error
    assert first[0].stat().st_mtime_ns == mtime  # not simulated again
    assert r.result["simulations"] == 60 and r.result["heldout"] == 4
    r = run_job(train_posterior, {"dataset": str(root), "train": TRAIN}, root / "estimator",
                kind="amortized.posterior")
    assert r.state == "finished", r.error
    return root


def test_dataset_files_and_determinism(dataset):
    d = load_dataset(dataset)
    assert d["theta"].shape == (60, 28) and d["x"].shape[0] == 60 and np.isfinite(d["x"]).all()
    lo = np.array([p.lower for p in PARAMETERS])
    assert (d["theta"] >= lo - 1e-5).all()
    assert 0.3 < d["valid"].mean() <= 1.0
    meta = json.loads((dataset / "dataset.json").read_text())
    assert meta["feature_names"][0] == "rate_mu" and meta["feature_units"][0] == "log10 Hz"
    run = json.loads((dataset / "run.json").read_text())
    assert run["kind"] == "amortized.dataset" and run["state"] == "finished"
    # a chunk re-simulated from its seed gives the same features (chunks are deterministic)
    from core.amortized.dataset import chunk_items, simulate_chunk

    again = simulate_chunk(chunk_items(meta["settings"])[1])
    np.testing.assert_allclose(again["x"], d["x"][20:40], atol=1e-5)


def test_posterior_samples_inside_the_box_and_check(dataset):
    post = load_posterior(dataset)
    tg = heldout_target(dataset, 0)
    z = post.sample(tg.x, 200, seed=1)
    lo = torch.tensor([p.lower for p in PARAMETERS])
    hi = torch.tensor([p.upper for p in PARAMETERS])
    assert z.shape == (200, 28) and ((z >= lo - 1e-4) & (z <= hi + 1e-4)).all()
    chk, x_sim, spikes = predictive_check(post, tg.x, z, k=4, seed=3)
    assert x_sim.shape == (4, len(post.feature_names)) and len(chk.fraction_per_feature) == x_sim.shape[1]
    assert 0 <= chk.fraction_overall <= 1
    # the check's arithmetic: a "simulation" equal to the target passes everything, one far away nothing
    exact = compare(np.stack([tg.x, tg.x + 100]), np.array([False, False]), tg.x, post)
    assert exact.fraction_overall == 0.5 and all(f == 0.5 for f in exact.fraction_per_feature)
    flagged = compare(np.stack([tg.x]), np.array([True]), tg.x, post)
    assert flagged.fraction_overall == 0.0


def test_coverage_warning_for_a_target_outside_the_training_set(dataset):
    post = load_posterior(dataset)
    x = heldout_target(dataset, 0).x.copy()
    x[0] = 50.0  # 10^50 Hz
    chk = compare(x[None], np.array([False]), x, post)
    assert "outside what the training set covers" in chk.coverage_warning and "rate_mu" in chk.outside_features


def test_spike_files_round_trip_to_the_same_features(dataset, tmp_path):
    tg = heldout_target(dataset, 1)
    meta = json.loads((dataset / "dataset.json").read_text())
    for suffix in (".npz", ".csv"):
        f = save_spike_file(tg.spikes, tmp_path / f"target{suffix}")
        t = resolve_target(dataset, str(f), duration=NET["duration"] if suffix == ".csv" else None)
        np.testing.assert_allclose(t.x, tg.x, atol=1e-4, err_msg=suffix)
    # NWB units table
    from datetime import datetime, timezone

    from pynwb import NWBHDF5IO, NWBFile

    nwb = NWBFile("t", "id", datetime.now(timezone.utc))
    s = tg.spikes
    for u in range(int(s.n_exc[0])):
        nwb.add_unit(spike_times=s.time[(s.unit == u)])
    with NWBHDF5IO(str(tmp_path / "t.nwb"), "w") as io:
        io.write(nwb)
    sp = load_spike_file(tmp_path / "t.nwb", duration=NET["duration"])
    x = compute_features(sp, t_start=meta["settings"]["network"]["t_start"])[0]
    np.testing.assert_allclose(x, tg.x, atol=1e-4)


def test_bad_spike_files_name_the_field(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "nohdr.csv").write_text("cell,when\n1,0.5\n")
    (tmp_path / "bad.csv").write_text("unit,time\n1,abc\n")
    (tmp_path / "none.csv").write_text("unit,time\n")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    (tmp_path / "junk.nwb").write_bytes(b"not hdf5")
    np.savez(tmp_path / "nan.npz", units=[0, 1], times=[0.1, np.nan])
    for name, text in [("empty.csv", "empty"), ("nohdr.csv", "no unit column"), ("bad.csv", "not a number"),
                       ("none.csv", "no spikes"), ("junk.npz", "not a readable NPZ"),
                       ("junk.nwb", "not a readable NWB"), ("nan.npz", "NaN"), ("missing.npz", "no such file")]:
        with pytest.raises(InputError) as e:
            load_spike_file(tmp_path / name)
        assert e.value.field == "target" and text in e.value.message, (name, e.value.message)
    with pytest.raises(InputError) as e:
        load_spike_file(tmp_path / "nohdr.csv", unit_column="neuron_id")
    assert "unknown unit column 'neuron_id'" in e.value.message


def test_nan_target_and_bad_estimator_and_version(dataset, tmp_path):
    post = load_posterior(dataset)
    x = heldout_target(dataset, 0).x.copy()
    x[3] = np.nan
    with pytest.raises(InputError) as e:
        post.sample(x, 10)
    assert e.value.field == "target" and "isi_cv_sigma" in e.value.message
    other = tmp_path / "other"
    shutil.copytree(dataset, other)
    (other / "estimator" / "posterior.pt").write_bytes(b"garbage")
    with pytest.raises(InputError) as e:
        load_posterior(other)
    assert e.value.field == "estimator"
    meta = json.loads((other / "dataset.json").read_text())
    meta["model_version"] = "adex-clustered-0"
    (other / "dataset.json").write_text(json.dumps(meta))
    with pytest.raises(InputError) as e:
        load_dataset(other)
    assert e.value.field == "dataset" and "model version" in e.value.message
    with pytest.raises(InputError) as e:
        heldout_target(dataset, 99)
    assert e.value.field == "target"


def test_geometry_on_known_samples(dataset):
    # samples on a line in the unit box: one direction carries all variance -> participation ratio ~ 1
    lo = np.array([p.lower for p in PARAMETERS])
    hi = np.array([p.upper for p in PARAMETERS])
    t = np.random.default_rng(0).uniform(0.2, 0.8, 300)
    u = np.full((300, 28), 0.5)
    u[:, 3] = t
    u[:, 7] = 1 - t
    u += np.random.default_rng(1).normal(0, 1e-3, u.shape)
    g = global_geometry(lo + (hi - lo) * u, "line")
    assert g.participation_ratio < 1.1
    assert abs(g.pca_components[0][3]) == pytest.approx(2 ** -0.5, abs=0.01)
    assert g.top_correlations[0][:2] == (PARAMETERS[3].name, PARAMETERS[7].name) and g.top_correlations[0][2] < -0.99
    assert subspace_overlap(np.eye(28)[:, :2], np.eye(28)[:, 1:3]) == pytest.approx(0.5)
    post = load_posterior(dataset)
    tg = heldout_target(dataset, 0)
    z = post.sample(tg.x, 100)
    g = local_geometry(global_geometry(z, "a"), post, tg.x, z, n_points=2)
    assert len(g.hessian_eigenvalues) == 2 and len(g.hessian_eigenvalues[0]) == 28
    assert np.isfinite(g.hessian_eigenvalues).all()
    c = compare_geometries(g, g)
    assert c["pca_overlap_top3"] == pytest.approx(1.0, abs=1e-6)


def test_cli_infer_writes_samples_and_check(dataset, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["amortized", "infer", str(dataset), "--target", "heldout:2", "-n", "300", "--out", str(out),
                 "-k", "3"]) == 0
    printed = capsys.readouterr().out
    assert "posterior-predictive check" in printed and "participation ratio" in printed
    d = np.load(out / "samples.npz")
    assert d["z"].shape == (300, 28) and list(d["names"]) == [p.name for p in PARAMETERS]
    chk = json.loads((out / "check.json").read_text())
    assert set(chk["per_feature"]) == set(chk["feature_names"]) and chk["tolerance"] == 0.5
    assert 0 <= chk["fraction_overall"] <= 1 and len(chk["target_values"]) == len(chk["feature_names"])


def test_cli_bad_input_exit_code_2(dataset, tmp_path, capsys):
    assert main(["amortized", "build", "--out", str(tmp_path / "b"), "--budget", "0", "--scheduler", "sync"]) == 2
    assert "error: budget:" in capsys.readouterr().err
    assert main(["amortized", "infer", str(dataset), "--target", "heldout:x", "-n", "10", "--out",
                 str(tmp_path / "o")]) == 2
    assert "error: target:" in capsys.readouterr().err
    assert main(["amortized", "infer", str(tmp_path), "--target", "heldout:0", "-n", "10", "--out",
                 str(tmp_path / "o")]) == 2
    assert "error: estimator:" in capsys.readouterr().err
    assert main(["amortized", "build", "--out", str(tmp_path / "c"), "--budget", "5", "--scheduler", "nowhere"]) == 2
    assert "error: scheduler:" in capsys.readouterr().err


def test_chunks_on_a_dask_scheduler_match_the_inline_ones(tmp_path):
    """`--scheduler tcp://...`: the same chunks as an inline build (chunks are seeded by their index)."""
    distributed = pytest.importorskip("distributed")
    s = dict(budget=8, heldout=0, chunk_size=4, network=NET)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        r = run_job(build_dataset, default_settings(**s, scheduler=cluster.scheduler_address), tmp_path / "dask",
                    kind="amortized.dataset")
    assert r.state == "finished", r.error
    r = run_job(build_dataset, default_settings(**s, scheduler="sync"), tmp_path / "sync", kind="amortized.dataset")
    assert r.state == "finished", r.error
    a, b = load_dataset(tmp_path / "dask"), load_dataset(tmp_path / "sync")
    np.testing.assert_array_equal(a["theta"], b["theta"])
    np.testing.assert_allclose(a["x"], b["x"], atol=1e-5)
