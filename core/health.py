"""Health watch of an EPI training: findings that explain a failing run while it fails.

``HealthWatch`` looks at every iteration record, at every epoch record and, every ``probe_every``
iterations, at the training batch itself (per-draw gradients of each statistic w.r.t. z, the spread of
z). It reports a ``HealthFinding`` when

- ``collapse``: the entropy of q falls far below its initial value (``collapse_nats`` nats per
  dimension: every sd shrunk ~150-fold): a notice within an epoch (transient dips happen on the way to
  convergence), a stop when the epoch's test entropy is still that low; or ``identical_samples``: every parameter's spread in the
  batch is below ``identical_spread`` of its range;
- ``rising_cost``: the augmented-Lagrangian cost, which the optimizer follows downhill, rises within an
  epoch (the median of its latest ``cost_window`` iterations exceeds that of its first by more than its
  size (at least the penalty c/2 sum(std^2) of a one-sd violation), a notice; by ``cost_stop`` times its size in two windows in a row, a stop; either by more than
  ``cost_noise`` robust sds);
- ``vanishing_gradient``: a statistic's gradient vanishes on most of the batch (``vanishing_fraction``
  of the draws, and there no statistic has a gradient) while its batch mean is more than
  ``off_target`` target sds from the target, on ``patience`` probes in a row (a statistic that is
  flat where it already meets its target is fine). First a notice (``stop=False``): the run goes on,
  because the multiplier update at the epoch's end often pulls q out; a stop once it held through a
  whole later epoch;
- ``non_finite``: a statistic or its gradient is NaN or infinite.

``EPITrainer`` runs one when ``OptimizerSettings.health`` is 'stop' (the default: on a finding with
``stop=True`` the run stops in state 'unhealthy', its last checkpoint from before the finding kept) or
'warn' (it goes on); findings
are on the iteration/epoch records (``rec.health``), in ``trainer.health_findings`` and in run.json.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .preflight import gradient_flags, statistic_gradients

HEALTH_MODES = ("stop", "warn", "off")
KINDS = ("collapse", "identical_samples", "rising_cost", "vanishing_gradient", "non_finite")


@dataclass
class HealthFinding:
    """One problem of a training: ``kind`` (one of ``KINDS``), a message with the numbers, advice."""

    kind: str
    message: str
    advice: list[str]
    epoch: int
    iteration: int
    statistic: str | None = None
    values: dict[str, float] = field(default_factory=dict)
    stop: bool = True  # False: a notice (training goes on even with health="stop")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_text(self) -> str:
        head = f"health [{self.kind}{'' if self.stop else ', notice'}] {self.message}"
        return "\n".join([head, *(f"    - {a}" for a in self.advice)])


def _robust_sd(x: np.ndarray) -> float:
    return float(1.4826 * np.median(np.abs(x - np.median(x))))


class HealthWatch:
    """Watches one training (see the module docstring). ``std``: (m,) target sds; ``width``: (dim,)
    box widths; ``model_name`` and the targets serve the advice's ``epi-dash compare`` command."""

    def __init__(
        self,
        statistics: list[str],
        mean: list[float],
        std: list[float],
        width: Tensor,
        model_name: str,
        probe_every: int = 20,
        collapse_nats: float = 5.0,
        identical_spread: float = 1e-3,
        cost_window: int = 50,
        cost_noise: float = 5.0,
        cost_stop: float = 10.0,
        vanishing_fraction: float = 0.75,
        off_target: float = 1.0,
        patience: int = 5,
    ):
        self.statistics, self.mean, self.std = list(statistics), list(mean), list(std)
        self.width = width
        self.dim = int(width.shape[0])
        self.model_name = model_name
        self.probe_every, self.collapse_nats, self.identical_spread = probe_every, collapse_nats, identical_spread
        self.cost_window, self.cost_noise, self.cost_stop = cost_window, cost_noise, cost_stop
        self._steep_windows = 0
        self.vanishing_fraction, self.off_target, self.patience = vanishing_fraction, off_target, patience
        self.last_probe: dict[str, Any] = {}  # the latest probe's numbers (flat fractions, target offsets)
        self.initial_entropy: float | None = None
        self._epoch_costs: list[float] = []
        self._entropies: list[float] = []
        self._vanishing_run = [0] * len(statistics)
        self._vanishing_since = [0] * len(statistics)  # the epoch where each statistic's current run began
        self._reported: set[tuple[str, str | None, bool]] = set()
        self._pending: list[HealthFinding] = []

    # --- advice -----------------------------------------------------------------------------------
    def _compare(self) -> str:
        targets = " ".join(f"--mean {s}={m:g} --std {s}={sd:g}" for s, m, sd in zip(self.statistics, self.mean, self.std))
        return ("if the statistic cannot be made smooth, use the gradient-free methods on the same model and "
                f"property: epi-dash compare {self.model_name} --methods snpe,smc {targets}")

    def _check(self) -> str:
        return f"run the pre-flight check: epi-dash check {self.model_name} (with the same --mean/--std/--set)"

    def _add(self, finding: HealthFinding) -> None:
        key = (finding.kind, finding.statistic, finding.stop)
        if key not in self._reported:  # each problem once per run (a notice, then perhaps a stop)
            self._reported.add(key)
            self._pending.append(finding)

    def take(self) -> list[HealthFinding]:
        """Findings since the last call."""
        out, self._pending = self._pending, []
        return out

    # --- observations -----------------------------------------------------------------------------
    def wants_probe(self, iteration: int) -> bool:
        return iteration % self.probe_every == 1 or self.probe_every == 1

    def observe_batch(self, f: Tensor, z: Tensor, epoch: int, iteration: int) -> None:
        """Probe the training batch: f: (n, m) statistics still attached to z: (n, dim)."""
        if not self.wants_probe(iteration):
            return
        with torch.enable_grad():
            grads = statistic_gradients(f, z)
        std = torch.as_tensor(self.std, dtype=grads.dtype, device=grads.device)
        flat, bad = gradient_flags(grads.detach(), self.width.to(grads), std)
        finite = torch.isfinite(f.detach())
        no_pull = (flat | ~finite).all(1)
        fractions = torch.stack([flat.float().mean(0), (bad & finite).float().mean(0), no_pull.float().mean()[None].expand(flat.shape[1])])
        spread = float(((z.detach().std(0) / self.width.to(z)).max()))
        mean = torch.as_tensor(self.mean, dtype=f.dtype, device=f.device)
        fd = f.detach()
        batch_mean = torch.where(finite, fd, 0).sum(0) / finite.sum(0).clamp(min=1)
        off = ((batch_mean - mean).abs() / std.to(fd)).cpu().numpy()  # target sds off the target mean
        flat_f, bad_f, no_pull_f = fractions.cpu().numpy()
        self.last_probe = {"iteration": iteration, "flat": flat_f.tolist(), "no_pull": float(no_pull_f[0]),
                           "off": off.tolist(), "spread": spread}
        for j, s in enumerate(self.statistics):
            if bad_f[j] > 0:
                self._add(HealthFinding(
                    "non_finite", f"the gradient of {s} with respect to z is NaN or infinite on {bad_f[j]:.1%} of "
                    f"the batch (epoch {epoch}, iteration {iteration}); the next step makes the flow's weights NaN",
                    [f"avoid points of infinite slope in {s}: sqrt(x) at x = 0 (use sqrt(x + 1e-8)), abs or norms "
                     "at 0, division by a quantity that can vanish", "a narrower box that excludes them", self._check()],
                    epoch, iteration, s, {"fraction": float(bad_f[j])}))
            vanishing = (flat_f[j] >= self.vanishing_fraction and no_pull_f[j] >= self.vanishing_fraction
                         and off[j] > self.off_target)
            self._vanishing_run[j] = self._vanishing_run[j] + 1 if vanishing else 0
            if self._vanishing_run[j] == 1:
                self._vanishing_since[j] = epoch
            if self._vanishing_run[j] >= self.patience:
                # a notice first; a stop once it held through a whole later epoch and its multiplier update
                # (a flow often carries q over a flat region after the first update: FlatCorner converges)
                stuck = epoch >= self._vanishing_since[j] + 2
                self._add(HealthFinding(
                    "vanishing_gradient",
                    f"the gradient of {s} vanishes on {flat_f[j]:.0%} of the batch (epoch {epoch}, iteration "
                    f"{iteration}; {self._vanishing_run[j]} probes in a row) while its batch mean is {off[j]:.1f} "
                    f"target sds from the target {self.mean[j]:g}: q sits where {s} is flat, so the constraints "
                    "cannot pull it toward the target" + (
                        f"; it held through all of epoch {epoch - 1} and its multiplier update" if stuck else
                        "; training goes on (the multiplier update at the epoch's end may still pull q out; "
                        "if this holds through the next whole epoch, the watch stops the run)"),
                    [f"make {s} vary smoothly where it is now constant (soft thresholds: torch.sigmoid((x - x0) / "
                     "width); softplus instead of clamp; a softmax-weighted spectral peak with a temperature)",
                     "start q where it varies: --set init=abc; or narrow the box", self._check(), self._compare()],
                    epoch, iteration, s, {"fraction": float(flat_f[j]), "off_target_sds": float(off[j])}, stop=stuck))
        if spread < self.identical_spread:
            self._add(HealthFinding(
                "identical_samples",
                f"the samples of q are nearly identical: the largest spread of any parameter in the batch is "
                f"{spread:.2g} of its range (epoch {epoch}, iteration {iteration})",
                ["a smaller learning rate (--set lr=1e-4)", "a smaller initial penalty (--set c0=...)",
                 "a wider target sd (--std STAT=...)", self._check()],
                epoch, iteration, None, {"spread": spread}))

    def observe_iteration(self, rec: Any) -> list[HealthFinding]:
        """An ``IterationRecord``: collapse of the entropy, a cost rising within the epoch."""
        if self.initial_entropy is None:
            self.initial_entropy = rec.entropy
        self._entropies = (self._entropies + [rec.entropy])[-10:]
        self._epoch_costs.append(rec.cost)
        h = float(np.median(self._entropies))
        if (self.initial_entropy - h) / self.dim > self.collapse_nats or not math.isfinite(h):
            # within an epoch a notice (the rank-2 RNN at N = 2 dips 6 nats per parameter in its first 30
            # iterations and converges); a stop when the epoch's test entropy is still that low, or not finite
            self._add(self._collapse(h, rec.epoch, rec.iteration, stop=not math.isfinite(h)))
        w = self.cost_window
        costs = self._epoch_costs
        if len(costs) >= 2 * w and len(costs) % w == 0:
            first, last = np.asarray(costs[:w]), np.asarray(costs[-w:])
            c0, c1 = float(np.median(first)), float(np.median(last))
            noise = max(_robust_sd(np.diff(first)), _robust_sd(np.diff(last))) / math.sqrt(2)  # not the trend
            # a penalty of c/2 |R|^2 with R a violation of one target sd per statistic is what the property
            # tolerates: rises within it are the optimizer's noise around the target, not a broken gradient
            # (STG at c = 1e5: the cost wanders -1 -> 19 on its way to converging)
            scale = max(abs(c0), 1.0, 0.5 * float(rec.c) * float(np.sum(np.square(self.std))))
            rising = c1 - c0 > scale and c1 - c0 > self.cost_noise * noise
            # a stop takes a rise of cost_stop times the cost's size in two windows in a row (the run:
            # 480 -> 22,700); smaller rises are notices (the LDS has shown a transient -5.4 -> 1.9 and converged)
            steep = rising and c1 - c0 > self.cost_stop * scale
            self._steep_windows = self._steep_windows + 1 if steep else 0
            if rising:
                stop = self._steep_windows >= 2
                self._add(HealthFinding(
                    "rising_cost",
                    f"the cost rose from {c0:.4g} to {c1:.4g} within epoch {rec.epoch} (median of its first and "
                    f"latest {w} iterations, up to iteration {rec.iteration}) while the optimizer followed its "
                    "gradient: the gradient does not describe the cost, as when a statistic jumps or is flat "
                    "where most of q is" + ("" if stop else
                                            f"; training goes on (it stops at a rise of {self.cost_stop:g}x "
                                            "the cost's size, twice in a row)"),
                    ["a smoother statistic (no jumps, no flat regions)", "a smaller learning rate (--set lr=1e-4)",
                     self._check(), self._compare()],
                    rec.epoch, rec.iteration, None, {"cost_start": c0, "cost_now": c1}, stop=stop))
        return self.take()

    def observe_epoch(self, rec: Any) -> list[HealthFinding]:
        """An ``EpochRecord``: a collapse that its test entropy confirms is a stop; starts the next epoch's
        cost watch."""
        self._epoch_costs, self._steep_windows = [], 0
        h = float(rec.entropy)
        if self.initial_entropy is not None and (
                (self.initial_entropy - h) / self.dim > self.collapse_nats or not math.isfinite(h)):
            self._add(self._collapse(h, rec.epoch, rec.iteration, stop=True))
        return self.take()

    def _collapse(self, h: float, epoch: int, iteration: int, stop: bool) -> HealthFinding:
        drop = (self.initial_entropy - h) / self.dim
        return HealthFinding(
            "collapse",
            f"q collapsed: its entropy fell from {self.initial_entropy:.3g} to {h:.3g} nats ({drop:.3g} nats per "
            f"parameter; every sd shrunk about {math.exp(min(drop, 50)):.3g}-fold) by iteration {iteration} "
            f"(epoch {epoch})" + ("" if stop else "; training goes on (it stops if the epoch's test still finds q "
                                  "collapsed)"),
            ["a smaller learning rate (--set lr=1e-4)", "a smaller initial penalty (--set c0=...)",
             "a statistic that is smooth where q started (no flat regions or jumps)", "--set init=abc",
             self._check(), self._compare()],
            epoch, iteration, None, {"initial_entropy": self.initial_entropy, "entropy": h}, stop=stop)

    def non_finite(self, statistic: str, fraction: float, epoch: int, iteration: int) -> HealthFinding:
        """The finding for statistics that are NaN or infinite on ``fraction`` of a batch."""
        return HealthFinding(
            "non_finite",
            f"{statistic} is NaN or infinite for {fraction:.1%} of the batch (epoch {epoch}, iteration {iteration})",
            [f"guard the expression that produces {statistic}: clamp before sqrt/log/division, torch.where(ok, "
             "value, fallback) with a finite fallback, or torch.nan_to_num", "a narrower box that excludes the "
             "region where it is undefined", self._check()],
            epoch, iteration, statistic, {"fraction": fraction})
