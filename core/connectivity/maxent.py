"""The maximum-entropy loading distribution as an exponential family, fitted through its convex dual.

Problem (documented in the README): maximize H(p) over p(m, n) subject to
    E_p[n phi(m^T kappa_k)] = F_k     (k = 1..P probe states: the observed latent dynamics)
    E_p[n n^T] = C_n                  (the spread budget for n; without it H is unbounded)
    E_p[m m^T] = C_m                  (the gauge, when p(m) is free)   or   p(m) = observed law of m.
The answer is an exponential tilt:  p*(m, n) ∝ r(m) exp(-m^T A m / 2 - n^T B n / 2 + n^T h(m)),
h(m) = sum_k eta_k phi(m^T kappa_k), r = 1 (free m) or the observed m law (pinned m; then A = 0 and the
normalizer is per m). So n | m ~ N(B^-1 h(m), B^-1) exactly, and only the (R x P) multipliers eta and B
(and A) are unknown. They minimize the convex dual
    L = log Z(theta) + tr(B C_n)/2 [+ tr(A C_m)/2] - <eta, F> + l2 ||eta||^2 / 2,
whose gradient is E_p[T] - b; n is integrated out analytically and the m-expectations are averages over
the observed m (pinned) or self-normalized importance sampling from N(0, s^2 C_m) (free). At the
optimum (l2 -> 0) L equals the maximal entropy (free m).

The l2 term (default 1e-3) relaxes each constraint to E[T] - F = -l2 eta (regularized max-ent): about the
Monte Carlo error of a 4,000-unit m sample (1-3 %). With l2 -> 0 the dual fits that sampling noise
exactly and pays with a larger E[n | m] (measured on the cycle teacher, pinned m: H(n | m) 1.25 nats
at l2 = 1e-5 against the teacher's 1.45; 1.50 at 1e-3)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .network import join_loadings, phi_fn
from .observation import Observation


def _tril(params: Tensor, R: int) -> Tensor:
    """Lower-triangular L with a positive (exp) diagonal from R(R+1)/2 free numbers."""
    L = torch.zeros(R, R, dtype=params.dtype)
    idx = torch.tril_indices(R, R)
    L = L.index_put((idx[0], idx[1]), params)
    return L - torch.diag(L.diagonal()) + torch.diag(L.diagonal().exp())


def _tril_init(P: Tensor) -> Tensor:
    """Inverse of ``_tril`` for the Cholesky factor of P."""
    L = torch.linalg.cholesky(P)
    L = L - torch.diag(L.diagonal()) + torch.diag(L.diagonal().log())
    idx = torch.tril_indices(*P.shape)
    return L[idx[0], idx[1]]


@dataclass
class MaxEntSolution:
    """The fitted exponential family. eta: (P, R); B: (R, R) precision of n | m; A: (R, R) or None;
    m_pool: (M, R) observed m (pinned) or importance proposals (free) with log_w: (M,) log weights."""

    obs: Observation
    eta: Tensor
    B: Tensor
    A: Tensor | None
    m_pool: Tensor
    log_w: Tensor
    dual: float
    converged: bool
    constraint_error: float
    iterations: int

    def h(self, m: Tensor) -> Tensor:
        """h(m) = sum_k eta_k phi(m^T kappa_k): (S, R)."""
        return phi_fn(self.obs.phi)(m @ self.obs.kappa.T) @ self.eta

    def conditional_mean(self, m: Tensor) -> Tensor:
        """E[n | m] = B^-1 h(m): (S, R)."""
        return torch.linalg.solve(self.B, self.h(m).T).T

    def sample(self, n: int, seed: int = 0) -> Tensor:
        """(n, 2R) samples of p* (float64): m from the pool (by weight), n | m Gaussian, exactly."""
        g = torch.Generator().manual_seed(seed)
        p = torch.softmax(self.log_w, 0)
        idx = torch.multinomial(p, n, replacement=True, generator=g)
        m = self.m_pool[idx]
        L = torch.linalg.cholesky(self.B)
        eps = torch.randn(n, self.obs.rank, generator=g, dtype=m.dtype)
        nn = self.conditional_mean(m) + torch.linalg.solve_triangular(L.T, eps.T, upper=True).T
        return join_loadings(m, nn)

    def entropy_given_m(self) -> float:
        """E_m H(n | m) = R/2 log(2 pi e) - log det B / 2 (nats)."""
        R = self.obs.rank
        return 0.5 * R * math.log(2 * math.pi * math.e) - 0.5 * float(torch.logdet(self.B))

    def ess(self) -> float:
        """Effective sample size fraction of the m pool's weights."""
        w = torch.softmax(self.log_w, 0)
        return float(1.0 / (w**2).sum() / len(w))


def dynamics_residual(z: Tensor, obs: Observation, weights: Tensor | None = None) -> Tensor:
    """E[n phi(m^T kappa_k)] - F_k over samples z: (S, 2R) (optionally weighted): (P, R)."""
    m, n = z[:, 0::2][:, : obs.rank], z[:, 1::2][:, : obs.rank]
    ph = phi_fn(obs.phi)(m @ obs.kappa.T.to(z.dtype))                # (S, P)
    if weights is None:
        est = ph.T @ n / z.shape[0]
    else:
        est = (ph * weights[:, None]).T @ n / weights.sum()
    return est - obs.F.to(z.dtype)


def constraint_error(z: Tensor, obs: Observation) -> float:
    """Relative error ||E[n phi(m^T kappa)] - F|| / ||F|| of samples z: (S, 2R)."""
    return float(dynamics_residual(z, obs).norm() / obs.F.norm().clamp(min=1e-12))


def solve_maxent(obs: Observation, pool_size: int = 20_000, l2: float = 1e-3, proposal_scale: float = 1.3,
                 max_iter: int = 200, tol: float = 0.02, seed: int = 0,
                 init: MaxEntSolution | None = None) -> MaxEntSolution:
    """Fit eta, B (and A) by L-BFGS on the convex dual. ``tol``: relative constraint error that counts as
    converged (an unreachable observation ends with converged False and the best iterate)."""
    dt = torch.float64
    R, P = obs.rank, obs.kappa.shape[0]
    kappa, F = obs.kappa.to(dt), obs.F.to(dt)
    C_n, C_m = obs.C_n.to(dt), obs.C_m.to(dt)
    g = torch.Generator().manual_seed(seed)
    if obs.pinned:
        m = obs.m_samples.to(dt)
        log_q = torch.zeros(m.shape[0], dtype=dt)
    else:
        Lm = torch.linalg.cholesky(C_m) * proposal_scale
        m = torch.randn(pool_size, R, generator=g, dtype=dt) @ Lm.T
        prop = torch.distributions.MultivariateNormal(torch.zeros(R, dtype=dt), scale_tril=Lm)
        log_q = prop.log_prob(m)
    Phi = phi_fn(obs.phi)(m @ kappa.T)                               # (M, P)

    eta = torch.zeros(P, R, dtype=dt) if init is None else init.eta.clone()
    lb = _tril_init(torch.linalg.inv(C_n) if init is None else init.B)
    la = _tril_init(torch.linalg.inv(C_m) if init is None or init.A is None else init.A)
    params = [eta.requires_grad_(), lb.requires_grad_()] + ([] if obs.pinned else [la.requires_grad_()])

    def terms():
        Lb = _tril(lb, R)
        B = Lb @ Lb.T
        h = Phi @ eta                                                # (M, R)
        quad = 0.5 * (torch.cholesky_solve(h.T, Lb).T * h).sum(1)  # h^T B^-1 h / 2
        logdet_b = 2 * Lb.diagonal().log().sum()
        base = -0.5 * logdet_b + 0.5 * R * math.log(2 * math.pi) + 0.5 * (B * C_n).sum() - (eta * F).sum()
        if obs.pinned:
            log_w = torch.zeros_like(quad)
            L = quad.mean() + base
            A = None
        else:
            La = _tril(la, R)
            A = La @ La.T
            log_w = -0.5 * ((m @ A) * m).sum(1) + quad - log_q
            L = torch.logsumexp(log_w, 0) - math.log(len(log_w)) + base + 0.5 * (A * C_m).sum()
        return L + 0.5 * l2 * (eta**2).sum(), B, A, log_w

    opt = torch.optim.LBFGS(params, lr=1, max_iter=max_iter, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-8, tolerance_change=1e-12, history_size=50)

    def closure():
        opt.zero_grad()
        L = terms()[0]
        if torch.isfinite(L):
            L.backward()
        return L

    opt.step(closure)
    with torch.no_grad():
        L, B, A, log_w = terms()
        w = torch.softmax(log_w, 0)
        h = Phi @ eta
        n_mean = torch.linalg.solve(B, h.T).T
        resid = (Phi * w[:, None]).T @ n_mean - F
        err = float(resid.norm() / F.norm().clamp(min=1e-12))
    return MaxEntSolution(obs=obs, eta=eta.detach(), B=B.detach(), A=None if A is None else A.detach(),
                          m_pool=m, log_w=log_w.detach(), dual=float(L), converged=bool(err < tol and torch.isfinite(L)),
                          constraint_error=err, iterations=int(opt.state[opt._params[0]].get("n_iter", 0)))
