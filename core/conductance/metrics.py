"""Activity metrics from spike times (notes sec. 6), vectorized over a batch of NaN-padded trains.

* class: ``silent`` (< 3 spikes), ``spiking`` (CV of the ISIs <= 0.15), else ``bursting``.
* ``f_spiking``: mean over ISIs of 1000 / ISI (Hz).
* bursts: ISI threshold = (max ISI + min ISI) / 2; an ISI above it starts a new burst; the first and the
  last burst are dropped (they may be cut by the window), then bursts with >= 2 spikes are kept.
  ``spikes_per_burst`` = mean count; ``burst_duration`` = mean(last - first spike) ms;
  ``intra_burst_f`` = mean(count / duration) * 1000 Hz; ``inter_burst_f`` = 1000 / mean(difference of
  burst onsets) Hz. Undefined -> NaN (e.g. all burst metrics of a tonic spiker).
"""

from __future__ import annotations

import numpy as np
import torch

from .spikes import MIN_SPIKES, SpikeTrains

Tensor = torch.Tensor

METRICS = ("f_spiking", "burst_duration", "intra_burst_f", "inter_burst_f", "spikes_per_burst")
CLASSES = ("silent", "spiking", "bursting")
CV_SPIKING = 0.15


def _nanmean(x: Tensor, mask: Tensor, dim: int = 1) -> Tensor:
    n = mask.sum(dim)
    s = torch.where(mask, x, torch.zeros_like(x)).sum(dim)
    return torch.where(n > 0, s / n.clamp_min(1), torch.full_like(s, float("nan")))


def activity_metrics(trains: SpikeTrains) -> dict[str, Tensor]:
    """Per neuron: ``cls`` (N,) 0 silent / 1 spiking / 2 bursting, ``cv`` and the five METRICS (N,)."""
    t = trains.times.double()
    n = t.shape[0]
    if t.shape[1] < 2:
        t = torch.cat([t, torch.full((n, 2 - t.shape[1]), float("nan"), dtype=t.dtype)], 1)
    counts = trains.counts
    isi = t[:, 1:] - t[:, :-1]                                  # (N, S-1), NaN where padded
    valid = ~torch.isnan(isi)
    mean_isi = _nanmean(isi, valid)
    var = _nanmean((isi - mean_isi[:, None]) ** 2, valid)
    cv = var.sqrt() / mean_isi
    silent = counts < MIN_SPIKES
    cls = torch.where(silent, 0, torch.where(cv <= CV_SPIKING, 1, 2))
    f_spk = _nanmean(1000.0 / isi, valid)

    # bursts: a new burst after every ISI above the midpoint threshold
    big = torch.finfo(t.dtype).max
    imax = torch.where(valid, isi, torch.full_like(isi, -big)).max(1).values
    imin = torch.where(valid, isi, torch.full_like(isi, big)).min(1).values
    thr = (imax + imin) / 2
    starts = torch.cat([torch.ones(n, 1, dtype=torch.bool), valid & (isi > thr[:, None])], 1)  # spike opens a burst
    spike_ok = ~torch.isnan(t)
    bid = torch.cumsum(starts.long(), 1) - 1                                 # burst id of each spike
    nb = int(bid.max()) + 1 if bid.numel() else 1
    bid = torch.where(spike_ok, bid, torch.full_like(bid, nb))               # padded spikes -> dummy bin
    ones = spike_ok.double()
    cnt = torch.zeros(n, nb + 1, dtype=t.dtype).scatter_add_(1, bid, ones)[:, :nb]
    tz = torch.where(spike_ok, t, torch.zeros_like(t))
    first = torch.full((n, nb + 1), big, dtype=t.dtype).scatter_reduce_(1, bid, torch.where(spike_ok, t, torch.full_like(t, big)), "amin")[:, :nb]
    last = torch.full((n, nb + 1), -big, dtype=t.dtype).scatter_reduce_(1, bid, torch.where(spike_ok, tz, torch.full_like(t, -big)), "amax")[:, :nb]
    n_bursts = torch.where(spike_ok, bid, torch.full_like(bid, -1)).max(1).values + 1      # (N,)
    k = torch.arange(nb)[None, :]
    keep = (k > 0) & (k < (n_bursts - 1)[:, None]) & (cnt >= 2)
    dur = last - first
    durk = torch.where(keep, dur, torch.ones_like(dur))
    spb = _nanmean(cnt, keep)
    bdur = _nanmean(dur, keep)
    intra = _nanmean(cnt / durk, keep) * 1000.0
    # inter-burst: difference of consecutive kept onsets (kept bursts are consecutive after dropping edges)
    onset = torch.where(keep, first, torch.full_like(first, float("nan")))
    d_on = onset[:, 1:] - onset[:, :-1]
    inter = 1000.0 / _nanmean(d_on, ~torch.isnan(d_on))
    nan = torch.full((n,), float("nan"), dtype=t.dtype)
    bursting = cls == 2
    out = {
        "cls": cls, "cv": torch.where(silent, nan, cv),
        "f_spiking": torch.where(silent, nan, f_spk),
        "burst_duration": torch.where(bursting, bdur, nan),
        "intra_burst_f": torch.where(bursting, intra, nan),
        "inter_burst_f": torch.where(bursting, inter, nan),
        "spikes_per_burst": torch.where(bursting, spb, nan),
    }
    return out


def metrics_table(trains: SpikeTrains) -> dict[str, np.ndarray]:
    """Metrics as numpy columns, with ``class`` as strings (for CSV and tables)."""
    m = activity_metrics(trains)
    out = {"class": np.array(CLASSES, dtype=object)[m["cls"].numpy()], "n_spikes": trains.counts.numpy()}
    out.update({k: m[k].numpy() for k in ("cv",) + METRICS})
    return out
