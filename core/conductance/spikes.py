"""Spike trains: the batched container, the spike-time file formats, and input validation.

File formats (the same as the rest of the project's spike-time inputs):

* **NPZ**: arrays ``times`` (ms, float) and ``units`` (int or str, same length), one row per spike; or a
  single array ``times`` (all spikes of one unit). An optional scalar ``duration`` (ms) gives the length of
  the recording.
* **CSV**: a header with a ``time`` (or ``times``/``t``, ms) column and an optional ``unit`` (or
  ``units``/``unit_id``) column; one spike per row. Lines starting with ``#`` are comments.

Validation (field names in the errors): ``times`` must be finite and non-negative, sorted within each unit,
and a unit needs at least 3 spikes (2 ISIs) to be analysed (``spikes[UNIT]``); an empty file is an error
on ``spikes``.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.errors import InputError

Tensor = torch.Tensor

MIN_SPIKES = 3


@dataclass
class SpikeTrains:
    """Batched spike times: ``times`` (N, S) ms, NaN-padded and sorted per row; ``counts`` (N,);
    ``duration`` the recorded window (ms); ``units`` (N,) labels."""

    times: Tensor
    counts: Tensor
    duration: float
    units: list | None = None

    def __len__(self) -> int:
        return self.times.shape[0]

    def row(self, i: int) -> np.ndarray:
        return self.times[i, : int(self.counts[i])].cpu().numpy()

    def subset(self, idx) -> "SpikeTrains":
        idx = torch.as_tensor(idx)
        units = [self.units[int(i)] for i in idx] if self.units is not None else None
        c = self.counts[idx]
        width = int(c.max()) if len(c) else 0
        return SpikeTrains(self.times[idx][:, :width], c, self.duration, units)

    @classmethod
    def from_lists(cls, trains: list, duration: float | None = None, units: list | None = None) -> "SpikeTrains":
        counts = torch.tensor([len(t) for t in trains], dtype=torch.long)
        width = int(counts.max()) if len(trains) else 0
        times = torch.full((len(trains), width), float("nan"), dtype=torch.float64)
        for i, t in enumerate(trains):  # building from ragged input (file parsing), not per-sample math
            if len(t):
                times[i, : len(t)] = torch.as_tensor(np.asarray(t, dtype=np.float64))
        if duration is None:
            duration = float(np.nanmax(times.numpy())) if counts.sum() > 0 else 0.0
        return cls(times, counts, float(duration), units)

    @classmethod
    def from_flat(cls, unit_idx: Tensor, t: Tensor, n: int, duration: float) -> "SpikeTrains":
        """From flat (unit index, time) pairs: sorted per unit into (n, S) NaN-padded rows (vectorized)."""
        order = torch.argsort(t, stable=True)
        unit_idx, t = unit_idx[order], t[order]
        order = torch.argsort(unit_idx, stable=True)              # by unit, times sorted within
        unit_idx, t = unit_idx[order], t[order]
        counts = torch.bincount(unit_idx, minlength=n)
        width = int(counts.max()) if len(t) else 0
        start = torch.cumsum(counts, 0) - counts
        pos = torch.arange(len(t), device=t.device) - start[unit_idx]
        times = torch.full((n, width), float("nan"), dtype=torch.float64, device=t.device)
        times[unit_idx, pos] = t.double()
        return cls(times, counts, float(duration))

    def to_flat(self) -> tuple[np.ndarray, np.ndarray]:
        """(units, times) one row per spike."""
        mask = ~torch.isnan(self.times)
        rows = torch.nonzero(mask)[:, 0].cpu().numpy()
        labels = np.asarray(self.units if self.units is not None else np.arange(len(self)), dtype=object)
        return labels[rows], self.times[mask].cpu().numpy()


def validate_train(times, field: str = "spikes") -> np.ndarray:
    """One unit's spike times as float64, or InputError naming ``field``: empty, fewer than 3 spikes,
    non-finite, negative, unsorted."""
    t = np.asarray(times, dtype=np.float64).ravel()
    if t.size == 0:
        raise InputError(field, "no spikes: the spike train is empty")
    if not np.all(np.isfinite(t)):
        raise InputError(field, "spike times must be finite numbers (ms)")
    if np.any(t < 0):
        raise InputError(field, f"negative spike time {t[t < 0][0]:g} ms; times are ms from the recording start")
    if np.any(np.diff(t) < 0):
        k = int(np.flatnonzero(np.diff(t) < 0)[0])
        raise InputError(field, f"spike times are not sorted (t[{k + 1}] = {t[k + 1]:g} < t[{k}] = {t[k]:g})")
    if t.size < MIN_SPIKES:
        raise InputError(field, f"{t.size} spike{'s' if t.size != 1 else ''}: at least {MIN_SPIKES} are needed "
                                f"(2 inter-spike intervals); fewer means a silent neuron")
    return t


def _group(units: np.ndarray, times: np.ndarray, duration: float | None, field: str) -> SpikeTrains:
    if times.size == 0:
        raise InputError(field, "no spikes: the file holds no spike times")
    if units.shape != times.shape:
        raise InputError(f"{field}[units]", f"{units.size} unit ids for {times.size} times")
    labels = list(dict.fromkeys(units.tolist()))
    trains = []
    for lab in labels:  # per unit (a handful), not per spike
        trains.append(validate_train(times[units == lab], f"{field}[{lab}]"))
    return SpikeTrains.from_lists(trains, duration, units=labels)


def read_spikes(path, field: str = "spikes") -> SpikeTrains:
    """Spike trains from an NPZ or CSV file (formats in the module docstring); InputError naming the field."""
    p = Path(path)
    if not p.exists():
        raise InputError(field, f"no such file: {p}")
    try:
        if p.suffix.lower() == ".npz":
            with np.load(p, allow_pickle=False) as z:
                if "times" not in z:
                    raise InputError(f"{field}[times]", f"{p.name} has no 'times' array (has {', '.join(z.files)})")
                times = np.asarray(z["times"], dtype=np.float64).ravel()
                units = np.asarray(z["units"]).ravel() if "units" in z else np.zeros(times.size, dtype=int)
                duration = float(z["duration"]) if "duration" in z else None
            return _group(units, times, duration, field)
        return parse_csv(p.read_text(), field)
    except InputError:
        raise
    except (ValueError, OSError, KeyError) as exc:
        raise InputError(field, f"cannot read {p.name}: {exc}") from exc


def parse_csv(text: str, field: str = "spikes") -> SpikeTrains:
    """Spike trains from CSV text with a ``time`` column and an optional ``unit`` column."""
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise InputError(field, "no spikes: the file is empty")
    rows = list(csv.reader(io.StringIO("\n".join(lines))))
    header = [h.strip().lower() for h in rows[0]]
    tcol = next((header.index(h) for h in ("time", "times", "t", "time_ms") if h in header), None)
    if tcol is None:
        # header-less single column of times
        try:
            times = np.array([float(r[0]) for r in rows], dtype=np.float64)
        except ValueError:
            raise InputError(f"{field}[time]", f"no 'time' column (columns: {', '.join(header)})") from None
        return _group(np.zeros(times.size, dtype=int), times, None, field)
    ucol = next((header.index(h) for h in ("unit", "units", "unit_id", "neuron") if h in header), None)
    body = rows[1:]
    try:
        times = np.array([float(r[tcol]) for r in body], dtype=np.float64)
    except (ValueError, IndexError) as exc:
        raise InputError(f"{field}[time]", f"not a number: {exc}") from exc
    units = np.array([r[ucol].strip() for r in body]) if ucol is not None else np.zeros(times.size, dtype=int)
    return _group(units, times, None, field)


def write_spikes(path, trains: SpikeTrains) -> Path:
    """Write spike trains as NPZ (``times``, ``units``, ``duration``) or CSV (``unit,time``) by suffix."""
    p = Path(path)
    units, times = trains.to_flat()
    if p.suffix.lower() == ".npz":
        np.savez(p, times=times, units=np.asarray([str(u) for u in units]), duration=trains.duration)
    else:
        with p.open("w") as fh:
            fh.write("unit,time\n")
            fh.writelines(f"{u},{t:.4f}\n" for u, t in zip(units, times))
    return p
