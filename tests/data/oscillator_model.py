"""A user model in one file: a damped oscillator x'' = -k x - b x' (README example)."""

import param
import torch

from core import FreeParameter, Model, Statistic


class DampedOscillator(Model):
    """Damped harmonic oscillator with stiffness k and damping b; frequency and decay rate."""

    mass = param.Number(1.0, bounds=(0, None), inclusive_bounds=(False, True), doc="mass (kg)")

    parameters = (
        FreeParameter("k", 0.1, 50.0, unit="N/m", doc="stiffness"),
        FreeParameter("b", 0.0, 5.0, unit="kg/s", doc="damping"),
    )
    statistics = (
        Statistic("frequency", mean=0.5, std=0.05, unit="Hz", doc="damped frequency"),
        Statistic("decay", mean=0.5, std=0.1, unit="1/s", doc="amplitude decay rate"),
    )

    def simulate(self, z):
        return z  # closed form: the statistics need no trajectory

    def measure(self, x, z):
        k, b = z.unbind(-1)
        omega2 = (k / self.mass - (b / (2 * self.mass)) ** 2).clamp(min=0)
        return torch.stack([omega2.sqrt() / (2 * torch.pi), b / (2 * self.mass)], dim=-1)
