"""Issue 26's user model, as a new user writes it: a two-population (E-I) Wilson-Cowan rate oscillator,
four coupling weights in a box, the frequency of E's activity from a soft-argmax of its spectrum.

Where the network settles to a fixed point the spectrum is empty, the soft-argmax weights are uniform
and the frequency is the mean of the frequency grid, whatever the weights: a flat statistic."""

import param
import torch

from core import FreeParameter, Model, Statistic


class RateOscillator(Model):
    """tau_E dE/dt = -E + S(w_EE E - w_EI I + h_E), tau_I dI/dt = -I + S(w_IE E - w_II I + h_I)."""

    tau_E = param.Number(0.010, bounds=(0, None), inclusive_bounds=(False, True), doc="E time constant (s)")
    tau_I = param.Number(0.020, bounds=(0, None), inclusive_bounds=(False, True), doc="I time constant (s)")
    h_E = param.Number(-2.0, doc="E input")
    h_I = param.Number(-6.0, doc="I input")
    dt = param.Number(0.002, bounds=(0, None), inclusive_bounds=(False, True), doc="Euler step (s)")
    num_steps = param.Integer(500, bounds=(50, None), doc="Euler steps (the first 20 % are dropped)")
    temperature = param.Number(1.0, bounds=(0, None), inclusive_bounds=(False, True),
                               doc="soft-argmax temperature, in units of the spectrum's power")

    parameters = (
        FreeParameter("w_EE", 0.0, 20.0), FreeParameter("w_EI", 0.0, 20.0),
        FreeParameter("w_IE", 0.0, 20.0), FreeParameter("w_II", 0.0, 20.0),
    )
    statistics = (Statistic("frequency", mean=8.0, std=1.0, unit="Hz", doc="spectral peak of E"),)
    population_names = ("E", "I")
    trajectory_dt = 0.002

    def simulate(self, z):
        w_EE, w_EI, w_IE, w_II = z.unbind(-1)
        E = torch.full_like(w_EE, 0.2)
        I = torch.full_like(w_EE, 0.1)
        trace = []
        for _ in range(self.num_steps):
            dE = (-E + torch.sigmoid(w_EE * E - w_EI * I + self.h_E)) / self.tau_E
            dI = (-I + torch.sigmoid(w_IE * E - w_II * I + self.h_I)) / self.tau_I
            E, I = E + self.dt * dE, I + self.dt * dI
            trace.append(torch.stack([E, I], -1))
        return torch.stack(trace, 1)  # (batch, T, 2)

    def measure(self, x, z):
        e = x[:, self.num_steps // 5 :, 0]
        power = torch.fft.rfft(e - e.mean(1, keepdim=True), dim=1).abs() ** 2  # (batch, F)
        freqs = torch.fft.rfftfreq(e.shape[1], d=self.dt).to(e)
        weights = torch.softmax(power / self.temperature, dim=1)
        return (weights * freqs).sum(1, keepdim=True)
