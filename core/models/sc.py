"""Superior colliculus rapid task switching: the four-population model of Duan et al.
(paper Results 3.4, Methods 5.2.4, eqs 72-88)."""

from __future__ import annotations

import numpy as np
import param
import torch
from torch import Tensor

from ..errors import InputError
from ..model import FreeParameter, Model, Statistic, Trajectories, register_model

#: population order of x and u (paper eq 74)
SC_POPULATIONS = ("LP", "LA", "RP", "RA")
#: task conditions simulated for every z (left stimulus only, as eqs 84-85)
SC_CONDITIONS = ("Pro", "Anti")
#: optogenetic inactivation windows (Methods 5.2.4: delay 0.8 < t < 1.2 s, choice t > 1.2 s)
INACTIVATION_PERIODS = ("delay", "choice", "total")


def sc_connectivity(z: Tensor) -> Tensor:
    """W of eq 76 from z = [sW, vW, dW, hW]: (batch, 4) -> (batch, 4, 4), order LP, LA, RP, RA."""
    sW, vW, dW, hW = z.unbind(-1)
    rows = (
        (sW, vW, hW, dW),
        (vW, sW, dW, hW),
        (hW, dW, sW, vW),
        (dW, hW, vW, sW),
    )
    return torch.stack([torch.stack(row, dim=-1) for row in rows], dim=-2)


@register_model("sc")
class SuperiorColliculus(Model):
    """Four-population SC model (LP, LA, RP, RA) whose accuracies in the Pro and Anti tasks are 75 %.

    tau du/dt = -u + W x + h + noise, x = phi(u) = 0.5 tanh((u - a) / b) + 0.5 (eqs 72-75), with W of
    eq 76 from z = [sW, vW, dW, hW] in [-5, 5]^4 and the inputs h of eqs 77-83. Each z is simulated
    for ``num_trials`` trials of the Pro and the Anti task with a left light stimulus; the statistics
    are p_P = mean sigmoid(beta (x_LP - x_RP)) and p_A = mean sigmoid(beta (x_RP - x_LP)) at t = 1.8 s
    (eqs 84-86). All trials of all z in the batch are integrated together (one loop over time steps).

    Where the reference code (``neural_circuits/SC_Circuit_4.py``) differs from the paper text:

    - Unit order: code [LP, LA, RA, RP]; here the paper's [LP, LA, RP, RA] (same W structure).
    - Statistics: code stat_2 = 1 - p_A with target 1 - 0.75; here the paper's p_A (identical EPI).
    - Noise: the paper says "Gaussian noise dB of variance 0.2^2"; like the code, each Euler step adds
      ``noise_std * N(0, 1)`` to the input, i.e. u += dt/tau (-u + W x + h + 0.2 xi). (An Ito reading,
      u += sqrt(dt)/tau * 0.2 xi, would be 6.5x noisier and is not what produced Fig 3.)
    - Time grid: the code steps t = 0, 0.024, ..., 1.776 (74 steps); here 75 steps so the read-out is
      at t = 1.8 s as eqs 84-85. Inputs are evaluated at the start of each step.
    - Initial state (not in the paper): x(0) = 0.1 + 0.005 N(0, 1), u(0) = phi^-1(x(0)); the code's
      u(0) has the sign of the offset a flipped (a 0.1 shift in u(0), forgotten within ~3 tau).
    - Inactivation windows: the paper's open intervals (delay 0.8 < t < 1.2, choice t > 1.2); the code
      includes t = 1.2 in both.
    """

    tau = param.Number(0.09, bounds=(0, None), inclusive_bounds=(False, True), doc="time constant tau (s)")
    dt = param.Number(0.024, bounds=(0, None), inclusive_bounds=(False, True), doc="Euler step (s)")
    trial_length = param.Number(1.8, bounds=(0, None), inclusive_bounds=(False, True),
                                doc="trial length (s); the choice is read out at its end")
    noise_std = param.Number(0.2, bounds=(0, None), doc="sd of the Gaussian input noise per step")
    a = param.Number(0.05, doc="position of the nonlinearity phi (eq 72)")
    b = param.Number(0.5, bounds=(0, None), inclusive_bounds=(False, True), doc="width of phi (eq 72)")
    I_constant = param.Number(0.75, doc="constant input to every population (eq 78)")
    I_P_bias = param.Number(0.5, doc="input to the Pro populations, whole trial (eq 79)")
    I_P_rule = param.Number(0.6, doc="Pro-rule input to the Pro populations, t <= 1.2 s (eq 80)")
    I_A_rule = param.Number(0.6, doc="Anti-rule input to the Anti populations, t <= 1.2 s (eq 81)")
    I_choice = param.Number(0.25, doc="choice-period input to every population, t > 1.2 s (eq 82)")
    I_light = param.Number(0.5, doc="left light stimulus to LP and LA, 1.2 < t < 1.5 s (eq 83)")
    rule_end = param.Number(1.2, doc="end of the rule (cue + delay) period (s)")
    light_end = param.Number(1.5, doc="end of the light stimulus (s)")
    delay_start = param.Number(0.8, doc="start of the delay period, for inactivation (s)")
    x0_mean = param.Number(0.1, doc="mean initial activity x(0)")
    x0_std = param.Number(0.005, bounds=(0, None), doc="sd of the initial activity x(0)")
    num_trials = param.Integer(200, bounds=(1, None), doc="trials per task condition and z")
    heaviside_beta = param.Number(100.0, bounds=(0, None), inclusive_bounds=(False, True),
                                  doc="slope of the sigmoid approximating the Heaviside step (eq 86)")
    inactivation_strength = param.Number(0.0, bounds=(0, 1),
                                         doc="optogenetic strength gamma: x -> (1 - gamma) x (eq 73)")
    inactivation_period = param.Selector(default="delay", objects=list(INACTIVATION_PERIODS),
                                         doc="when inactivation acts: delay (0.8-1.2 s), choice (> 1.2 s), total")
    trajectory_trials = param.Integer(50, bounds=(1, None), doc="trials averaged in trajectories()")
    chunk_size = param.Integer(500, bounds=(1, None),
                               doc="z simulated at once without autograd (bounds memory in large tests)")

    parameters = (
        FreeParameter("sW", -5.0, 5.0, doc="self connection"),
        FreeParameter("vW", -5.0, 5.0, doc="vertical: Pro <-> Anti on the same side"),
        FreeParameter("dW", -5.0, 5.0, doc="diagonal: Pro <-> Anti across sides"),
        FreeParameter("hW", -5.0, 5.0, doc="horizontal: Pro <-> Pro and Anti <-> Anti across sides"),
    )
    statistics = (
        Statistic("p_P", 0.75, 0.075, doc="accuracy in the Pro task (eq 84)"),
        Statistic("p_A", 0.75, 0.075, doc="accuracy in the Anti task (eq 85)"),
    )
    population_names = SC_POPULATIONS
    trajectory_dt = 0.024
    epi_defaults = dict(
        num_stages=3, num_layers=2, num_units=50, batch_norm=False, post_affine=False,
        batch_size=100, lr=1e-3, c0=1e2, gamma=0.25, beta=2.0, num_epochs=15, iters_per_epoch=2000,
        nu=0.5, stop_early=True,
    )

    # --- time grid and inputs ------------------------------------------------------------------
    @property
    def num_steps(self) -> int:
        """Euler steps from t = 0 to ``trial_length``."""
        return int(round(self.trial_length / self.dt))

    def time_grid(self) -> np.ndarray:
        """t_k = k dt for k = 0..num_steps: (num_steps + 1,) seconds."""
        return np.arange(self.num_steps + 1) * self.dt

    def inputs(self, like: Tensor) -> Tensor:
        """h(t_k) for the Pro and Anti task with a left stimulus (eqs 77-83): (num_steps, 2, 4)."""
        # compare on the step grid with a tolerance so t = 1.2 s counts as "t <= 1.2"
        t = torch.as_tensor(self.time_grid()[:-1], dtype=like.dtype, device=like.device)[:, None]
        tol = 1e-6 * self.dt
        rule_on = (t <= self.rule_end + tol).to(like.dtype)
        choice_on = (t > self.rule_end + tol).to(like.dtype)
        light_on = ((t > self.rule_end + tol) & (t < self.light_end - tol)).to(like.dtype)

        def vec(*values: float) -> Tensor:
            return torch.tensor(values, dtype=like.dtype, device=like.device)

        pro, anti, left = vec(1, 0, 1, 0), vec(0, 1, 0, 1), vec(1, 1, 0, 0)
        common = (self.I_constant * vec(1, 1, 1, 1) + self.I_P_bias * pro
                  + choice_on * self.I_choice + light_on * self.I_light * left)
        return torch.stack(
            [common + rule_on * self.I_P_rule * pro, common + rule_on * self.I_A_rule * anti], dim=1
        )

    def activity_gain(self, gamma: float, period: str, like: Tensor) -> Tensor:
        """(1 - gamma) where inactivation acts, else 1, at every t_k: (num_steps + 1,)."""
        if not 0.0 <= gamma <= 1.0:
            raise InputError("inactivation_strength", f"gamma must lie in [0, 1]; got {gamma!r}")
        if period not in INACTIVATION_PERIODS:
            raise InputError("inactivation_period",
                             f"unknown period {period!r}; choose from {', '.join(INACTIVATION_PERIODS)}")
        t = torch.as_tensor(self.time_grid(), dtype=like.dtype, device=like.device)
        tol = 1e-6 * self.dt
        if period == "delay":
            window = (t > self.delay_start + tol) & (t < self.rule_end - tol)
        elif period == "choice":
            window = t > self.rule_end + tol
        else:
            window = torch.ones_like(t, dtype=torch.bool)
        return 1.0 - gamma * window.to(like.dtype)

    # --- simulation ------------------------------------------------------------------------------
    def phi(self, u: Tensor) -> Tensor:
        """Activity x = phi(u) in (0, 1) (eq 72)."""
        # 0.5 tanh(y) + 0.5 == sigmoid(2 y); sigmoid is ~5x cheaper than tanh on CPU
        return torch.sigmoid((2.0 / self.b) * (u - self.a))

    def _integrate(self, z: Tensor, num_trials: int, gamma: float, period: str, keep_trace: bool) -> Tensor:
        """Euler-integrate all trials of both tasks for every z.

        z: (batch, 4) -> x: (batch, 2, trials, T + 1, 4) if ``keep_trace`` else the final
        x(t = trial_length): (batch, 2, trials, 4). Task axis order: Pro, Anti.
        """
        if z.ndim != 2 or z.shape[-1] != 4:
            raise InputError("z", f"SC needs z of shape (batch, 4); got {tuple(z.shape)}")
        # Integrate w = (2 / b)(u - a), in which x = phi(u) = sigmoid(w): the Euler step
        # w += step (2/b)(-(u - a) + W x + h - a + noise) then needs one fused matmul-add per step.
        step = self.dt / self.tau
        scale = 2.0 / self.b
        W = (step * scale) * sc_connectivity(z)  # (batch, 4, 4), symmetric
        h = (step * scale) * (self.inputs(z) - self.a)  # (T, 2, 4)
        noise_sd = step * scale * self.noise_std
        gain = self.activity_gain(gamma, period, z)  # (T + 1,)
        inactivated = bool((gain < 1).any())
        batch, tasks = z.shape[0], len(SC_CONDITIONS)
        shape = (batch, tasks, num_trials, 4)
        x = (self.x0_mean + self.x0_std * self.randn(*shape, like=z)).clamp(1e-4, 1 - 1e-4)
        w = torch.logit(x)
        x = gain[0] * x if inactivated else x
        trace = [x]
        for k in range(self.num_steps):
            drift = (1.0 - step) * w + h[k][:, None] + noise_sd * self.randn(*shape, like=z)
            # x @ W for every (z, task) at once: (batch, 2 * trials, 4) @ (batch, 4, 4)
            w = torch.baddbmm(drift.reshape(batch, -1, 4), x.reshape(batch, -1, 4), W).reshape(shape)
            x = torch.sigmoid(w)
            if inactivated:
                x = gain[k + 1] * x
            if keep_trace:
                trace.append(x)
        return torch.stack(trace, dim=-2) if keep_trace else x

    def simulate(self, z: Tensor) -> Tensor:
        """Activity traces x: (batch, 2 tasks [Pro, Anti], num_trials, num_steps + 1, 4 [LP, LA, RP, RA])."""
        return self._integrate(z, self.num_trials, self.inactivation_strength,
                               self.inactivation_period, keep_trace=True)

    def accuracies(self, x_final: Tensor) -> Tensor:
        """[p_P, p_A] (eqs 84-86) from final activity x_final: (batch, 2, trials, 4) -> (batch, 2)."""
        left_minus_right = x_final[..., 0] - x_final[..., 2]  # x_LP - x_RP: (batch, 2, trials)
        correct_sign = torch.tensor([1.0, -1.0], dtype=x_final.dtype, device=x_final.device)[:, None]
        return torch.sigmoid(self.heaviside_beta * correct_sign * left_minus_right).mean(-1)

    def measure(self, x: Tensor, z: Tensor) -> Tensor:
        return self.accuracies(x[..., -1, :])

    def _final_accuracies(self, z: Tensor, num_trials: int, gamma: float, period: str) -> Tensor:
        """[p_P, p_A]: (batch, 2) without storing traces; chunked over z when autograd is off."""
        if torch.is_grad_enabled() and z.requires_grad:
            return self.accuracies(self._integrate(z, num_trials, gamma, period, keep_trace=False))
        return torch.cat([
            self.accuracies(self._integrate(chunk, num_trials, gamma, period, keep_trace=False))
            for chunk in z.split(self.chunk_size)
        ])

    def emergent_statistics(self, z: Tensor) -> Tensor:
        return self._final_accuracies(z, self.num_trials, self.inactivation_strength, self.inactivation_period)

    # --- analysis --------------------------------------------------------------------------------
    def accuracy_under_inactivation(
        self, z: Tensor, gamma: float, period: str = "delay", num_trials: int | None = None
    ) -> Tensor:
        """[p_P, p_A] with activity scaled by (1 - gamma) during ``period`` (eq 73; Fig 3E-G):
        z: (batch, 4) -> (batch, 2)."""
        return self._final_accuracies(z, num_trials or self.num_trials, gamma, period)

    def connectivity_eigenvalues(self, z: Tensor) -> Tensor:
        """Eigenvalues of W along its z-independent eigenvectors (Fig 14A):
        (batch, 4) = [lambda_all, lambda_side, lambda_task, lambda_diag]."""
        sW, vW, dW, hW = z.unbind(-1)
        return torch.stack([sW + vW + hW + dW,   # all:  [1, 1, 1, 1]
                            sW + vW - hW - dW,   # side: [1, 1, -1, -1]
                            sW - vW + hW - dW,   # task: [1, -1, 1, -1]
                            sW - vW - hW + dW],  # diag: [1, -1, -1, 1]
                           dim=-1)

    def trajectories(self, z: Tensor) -> Trajectories:
        """Mean activity over ``trajectory_trials`` trials of the Pro and the Anti task:
        x (batch, T + 1, 8) with columns "Pro LP", ..., "Anti RA"; ``extra["std"]`` the trial sd."""
        with torch.no_grad():
            x = self._integrate(z, self.trajectory_trials, self.inactivation_strength,
                                self.inactivation_period, keep_trace=True)
        mean, std = x.mean(2), x.std(2, unbiased=False)  # (batch, 2 tasks, T + 1, 4)

        def task_major_columns(a: Tensor) -> np.ndarray:
            return a.permute(0, 2, 1, 3).reshape(a.shape[0], a.shape[2], -1).cpu().numpy()

        names = [f"{task} {pop}" for task in SC_CONDITIONS for pop in SC_POPULATIONS]
        return Trajectories(t=self.time_grid(), x=task_major_columns(mean), names=names, time_unit="s",
                            value_unit="activity", extra={"std": task_major_columns(std),
                                                          "num_trials": self.trajectory_trials})
