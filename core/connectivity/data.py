"""User data: latent trajectories (CSV/NPZ) or population activity (NPZ/CSV), turned into an Observation.

Formats (also in the README):
* NPZ latents: ``kappa`` (trials, T, R) or (T, R), and ``t`` (T,) or a scalar ``dt``.
* NPZ activity: ``x`` (trials, T, N) or (T, N), and ``t`` or ``dt``; an lrRNN is first fitted by gradient
  descent (``baseline.fit_activity_gd``) to get the latents and each unit's m loading.
* CSV: a header row; columns ``t``, optional ``trial``, then ``kappa1..kappaR`` (latents) or ``x1..xN``
  (activity); one row per (trial, time)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..errors import InputError
from .observation import Observation, field_from_trajectories, subsample_probes


def _check_finite(a: np.ndarray, name: str) -> None:
    bad = ~np.isfinite(a)
    if bad.any():
        idx = tuple(int(i[0]) for i in np.nonzero(bad))
        raise InputError(name, f"contains NaN or infinite values (first at index {idx}, {int(bad.sum())} in all)")


def _times(d: dict[str, Any], T: int) -> np.ndarray:
    if "t" in d:
        t = np.asarray(d["t"], dtype=float).reshape(-1)
        if t.shape[0] != T:
            raise InputError("t", f"has {t.shape[0]} times; the data have {T} time points")
        _check_finite(t, "t")
        if not np.all(np.diff(t) > 0):
            raise InputError("t", "times must increase strictly")
        if not np.allclose(np.diff(t), t[1] - t[0], rtol=1e-3):
            raise InputError("t", "times must be evenly spaced")
        return t
    if "dt" in d:
        dt = float(np.asarray(d["dt"]))
        if not dt > 0:
            raise InputError("dt", f"must be > 0; got {dt}")
        return np.arange(T) * dt
    raise InputError("t", "give the sample times `t` (T,) or a scalar `dt`")


def _read_csv(path: Path) -> dict[str, np.ndarray]:
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    if len(rows) < 2:
        raise InputError("data", f"{path.name}: needs a header row and data rows")
    header = [h.strip() for h in rows[0]]
    try:
        vals = np.array([[float(v) if v.strip() else np.nan for v in r] for r in rows[1:] if r], dtype=float)
    except ValueError as exc:
        raise InputError("data", f"{path.name}: not a number: {exc}") from None
    if vals.ndim != 2 or vals.shape[1] != len(header):
        raise InputError("data", f"{path.name}: every row needs {len(header)} values")
    if "t" not in header:
        raise InputError("t", f"{path.name}: needs a column `t`")
    kcols = [i for i, h in enumerate(header) if h.startswith("kappa")]
    xcols = [i for i, h in enumerate(header) if h.startswith("x")]
    if not kcols and not xcols:
        raise InputError("data", f"{path.name}: needs columns kappa1..kappaR (latents) or x1..xN (activity)")
    trial = vals[:, header.index("trial")] if "trial" in header else np.zeros(len(vals))
    trials = np.unique(trial)
    T = int((trial == trials[0]).sum())
    if any(int((trial == tr).sum()) != T for tr in trials):
        raise InputError("trial", "every trial needs the same number of time points")
    cols = kcols or xcols
    arr = np.stack([vals[trial == tr][:, cols] for tr in trials])
    t = vals[trial == trials[0]][:, header.index("t")]
    return {"kappa" if kcols else "x": arr, "t": t}


def load_data(path: str | Path) -> dict[str, np.ndarray]:
    """{"t": (T,), and "kappa": (trials, T, R) or "x": (trials, T, N)}; InputErrors name the field."""
    path = Path(path)
    if not path.is_file():
        raise InputError("data", f"file not found: {path}")
    if path.suffix.lower() == ".csv":
        d = _read_csv(path)
    elif path.suffix.lower() == ".npz":
        try:
            with np.load(path, allow_pickle=False) as f:
                d = {k: f[k] for k in f.files}
        except Exception as exc:
            raise InputError("data", f"cannot read {path.name}: {exc}") from None
    else:
        raise InputError("data", f"{path.name}: use a .csv or .npz file")
    key = "kappa" if "kappa" in d else "x" if "x" in d else None
    if key is None:
        raise InputError("data", f"{path.name}: needs an array `kappa` (latents) or `x` (activity)")
    a = np.asarray(d[key], dtype=float)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise InputError(key, f"expected (trials, T, dims) or (T, dims); got shape {np.asarray(d[key]).shape}")
    _check_finite(a, key)
    if a.shape[1] < 3:
        raise InputError(key, f"need at least 3 time points; got {a.shape[1]}")
    return {key: a, "t": _times(d, a.shape[1])}


def check_data(path: str | Path, rank: int) -> dict[str, np.ndarray]:
    """``load_data`` plus the rank check: latents must have exactly ``rank`` dimensions, activity at least
    ``rank`` units and time points."""
    if not isinstance(rank, int) or rank < 1:
        raise InputError("rank", f"must be a positive integer; got {rank!r}")
    d = load_data(path)
    if "kappa" in d and d["kappa"].shape[2] != rank:
        R = d["kappa"].shape[2]
        raise InputError("rank", f"the latent trajectories have {R} dimensions, so the data support rank {R} "
                                 f"exactly; got rank {rank}")
    if "x" in d and rank > min(d["x"].shape[1], d["x"].shape[2]):
        raise InputError("rank", f"the data support at most rank {min(d['x'].shape[1:])} "
                                 f"({d['x'].shape[2]} units, {d['x'].shape[1]} time points); got {rank}")
    return d


def observation_from_data(path: str | Path, rank: int, tau: float = 1.0, phi: str = "tanh", max_probes: int = 48,
                          n_noise: float = 0.5, gd_steps: int = 300, seed: int = 0) -> tuple[Observation, dict[str, Any]]:
    """The Observation of a user file. Latents: p(m) free up to E[m m^T] = I (the data's coordinates
    fix the gauge). Activity: an lrRNN fit gives latents and pinned m loadings. The budget
    C_n = E[g g^T] + n_noise^2 I, g from the best one-population Gaussian fit of F."""
    from .baseline import fit_activity_gd
    from .identifiability import fit_gaussian

    d = check_data(path, rank)
    t = torch.as_tensor(d["t"], dtype=torch.float64)
    info: dict[str, Any] = {"path": str(path)}
    m_samples = None
    if "kappa" in d:
        kappa = torch.as_tensor(d["kappa"], dtype=torch.float64)
        info["kind"] = "latents"
    else:
        x = torch.as_tensor(d["x"], dtype=torch.float64)
        fit = fit_activity_gd(t, x, rank, steps=gd_steps, tau=tau, phi=phi, seed=seed)
        kappa = fit["kappa"]
        m_samples = fit["samples"][:, 0::2]
        info.update(kind="activity", units=int(x.shape[2]), gd_r2=fit["r2"], gd_loss=fit["loss"])
    states, F = field_from_trajectories(t, kappa, tau)
    kp, Fp = subsample_probes(states, F, max_probes, seed)
    eye = torch.eye(rank, dtype=torch.float64)
    C_m = (m_samples.T @ m_samples / len(m_samples)) if m_samples is not None else eye
    obs0 = Observation(rank=rank, kappa=kp, F=Fp, C_n=eye, C_m=C_m, tau=tau, phi=phi)
    theta = fit_gaussian(obs0)
    k = rank * (rank + 1) // 2
    S_nm = theta[k:k + rank * rank].reshape(rank, rank)
    C_n = S_nm @ torch.linalg.solve(C_m, S_nm.T) + n_noise**2 * eye
    obs = Observation(rank=rank, kappa=kp, F=Fp, C_n=C_n, C_m=C_m, m_samples=m_samples, tau=tau, phi=phi,
                      source=f"data {Path(path).name} ({info['kind']})", trajectories={"t": t, "kappa": kappa})
    return obs, info
