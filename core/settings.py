"""Flow and optimizer settings (param-declared, with the paper's defaults) and device choice."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import param
import torch

from .errors import InputError, parameter_error

if TYPE_CHECKING:
    from .model import Model


class FlowSettings(param.Parameterized):
    """Real NVP architecture and its Gaussian initialization (Methods 5.1.2-5.1.3)."""

    num_stages = param.Integer(3, bounds=(1, 16), doc="affine coupling stages")
    num_layers = param.Integer(2, bounds=(1, 6), doc="hidden layers of each conditioner MLP")
    num_units = param.Integer(50, bounds=(2, 2048), doc="units per hidden layer")
    batch_norm = param.Boolean(False, doc="batch norm between stages (the paper's final runs: off)")
    post_affine = param.Boolean(True, doc="elementwise scale and shift before the support map")
    mixing = param.Selector(default="lu", objects=["lu", "permutation"],
                            doc="between stages: trainable LU linear map (Glow) or a fixed permutation")
    init_mean = param.List(None, allow_None=True, doc="mean of the Gaussian initialization (default: box centre)")
    init_sd = param.Number(None, allow_None=True, bounds=(0, None), inclusive_bounds=(False, True),
                           doc="sd of the Gaussian initialization (default: (upper - lower) / 4 per dimension)")
    init_iters = param.Integer(500, bounds=(0, None),
                               doc="reverse-KL refinement steps of the Gaussian initialization")
    init = param.Selector(default="gaussian", objects=["gaussian", "abc"], doc=(
        "the Gaussian q starts from: 'gaussian' = init_mean / init_sd (default: box centre, range / 4); "
        "'abc' = mean and sd of the abc_keep of abc_samples uniform draws from the box whose statistics "
        "lie closest to the property's mean (a preliminary rejection-ABC search, the reference's STG init)"))
    abc_samples = param.Integer(10_000, bounds=(10, None), doc="uniform draws simulated by the 'abc' init")
    abc_keep = param.Integer(500, bounds=(2, None), doc="draws kept by the 'abc' init (the reference's num_keep)")


class OptimizerSettings(param.Parameterized):
    """Augmented Lagrangian optimization (Methods 5.1.3). Defaults as the reference code."""

    batch_size = param.Integer(500, bounds=(4, None), doc="samples of q per iteration (N)")
    lr = param.Number(1e-3, bounds=(0, None), inclusive_bounds=(False, True), doc="Adam learning rate")
    c0 = param.Number(1.0, bounds=(0, None), inclusive_bounds=(False, True), doc="initial penalty coefficient c")
    gamma = param.Number(0.25, bounds=(0, 1), inclusive_bounds=(False, False),
                         doc="required factor of constraint-error reduction per epoch")
    beta = param.Number(4.0, bounds=(1, None), inclusive_bounds=(False, True), doc="penalty growth factor")
    num_epochs = param.Integer(10, bounds=(1, None), doc="maximum augmented Lagrangian epochs (K)")
    iters_per_epoch = param.Integer(1000, bounds=(1, None), doc="iterations per epoch")
    alpha = param.Number(0.05, bounds=(0, 1), inclusive_bounds=(False, False),
                         doc="convergence test level (Bonferroni-corrected over constraints)")
    nu = param.Number(1.0, bounds=(0, None), inclusive_bounds=(False, True),
                      doc="test batch size as a fraction of batch_size (N_test = nu N)")
    num_test_batches = param.Integer(200, bounds=(10, None), doc="fresh batches per hypothesis test")
    reset_optimizer = param.Boolean(False, doc="reset Adam's moments after each epoch (paper: yes, code: no)")
    stop_early = param.Boolean(True, doc="stop at the first epoch that passes the convergence test")
    seed = param.Integer(1, doc="random seed (flow init, samples, simulator noise, c-test draws)")
    device = param.Selector(default="auto", objects=["auto", "cpu", "cuda"], doc="where to train")
    num_threads = param.Integer(1, bounds=(0, None), doc=(
        "CPU threads for torch's intra-op pool while training (process-wide; 0 leaves torch's default). "
        "1 is fastest for the small batched ops of most models, and far faster when cores are shared"))
    health = param.Selector(default="stop", objects=["stop", "warn", "off"], doc=(
        "health watch (core.health): on a finding (collapse, rising cost, vanishing gradient, NaN) 'stop' ends "
        "the run in state 'unhealthy' keeping the checkpoint from before it, 'warn' reports it and goes on"))
    test_chunk = param.Integer(8192, bounds=(100, None), doc=(
        "samples per vectorized chunk in the tests (larger chunks are slower on CPU at high dimension)"))


def settings_for(model: Model, **overrides: Any) -> tuple[FlowSettings, OptimizerSettings]:
    """The model's paper settings (``model.epi_defaults``), then ``overrides``."""
    values = {**model.epi_defaults, **overrides}
    flow_keys = set(FlowSettings.param) - {"name"}
    opt_keys = set(OptimizerSettings.param) - {"name"}
    unknown = set(values) - flow_keys - opt_keys
    if unknown:
        key = sorted(unknown)[0]
        raise InputError(f"settings[{key}]", f"unknown setting {key!r}")
    try:
        flow = FlowSettings(**{k: v for k, v in values.items() if k in flow_keys})
        opt = OptimizerSettings(**{k: v for k, v in values.items() if k in opt_keys})
    except (ValueError, TypeError) as exc:
        raise parameter_error("settings", exc) from exc
    return flow, opt


def settings_dict(settings: param.Parameterized) -> dict[str, Any]:
    """Plain dict of a settings object (without param's ``name``)."""
    return {k: getattr(settings, k) for k in settings.param if k != "name"}


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> CUDA when present, else CPU. Asking for CUDA without one is an InputError."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError("device", "CUDA was requested but no CUDA device is available")
    return device
