"""Summary features of spiking activity, as AutoMIND defines them (``automind-notes.md`` section 3),
vectorized over the batch (numpy; burst peak finding loops over networks, scipy's find_peaks has no batch).

The population is the excitatory cells (the reference's ``pop_sampler={"exc": None}``); a recording's units
are all counted as excitatory. Everything is computed in the analysis window [t_start, duration).
Features that cannot be computed get documented fill values, never NaN (:data:`FILL_RULES`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import param
from scipy import ndimage, signal

from ..errors import InputError, parameter_error
from .spikes import Spikes

RATE_FLOOR = 0.01  # Hz: log10 of rates below this is log10(0.01) = -2
PSD_FLOOR = 1e-8   # (Hz^2/Hz): a silent network's log PSD is -8

FILL_RULES = {
    "rate_mu / rate_sigma": f"log10 of max(rate, {RATE_FLOOR} Hz): a silent network gives -2",
    "isi_*": "cells with >= 3 spikes only; no such cell: isi_cv_mu = isi_cv_sigma = 0, isi_mean_mu = log10(window)",
    "burst_*": "fewer than 2 bursts: burst_interval_mean = log10(window), burst_interval_cv = 0, "
               "burst_width_mean = burst_offset_mean = log10(rate bin), burst_peak_mean = log10(max smoothed rate)",
    "psd_*": f"log10 of max(band-mean PSD, {PSD_FLOOR})",
}


class FeatureSettings(param.Parameterized):
    """Constants of the features. Defaults are the reference's except where marked 'scaled'."""

    dt_rate = param.Number(1.0, bounds=(0.1, 100), doc="population-rate bin (ms), as the reference")
    psd_nperseg = param.Number(1.0, bounds=(0.05, None), doc=(
        "Welch segment length (s); scaled: the reference's 2 s segments need runs of tens of seconds"))
    psd_overlap = param.Number(0.75, bounds=(0, 0.95), doc="Welch segment overlap, as the reference")
    psd_bands = param.Integer(12, bounds=(1, 100), doc=(
        "log-spaced bands between psd_fmin and psd_fmax whose mean log10 PSD are features; scaled: the "
        "reference feeds all 990 bins (0.5-495 Hz) to a flow trained on ~1e6 simulations"))
    psd_fmin = param.Number(2.0, bounds=(0.1, None), doc="lowest band edge (Hz)")
    psd_fmax = param.Number(490.0, bounds=(1, None), doc="highest band edge (Hz); at most half the rate sampling rate")
    smooth_std = param.Number(5.0, bounds=(0.1, None), doc=(
        "Gaussian smoothing of the rate for burst detection (ms), window 7 sd; scaled: the reference's 0.5 ms "
        "with 2000 cells; 400 cells make a noisier rate"))
    burst_min_rate = param.Number(5.0, bounds=(0, None), doc="no bursts if the smoothed rate stays below (Hz)")
    burst_prominence = param.Number(0.5, bounds=(0, 1), doc="peak prominence as a fraction of the max rate")
    burst_distance = param.Number(0.2, bounds=(0.001, None), doc=(
        "minimum time between burst peaks (s); scaled: the reference's 1 s allows at most 2 bursts in 2 s"))
    burst_wlen = param.Number(10.0, bounds=(0.01, None), doc="prominence window (s), as the reference")
    burst_rel_height = param.Number(0.95, bounds=(0, 1), doc="burst width measured at this fraction of prominence")

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.param if k != "name"}

    @classmethod
    def from_dict(cls, d: dict | None, field: str = "features") -> "FeatureSettings":
        d = dict(d or {})
        unknown = set(d) - set(cls.param)
        if unknown:
            key = sorted(unknown)[0]
            raise InputError(f"{field}[{key}]", f"unknown feature setting {key!r}")
        try:
            return cls(**d)
        except (ValueError, TypeError) as exc:
            raise parameter_error(field, exc) from exc


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    unit: str
    doc: str


BASE_FEATURES: tuple[FeatureSpec, ...] = (
    FeatureSpec("rate_mu", "log10 Hz", "mean firing rate of the E cells"),
    FeatureSpec("rate_sigma", "log10 Hz", "sd of the E cells' firing rates"),
    FeatureSpec("isi_cv_mu", "1", "mean ISI coefficient of variation (cells with >= 3 spikes)"),
    FeatureSpec("isi_cv_sigma", "1", "sd across cells of the ISI CV"),
    FeatureSpec("isi_mean_mu", "log10 s", "mean over cells of the mean ISI"),
    FeatureSpec("active_frac", "1", "fraction of E cells with >= 3 spikes"),
    FeatureSpec("burst_rate", "1/s", "network bursts per second"),
    FeatureSpec("burst_interval_mean", "log10 s", "mean inter-burst (peak-to-peak) interval"),
    FeatureSpec("burst_interval_cv", "1", "CV of the inter-burst intervals"),
    FeatureSpec("burst_width_mean", "log10 s", "mean burst width at 95 % of prominence"),
    FeatureSpec("burst_offset_mean", "log10 s", "mean time from peak to the right width crossing"),
    FeatureSpec("burst_peak_mean", "log10 Hz", "mean burst peak of the smoothed population rate"),
)


def band_edges(settings: FeatureSettings) -> np.ndarray:
    """(n_bands + 1,) log-spaced band edges in Hz."""
    return np.geomspace(settings.psd_fmin, settings.psd_fmax, settings.psd_bands + 1)


def feature_specs(settings: FeatureSettings | None = None) -> list[FeatureSpec]:
    """Names, units and meaning of every feature column, in order."""
    settings = settings or FeatureSettings()
    edges = band_edges(settings)
    psd = [FeatureSpec(f"psd_{lo:.3g}-{hi:.3g}Hz", "log10 Hz^2/Hz",
                       f"mean Welch PSD of the E population rate in [{lo:.3g}, {hi:.3g}) Hz")
           for lo, hi in zip(edges[:-1], edges[1:])]
    return list(BASE_FEATURES) + psd


def feature_names(settings: FeatureSettings | None = None) -> list[str]:
    return [f.name for f in feature_specs(settings)]


def population_rate(spikes: Spikes, t_start: float, dt_rate: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """E population rate (Hz per cell), (B, T) with bins of ``dt_rate`` ms from ``t_start``; and bin centres (T,)."""
    dt = dt_rate * 1e-3
    T = max(int(np.floor((spikes.duration - t_start) / dt + 1e-9)), 1)
    B = spikes.size
    exc = spikes.unit < spikes.n_exc[spikes.batch]
    k = np.floor((spikes.time - t_start) / dt + 1e-9).astype(np.int64)
    keep = exc & (k >= 0) & (k < T)
    counts = np.bincount(spikes.batch[keep] * T + k[keep], minlength=B * T).reshape(B, T)
    rate = counts / (np.maximum(spikes.n_exc, 1)[:, None] * dt)
    return rate, t_start + (np.arange(T) + 0.5) * dt


def isi_statistics(spikes: Spikes, t_start: float) -> dict[str, np.ndarray]:
    """Per-network (B,) rate and ISI summaries over E cells, computed without loops."""
    B = spikes.size
    window = spikes.duration - t_start
    n_max = int(spikes.n_units.max()) if B else 1
    exc = (spikes.unit < spikes.n_exc[spikes.batch]) & (spikes.time >= t_start)
    b, u, t = spikes.batch[exc], spikes.unit[exc], spikes.time[exc]
    order = np.lexsort((t, u, b))
    b, u, t = b[order], u[order], t[order]
    cell = b * n_max + u
    n_cells = B * n_max
    count = np.bincount(cell, minlength=n_cells).astype(float)
    same = np.r_[False, cell[1:] == cell[:-1]] if len(cell) else np.zeros(0, bool)
    isi = np.diff(t, prepend=0.0)[same] if len(t) else np.zeros(0)
    isi_cell = cell[same]
    s1 = np.bincount(isi_cell, weights=isi, minlength=n_cells)
    s2 = np.bincount(isi_cell, weights=isi ** 2, minlength=n_cells)
    n_isi = np.maximum(count - 1, 0)
    ok = count >= 3
    mean = np.where(ok, s1 / np.maximum(n_isi, 1), 0.0)
    var = np.where(ok, s2 / np.maximum(n_isi, 1) - mean ** 2, 0.0)
    cv = np.where(ok, np.sqrt(np.maximum(var, 0)) / np.where(mean > 0, mean, 1.0), 0.0)
    is_exc_cell = (np.arange(n_max)[None, :] < spikes.n_exc[:, None]).reshape(-1)
    net = np.repeat(np.arange(B), n_max)
    rate = count / window

    def mean_std(x: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n = np.bincount(net, weights=mask.astype(float), minlength=B)
        m = np.bincount(net, weights=x * mask, minlength=B) / np.maximum(n, 1)
        v = np.bincount(net, weights=x ** 2 * mask, minlength=B) / np.maximum(n, 1) - m ** 2
        return m, np.sqrt(np.maximum(v, 0)), n

    r_mu, r_sd, n_e = mean_std(rate, is_exc_cell)
    active = ok & is_exc_cell
    cv_mu, cv_sd, n_act = mean_std(cv, active)
    isi_mu, _, _ = mean_std(mean, active)
    return {"rate_mu": r_mu, "rate_sigma": r_sd, "isi_cv_mu": cv_mu, "isi_cv_sigma": cv_sd,
            "isi_mean_mu": np.where(n_act > 0, isi_mu, window), "active_frac": n_act / np.maximum(n_e, 1),
            "n_active": n_act}


def welch_psd(rate: np.ndarray, settings: FeatureSettings) -> tuple[np.ndarray, np.ndarray]:
    """Welch PSD of the unsmoothed rate (B, T): frequencies (F,) and density (B, F) (Hann, density scaling)."""
    fs = 1000.0 / settings.dt_rate
    nperseg = min(int(round(settings.psd_nperseg * fs)), rate.shape[-1])
    f, p = signal.welch(rate, fs=fs, nperseg=nperseg, noverlap=int(settings.psd_overlap * nperseg), axis=-1)
    return f, p


def band_psd(f: np.ndarray, p: np.ndarray, settings: FeatureSettings) -> np.ndarray:
    """log10 of the mean PSD in each band: (B, n_bands). A band without a bin takes its nearest bin."""
    edges = band_edges(settings)
    out = np.empty((p.shape[0], len(edges) - 1))
    for k, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
        m = (f >= lo) & (f < hi)
        out[:, k] = p[:, m].mean(1) if m.any() else p[:, np.argmin(np.abs(f - np.sqrt(lo * hi)))]
    return np.log10(np.maximum(out, PSD_FLOOR))


def detect_bursts(rate: np.ndarray, settings: FeatureSettings) -> list[dict[str, np.ndarray]]:
    """Network bursts of each row of the rate (B, T): peak index, peak rate, width, onset and offset (s)."""
    dt = settings.dt_rate * 1e-3
    sm = ndimage.gaussian_filter1d(rate.astype(float), settings.smooth_std / settings.dt_rate, axis=-1,
                                   mode="constant", truncate=3.5)
    out = []
    for r in sm:
        top = float(r.max()) if r.size else 0.0
        empty = {"peaks": np.zeros(0, int), "heights": np.zeros(0), "widths": np.zeros(0),
                 "onsets": np.zeros(0), "offsets": np.zeros(0), "max_rate": top}
        if top < settings.burst_min_rate:
            out.append(empty)
            continue
        wlen = max(int(settings.burst_wlen / dt), 3)
        peaks, _ = signal.find_peaks(r, prominence=settings.burst_prominence * top,
                                     distance=max(int(settings.burst_distance / dt), 1), wlen=wlen)
        if len(peaks) == 0:
            out.append(empty)
            continue
        widths, _, left, right = signal.peak_widths(r, peaks, rel_height=settings.burst_rel_height, wlen=wlen)
        out.append({"peaks": peaks, "heights": r[peaks], "widths": widths * dt, "onsets": (peaks - left) * dt,
                    "offsets": (right - peaks) * dt, "max_rate": top})
    return out


def burst_statistics(rate: np.ndarray, window: float, settings: FeatureSettings) -> dict[str, np.ndarray]:
    """Per-network (B,) burst features with the fill rules for fewer than 2 bursts."""
    dt = settings.dt_rate * 1e-3
    bursts = detect_bursts(rate, settings)
    B = len(bursts)
    res = {k: np.empty(B) for k in ("burst_rate", "burst_interval_mean", "burst_interval_cv",
                                    "burst_width_mean", "burst_offset_mean", "burst_peak_mean")}
    for i, bu in enumerate(bursts):
        n = len(bu["peaks"])
        res["burst_rate"][i] = n / window
        if n >= 2:
            iv = np.diff(bu["peaks"]) * dt
            res["burst_interval_mean"][i] = np.log10(iv.mean())
            res["burst_interval_cv"][i] = iv.std() / iv.mean()
            res["burst_width_mean"][i] = np.log10(max(bu["widths"].mean(), dt))
            res["burst_offset_mean"][i] = np.log10(max(bu["offsets"].mean(), dt))
            res["burst_peak_mean"][i] = np.log10(max(bu["heights"].mean(), RATE_FLOOR))
        else:
            res["burst_interval_mean"][i] = np.log10(window)
            res["burst_interval_cv"][i] = 0.0
            res["burst_width_mean"][i] = res["burst_offset_mean"][i] = np.log10(dt)
            res["burst_peak_mean"][i] = np.log10(max(bu["max_rate"], RATE_FLOOR))
    return res


def compute_features(spikes: Spikes, settings: FeatureSettings | None = None, t_start: float = 0.1) -> np.ndarray:
    """Features (B, F) float32 in :func:`feature_names` order; finite by construction."""
    settings = settings or FeatureSettings()
    window = spikes.duration - t_start
    if window * 1000.0 < 4 * settings.dt_rate:
        raise InputError("duration", f"the analysis window ({window:.3g} s after t_start) is too short")
    rate, _ = population_rate(spikes, t_start, settings.dt_rate)
    isi = isi_statistics(spikes, t_start)
    bursts = burst_statistics(rate, window, settings)
    f, p = welch_psd(rate, settings)
    cols = [np.log10(np.maximum(isi["rate_mu"], RATE_FLOOR)), np.log10(np.maximum(isi["rate_sigma"], RATE_FLOOR)),
            isi["isi_cv_mu"], isi["isi_cv_sigma"], np.log10(np.maximum(isi["isi_mean_mu"], 1e-4)),
            isi["active_frac"]]
    cols += [bursts[k] for k in ("burst_rate", "burst_interval_mean", "burst_interval_cv", "burst_width_mean",
                                 "burst_offset_mean", "burst_peak_mean")]
    x = np.concatenate([np.stack(cols, 1), band_psd(f, p, settings)], 1)
    return np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)


REGIMES = ("silent", "asynchronous", "oscillatory", "bursting")


def classify_regimes(x: np.ndarray, flagged: np.ndarray | None = None,
                     settings: FeatureSettings | None = None, window: float = 2.4) -> np.ndarray:
    """A coarse label per network (B,) from its features (a heuristic for reports, not a feature):
    silent (flagged, or E rate below 0.1 Hz); bursting (at least 2 network bursts whose peak rate is at
    least 5x the mean rate); oscillatory (a PSD band above 5 Hz at least 10x the median band); otherwise
    asynchronous."""
    settings = settings or FeatureSettings()
    names = feature_names(settings)
    col = {n: x[:, i] for i, n in enumerate(names)}
    psd_idx = [i for i, n in enumerate(names) if n.startswith("psd_")]
    lows = band_edges(settings)[:-1]
    psd = x[:, psd_idx]
    above5 = psd[:, lows >= 5.0] if (lows >= 5.0).any() else psd
    peaked = (above5.max(1) - np.median(psd, 1)) >= 1.0
    bursting = (col["burst_rate"] * window >= 2 - 1e-6) & (col["burst_peak_mean"] - col["rate_mu"] >= np.log10(5))
    silent = col["rate_mu"] <= -1.0
    if flagged is not None:
        silent = silent | np.asarray(flagged, bool)
    out = np.where(silent, "silent", np.where(bursting, "bursting", np.where(peaked, "oscillatory", "asynchronous")))
    return out
