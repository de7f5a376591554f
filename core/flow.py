"""A bounded-support Real NVP normalizing flow (Dinh et al. 2017; Glow mixing between stages).

Written here rather than taken from zuko because EPI needs, in one module that ``torch.func`` can
differentiate twice: sampling *with* log q in a single forward pass (no inverse during training), an
exact inverse for log q at arbitrary z (modes, Hessians), a trainable LU mixing layer between coupling
stages, and a fixed, exactly invertible map onto the parameter box. zuko's RealNVP composes lazy
``torch.distributions`` transforms and has no bounded output map.

Forward (sampling) direction: eps ~ N(0, I) -> [coupling -> (mixing -> batch norm)]* -> post-affine -> box.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .errors import InputError

_LOG_2PI = math.log(2 * math.pi)


def _log_sigmoid_by_softplus(u: Tensor) -> Tensor:
    return -F.softplus(-u)


class AffineCoupling(nn.Module):
    """y_keep = x_keep, y_move = x_move * exp(s(x_keep)) + t(x_keep). ``flip`` swaps the halves."""

    def __init__(self, dim: int, flip: bool, num_layers: int, num_units: int, scale_limit: float = 5.0):
        super().__init__()
        self.split = dim // 2 if not flip else dim - dim // 2
        self.flip = flip
        n_keep = self.split
        n_move = dim - n_keep
        layers: list[nn.Module] = []
        width = n_keep
        for _ in range(num_layers):
            layers += [nn.Linear(width, num_units), nn.ReLU()]
            width = num_units
        last = nn.Linear(width, 2 * n_move)
        nn.init.zeros_(last.weight)  # start at the identity: the Gaussian init is exact
        nn.init.zeros_(last.bias)
        self.net = nn.Sequential(*layers, last)
        self.scale_limit = scale_limit

    def _halves(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.flip:
            move, keep = x[..., : x.shape[-1] - self.split], x[..., x.shape[-1] - self.split :]
        else:
            keep, move = x[..., : self.split], x[..., self.split :]
        return keep, move

    def _join(self, keep: Tensor, move: Tensor) -> Tensor:
        return torch.cat([move, keep] if self.flip else [keep, move], dim=-1)

    def _shift_log_scale(self, keep: Tensor) -> tuple[Tensor, Tensor]:
        shift, raw = self.net(keep).chunk(2, dim=-1)
        # L tanh(raw / L) written as 2 L sigmoid(2 raw / L) - L: torch's CPU tanh is ~8x slower than sigmoid
        limit = self.scale_limit
        return shift, torch.sigmoid(raw * (2.0 / limit)) * (2.0 * limit) - limit

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        keep, move = self._halves(x)
        shift, log_s = self._shift_log_scale(keep)
        return self._join(keep, torch.addcmul(shift, move, log_s.exp())), log_s.sum(-1)

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        keep, move = self._halves(y)
        shift, log_s = self._shift_log_scale(keep)
        return self._join(keep, (move - shift) * torch.exp(-log_s)), -log_s.sum(-1)


class LUMixing(nn.Module):
    """Trainable invertible linear map W = P L (U + diag(sign * exp(log_diag))) (Glow), initialized
    from the LU decomposition of a random orthogonal matrix. log|det W| = sum(log_diag)."""

    def __init__(self, dim: int, generator: torch.Generator | None = None):
        super().__init__()
        q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=generator))
        P, L, U = torch.linalg.lu(q)
        diag = torch.diagonal(U)
        self.register_buffer("perm", P)
        self.register_buffer("sign", torch.sign(diag))
        self.lower = nn.Parameter(torch.tril(L, -1))
        self.upper = nn.Parameter(torch.triu(U, 1))
        self.log_diag = nn.Parameter(diag.abs().log())
        self.register_buffer("eye", torch.eye(dim))

    def _factors(self) -> tuple[Tensor, Tensor]:
        L = torch.tril(self.lower, -1) + self.eye
        U = torch.triu(self.upper, 1) + torch.diag(self.sign * self.log_diag.exp())
        return L, U

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        L, U = self._factors()
        W = self.perm @ L @ U
        return x @ W.T, self.log_diag.sum().expand(x.shape[:-1])

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        L, U = self._factors()
        b = (y @ self.perm).T  # P^T y, columns are samples
        b = torch.linalg.solve_triangular(L, b, upper=False, unitriangular=True)
        x = torch.linalg.solve_triangular(U, b, upper=True).T
        return x, -self.log_diag.sum().expand(y.shape[:-1])


class Permutation(nn.Module):
    """A fixed random permutation (volume preserving); cheaper than LU mixing at high dimension."""

    volume_preserving = True  # RealNVP skips its zero log-determinant

    def __init__(self, dim: int, generator: torch.Generator | None = None):
        super().__init__()
        perm = torch.randperm(dim, generator=generator)
        self.register_buffer("perm", perm)
        self.register_buffer("inv", torch.argsort(perm))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return x.index_select(-1, self.perm), x.new_zeros(x.shape[:-1])

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        return y.index_select(-1, self.inv), y.new_zeros(y.shape[:-1])


class BatchNorm(nn.Module):
    """Batch normalization as a bijection. In training mode the sampling direction normalizes with
    the batch's statistics (so log q depends on the batch, as in the reference); in eval mode with
    running statistics, which makes it an exact fixed affine map."""

    def __init__(self, dim: int, momentum: float = 0.01, eps: float = 1e-5):
        super().__init__()
        self.log_gamma = nn.Parameter(torch.zeros(dim))
        self.beta = nn.Parameter(torch.zeros(dim))
        self.register_buffer("running_mean", torch.zeros(dim))
        self.register_buffer("running_var", torch.ones(dim))
        self.momentum, self.eps = momentum, eps

    def _stats(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.training and x.shape[0] > 1:
            mean, var = x.mean(0), x.var(0, unbiased=False)
            with torch.no_grad():
                self.running_mean.lerp_(mean.detach(), self.momentum)
                self.running_var.lerp_(var.detach(), self.momentum)
            return mean, var
        return self.running_mean, self.running_var

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mean, var = self._stats(x)
        y = (x - mean) / torch.sqrt(var + self.eps) * self.log_gamma.exp() + self.beta
        return y, (self.log_gamma - 0.5 * torch.log(var + self.eps)).sum().expand(x.shape[:-1])

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        mean, var = self.running_mean, self.running_var
        x = (y - self.beta) * torch.exp(-self.log_gamma) * torch.sqrt(var + self.eps) + mean
        return x, -(self.log_gamma - 0.5 * torch.log(var + self.eps)).sum().expand(y.shape[:-1])


class ElementwiseAffine(nn.Module):
    """y = x * exp(log_scale) + shift, trainable."""

    def __init__(self, dim: int):
        super().__init__()
        self.log_scale = nn.Parameter(torch.zeros(dim))
        self.shift = nn.Parameter(torch.zeros(dim))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return torch.addcmul(self.shift, x, self.log_scale.exp()), self.log_scale.sum().expand(x.shape[:-1])

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        return (y - self.shift) * torch.exp(-self.log_scale), -self.log_scale.sum().expand(y.shape[:-1])


class BoxMap(nn.Module):
    """Fixed bijection R^d -> (lower, upper): z = lower + (upper - lower) sigmoid(scale x + loc).
    ``loc``/``scale`` are buffers set by the Gaussian initialization."""

    def __init__(self, lower: Tensor, upper: Tensor):
        super().__init__()
        if lower.shape != upper.shape or lower.ndim != 1:
            raise InputError("bounds", "lower and upper must be vectors of the same length")
        bad = ~(lower < upper)
        if bad.any():
            i = int(bad.nonzero()[0])
            raise InputError(f"bounds[{i}]", f"lower ({lower[i]:g}) must be < upper ({upper[i]:g})")
        self.register_buffer("lower", lower.clone())
        self.register_buffer("width", (upper - lower).clone())
        self.register_buffer("loc", torch.zeros_like(lower))
        self.register_buffer("scale", torch.ones_like(lower))

    def _log_abs_det(self, u: Tensor, log_sigmoid=F.logsigmoid) -> Tensor:
        # log sigmoid(u) + log sigmoid(-u) = 2 log sigmoid(u) - u: one logsigmoid, stable for any u
        return torch.log(self.width * self.scale).sum() + (2 * log_sigmoid(u) - u).sum(-1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        u = torch.addcmul(self.loc, self.scale, x)
        return torch.addcmul(self.lower, self.width, torch.sigmoid(u)), self._log_abs_det(u)

    def inverse(self, z: Tensor) -> tuple[Tensor, Tensor]:
        p = ((z - self.lower) / self.width).clamp(1e-7, 1 - 1e-7)
        u = torch.log(p) - torch.log1p(-p)
        # log_prob's path, which torch.func differentiates twice (Hessians): the same log sigmoid as
        # -softplus(-u), because logsigmoid's double-backward under vmap resizes an output, which
        # PyTorch 2.13 deprecates (a warning now). The forward (training) path keeps the faster logsigmoid.
        return (u - self.loc) / self.scale, -self._log_abs_det(u, _log_sigmoid_by_softplus)


class RealNVP(nn.Module):
    """Bounded Real NVP q(z) on the box [lower, upper]. ``z``: (batch, dim)."""

    def __init__(
        self,
        lower: Tensor,
        upper: Tensor,
        num_stages: int = 3,
        num_layers: int = 2,
        num_units: int = 50,
        batch_norm: bool = False,
        post_affine: bool = True,
        mixing: str = "lu",
        seed: int = 0,
    ):
        super().__init__()
        dim = int(lower.shape[0])
        if dim < 2:
            raise InputError("parameters", "EPI's coupling flow needs at least 2 free parameters")
        if mixing not in ("lu", "permutation"):
            raise InputError("mixing", f"must be 'lu' or 'permutation'; got {mixing!r}")
        g = torch.Generator().manual_seed(seed)
        torch_state = torch.random.get_rng_state()
        torch.manual_seed(seed)  # nn.Linear's default init draws from the global generator
        try:
            layers: list[nn.Module] = []
            for i in range(num_stages):
                layers.append(AffineCoupling(dim, flip=bool(i % 2), num_layers=num_layers, num_units=num_units))
                if i < num_stages - 1:
                    layers.append(LUMixing(dim, g) if mixing == "lu" else Permutation(dim, g))
                    if batch_norm:
                        layers.append(BatchNorm(dim))
            if post_affine:
                layers.append(ElementwiseAffine(dim))
        finally:
            torch.random.set_rng_state(torch_state)
        self.layers = nn.ModuleList(layers)
        self.box = BoxMap(lower.float().cpu(), upper.float().cpu())
        self.dim = dim

    def forward(self, eps: Tensor) -> tuple[Tensor, Tensor]:
        """Push base noise eps: (batch, dim) through the flow: returns z and log q(z), each batch-first."""
        log_dets = []
        x = eps
        for layer in self.layers:
            x, ld = layer(x)
            if not getattr(layer, "volume_preserving", False):
                log_dets.append(ld)
        z, ld = self.box(x)
        log_dets.append(ld)
        log_q = -0.5 * eps.square().sum(-1) - 0.5 * self.dim * _LOG_2PI
        return z, log_q - torch.stack(log_dets).sum(0)

    def rsample_and_log_prob(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """n reparameterized samples z: (n, dim) and log q(z): (n,)."""
        eps = torch.randn(n, self.dim, generator=generator, device=self.box.lower.device)
        return self(eps)

    def inverse(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Base noise of z and log|det d eps / dz|."""
        x, logdet = self.box.inverse(z)
        for layer in reversed(self.layers):
            x, ld = layer.inverse(x)
            logdet = logdet + ld
        return x, logdet

    def log_prob(self, z: Tensor) -> Tensor:
        """log q(z) for z: (batch, dim) strictly inside the box: (batch,)."""
        eps, logdet = self.inverse(z)
        return -0.5 * (eps**2).sum(-1) - 0.5 * self.dim * _LOG_2PI + logdet

    @torch.no_grad()
    def set_gaussian_approximation(self, mean: Tensor, sd: Tensor) -> None:
        """Make q approximately N(mean, diag(sd^2)) on the box in closed form: every other layer
        is at (or near) a volume-preserving identity/rotation at construction, so the base Gaussian
        reaches the box map isotropic, and its loc/scale are set by the delta method through the logit."""
        lower, width = self.box.lower, self.box.width
        p = ((mean.to(lower) - lower) / width).clamp(0.02, 0.98)
        self.box.loc.copy_(torch.log(p) - torch.log1p(-p))
        self.box.scale.copy_((sd.to(lower) / (width * p * (1 - p))).clamp(min=1e-3))
