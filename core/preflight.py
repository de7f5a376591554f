"""Pre-flight check of a model and property before EPI: is every statistic trainable by gradients?

Draws z uniformly from the box and from the initial q (the Gaussian of the flow settings, or the
'abc' init's Gaussian estimated from the same box draws), simulates, and reports per statistic:
where the target mean sits in the distribution of the statistic (inside / tail / unreachable), the
fraction of draws with a non-finite value, the fraction where its gradient with respect to z is zero
or non-finite, and a jump test (how often a small step in z changes the statistic by far more than
its gradients at both ends predict). Findings come with plain-language verdicts, the numbers and
specific advice::

    report = preflight(load_model("lds"), num_samples=1000, seed=0)
    print(report.to_text()); report.ok   # True: no finding
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor

from .model import Model
from .property import EmergentProperty
from .settings import FlowSettings, resolve_device, settings_for

#: a gradient is "zero" when it moves the statistic by less than this many target sds across the box
FLAT_TOLERANCE = 1e-6
#: the jump test's step, as a fraction of the box (in box-scaled coordinates, a random direction)
JUMP_STEP = 0.02
#: a change is a jump when it exceeds this multiple of what the gradients at both ends predict ...
JUMP_FACTOR = 10.0
#: ... and this many target sds (smaller changes do not matter at the target's scale)
JUMP_MIN_STD = 0.1
#: a statistic with a gradient "jumps" when at least this fraction of the small steps are jumps (the
#: STG's hub frequency, which trains, jumps on about 1 %)
JUMP_FRACTION = 0.05
#: a statistic whose gradient vanishes on most of the box is a step function from this fraction of jumps
STEP_JUMP_FRACTION = 0.005
#: a statistic is "flat" when its gradient vanishes on at least this fraction of the box draws and,
#: on at least FLAT_ALONE of them, no other statistic has a gradient either (a draw there gets no pull)
FLAT_FRACTION = 0.2
FLAT_ALONE = 0.2
#: a statistic is a step function when its gradient vanishes on at least this fraction and it jumps
STEP_FLAT_FRACTION = 0.5
#: percentile ranks outside [TAIL, 1 - TAIL] are the tail of a distribution
TAIL = 0.01
#: the target is unreachable when no draw comes within this many target sds of the target mean (the
#: SC's p_A target, which EPI reaches, is 2.2 sds beyond 1,000 box draws: its region is a tiny corner)
UNREACHABLE_STD = 5.0

VERDICTS = ("non_finite", "non_finite_gradient", "step", "jumps", "flat", "unreachable", "tail")


@dataclass
class DrawSummary:
    """One statistic over one set of draws (the box or the initial q); fractions in [0, 1]."""

    num_draws: int
    non_finite: float  # fraction of draws with a NaN or infinite value
    flat: float  # fraction of finite draws whose gradient w.r.t. z is zero
    bad_gradient: float  # fraction of finite draws whose gradient is NaN or infinite
    flat_alone: float  # fraction of finite draws where this and every other statistic are flat
    jumps: float  # fraction of small steps that jumped
    quantiles: dict[str, float]  # "min", "p1", "p5", "p50", "p95", "p99", "max" of the finite values
    target_rank: float  # fraction of finite values below the target mean (nan: no finite value)
    nearest: float  # the finite value nearest to the target mean (nan: none)


@dataclass
class StatisticCheck:
    name: str
    target_mean: float
    target_std: float
    box: DrawSummary
    init: DrawSummary
    target: str  # "inside", "tail" or "unreachable" (where the target mean sits, judged on the box)


@dataclass
class PreflightFinding:
    """A problem with one statistic: ``verdict`` is one of ``VERDICTS``; ``message`` states it with the
    numbers; ``advice`` lists what to try, most specific first."""

    verdict: str
    statistic: str
    message: str
    advice: list[str]
    values: dict[str, float] = field(default_factory=dict)


@dataclass
class PreflightReport:
    model: str
    statistics: list[StatisticCheck]
    findings: list[PreflightFinding]
    num_samples: int
    seed: int
    init: str  # how the initial q was drawn, in words
    wall_time_s: float

    @property
    def ok(self) -> bool:
        """True when there is no finding."""
        return not self.findings

    def verdicts(self) -> dict[str, list[str]]:
        """{statistic: [verdict, ...]} for every statistic (an empty list: no finding)."""
        out: dict[str, list[str]] = {s.name: [] for s in self.statistics}
        for f in self.findings:
            out[f.statistic].append(f.verdict)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}

    def _table_rows(self) -> list[list[str]]:
        rows = []
        for s in self.statistics:
            b, i = s.box, s.init
            rows.append([
                s.name, f"{s.target_mean:g} ± {s.target_std:g}", s.target,
                f"[{b.quantiles['p1']:.3g}, {b.quantiles['p99']:.3g}]", _pct(b.target_rank),
                _pct(i.target_rank), _pct(b.non_finite), _pct(b.flat), _pct(b.bad_gradient), _pct(b.jumps),
            ])
        return rows

    _HEADER = ["statistic", "target", "target is", "box p1-p99", "rank in box", "rank in init q",
               "non-finite", "zero grad", "bad grad", "jumps"]

    def to_text(self) -> str:
        """Plain text: a line per finding with its advice, then the per-statistic numbers."""
        lines = [f"pre-flight check of {self.model}: {self.num_samples} draws from the box and from the "
                 f"initial q ({self.init}), seed {self.seed}, {self.wall_time_s:.1f} s"]
        if self.ok:
            lines.append("no finding: every statistic is finite, has a gradient, varies smoothly and its "
                         "target lies within reach")
        for f in self.findings:
            lines.append(f"[{f.verdict}] {f.message}")
            lines += [f"    - {a}" for a in f.advice]
        rows = [self._HEADER, *self._table_rows()]
        widths = [max(len(r[k]) for r in rows) for k in range(len(self._HEADER))]
        lines.append("")
        lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
        lines.append("(fractions of the box draws; rank: fraction of draws below the target mean)")
        return "\n".join(lines)

    def to_markdown(self) -> str:
        """Markdown: the findings as a list with their advice, then a table of the numbers."""
        lines = [f"**Pre-flight check of `{self.model}`**: {self.num_samples} draws from the box and from "
                 f"the initial q ({self.init}), seed {self.seed}, {self.wall_time_s:.1f} s", ""]
        if self.ok:
            lines.append("No finding: every statistic is finite, has a gradient, varies smoothly and its "
                         "target lies within reach.")
        for f in self.findings:
            lines.append(f"- **{f.verdict}**: {f.message}")
            lines += [f"    - {a}" for a in f.advice]
        lines += ["", "| " + " | ".join(self._HEADER) + " |", "|" + "---|" * len(self._HEADER)]
        lines += ["| " + " | ".join(r) + " |" for r in self._table_rows()]
        return "\n".join(lines)


def _pct(x: float) -> str:
    if not math.isfinite(x):
        return "-"
    return f"{100 * x:.0f} %" if x == 0 or x >= 0.01 else f"{100 * x:.1f} %"


# --- numerics ---------------------------------------------------------------------------------------
def statistic_gradients(f: Tensor, z: Tensor) -> Tensor:
    """Per-draw gradients of each statistic: (batch, m, dim) from f: (batch, m) computed from z:
    (batch, dim) (draws must not interact). Zero where f does not depend on z through autograd."""
    m = f.shape[1]
    if not f.requires_grad:
        return torch.zeros(f.shape[0], m, z.shape[1], dtype=z.dtype, device=z.device)
    cols = []
    for j in range(m):
        (g,) = torch.autograd.grad(f[:, j].sum(), z, retain_graph=True, allow_unused=True)
        cols.append(torch.zeros_like(z) if g is None else g)
    return torch.stack(cols, 1)


def gradient_flags(grads: Tensor, width: Tensor, std: Tensor) -> tuple[Tensor, Tensor]:
    """(flat, bad): (batch, m) booleans from grads: (batch, m, dim). ``flat``: the gradient moves the
    statistic by less than FLAT_TOLERANCE target sds (``std``: (m,)) across the box (``width``: (dim,));
    ``bad``: the gradient is NaN or infinite."""
    bad = ~torch.isfinite(grads).all(-1)
    scaled = (grads * width).nan_to_num(0.0).norm(dim=-1)
    return (scaled <= FLAT_TOLERANCE * std) & ~bad, bad


def _evaluate(model: Model, z: Tensor, noise_seed: int, chunk: int) -> tuple[Tensor, Tensor]:
    """Statistics (n, m) and their gradients (n, m, dim) at z with one fixed noise draw per chunk."""
    fs, gs = [], []
    for k, part in enumerate(z.split(chunk)):
        part = part.detach().clone().requires_grad_(True)
        model.set_generator(torch.Generator(device=z.device).manual_seed(noise_seed + k))
        with torch.enable_grad():
            f = model.checked_statistics(part)
            g = statistic_gradients(f, part)
        fs.append(f.detach())
        gs.append(g.detach())
    return torch.cat(fs), torch.cat(gs)


def _box_step(z: Tensor, lower: Tensor, upper: Tensor, generator: torch.Generator) -> Tensor:
    """z + delta, a step of JUMP_STEP of the box along a random direction (box-scaled), reversed where
    it would leave the box: (n, dim)."""
    width = upper - lower
    d = torch.randn(z.shape, generator=generator, device=z.device, dtype=z.dtype)
    delta = JUMP_STEP * width * d / d.norm(dim=1, keepdim=True)
    ahead = z + delta
    outside = ((ahead < lower) | (ahead > upper)).any(1, keepdim=True)
    return torch.where(outside, z - delta, ahead).clamp(lower, upper)


@dataclass
class _Draws:
    f: Tensor  # (n, m)
    flat: Tensor  # (n, m)
    bad: Tensor  # (n, m)
    jump: Tensor  # (n, m)


def _probe(model: Model, z: Tensor, lower: Tensor, upper: Tensor, std: Tensor, seed: int,
           generator: torch.Generator, chunk: int) -> _Draws:
    f1, g1 = _evaluate(model, z, seed, chunk)
    z2 = _box_step(z, lower, upper, generator)
    f2, g2 = _evaluate(model, z2, seed, chunk)  # same noise: the change is due to z alone
    flat, bad = gradient_flags(g1, upper - lower, std)
    dz = (z2 - z)[:, None, :]
    predicted = torch.maximum((g1 * dz).sum(-1).abs(), (g2 * dz).sum(-1).abs())
    change = (f2 - f1).abs()
    finite = torch.isfinite(f1) & torch.isfinite(f2) & torch.isfinite(predicted)
    jump = finite & (change > JUMP_FACTOR * predicted) & (change > JUMP_MIN_STD * std)
    return _Draws(f1, flat, bad, jump)


def _summary(d: _Draws, j: int, mean: float) -> DrawSummary:
    f = d.f[:, j]
    finite = torch.isfinite(f)
    n_f = int(finite.sum())
    others_flat = (d.flat | ~torch.isfinite(d.f)).all(1)  # no statistic pulls this draw
    frac = (lambda x: float((x & finite).sum()) / n_f) if n_f else (lambda x: float("nan"))
    vals = f[finite].double()
    if n_f:
        qs = torch.quantile(vals, torch.tensor([0.01, 0.05, 0.5, 0.95, 0.99], dtype=vals.dtype,
                                               device=vals.device)).tolist()
        quantiles = dict(zip(("p1", "p5", "p50", "p95", "p99"), qs), min=float(vals.min()), max=float(vals.max()))
        rank = float((vals < mean).double().mean() + 0.5 * (vals == mean).double().mean())
        nearest = float(vals[(vals - mean).abs().argmin()])
    else:
        quantiles = dict.fromkeys(("min", "p1", "p5", "p50", "p95", "p99", "max"), float("nan"))
        rank = nearest = float("nan")
    return DrawSummary(
        num_draws=int(f.shape[0]), non_finite=1.0 - n_f / f.shape[0], flat=frac(d.flat[:, j]),
        bad_gradient=frac(d.bad[:, j]), flat_alone=frac(d.flat[:, j] & others_flat), jumps=frac(d.jump[:, j]),
        quantiles=quantiles, target_rank=rank, nearest=nearest,
    )


def _init_draws(flow: FlowSettings, lower: Tensor, upper: Tensor, z_box: Tensor, f_box: Tensor,
                prop: EmergentProperty, n: int, generator: torch.Generator) -> tuple[Tensor, str]:
    """Draws from q at the start of training (before refinement): the box map of an isotropic
    Gaussian, set as ``RealNVP.set_gaussian_approximation`` sets it: (n, dim), and how, in words."""
    width = upper - lower
    if flow.init == "abc":
        keep = max(2, round(z_box.shape[0] * flow.abc_keep / flow.abc_samples))
        mean_t = torch.as_tensor(prop.mean, dtype=f_box.dtype, device=f_box.device)
        std_t = torch.as_tensor(prop.std, dtype=f_box.dtype, device=f_box.device)
        distance = ((f_box - mean_t) / std_t).square().sum(-1).nan_to_num(nan=float("inf"))
        kept = z_box[distance.topk(keep, largest=False).indices]
        mean, sd = kept.mean(0), torch.maximum(kept.std(0), 0.01 * width)
        how = f"init=abc: Gaussian of the {keep} box draws nearest the target"
    else:
        mean = (lower + upper) / 2 if flow.init_mean is None else torch.tensor(flow.init_mean).to(lower)
        sd = width / 4 if flow.init_sd is None else torch.full_like(lower, flow.init_sd)
        how = "init=gaussian: " + ("box centre" if flow.init_mean is None else "init_mean") + ", " + (
            "sd = range / 4" if flow.init_sd is None else f"sd {flow.init_sd:g}")
    p = ((mean - lower) / width).clamp(0.02, 0.98)
    loc, scale = torch.log(p) - torch.log1p(-p), (sd / (width * p * (1 - p))).clamp(min=1e-3)
    x = torch.randn(n, lower.shape[0], generator=generator, device=lower.device, dtype=lower.dtype)
    return lower + width * torch.sigmoid(scale * x + loc), how


# --- verdicts ---------------------------------------------------------------------------------------
def _target_position(box: DrawSummary, mean: float, std: float) -> str:
    if not math.isfinite(box.nearest) or abs(box.nearest - mean) > UNREACHABLE_STD * std:
        return "unreachable"
    return "tail" if not TAIL <= box.target_rank <= 1 - TAIL else "inside"


def _smoothing_advice(name: str) -> str:
    return (f"make {name} vary smoothly: replace hard thresholds, clamps, argmax and counts by soft versions "
            "that keep a small slope everywhere (torch.sigmoid((x - x0) / width) for a threshold, softplus "
            "for clamp(min=0), a softmax-weighted average over frequencies with a temperature for a spectral "
            "peak, see the README's 'Writing a model')")


def _compare_advice(model_name: str, prop: EmergentProperty) -> str:
    targets = " ".join(f"--mean {s}={m:g} --std {s}={sd:g}" for s, m, sd in zip(prop.statistics, prop.mean, prop.std))
    return ("if it cannot be made smooth, use the gradient-free methods on the same model and property: "
            f"epi-dash compare {model_name} --methods snpe,smc {targets}")


def _findings(check: StatisticCheck, model_name: str, prop: EmergentProperty, init_how: str) -> list[PreflightFinding]:
    s, b, i = check.name, check.box, check.init
    out: list[PreflightFinding] = []
    smooth, compare = _smoothing_advice(s), _compare_advice(model_name, prop)
    box_advice = ("narrow the box (the FreeParameter bounds) to where it varies, or start q there: "
                  "--set init=abc")
    if b.non_finite > 0 or i.non_finite > 0:
        out.append(PreflightFinding(
            "non_finite", s,
            f"{s} is NaN or infinite for {_pct(b.non_finite)} of the box draws ({_pct(i.non_finite)} of the "
            "initial q's); training stops at the first batch that contains one",
            [f"guard the expression that produces {s}: clamp before sqrt/log/division (x.clamp(min=1e-6)), "
             "torch.where(ok, value, fallback) with a finite fallback, or torch.nan_to_num",
             "narrow the box (the FreeParameter bounds) to exclude the region where it is undefined"],
            {"box": b.non_finite, "init": i.non_finite}))
    if b.bad_gradient > 0 or i.bad_gradient > 0:
        out.append(PreflightFinding(
            "non_finite_gradient", s,
            f"the gradient of {s} with respect to z is NaN or infinite on {_pct(b.bad_gradient)} of the box "
            f"draws ({_pct(i.bad_gradient)} of the initial q's) where {s} itself is finite; one such draw "
            "makes the flow's weights NaN",
            [f"avoid points of infinite slope in {s}: sqrt(x) at x = 0 (use sqrt(x + 1e-8)), abs or norms at "
             "0, division by a quantity that can vanish; guard torch.where branches so both are finite"],
            {"box": b.bad_gradient, "init": i.bad_gradient}))
    if b.jumps >= STEP_JUMP_FRACTION and b.flat >= STEP_FLAT_FRACTION:
        out.append(PreflightFinding(
            "step", s,
            f"{s} is a step function: its gradient is zero on {_pct(b.flat)} of the box, and {_pct(b.jumps)} "
            f"of small steps in z ({JUMP_STEP:.0%} of the box) change it by far more than its gradient "
            "predicts; gradients cannot see where it changes",
            [smooth, box_advice, compare], {"flat": b.flat, "jumps": b.jumps}))
    elif b.jumps >= JUMP_FRACTION:
        out.append(PreflightFinding(
            "jumps", s,
            f"{s} jumps: {_pct(b.jumps)} of small steps in z ({JUMP_STEP:.0%} of the box) change it by more "
            f"than {JUMP_FACTOR:g} times what its gradient predicts (and by over {JUMP_MIN_STD:g} target sd); "
            "its gradient misleads the optimizer near the jumps",
            [f"{smooth}; with a temperature, make it larger", "a smaller learning rate (--set lr=1e-4) "
             "tolerates rare jumps", compare], {"jumps": b.jumps}))
    elif b.flat >= FLAT_FRACTION and b.flat_alone >= FLAT_ALONE:
        out.append(PreflightFinding(
            "flat", s,
            f"{s} is flat (zero gradient) on {_pct(b.flat)} of the box ({_pct(i.flat)} of the initial q's)"
            + (f"; on {_pct(b.flat_alone)} of the box no statistic has a gradient, so samples of q there "
               "are not pulled toward the target" if len(prop.statistics) > 1 else
               "; samples of q there are not pulled toward the target"),
            [smooth, box_advice, compare], {"flat": b.flat, "flat_init": i.flat, "flat_alone": b.flat_alone}))
    q = b.quantiles
    if check.target == "unreachable":
        out.append(PreflightFinding(
            "unreachable", s,
            f"the target mean of {s} ({check.target_mean:g}) is beyond every box draw: the nearest is "
            f"{b.nearest:.4g}, {abs(b.nearest - check.target_mean) / check.target_std:.1f} target sds away "
            f"(box: {q['min']:.4g} to {q['max']:.4g})",
            [f"choose a target the model can produce: --mean {s}=V with V between {q['p1']:.4g} and "
             f"{q['p99']:.4g} (the box's 1st-99th percentiles)",
             "or widen the box (the FreeParameter bounds) or change the model's hyperparameters (--set) so "
             f"{s} can reach {check.target_mean:g}"],
            {"nearest": b.nearest, "min": q["min"], "max": q["max"]}))
    elif check.target == "tail" and not TAIL <= i.target_rank <= 1 - TAIL:
        side = "below the 1st" if b.target_rank < TAIL else "beyond the 99th"
        out.append(PreflightFinding(
            "tail", s,
            f"the target mean of {s} ({check.target_mean:g}) lies {side} percentile of the box "
            f"({_pct(b.target_rank)} of box draws are below it) and of the initial q "
            f"({_pct(i.target_rank)}; {init_how}): q must travel far, through regions where the penalty is large",
            ["start q near the target: --set init=abc (a rejection-ABC search of the box)"
             if "abc" not in init_how else "more ABC draws for the init: --set abc_samples=100000",
             "or narrow the box (the FreeParameter bounds) around the region that produces the target",
             f"or choose a target nearer the box's bulk (median {q['p50']:.4g})"],
            {"rank_box": b.target_rank, "rank_init": i.target_rank}))
    return out


@torch.no_grad()
def preflight(
    model: Model,
    prop: EmergentProperty | None = None,
    num_samples: int = 1000,
    seed: int = 0,
    flow: FlowSettings | None = None,
    device: str | torch.device = "auto",
    chunk: int = 1024,
) -> PreflightReport:
    """Check that ``prop``'s statistics are trainable on ``model`` (default property: the model's).

    ``num_samples`` draws from the box and as many from the initial q of ``flow`` (default: the
    model's settings); each is simulated twice (at z and a small step away, with the same noise).
    Compiled simulators run eagerly here (no compile for the check's batch sizes)."""
    t0 = time.perf_counter()
    prop = prop if prop is not None else EmergentProperty.default_for(model)
    prop.validate(model)
    flow = flow if flow is not None else settings_for(model)[0]
    dev = resolve_device(device)
    lower, upper = (b.to(dev) for b in model.bounds())
    std = torch.tensor(prop.std, dtype=lower.dtype, device=dev)
    generator = torch.Generator(device=dev).manual_seed(seed)
    previous = model._generator
    eager = {"compile": "off"} if "compile" in model.param else {}
    try:
        with model.param.update(**eager):
            z_box = lower + (upper - lower) * torch.rand(num_samples, model.dim, generator=generator, device=dev)
            box = _probe(model, z_box, lower, upper, std, seed, generator, chunk)
            z_init, how = _init_draws(flow, lower, upper, z_box, box.f, prop, num_samples, generator)
            init = _probe(model, z_init, lower, upper, std, seed + 10_000, generator, chunk)
    finally:
        model.set_generator(previous)
    name = model.model_name or type(model).__name__
    checks, findings = [], []
    for j, (s, mu, sd) in enumerate(zip(prop.statistics, prop.mean, prop.std)):
        b, i = _summary(box, j, mu), _summary(init, j, mu)
        check = StatisticCheck(s, float(mu), float(sd), b, i, _target_position(b, mu, sd))
        checks.append(check)
        findings += _findings(check, name, prop, how)
    return PreflightReport(name, checks, findings, num_samples, seed, how, time.perf_counter() - t0)
