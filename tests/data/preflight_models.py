"""Small synthetic models that trigger each pre-flight verdict and health finding (z in [-1, 1]^2).

Each is a user model file as the README describes: ``epi-dash check tests/data/preflight_models.py:Flat``."""

import torch

from core import FreeParameter, Model, Statistic

BOX = (FreeParameter("z1", -1.0, 1.0), FreeParameter("z2", -1.0, 1.0))


class _Closed(Model):
    """Closed-form statistics: ``simulate`` passes z through."""

    parameters = BOX

    def simulate(self, z):
        return z


class Flat(_Closed):
    """rate = relu(z1 + z2): flat (zero gradient) on half of the box, smooth elsewhere."""

    statistics = (Statistic("rate", mean=1.0, std=0.1),)

    def measure(self, x, z):
        return (z[:, :1] + z[:, 1:]).clamp(min=0)


class FlatCorner(_Closed):
    """rate = 20 relu(z1 - 0.9): flat on 95 % of the box, including where q starts (its centre)."""

    statistics = (Statistic("rate", mean=1.0, std=0.3),)

    def measure(self, x, z):
        return 20 * (z[:, :1] - 0.9).clamp(min=0)


class Dead(_Closed):
    """rate = relu(z1 - 2): zero, with zero gradient, everywhere in the box; a target of 1 is out of reach."""

    statistics = (Statistic("rate", mean=1.0, std=0.1),)

    def measure(self, x, z):
        return (z[:, :1] - 2).clamp(min=0)


class SoftCorner(_Closed):
    """FlatCorner fixed as the README shows: softplus keeps a small slope where relu was flat."""

    statistics = (Statistic("rate", mean=1.0, std=0.3),)

    def measure(self, x, z):
        return 20 * 0.1 * torch.nn.functional.softplus((z[:, :1] - 0.9) / 0.1)


class Step(_Closed):
    """level = floor(3 (z1 + 1)): a staircase of 6 levels, zero gradient everywhere."""

    statistics = (Statistic("level", mean=3.0, std=0.5),)

    def measure(self, x, z):
        return torch.floor(3 * (z[:, :1] + 1))


class NaNRegion(_Closed):
    """log_rate = log(z1 + 0.5): NaN on the quarter of the box where z1 < -0.5."""

    statistics = (Statistic("log_rate", mean=0.0, std=0.2),)

    def measure(self, x, z):
        return torch.log(z[:, :1] + 0.5)


class Linear(_Closed):
    """total = z1 + z2 (range [-2, 2]): well posed; targets beyond 2 are unreachable."""

    statistics = (Statistic("total", mean=0.0, std=0.5),)

    def measure(self, x, z):
        return z[:, :1] + z[:, 1:]


class SqrtRate(_Closed):
    """rate = sqrt(z1 * (z1 > 0)): finite everywhere, but its gradient is NaN where z1 < 0 (0 * inf)."""

    statistics = (Statistic("rate", mean=0.5, std=0.1),)

    def measure(self, x, z):
        z1 = z[:, :1]
        return torch.sqrt(z1 * (z1 > 0))


class Sawtooth(_Closed):
    """saw = z1 + 0.5 floor(8 z2): a gradient everywhere, but 15 jumps of 0.5 across the box."""

    statistics = (Statistic("saw", mean=0.0, std=1.0),)

    def measure(self, x, z):
        return z[:, :1] + 0.5 * torch.floor(8 * z[:, 1:])
