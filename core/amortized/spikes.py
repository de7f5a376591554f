"""The spike container shared by the simulators, recordings and the features."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Spikes:
    """Spike times of a batch of networks (or of one recording, batch 1).

    ``batch``, ``unit`` (int64) and ``time`` (float64, seconds) are (n_spikes,); cells ``0..n_exc[b]-1`` of
    network ``b`` are excitatory, ``n_exc[b]..n_units[b]-1`` inhibitory (a recording: all excitatory, pooled
    as the reference pools MEA electrodes). ``flagged`` (B,): stopped early as silent or exploding."""

    batch: np.ndarray
    unit: np.ndarray
    time: np.ndarray
    n_units: np.ndarray
    n_exc: np.ndarray
    duration: float
    flagged: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self):
        self.batch = np.asarray(self.batch, dtype=np.int64)
        self.unit = np.asarray(self.unit, dtype=np.int64)
        self.time = np.asarray(self.time, dtype=np.float64)
        self.n_units = np.atleast_1d(np.asarray(self.n_units, dtype=np.int64))
        self.n_exc = np.atleast_1d(np.asarray(self.n_exc, dtype=np.int64))
        if self.flagged is None:
            self.flagged = np.zeros(len(self.n_units), dtype=bool)
        self.flagged = np.asarray(self.flagged, dtype=bool)

    @property
    def size(self) -> int:
        """Number of networks B."""
        return len(self.n_units)

    def select(self, b: int) -> "Spikes":
        """Network ``b`` alone (batch 1)."""
        m = self.batch == b
        return Spikes(np.zeros(int(m.sum()), np.int64), self.unit[m], self.time[m], self.n_units[b:b + 1],
                      self.n_exc[b:b + 1], self.duration, self.flagged[b:b + 1])

    def to_npz_dict(self, prefix: str = "") -> dict[str, np.ndarray]:
        return {f"{prefix}batch": self.batch, f"{prefix}unit": self.unit, f"{prefix}time": self.time,
                f"{prefix}n_units": self.n_units, f"{prefix}n_exc": self.n_exc,
                f"{prefix}duration": np.array(self.duration), f"{prefix}flagged": self.flagged}

    @classmethod
    def from_npz_dict(cls, d, prefix: str = "") -> "Spikes":
        return cls(d[f"{prefix}batch"], d[f"{prefix}unit"], d[f"{prefix}time"], d[f"{prefix}n_units"],
                   d[f"{prefix}n_exc"], float(d[f"{prefix}duration"]), d[f"{prefix}flagged"])
