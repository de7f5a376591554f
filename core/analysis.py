"""The trained EPI distribution q(z): sampling, log q, gradients, Hessians, modes, predictions."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.func import grad, hessian, vmap

from .errors import InputError
from .flow import RealNVP
from .model import Model, Trajectories
from .property import EmergentProperty

#: how far inside each face (a fraction of the range) ``find_mode`` keeps its search
MODE_MARGIN = 0.01
#: up to this dimension ``find_mode`` checks the Hessian of each ascent's end (cost grows as dim^2)
MODE_HESSIAN_MAX_DIM = 64
#: torch.func's forward-mode AD (jacfwd, inside ``hessian``) keeps its levels process-wide: two threads
#: computing Hessians at once (a dashboard's epoch and final analyses, or two users' runs) corrupt each
#: other's ("no level exists"), so Hessians are computed one at a time
_FORWARD_AD = threading.Lock()


def _at_faces(z: Tensor, lower: Tensor, upper: Tensor, tol: float) -> Tensor:
    """Mask of the coordinates of z: (..., dim) within ``tol`` (a fraction of each range) of a face."""
    frac = (z - lower) / (upper - lower)
    return (frac < tol) | (frac > 1 - tol)


@dataclass
class HessianDirections:
    """Eigen-decomposition of the Hessian of log q at ``z``, most negative eigenvalue first.

    ``eigenvectors[:, i]`` belongs to ``eigenvalues[i]``. ``kinds[i]``: "sensitive" (curvature at
    least ``ratio`` times the sharpest), "degenerate" (near zero), or "positive" (log q curves up:
    ``z`` is not a mode)."""

    z: Tensor
    eigenvalues: Tensor
    eigenvectors: Tensor
    kinds: list[str]


class EPIDistribution:
    """q(z) on the model's parameter box. All tensors are (batch, dim) on the flow's device."""

    def __init__(self, flow: RealNVP, model: Model, prop: EmergentProperty):
        self.flow, self.model, self.property = flow, model, prop
        self.parameter_names = model.parameter_names
        self.lower, self.upper = (b.to(self.device) for b in model.bounds())

    @property
    def device(self) -> torch.device:
        return self.flow.box.lower.device

    def _index(self, key: int | str) -> int:
        if isinstance(key, str):
            if key not in self.parameter_names:
                raise InputError("fixed", f"unknown parameter {key!r}")
            return self.parameter_names.index(key)
        return int(key)

    def _as_z(self, z: Tensor) -> Tensor:
        z = torch.as_tensor(z, dtype=self.flow.box.lower.dtype, device=self.device)
        return z[None] if z.ndim == 1 else z

    @torch.no_grad()
    def sample(self, n: int) -> Tensor:
        """z ~ q: (n, dim)."""
        return self.sample_with_log_prob(n)[0]

    @torch.no_grad()
    def sample_with_log_prob(self, n: int) -> tuple[Tensor, Tensor]:
        self.flow.eval()
        return self.flow.rsample_and_log_prob(n)

    def log_prob(self, z: Tensor) -> Tensor:
        """log q(z): (batch,)."""
        self.flow.eval()
        return self.flow.log_prob(self._as_z(z))

    def _single_log_prob(self, z: Tensor) -> Tensor:
        return self.flow.log_prob(z[None])[0]

    def grad_log_prob(self, z: Tensor) -> Tensor:
        """d log q / dz: (batch, dim)."""
        self.flow.eval()
        return vmap(grad(self._single_log_prob))(self._as_z(z))

    def hessian(self, z: Tensor) -> Tensor:
        """d^2 log q / dz^2: (batch, dim, dim)."""
        self.flow.eval()
        with _FORWARD_AD:
            return vmap(hessian(self._single_log_prob))(self._as_z(z))

    def find_mode(
        self,
        num_starts: int = 10,
        fixed: dict[int | str, float] | None = None,
        region: dict[int | str, tuple[float, float]] | None = None,
        num_samples: int = 2000,
        steps: int = 400,
        lr: float = 0.05,
        margin: float = MODE_MARGIN,
    ) -> Tensor:
        """The mode of q: the highest interior local maximum of log q(z), optionally with coordinates
        held at ``fixed`` values (paper eq 71) and others restricted to a sub-``region`` {name: (low, high)}
        of their bounds (e.g. sW > 0, eqs 89-90). (dim,).

        Gradient ascent in logit coordinates of the (sub-)box, kept ``margin`` (a fraction of each range)
        inside it, from the ``num_starts`` most probable of ``num_samples`` samples and from
        ``num_starts`` plain samples (the bulk of q). Through the sigmoid support map a thin tail of q
        that reaches a face can make log q there higher than at the bulk's peak (a corner spike in a
        converged STG run: +28 against +0.95); such ascents end on the margin, or stall on the steep
        ridge that leads there. So an ascent that ends at a peak inside (``near_faces`` empty and, up to
        ``MODE_HESSIAN_MAX_DIM`` dimensions, a negative definite Hessian) wins over any other; only
        when none does is the highest end returned, and ``near_faces`` names its coordinates there."""
        self.flow.eval()
        fixed_idx = {self._index(k): float(v) for k, v in (fixed or {}).items()}
        for i, v in fixed_idx.items():
            if not (self.lower[i] < v < self.upper[i]):
                raise InputError(f"fixed[{self.parameter_names[i]}]", f"{v} is outside the parameter's bounds")
        lower, upper = self.lower.clone(), self.upper.clone()
        for key, (low, high) in (region or {}).items():
            i = self._index(key)
            lower[i], upper[i] = max(low, float(self.lower[i])), min(high, float(self.upper[i]))
            if not lower[i] < upper[i]:
                raise InputError(f"region[{self.parameter_names[i]}]", f"({low}, {high}) is empty within the bounds")
        free = torch.ones(self.flow.dim, device=self.device)
        held = torch.zeros(self.flow.dim, device=self.device)
        for i, v in fixed_idx.items():
            free[i], held[i] = 0.0, v
        with torch.no_grad():
            z = self.sample(num_samples)
            z = free * z + (1 - free) * held
            inside = ((z >= lower) & (z <= upper)).all(-1)
            if not inside.any():
                raise InputError("region", f"no sample of q lies in the mode's region (0 of {num_samples}): "
                                           "q puts (almost) no mass there, so it has no mode there")
            z = z[inside]
            k = min(num_starts, len(z))
            start = torch.cat([z[self.flow.log_prob(z).topk(k).indices], z[:k]])
        lo = lower + margin * (upper - lower)
        width = (1 - 2 * margin) * (upper - lower)
        p = ((start - lo) / width).clamp(1e-5, 1 - 1e-5)
        u = (torch.log(p) - torch.log1p(-p)).requires_grad_(True)

        def to_z(u: Tensor) -> Tensor:  # held coordinates exactly at their values, even in the margin
            return free * (lo + width * torch.sigmoid(u)) + (1 - free) * held

        opt = torch.optim.Adam([u], lr=lr)
        for _ in range(steps):
            loss = -self.flow.log_prob(to_z(u)).sum()
            opt.zero_grad()
            loss.backward()
            u.grad *= free
            opt.step()
        with torch.no_grad():
            zz = to_z(u).detach()
            score = self.flow.log_prob(zz)
            peak = ~(free.bool() & _at_faces(zz, lower, upper, 2 * margin)).any(-1)
        if peak.any() and self.flow.dim <= MODE_HESSIAN_MAX_DIM:
            # an ascent can also stall on a steep ridge that climbs towards a face: not a peak
            idx = free.bool().nonzero().flatten()
            H = self.hessian(zz[peak])[:, idx][:, :, idx]
            peak[peak.clone()] = torch.linalg.eigvalsh(0.5 * (H + H.transpose(1, 2)))[:, -1] < 0
        if peak.any():
            score = score.masked_fill(~peak, float("-inf"))
        return zz[score.argmax()]

    def near_faces(self, z: Tensor, tol: float = 2 * MODE_MARGIN) -> list[str]:
        """Names of the coordinates of z: (dim,) within ``tol`` (a fraction of each range) of a face of
        the box. A mode found there sits on ``find_mode``'s margin: log q still rises towards the face
        (e.g. a broad marginal through the sigmoid support map), so it is a boundary point rather than
        an interior peak, and its Hessian mostly measures the support map's curvature there."""
        near = _at_faces(self._as_z(z)[0], self.lower, self.upper, tol)
        return [self.parameter_names[i] for i in near.nonzero().flatten().tolist()]

    def hessian_directions(self, z: Tensor, ratio: float = 0.1) -> HessianDirections:
        """Sensitive and degenerate directions of log q at ``z``: (dim,)."""
        z = self._as_z(z)[0]
        H = self.hessian(z[None])[0].detach()
        H = 0.5 * (H + H.T)
        vals, vecs = torch.linalg.eigh(H)  # ascending: most negative first
        scale = vals.abs().max().clamp(min=1e-12)
        kinds = [
            "positive" if v > ratio * scale else "sensitive" if v < -ratio * scale else "degenerate"
            for v in vals.tolist()
        ]
        return HessianDirections(z=z.detach(), eigenvalues=vals, eigenvectors=vecs, kinds=kinds)

    @torch.no_grad()
    def predictive(self, n: int) -> Tensor:
        """Statistics f(x; z), z ~ q, x ~ p(x|z): (n, m)."""
        return self.model.emergent_statistics(self.sample(n))

    @torch.no_grad()
    def statistics_at(self, z: Tensor) -> Tensor:
        """f(x; z) at given z: (batch, m)."""
        return self.model.emergent_statistics(self._as_z(z))

    def trajectories(self, z: Tensor) -> Trajectories:
        """Simulated activity at z (batch, dim) for plotting."""
        return self.model.trajectories(self._as_z(z))
