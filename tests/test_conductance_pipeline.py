"""The pipeline end to end on a short spike train with a tiny training budget: data set (a resumable job),
network, generation, simulation, metrics; the ``epi-dash dic`` CLI and its error messages."""

import csv
import threading

import numpy as np
import pytest
import torch

from core.conductance import (STG, SpikeTrains, compensate, dics, load_dataset, load_density, run_pipeline,
                              simulate, simulate_dataset, train_density, write_spikes)
from core.conductance.dataset import dataset_settings
from core.conductance.training import training_settings
from core.errors import InputError
from core.jobs import resume_job, run_job
from epi_dash.cli import main

torch.set_num_threads(1)

SHORT = dict(duration=400.0, transient=200.0)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 48-neuron STG data set simulated in two chunks, stopped after the first and resumed, then a
    3-epoch network."""
    root = tmp_path_factory.mktemp("dic")
    stop = threading.Event()

    def on_event(ev):
        if ev.kind == "progress" and ev.step == 1000:   # first chunk written
            stop.set()

    settings = dataset_settings(model="stg", n=48, chunk=24, **SHORT)
    first = run_job(simulate_dataset, settings, root / "dataset", kind="conductance.dataset",
                    on_event=on_event, stop_event=stop)
    chunks_after_stop = sorted(p.name for p in (root / "dataset").glob("chunk_*.npz"))
    second = resume_job(root / "dataset")
    net = run_job(train_density, training_settings(dataset=str(root / "dataset"), epochs=3, batch_size=16),
                  root / "network", kind="conductance.density")
    return dict(root=root, first=first, second=second, chunks_after_stop=chunks_after_stop, net=net)


def test_dataset_job_stops_and_resumes(trained):
    assert trained["first"].state == "stopped"
    assert trained["chunks_after_stop"] == ["chunk_0000.npz"]
    assert trained["second"].state == "finished"
    data = load_dataset(trained["root"] / "dataset")
    assert data["targets"].shape == (48, 2) and data["g"].shape == (48, 8)
    lo, hi = STG.dic_box["g_s"]
    assert (data["targets"][:, 0] >= lo).all() and (data["targets"][:, 0] <= hi).all()
    assert 0 < data["noise"].sum() < 48 * 5.0          # some, not all, with a noisy current
    # targets were hit by the compensated neurons of the data set
    ok = data["ok"]
    torch.testing.assert_close(dics(STG, torch.from_numpy(data["g"][ok]))[:, 1:],
                               torch.from_numpy(data["targets"][ok]), atol=1e-3, rtol=0)


def test_pipeline_end_to_end_on_a_short_spike_train(trained):
    assert trained["net"].state == "finished", trained["net"].error
    net = load_density(trained["root"] / "network")
    g_in = compensate(STG, (-8.0, 6.0), n=3, seed=5).g
    trains = simulate(STG, g_in, **SHORT).spikes
    assert (trains.counts >= 3).all()
    res = run_pipeline(STG, trains, net, n=12, seed=1, **SHORT)
    assert res.targets.shape == (12, 2)
    assert res.population.ok.sum() >= 10
    ok = res.population.ok
    torch.testing.assert_close(res.population.dics[ok][:, 1:], res.targets[ok], atol=1e-3, rtol=0)
    assert (res.population.g[ok] >= 0).all()
    assert res.metrics_gen["cls"].shape == (int(ok.sum()),)
    assert res.comparison["regime"] == "bursting"
    assert 0.0 <= res.comparison["in_regime"] <= 1.0
    # density over the plane integrates to about 1 over the DIC box
    gs = torch.linspace(-20, 20, 401)
    gu = torch.linspace(0, 20, 201)
    gs, gu = (gs[1:] + gs[:-1]) / 2, (gu[1:] + gu[:-1]) / 2       # cell midpoints
    lp = net.grid_log_prob(trains.subset([0]), gs, gu)
    mass = lp.exp().sum() * (gs[1] - gs[0]) * (gu[1] - gu[0])
    assert 0.9 < float(mass) < 1.05


def test_cli_generate_from_spikes_and_from_dics(trained, tmp_path, capsys):
    g_in = compensate(STG, (8.0, 5.0), n=2, seed=2).g
    tr = simulate(STG, g_in, **SHORT).spikes
    tr.units = ["n1", "n2"]
    f = write_spikes(tmp_path / "in.csv", tr)
    out = tmp_path / "out"
    rc = main(["dic", "generate", "--model", "stg", "--spikes", str(f), "-n", "10", "--out", str(out),
               "--network", str(trained["root"] / "network"), "--no-simulate"])
    assert rc == 0
    z = np.load(out / "population.npz")
    assert z["g"].shape[1] == 8 and z["g"].shape[0] <= 10 and list(z["names"]) == list(STG.names)
    assert z["targets"].shape == (z["g"].shape[0], 2) and float(z["V_th"]) == -51.0
    assert str(z["units"]) == "mS/cm2"
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert [r["unit"] for r in rows if r["source"] == "input"] == ["n1", "n2"]
    assert {"f_spiking", "burst_duration", "intra_burst_f", "inter_burst_f", "spikes_per_burst"} <= set(rows[0])

    out2 = tmp_path / "out2"
    rc = main(["dic", "generate", "--model", "stg", "--dic=-6,7", "-n", "6", "--out", str(out2),
               "--duration", "400", "--transient", "200"])
    assert rc == 0
    z = np.load(out2 / "population.npz")
    torch.testing.assert_close(torch.from_numpy(z["dics"][:, 1:]), torch.tensor([[-6.0, 7.0]]).double().expand(len(z["g"]), 2),
                               atol=1e-3, rtol=0)
    rows = list(csv.DictReader(open(out2 / "metrics.csv")))
    assert len(rows) == len(z["g"]) and all(r["source"] == "generated" for r in rows)
    assert sum(r["class"] == "bursting" for r in rows) >= 5


def test_cli_bad_inputs_name_the_field(trained, tmp_path, capsys):
    one = tmp_path / "one.csv"
    one.write_text("unit,time\na,1.0\nb,2\nb,3\nb,9\n")
    cases = [
        (["--dic", "30,2"], "error: dic: g_s = 30"),
        (["--dic", "abc"], "error: dic: expected GS,GU"),
        (["--spikes", str(one), "--network", str(trained["root"] / "network")], "error: spikes[a]: 1 spike"),
        (["--spikes", str(tmp_path / "none.npz")], "error: spikes: no such file"),
        (["--dic", "1,2", "-n", "0"], "error: n:"),
        (["--model", "hh", "--dic", "1,2"], "error: model:"),
    ]
    good = tmp_path / "good.csv"
    good.write_text("time\n1\n20\n45\n70\n")
    cases.append((["--spikes", str(good), "--network", str(tmp_path / "nonet")], "error: network: no trained network"))
    for extra, msg in cases:
        rc = main(["dic", "generate", "-n", "4", "--out", str(tmp_path / "o"), *([] if "--model" in extra else ["--model", "stg"]), *extra])
        err = capsys.readouterr().err
        assert rc == 2 and msg in err, (extra, err)


def test_unsorted_negative_and_empty_spike_inputs(tmp_path):
    with pytest.raises(InputError) as e:
        SpikeTrains.from_lists([])  # nothing to check yet: an empty batch is just empty
        from core.conductance import check_trains
        check_trains(SpikeTrains.from_lists([]))
    assert e.value.field == "spikes"
    np.savez(tmp_path / "neg.npz", times=np.array([-2.0, 1.0, 3.0]))
    np.savez(tmp_path / "uns.npz", times=np.array([5.0, 1.0, 3.0]), units=np.array([1, 1, 1]))
    np.savez(tmp_path / "empty.npz", times=np.zeros(0))
    from core.conductance import read_spikes
    for name, msg in (("neg.npz", "negative"), ("uns.npz", "not sorted"), ("empty.npz", "no spikes")):
        with pytest.raises(InputError) as e:
            read_spikes(tmp_path / name)
        assert e.value.field.startswith("spikes") and msg in e.value.message
