"""Rank-2 RNN with stable amplification (paper Results 3.5, Methods 5.2.5, eqs 91-94).

W = U V^T is rank 2, so both statistics reduce to tiny matrices and cost O(N) per sample:
real(lambda_1) from the 2x2 V^T U (eq 94) and lambda^s from the 4x4 Gram matrix of [U V], whose
V^T U block also serves the first. No N x N matrix is ever formed during training.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import param
import torch
from torch import Tensor

from ..errors import InputError
from ..model import FreeParameter, Model, Statistic, Trajectories, register_model

#: classes of ``classify_dynamics`` (Fig 4D)
DYNAMICS_CLASSES = ("stable amplified", "decaying", "unstable")


@lru_cache(maxsize=32)
def _factor_parameters(N: int) -> tuple[FreeParameter, ...]:
    """z = [u1, u2, v1, v2], four contiguous blocks of N entries in [-1, 1] (1-based names)."""
    return tuple(
        FreeParameter(f"{block}_{i}", -1.0, 1.0, doc=f"entry {i} of {block}")
        for block in ("u1", "u2", "v1", "v2")
        for i in range(1, N + 1)
    )


def _lambda1_real_from_entries(a: Tensor, b: Tensor, c: Tensor, d: Tensor, eps: float = 1e-12) -> Tensor:
    """Largest real part of the eigenvalues of [[a, b], [c, d]] (entries: (batch,) each) -> (batch,)."""
    trace = a + d
    disc = trace**2 - 4 * (a * d - b * c)
    # Re sqrt(disc) with a finite gradient everywhere: 0 for a complex pair, clamp away from 0
    root = torch.where(disc > eps, torch.sqrt(disc.clamp(min=eps)), torch.zeros_like(disc))
    return 0.5 * (trace + root)


def rank2_lambda1_real(U: Tensor, V: Tensor) -> Tensor:
    """Largest real part of the two nonzero eigenvalues of W = U V^T, from the rank-reduced
    W^r = V^T U (eq 94). U, V: (batch, N, 2) -> (batch,).

    For N > 2, W also has N - 2 zero eigenvalues; like the paper and the reference code this returns
    the top real part of the nonzero pair, which is real(lambda_1) of W whenever that is >= 0.
    """
    return _lambda1_real_from_entries(*(V.transpose(-1, -2) @ U).flatten(-2).unbind(-1))


def split_factor_rows(rows: Tensor) -> tuple[Tensor, Tensor]:
    """U, V: (batch, N, 2) each, as views of the rows [u1; u2; v1; v2]: (batch, 4, N)."""
    columns = rows.transpose(-1, -2)
    return columns[..., :2], columns[..., 2:]


def factor_gram(U: Tensor, V: Tensor) -> Tensor:
    """Gram matrix G = A^T A of A = [U V]: (batch, N, 4) -> (batch, 4, 4), rows/columns u1, u2, v1, v2."""
    A = torch.cat([U, V], dim=-1)
    return A.transpose(-1, -2) @ A


def _top_reduced_eigenvector(G: Tensor) -> tuple[Tensor, Tensor]:
    """Unit top eigenvector y: (batch, 4), float64 and without gradients, of B = M G for the Gram matrix
    G: (batch, 4, 4) of A = [U V] and M = [[0, I], [I, 0]] / 2, and a (batch,) mask of usable G.

    W^s = (U V^T + V U^T) / 2 = A M A^T, so W^s (A y) = A (M G y) = lambda A y: the nonzero eigenvalues of
    W^s are B's and A y is the eigenvector. With the Cholesky factor L L^T = G, B is similar to the
    symmetric S = L^T M L: S w = lambda w gives y = L^-T w. Needs N >= 4 (a full-rank G); y is marked
    unusable where G is not finite or not positive definite.
    """
    with torch.no_grad():
        G = G.double()
        eye = torch.eye(4, dtype=G.dtype, device=G.device)
        finite = torch.isfinite(G).all(-1).all(-1)
        G = torch.where(finite[..., None, None], G, eye)  # LAPACK never sees a NaN
        # tiny relative jitter: keeps the Cholesky defined if two factors happen to be collinear
        jitter = 1e-12 * G.diagonal(dim1=-2, dim2=-1).mean(-1)[..., None, None]
        L, info = torch.linalg.cholesky_ex(G + jitter * eye)
        cross = L[..., :2, :].transpose(-1, -2) @ L[..., 2:, :]
        w = torch.linalg.eigh(0.5 * (cross + cross.transpose(-1, -2)))[1][..., -1:]
        y = torch.linalg.solve_triangular(L.transpose(-1, -2), w, upper=True)[..., 0]
        return y / y.norm(dim=-1, keepdim=True).clamp(min=1e-300), finite & (info == 0)


def _symmetric_top_from_gram(G: Tensor) -> Tensor:
    """lambda^s for N > 4 from the factors' Gram matrix G: (batch, 4, 4) -> (batch,), differentiable.

    With y the top eigenvector of ``_top_reduced_eigenvector`` held fixed and x = A y, lambda^s is the
    Rayleigh quotient x^T W^s x / x^T x = (G y)^T M (G y) / (y^T G y). Its gradient is exactly that of the
    eigenvalue, d lambda / dW^s = v v^T (Hellmann-Feynman: the quotient is stationary in x there), so no
    eigendecomposition is differentiated. W^s has N - 4 zero eigenvalues too, so the result is at least 0.
    """
    y, finite = _top_reduced_eigenvector(G)
    y = y.to(G.dtype)
    Gy = (G @ y[..., None])[..., 0]
    num = (Gy[..., :2] * Gy[..., 2:]).sum(-1)
    den = (y * Gy).sum(-1)
    # y^T G y = |A y|^2 > 0 for a positive definite G; the guard only keeps unusable rows finite
    top = num / torch.where(finite, den, torch.ones_like(den))
    return torch.where(finite, top.clamp(min=0.0), torch.full_like(top, float("nan")))


def _top_eigenvalue(S: Tensor) -> Tensor:
    """Largest eigenvalue of symmetric S: (batch, k, k) -> (batch,); NaN (not a LAPACK error) where S
    is not finite, so the trainer can report non-finite statistics."""
    finite = torch.isfinite(S).all(-1).all(-1)
    top = torch.linalg.eigvalsh(torch.where(finite[..., None, None], S, torch.zeros_like(S)))[..., -1]
    return torch.where(finite, top, torch.full_like(top, float("nan")))


def symmetric_part_top_eigenvalue(U: Tensor, V: Tensor) -> Tensor:
    """lambda^s = largest eigenvalue of (W + W^T) / 2 for W = U V^T. U, V: (batch, N, 2) -> (batch,).

    O(N) per sample. For N > 4 from the 4x4 Gram matrix of [U V] (``_symmetric_top_from_gram``); for
    N <= 4, eigvalsh of W^s itself (no larger than the reduced problem).
    """
    if U.shape[-2] <= 4:
        W = U @ V.transpose(-1, -2)
        return _top_eigenvalue(0.5 * (W + W.transpose(-1, -2)))
    return _symmetric_top_from_gram(factor_gram(U, V))


def gram_statistics(G: Tensor) -> Tensor:
    """[real(lambda_1), lambda^s] for N > 4 from the Gram matrix G: (batch, 4, 4) of [U V] -> (batch, 2).
    V^T U, whose eigenvalues are W's nonzero pair (eq 94), is G's lower-left block."""
    g = G.flatten(-2).unbind(-1)  # one op (and one in the backward) instead of an indexing op per entry
    real_lambda1 = _lambda1_real_from_entries(g[8], g[9], g[12], g[13])
    return torch.stack([real_lambda1, _symmetric_top_from_gram(G)], dim=-1)


def most_amplified_direction(U: Tensor, V: Tensor) -> Tensor:
    """Unit top eigenvector of (W + W^T) / 2 (the input pattern amplified most): (batch, N). No grad."""
    with torch.no_grad():
        if U.shape[-2] <= 4:
            W = U @ V.transpose(-1, -2)
            return torch.linalg.eigh(0.5 * (W + W.transpose(-1, -2)))[1][..., -1]
        A = torch.cat([U, V], dim=-1)
        y, finite = _top_reduced_eigenvector(A.transpose(-1, -2) @ A)
        x = (A.double() @ y[..., None])[..., 0]
        x = x / x.norm(dim=-1, keepdim=True).clamp(min=1e-300)
        return torch.where(finite[..., None], x, torch.zeros_like(x)).to(U.dtype)


@register_model("rnn")
class Rank2RNN(Model):
    """Rank-2 RNN tau dx/dt = -x + W x, W = U V^T, with stable amplification: real(lambda_1) = 0.5 +- 0.25
    and lambda^s = 1.5 +- 0.25 (eqs 91-93).

    U = [u1 u2] + g chi, V = [v1 v2] + g chi with chi ~ N(0, 1) drawn afresh per sample (noise on the
    factors, as the paper and the reference code). z = [u1, u2, v1, v2] as four contiguous blocks of N
    (the paper's order; the reference code interleaves u1_i, u2_i by a row-major reshape), bounds [-1, 1].
    Default N = 10 (40 parameters): small enough for the dashboard, large enough that the N - 2 zero
    eigenvalues matter; the paper sweeps N = 2 ... 250.
    """

    N = param.Integer(10, bounds=(2, None), doc="number of neurons (z has 4 N entries)")
    g = param.Number(0.01, bounds=(0, None), doc="sd of the random part of U and V")
    tau = param.Number(0.1, bounds=(0, None), inclusive_bounds=(False, True),
                       doc="time constant of trajectories() (s; Fig 4D uses 100 ms)")
    t_max = param.Number(1.0, bounds=(0, None), inclusive_bounds=(False, True), doc="trace length (s)")
    num_time_points = param.Integer(101, bounds=(2, None), doc="time points of trajectories()")
    shown_units = param.Integer(4, bounds=(1, None), doc="units plotted by trajectories() next to |x|")

    statistics = (
        Statistic("real_lambda1", 0.5, 0.25, doc="real part of W's eigenvalue of greatest real part (< 1: stable)"),
        Statistic("lambda_s", 1.5, 0.25, doc="top eigenvalue of (W + W^T)/2 (> 1: amplifies some input)"),
    )
    time_unit = "s"
    #: the paper's settings except the epoch length (below); mixing between coupling stages by fixed permutations (the reference's
    #: earlier choice, O(D) per sample) instead of its final trainable LU layer (O(D^2)): at D = 1000
    #: the dense LU products made each iteration ~5x slower on CPU
    epi_defaults = dict(
        num_stages=3, num_layers=2, num_units=100, batch_norm=False, post_affine=True, mixing="permutation",
        batch_size=200, lr=1e-3, c0=1e3, gamma=0.25, beta=4.0,
        # the paper: 10 epochs of 500 its (reproduce with --set iters_per_epoch=500 --set num_epochs=10).
        # Epochs of 250 (the same 5,000-iteration budget) test and update eta, c twice as often: median
        # iterations to convergence 2,000 -> 1,000 at N = 25 and N = 250 over seeds 1-5, at the same
        # entropy; 125 stopped at a lower entropy (benchmarks/RESULTS.md, time to convergence)
        num_epochs=20, iters_per_epoch=250,
        nu=1.0, stop_early=True,
        # the N(0, 0.5^2) start cannot fit the box closely (5 % of each marginal lies outside
        # [-1, 1]); the closed form is within 5 % of 500 refinement steps' KL after 100 (N = 50)
        init_iters=100,
        # test passes in chunks of 2,048 samples: 10-28 % faster than 8,192 at every N (cache-sized tensors)
        test_chunk=2048,
    )

    def free_parameters(self) -> list[FreeParameter]:
        return list(_factor_parameters(self.N))

    def factor_rows(self, z: Tensor, noisy: bool = True) -> Tensor:
        """The rows [u1~; u2~; v1~; v2~]: (batch, 4, N) from z: (batch, 4N), with g chi noise unless
        ``noisy=False``."""
        N = self.N
        if z.ndim != 2 or z.shape[-1] != 4 * N:
            raise InputError("z", f"rank-2 RNN with N={N} needs z of shape (batch, {4 * N}); got {tuple(z.shape)}")
        if noisy and self.g > 0:
            z = torch.add(z, self.randn(*z.shape, like=z), alpha=self.g)
        return z.view(z.shape[0], 4, N)

    def factors(self, z: Tensor, noisy: bool = True) -> tuple[Tensor, Tensor]:
        """U~, V~: each (batch, N, 2) from z: (batch, 4N) (views of ``factor_rows``)."""
        return split_factor_rows(self.factor_rows(z, noisy))

    def simulate(self, z: Tensor) -> Tensor:
        """One draw of the noisy factor rows [u1~; u2~; v1~; v2~]: (batch, 4, N)."""
        return self.factor_rows(z)

    def measure(self, x: Tensor, z: Tensor) -> Tensor:
        """[real(lambda_1), lambda^s] from the factor rows x: (batch, 4, N) -> (batch, 2)."""
        if self.N <= 4:
            U, V = split_factor_rows(x)
            return torch.stack([rank2_lambda1_real(U, V), symmetric_part_top_eigenvalue(U, V)], dim=-1)
        return gram_statistics(x @ x.transpose(-1, -2))

    def classify_dynamics(self, f: Tensor) -> np.ndarray:
        """Fig 4D classes from statistics f = [real(lambda_1), lambda^s]: (batch, 2) -> (batch,) labels:
        "unstable" if real(lambda_1) >= 1, else "stable amplified" if lambda^s > 1, else "decaying"."""
        real_l1, lam_s = f[:, 0], f[:, 1]
        labels = np.where((lam_s > 1).cpu().numpy(), DYNAMICS_CLASSES[0], DYNAMICS_CLASSES[1])
        return np.where((real_l1 >= 1).cpu().numpy(), DYNAMICS_CLASSES[2], labels)

    def dynamics_fractions(self, f: Tensor) -> dict[str, float]:
        """Fraction of samples in each class of ``classify_dynamics``."""
        labels = self.classify_dynamics(f)
        return {c: float(np.mean(labels == c)) for c in DYNAMICS_CLASSES}

    def response(self, U: Tensor, V: Tensor, x0: Tensor, t: Tensor) -> Tensor:
        """x(t) of tau dx/dt = -x + U V^T x from x0, exactly and in O(N): (batch, T, N).

        x(t) = e^{-t/tau} (x0 + U a(t)) with a' = (V^T x0 + V^T U a) / tau, a(0) = 0, solved by the
        exponential of the 3x3 matrix [[V^T U, V^T x0], [0, 0]] t / tau.
        """
        K = V.transpose(-1, -2) @ U  # (batch, 2, 2)
        b = V.transpose(-1, -2) @ x0[..., None]  # (batch, 2, 1)
        top = torch.cat([K, b], dim=-1)  # (batch, 2, 3)
        generator = torch.cat([top, torch.zeros_like(top[..., :1, :])], dim=-2)  # (batch, 3, 3)
        a = torch.linalg.matrix_exp(generator[:, None] * (t / self.tau)[None, :, None, None])[..., :2, 2]
        decay = torch.exp(-t / self.tau)[None, :, None]
        return decay * (x0[:, None, :] + a @ U.transpose(-1, -2))

    def trajectories(self, z: Tensor) -> Trajectories:
        """Response to a unit input along the most amplified direction: x columns [|x|, x_1, ...]
        (the norm, then ``shown_units`` units); ``extra["class"]`` labels each sample (Fig 4D)."""
        with torch.no_grad():
            rows = self.factor_rows(z)
            U, V = split_factor_rows(rows)
            x0 = most_amplified_direction(U, V)
            t = torch.linspace(0, self.t_max, self.num_time_points, dtype=z.dtype, device=z.device)
            x = self.response(U, V, x0, t)
            f = self.measure(rows, z)
        k = min(self.shown_units, self.N)
        shown = torch.cat([x.norm(dim=-1, keepdim=True), x[..., :k]], dim=-1)
        return Trajectories(
            t=t.cpu().numpy(), x=shown.cpu().numpy(), names=["|x|"] + [f"x_{i}" for i in range(1, k + 1)],
            time_unit="s", value_unit="activity",
            extra={"class": self.classify_dynamics(f), "statistics": f.cpu().numpy()},
        )
