"""Which statistics of the loading law p the latent dynamics pin down, and which are free.

Two levels (derivation in the README; notes section 4):
* Nonparametric (odd phi, no inputs): F(kappa) = E[n phi(m^T kappa)] = integral w(m) phi(m^T kappa) dm with
  w(m) = p(m) E[n | m]. So the dynamics fix only the odd part of w. Free: the law of n given m beyond
  its mean (variance, tails, modes), the even part of w, and p(m) itself unless single units are
  recorded (then p(m) is pinned and so is the odd part of E[n | m] = w / p). Also free: the gauge
  m -> A^T m, n -> A^-1 n, fixed here by the observation's coordinates and E[m m^T] = C_m.
* Within one zero-mean Gaussian population (the teachers' family): numerically, from the rank and
  null space of the Jacobian of F at the probe states with respect to (S_mm, S_nm, S_nn). The answer is
  unique in that family iff the Jacobian restricted to (S_mm, S_nm) has full column rank."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from .meanfield import GaussianMixture
from .observation import Observation


@dataclass
class IdentifiabilityReport:
    """``pinned`` / ``free``: statistic names; ``singular_values`` of the Gaussian-family Jacobian;
    ``unique``: whether the Gaussian-family answer is unique; ``statements``: the nonparametric facts."""

    rank: int
    pinned: list[str]
    free: list[str]
    unique: bool
    singular_values: list[float]
    statements: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"rank": self.rank, "pinned": self.pinned, "free": self.free, "unique": self.unique,
                "singular_values": self.singular_values, "statements": self.statements}

    def text(self) -> str:
        lines = [f"rank {self.rank}: pinned {', '.join(self.pinned)}; free {', '.join(self.free)}; "
                 f"unique in the Gaussian family: {'yes' if self.unique else 'no'}"]
        return "\n".join(lines + [f"- {s}" for s in self.statements])


def _param_names(R: int) -> list[str]:
    names = [f"S_mm[{i + 1}{j + 1}]" for i in range(R) for j in range(i, R)]
    names += [f"S_nm[{i + 1}{j + 1}]" for i in range(R) for j in range(R)]
    names += [f"S_nn[{i + 1}{j + 1}]" for i in range(R) for j in range(i, R)]
    return names


def _mixture_from(theta: Tensor, R: int) -> GaussianMixture:
    iu = torch.triu_indices(R, R)
    k = iu.shape[1]
    S_mm = torch.zeros(R, R, dtype=theta.dtype).index_put((iu[0], iu[1]), theta[:k])
    S_mm = S_mm + S_mm.T - torch.diag(S_mm.diagonal())
    S_nm = theta[k:k + R * R].reshape(R, R)
    S_nn = torch.zeros(R, R, dtype=theta.dtype).index_put((iu[0], iu[1]), theta[k + R * R:])
    S_nn = S_nn + S_nn.T - torch.diag(S_nn.diagonal())
    cov = torch.cat([torch.cat([S_mm, S_nm.T], 1), torch.cat([S_nm, S_nn], 1)], 0)
    perm = torch.tensor([i for r in range(R) for i in (r, R + r)])
    return GaussianMixture(torch.ones(1, dtype=theta.dtype), torch.zeros(1, 2 * R, dtype=theta.dtype),
                           cov[perm][:, perm][None], rank=R)


def gaussian_theta(S_mm: Tensor, S_nm: Tensor, S_nn: Tensor) -> Tensor:
    """Pack (S_mm, S_nm, S_nn) in ``_param_names`` order: (R(R+1) + R^2,)."""
    R = S_mm.shape[0]
    iu = torch.triu_indices(R, R)
    return torch.cat([S_mm[iu[0], iu[1]], S_nm.flatten(), S_nn[iu[0], iu[1]]]).double()


def fit_gaussian(obs: Observation, steps: int = 200) -> Tensor:
    """theta of the one-population zero-mean Gaussian whose closed-form F best fits obs (least squares),
    S_nn = C_n - S_nm C_m^-1 S_nm^T floored (it does not affect F)."""
    R = obs.rank
    S_mm = obs.C_m.double().clone()
    S_nm = torch.linalg.lstsq(obs.kappa.double(), obs.F.double()).solution.T.clone()
    iu = torch.triu_indices(R, R)
    a = S_mm[iu[0], iu[1]].clone().requires_grad_()
    b = S_nm.clone().requires_grad_()
    opt = torch.optim.LBFGS([a, b], max_iter=steps, line_search_fn="strong_wolfe")
    S_nn0 = obs.C_n.double()

    def closure():
        opt.zero_grad()
        th = torch.cat([a, b.flatten(), S_nn0[iu[0], iu[1]] * 4])
        loss = ((_mixture_from(th, R).field(obs.kappa.double(), phi=obs.phi) - obs.F.double()) ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return torch.cat([a, b.flatten(), (S_nn0 * 4)[iu[0], iu[1]]]).detach()


def identifiability_report(obs: Observation, theta: Tensor | None = None, rel_tol: float = 1e-6) -> IdentifiabilityReport:
    """Pinned and free statistics for ``obs`` (probe states, rank, phi). ``theta``: the Gaussian point to
    linearize at (default: ``fit_gaussian(obs)``)."""
    R = obs.rank
    theta = fit_gaussian(obs) if theta is None else theta.double()
    names = _param_names(R)

    def F_of(th: Tensor) -> Tensor:
        return _mixture_from(th, R).field(obs.kappa.double(), phi=obs.phi).flatten()

    J = torch.autograd.functional.jacobian(F_of, theta)             # (P*R, p)
    J = J / J.abs().max().clamp(min=1e-300)
    sv = torch.linalg.svdvals(J)
    null_dim = int((sv < rel_tol * sv[0]).sum()) + max(0, J.shape[1] - J.shape[0])
    _, s_full, Vh = torch.linalg.svd(J, full_matrices=True)
    rank = J.shape[1] - null_dim
    null = Vh[rank:]                                                 # (null_dim, p)
    weight = (null**2).sum(0) if null.shape[0] else torch.zeros(J.shape[1], dtype=J.dtype)
    pinned = [n for n, w in zip(names, weight) if w < 1e-6]
    free = [n for n, w in zip(names, weight) if w >= 1e-6]
    unique = all(not n.startswith(("S_mm", "S_nm")) for n in free)
    statements = [
        "the dynamics see p only through w(m) = p(m) E[n | m]; for odd phi and no input, only its odd part",
        "free: the law of n given m beyond its mean (variance, heavy tails, modes); S_nn in the Gaussian family",
        "the gauge m -> A^T m, n -> A^-1 n is fixed by the observed latent coordinates and E[m m^T] = C_m",
    ]
    if obs.pinned:
        statements.append(f"p(m) is pinned by {obs.m_samples.shape[0]} recorded units' m loadings "
                          "(tails included); then E[n | m] (odd part) is pinned too")
    else:
        statements.append("p(m) is free beyond its second moments: no recorded single units")
    if not unique:
        statements.append("these probes do not separate S_mm from S_nm: add probe states at other radii "
                          "(e.g. along transients, not only at the attractor)")
    return IdentifiabilityReport(rank=R, pinned=pinned, free=free, unique=unique,
                                 singular_values=[float(v) for v in sv], statements=statements)
