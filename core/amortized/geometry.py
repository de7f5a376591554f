"""Geometry of the invariant set: the accepted configurations of a target.

Global: PCA of the accepted samples in the unit box (theta min-max scaled, so parameters with different
units are comparable): variance spectrum, participation ratio PR = (sum l)^2 / sum l^2 (1..d; the
reference divides by k for its first k PCs: ``pr_normalized`` = PR / d), Pearson correlations.

Local: at several accepted configurations, the Hessian of the posterior's negative log density
-log q(u | x*) (autograd through the flow, in the unit box). Its eigenvectors with small |eigenvalue|
(< ``flat_ratio`` x the largest) span the local null space: directions along which the parameters can
move without leaving the set of configurations consistent with the target. Why the Hessian and not the
feature Jacobian by finite differences with common random numbers: the spiking network's features are
piecewise constant in theta for a fixed noise draw (spike times jump), so a finite-difference Jacobian
needs a step large enough to average over spike-count jumps, 2 x 28 extra network simulations per point
and several noise draws to beat the residual noise, while the flow's Hessian is exact for the learned
density, costs milliseconds and already averages over the simulator noise it was trained on. Its caveat:
it describes the learned posterior, so it is only as good as the estimator (the predictive check says
how good).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from ..errors import InputError
from .posterior import AmortizedPosterior
from .prior import PARAMETER_NAMES, to_unit


@dataclass
class Geometry:
    """Global and local geometry of one target's accepted configurations (JSON-able via ``to_json``)."""

    label: str
    n_accepted: int
    pca_variance: list[float]
    pca_components: list[list[float]]
    participation_ratio: float
    pr_normalized: float
    correlations: list[list[float]]
    top_correlations: list[tuple[str, str, float]]
    hessian_eigenvalues: list[list[float]] = field(default_factory=list)
    flat_directions: list[list[list[float]]] = field(default_factory=list)
    n_flat: list[int] = field(default_factory=list)
    flat_ratio: float = 0.01
    flat_consistency: float = float("nan")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        names = PARAMETER_NAMES
        pc1 = np.asarray(self.pca_components[0]) if self.pca_components else np.zeros(len(names))
        top = np.argsort(-np.abs(pc1))[:3]
        lines = [f"geometry of {self.label}: {self.n_accepted} configurations",
                 f"  global: participation ratio {self.participation_ratio:.2f} of {len(names)} "
                 f"(normalized {self.pr_normalized:.2f}); PC1 explains "
                 f"{100 * self.pca_variance[0] / max(sum(self.pca_variance), 1e-12):.0f} % "
                 f"({', '.join(f'{names[i]} {pc1[i]:+.2f}' for i in top)})"]
        if self.top_correlations:
            lines.append("  strongest correlations: " + "; ".join(f"{a} ~ {b} r={r:+.2f}"
                                                                  for a, b, r in self.top_correlations[:3]))
        if self.n_flat:
            soft = np.asarray(self.flat_directions[0][0]) if self.flat_directions and self.flat_directions[0] else pc1
            top = np.argsort(-np.abs(soft))[:3]
            lines.append(f"  local (posterior Hessian at {len(self.n_flat)} points): flat dimensions "
                         f"{np.mean(self.n_flat):.1f} of {len(names)} (|eig| < {self.flat_ratio:g} max); "
                         f"flattest direction {', '.join(f'{names[i]} {soft[i]:+.2f}' for i in top)}; "
                         f"flat-subspace agreement between points {self.flat_consistency:.2f}")
        return "\n".join(lines)


def participation_ratio(variance: np.ndarray) -> float:
    v = np.clip(np.asarray(variance, float), 0, None)
    return float(v.sum() ** 2 / max((v ** 2).sum(), 1e-300))


def global_geometry(theta: np.ndarray | torch.Tensor, label: str = "") -> Geometry:
    """PCA, participation ratio and correlations of accepted configurations theta (n, 28), n >= 3."""
    u = to_unit(torch.as_tensor(np.asarray(theta), dtype=torch.float32)).numpy().astype(float)
    if len(u) < 3:
        raise InputError("accepted", f"need at least 3 accepted configurations for the geometry, got {len(u)}")
    c = np.cov(u, rowvar=False)
    lam, vec = np.linalg.eigh(c)
    order = np.argsort(lam)[::-1]
    lam, vec = lam[order], vec[:, order]
    sd = np.sqrt(np.clip(np.diag(c), 1e-300, None))
    corr = c / sd[:, None] / sd[None, :]
    d = len(PARAMETER_NAMES)
    iu = np.triu_indices(d, 1)
    pairs = sorted(zip(iu[0], iu[1], corr[iu]), key=lambda t: -abs(t[2]))[:10]
    pr = participation_ratio(lam)
    return Geometry(label, int(len(u)), lam.tolist(), vec.T.tolist(), pr, pr / d, corr.tolist(),
                    [(PARAMETER_NAMES[i], PARAMETER_NAMES[j], float(r)) for i, j, r in pairs])


def posterior_hessian(posterior: AmortizedPosterior, u: torch.Tensor, x) -> torch.Tensor:
    """Hessian (d, d) of -log q(u | x) at u (d,) in the unit box."""
    def nlp(v: torch.Tensor) -> torch.Tensor:
        return -posterior.log_prob_unit(v[None], x).sum()

    return torch.autograd.functional.hessian(nlp, u.detach().clone().float())


def local_geometry(geometry: Geometry, posterior: AmortizedPosterior, x, theta: np.ndarray | torch.Tensor,
                   n_points: int = 5, flat_ratio: float = 0.01) -> Geometry:
    """Add Hessian spectra and flat directions at the ``n_points`` accepted configurations of highest
    posterior density (of theta (n, 28)) to ``geometry``."""
    u = to_unit(torch.as_tensor(np.asarray(theta), dtype=torch.float32))
    with torch.no_grad():
        lp = posterior.log_prob_unit(u, x)
    pts = u[torch.argsort(lp, descending=True)[:n_points]]
    eigs, flats, counts, bases = [], [], [], []
    for p in pts:
        H = posterior_hessian(posterior, p, x).double()
        H = 0.5 * (H + H.T)
        lam, vec = torch.linalg.eigh(H)
        mag = lam.abs()
        order = torch.argsort(mag)
        flat = mag[order] < flat_ratio * mag.max()
        n_flat = int(flat.sum())
        eigs.append(lam[order].tolist())
        counts.append(n_flat)
        basis = vec[:, order[:max(n_flat, 1)]]
        bases.append(basis)
        flats.append(basis.T.tolist())
    geometry.hessian_eigenvalues, geometry.flat_directions, geometry.n_flat = eigs, flats, counts
    geometry.flat_ratio = flat_ratio
    geometry.flat_consistency = _mean_overlap(bases)
    return geometry


def subspace_overlap(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray) -> float:
    """Mean squared cosine of the principal angles between the column spaces of a (d, k) and b (d, m)
    (1: one contains the other; ~min(k, m)/d for random subspaces)."""
    qa, _ = np.linalg.qr(np.asarray(a, float))
    qb, _ = np.linalg.qr(np.asarray(b, float))
    s = np.linalg.svd(qa.T @ qb, compute_uv=False)
    return float((s ** 2).mean()) if s.size else float("nan")


def _mean_overlap(bases: list[torch.Tensor]) -> float:
    vals = [subspace_overlap(bases[i], bases[j]) for i in range(len(bases)) for j in range(i + 1, len(bases))]
    return float(np.mean(vals)) if vals else float("nan")


def compare_geometries(a: Geometry, b: Geometry, k: int = 3) -> dict[str, Any]:
    """Side-by-side numbers of two targets' geometries: participation ratios, flat dimensions, and the
    overlap of their top-k PCA subspaces and of their flat subspaces (dynamic-dependent invariances)."""
    pa, pb = np.asarray(a.pca_components[:k]).T, np.asarray(b.pca_components[:k]).T
    out = {"labels": [a.label, b.label], "participation_ratio": [a.participation_ratio, b.participation_ratio],
           "pca_overlap_top%d" % k: subspace_overlap(pa, pb),
           "n_flat_mean": [float(np.mean(a.n_flat)) if a.n_flat else None,
                           float(np.mean(b.n_flat)) if b.n_flat else None]}
    if a.flat_directions and b.flat_directions:
        fa, fb = np.asarray(a.flat_directions[0]).T, np.asarray(b.flat_directions[0]).T
        out["flat_overlap"] = subspace_overlap(fa, fb)
        out["flat_overlap_chance"] = min(fa.shape[1], fb.shape[1]) / fa.shape[0]
    return out


def compare_text(c: dict[str, Any]) -> str:
    a, b = c["labels"]
    lines = [f"dynamic-dependent invariances: {a} vs {b}",
             f"  participation ratio {c['participation_ratio'][0]:.2f} vs {c['participation_ratio'][1]:.2f}",
             f"  overlap of top-3 PCA subspaces {c['pca_overlap_top3']:.2f} (1 = same)"]
    if "flat_overlap" in c:
        lines.append(f"  flat dimensions {c['n_flat_mean'][0]:.1f} vs {c['n_flat_mean'][1]:.1f}; overlap of flat "
                     f"subspaces {c['flat_overlap']:.2f} (chance {c['flat_overlap_chance']:.2f})")
    return "\n".join(lines)
