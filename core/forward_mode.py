"""Forward-mode differentiation of a batched simulation behind a reverse-mode interface."""

from __future__ import annotations

import torch
from torch import Tensor


class ForwardMode(torch.autograd.Function):
    """y, dy/dz = run(z), y: (batch, ...), dy/dz: (dim z, batch, ...) with y[b] depending on z[b] only,
    computed together (forward mode); ``backward`` contracts dy/dz with the incoming gradient."""

    @staticmethod
    def forward(ctx, z: Tensor, run) -> Tensor:
        y, jacobian = run(z)
        ctx.save_for_backward(jacobian)
        return y

    @staticmethod
    def backward(ctx, grad_y: Tensor):
        (jacobian,) = ctx.saved_tensors
        return (grad_y * jacobian).reshape(*jacobian.shape[:2], -1).sum(-1).T, None
