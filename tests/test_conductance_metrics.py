"""Activity metrics on hand-made spike trains; spike-time files and their validation."""

import numpy as np
import pytest
import torch

from core.conductance import SpikeTrains, activity_metrics, parse_csv, read_spikes, validate_train, write_spikes
from core.errors import InputError


def bursts(onsets, offsets):
    return np.concatenate([o + np.asarray(offsets, dtype=float) for o in onsets])


def test_tonic_train():
    t = np.arange(0, 2000, 40.0) + np.tile([0.0, 1.0], 25)   # ISIs 41, 39: CV 0.025
    m = activity_metrics(SpikeTrains.from_lists([t]))
    assert m["cls"].item() == 1
    assert m["f_spiking"].item() == pytest.approx(np.mean(1000 / np.diff(t)))
    assert np.isnan(m["burst_duration"].item()) and np.isnan(m["spikes_per_burst"].item())


def test_bursting_train_by_hand():
    # 8 bursts every 250 ms of 5 spikes, 6 ms apart: duration 24 ms, 5 spikes/burst, 4 Hz
    t = bursts(np.arange(8) * 250.0, [0, 6, 12, 18, 24])
    m = activity_metrics(SpikeTrains.from_lists([t]))
    assert m["cls"].item() == 2
    assert m["spikes_per_burst"].item() == pytest.approx(5.0)
    assert m["burst_duration"].item() == pytest.approx(24.0)
    assert m["intra_burst_f"].item() == pytest.approx(5 / 24 * 1000)
    assert m["inter_burst_f"].item() == pytest.approx(4.0)


def test_edge_bursts_are_dropped_and_singletons_ignored():
    # first and last bursts are cut (2 and 1 spikes) and a lone spike sits between two full bursts
    t = np.concatenate([[0.0, 5.0], bursts([200.0, 400.0], [0, 10, 20]), [600.0],
                        bursts([800.0], [0, 10, 20]), [1000.0]])
    m = activity_metrics(SpikeTrains.from_lists([t]))
    assert m["cls"].item() == 2
    assert m["spikes_per_burst"].item() == pytest.approx(3.0)       # the singleton and edges left out
    assert m["burst_duration"].item() == pytest.approx(20.0)
    # onsets 200, 400, (600 dropped: < 2 spikes), 800 -> consecutive kept differences 200 only
    assert m["inter_burst_f"].item() == pytest.approx(5.0)


def test_batch_of_mixed_trains_is_vectorized_and_silent_is_nan():
    tonic = np.arange(0, 1000, 25.0)
    burst = bursts(np.arange(6) * 300.0, [0, 8, 16, 24])
    tr = SpikeTrains.from_lists([tonic, [3.0, 70.0], burst, []])
    m = activity_metrics(tr)
    assert m["cls"].tolist() == [1, 0, 2, 0]
    assert m["f_spiking"][0].item() == pytest.approx(40.0)
    assert np.isnan(m["f_spiking"][1].item()) and np.isnan(m["f_spiking"][3].item())
    assert m["spikes_per_burst"][2].item() == pytest.approx(4.0)
    single = activity_metrics(SpikeTrains.from_lists([burst]))
    assert single["intra_burst_f"].item() == pytest.approx(m["intra_burst_f"][2].item())


@pytest.mark.parametrize("times,msg", [([], "empty"), ([5.0], "1 spike"), ([1.0, 2.0], "2 spikes"),
                                       ([1.0, 3.0, 2.0, 4.0], "not sorted"), ([-1.0, 2.0, 3.0], "negative"),
                                       ([1.0, float("nan"), 3.0], "finite")])
def test_bad_trains_name_the_field(times, msg):
    with pytest.raises(InputError) as e:
        validate_train(times, "spikes[u7]")
    assert e.value.field == "spikes[u7]" and msg in e.value.message


def test_files_round_trip_and_errors_name_the_unit(tmp_path):
    tr = SpikeTrains.from_lists([np.arange(0, 500, 50.0), np.array([1.0, 2.5, 9.0, 20.0])], 600, units=["a", "b"])
    for name in ("s.npz", "s.csv"):
        back = read_spikes(write_spikes(tmp_path / name, tr))
        assert back.units == ["a", "b"]
        torch.testing.assert_close(back.times, tr.times, equal_nan=True, rtol=0, atol=1e-3)
    assert read_spikes(tmp_path / "s.npz").duration == 600
    csv = "unit,time\nx,1\nx,2\ny,5\nx,3\n"
    with pytest.raises(InputError) as e:
        parse_csv(csv)
    assert e.value.field == "spikes[y]" and "1 spike" in e.value.message
    with pytest.raises(InputError) as e:
        parse_csv("unit,time\nx,1\nx,zz\n")
    assert e.value.field == "spikes[time]"
    with pytest.raises(InputError) as e:
        parse_csv("# nothing\n")
    assert e.value.field == "spikes"
    np.savez(tmp_path / "bad.npz", t=np.arange(3.0))
    with pytest.raises(InputError) as e:
        read_spikes(tmp_path / "bad.npz")
    assert e.value.field == "spikes[times]"
    single = parse_csv("time\n0\n10\n25\n")      # one unit, header 'time'
    assert single.counts.tolist() == [3]
    with pytest.raises(InputError) as e:
        read_spikes(tmp_path / "missing.csv")
    assert e.value.field == "spikes"


def test_from_flat_sorts_per_unit_at_full_time_resolution():
    rng = np.random.default_rng(0)
    units = torch.from_numpy(rng.integers(0, 20000, 5000))
    times = torch.from_numpy(rng.random(5000) * 10000.0)
    tr = SpikeTrains.from_flat(units, times, 20000, 10000.0)
    assert int(tr.counts.sum()) == 5000
    d = tr.times[:, 1:] - tr.times[:, :-1]
    assert (d[~torch.isnan(d)] > 0).all()
    u = int(units[0])
    torch.testing.assert_close(tr.row(u), np.sort(times[units == u].numpy()))
