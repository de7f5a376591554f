"""Targets for inference: a held-out simulation (``heldout:K``) or a recording's spike times.

Spike-time file formats (times in seconds, one row per spike):

* ``.npz``: arrays ``units`` (or ``unit``/``unit_ids``/``ids``/``senders``) and ``times`` (or ``time``/
  ``spike_times``/``t``); optional scalar ``duration`` (s; default: last spike) and ``n_units``.
* ``.csv``: a header row with a unit column (``unit``, ``unit_id``, ``id``, ``neuron``, ``sender`` or
  ``electrode``) and a time column (``time``, ``times``, ``t``, ``spike_time``); choose others with
  ``unit_column=`` / ``time_column=``.
* ``.nwb``: the file's units table (pynwb): each row's ``spike_times``.

All units are pooled as one excitatory population, as the reference pools MEA electrodes.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from .dataset import check_version, load_dataset
from .features import FeatureSettings, compute_features
from .spikes import Spikes

UNIT_KEYS = ("units", "unit", "unit_ids", "unit_id", "ids", "id", "senders", "sender", "neuron", "electrode")
TIME_KEYS = ("times", "time", "spike_times", "spike_time", "t")


@dataclass
class Target:
    """Features (F,) of a target, its spikes (for rasters), a label, and theta (28,) when simulated."""

    x: np.ndarray
    spikes: Spikes
    label: str
    theta: np.ndarray | None = None


def spikes_from_arrays(units, times, duration: float | None = None, n_units: int | None = None,
                       field: str = "target") -> Spikes:
    """A recording (batch 1) from unit ids and times (s); unit ids are relabelled 0..n-1."""
    try:
        units = np.asarray(units)
        times = np.asarray(times, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InputError(field, f"spike times must be numbers: {exc}") from exc
    if units.ndim != 1 or times.ndim != 1 or len(units) != len(times):
        raise InputError(field, f"unit ids and times must be 1-D and of equal length, got {units.shape} and {times.shape}")
    if len(times) == 0:
        raise InputError(field, "the file holds no spikes")
    if not np.isfinite(times).all():
        raise InputError(field, "spike times contain NaN or infinite values")
    if (times < 0).any():
        raise InputError(field, "spike times must be >= 0 (seconds)")
    labels, idx = np.unique(units, return_inverse=True)
    n = int(n_units) if n_units is not None else len(labels)
    n = max(n, len(labels))
    duration = float(duration) if duration is not None else float(times.max()) + 1e-3
    if duration <= times.max():
        raise InputError(f"{field}.duration", f"duration {duration} s ends before the last spike ({times.max()} s)")
    return Spikes(np.zeros(len(times), np.int64), idx, times, [n], [n], duration)


def _pick(keys, candidates, field, what, chosen=None):
    if chosen is not None:
        if chosen not in keys:
            raise InputError(field, f"unknown {what} column {chosen!r}; the file has {', '.join(keys)}")
        return chosen
    for c in candidates:
        if c in keys:
            return c
    raise InputError(field, f"no {what} column (one of {', '.join(candidates)}); the file has {', '.join(keys) or 'none'}")


def load_spike_file(path: str | Path, duration: float | None = None, unit_column: str | None = None,
                    time_column: str | None = None) -> Spikes:
    """Spikes of a recording from an NPZ, CSV or NWB file (see the module doc); InputErrors name "target"."""
    path = Path(path)
    if not path.is_file():
        raise InputError("target", f"no such file: {path}")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as d:
                keys = list(d.keys())
                u = d[_pick(keys, UNIT_KEYS, "target", "unit", unit_column)]
                t = d[_pick(keys, TIME_KEYS, "target", "time", time_column)]
                dur = float(d["duration"]) if duration is None and "duration" in keys else duration
                n = int(d["n_units"]) if "n_units" in keys else None
        except InputError:
            raise
        except Exception as exc:
            raise InputError("target", f"{path.name} is not a readable NPZ file: {exc}") from exc
        return spikes_from_arrays(u, t, dur, n)
    if suffix == ".csv":
        try:
            with open(path, newline="") as fh:
                rows = list(csv.reader(fh))
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError("target", f"{path.name} is not a readable CSV file: {exc}") from exc
        if not rows:
            raise InputError("target", f"{path.name} is empty")
        header = [h.strip() for h in rows[0]]
        uc = header.index(_pick(header, UNIT_KEYS, "target", "unit", unit_column))
        tc = header.index(_pick(header, TIME_KEYS, "target", "time", time_column))
        body = [r for r in rows[1:] if r and any(c.strip() for c in r)]
        try:
            t = np.array([float(r[tc]) for r in body])
        except (ValueError, IndexError) as exc:
            raise InputError("target", f"{path.name}: a time value is not a number ({exc})") from exc
        u = np.array([r[uc].strip() for r in body])
        return spikes_from_arrays(u, t, duration)
    if suffix == ".nwb":
        try:
            from pynwb import NWBHDF5IO

            with NWBHDF5IO(str(path), "r") as io:
                nwb = io.read()
                if nwb.units is None or len(nwb.units) == 0:
                    raise InputError("target", f"{path.name} has no units table")
                u, t = [], []
                for k in range(len(nwb.units)):
                    st = np.asarray(nwb.units.get_unit_spike_times(k), dtype=float)
                    u.append(np.full(len(st), k))
                    t.append(st)
        except InputError:
            raise
        except Exception as exc:
            raise InputError("target", f"{path.name} is not a readable NWB file: {exc}") from exc
        return spikes_from_arrays(np.concatenate(u), np.concatenate(t), duration, n_units=len(u))
    raise InputError("target", f"unknown spike file type {suffix!r}; use .npz, .csv or .nwb")


def save_spike_file(spikes: Spikes, path: str | Path, b: int = 0) -> Path:
    """Write network ``b``'s E spikes as a target file (.npz or .csv; the documented format)."""
    path = Path(path)
    m = (spikes.batch == b) & (spikes.unit < spikes.n_exc[b])
    if path.suffix.lower() == ".csv":
        with open(path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["unit", "time"])
            w.writerows(zip(spikes.unit[m].tolist(), spikes.time[m].tolist()))
    else:
        np.savez(path, units=spikes.unit[m], times=spikes.time[m], duration=spikes.duration,
                 n_units=int(spikes.n_exc[b]))
    return path


def heldout_target(root: str | Path, k: int) -> Target:
    """The K-th valid held-out simulation of a data set."""
    data = load_dataset(root, split="heldout", with_spikes=True)
    valid = np.flatnonzero(data["valid"])
    if not 0 <= k < len(valid):
        raise InputError("target", f"heldout:{k} does not exist: the data set has {len(valid)} valid held-out "
                         "simulations (0..{})".format(len(valid) - 1))
    i = int(valid[k])
    sizes = np.cumsum([s.size for s in data["spikes"]])
    c = int(np.searchsorted(sizes, i, side="right"))
    within = i - (int(sizes[c - 1]) if c else 0)
    return Target(data["x"][i], data["spikes"][c].select(within), f"heldout:{k}", data["theta"][i])


def resolve_target(root: str | Path, spec: str, duration: float | None = None) -> Target:
    """``heldout:K`` or a spike-file path -> a Target with features computed as the data set's."""
    spec = str(spec).strip()
    if spec.startswith("heldout:"):
        try:
            k = int(spec.split(":", 1)[1])
        except ValueError as exc:
            raise InputError("target", f"expected heldout:K with an integer K, got {spec!r}") from exc
        return heldout_target(root, k)
    data_meta = check_version(root)
    spikes = load_spike_file(spec, duration)
    fs = FeatureSettings.from_dict(data_meta["settings"]["features"])
    t_start = data_meta["settings"]["network"]["t_start"]
    x = compute_features(spikes, fs, t_start=t_start)[0]
    return Target(x, spikes, Path(spec).name)
