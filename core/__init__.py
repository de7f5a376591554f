"""epi-dash engine: emergent property inference (Bittner et al.) in PyTorch. UI-free."""

from .analysis import EPIDistribution, HessianDirections
from .epi import (
    EPIResult,
    EPITrainer,
    EpochRecord,
    IterationRecord,
    augmented_lagrangian_loss,
    best_result,
    load_distribution,
)
from .errors import InputError, TrainingError
from .health import HealthFinding, HealthWatch
from .flow import RealNVP
from .hypothesis import convergence_test, penalty_increase_test
from .model import (
    FreeParameter,
    Model,
    Statistic,
    Trajectories,
    available_models,
    load_model,
    load_model_class,
    register_model,
)
from .preflight import PreflightFinding, PreflightReport  # the check itself: core.preflight.preflight
from .property import EmergentProperty
from .runs import Run, list_runs, load_run, reserve_run_dir, validate_run_name
from .settings import FlowSettings, OptimizerSettings, resolve_device, settings_for

__all__ = [
    "EPIDistribution", "EPIResult", "EPITrainer", "EmergentProperty", "EpochRecord", "FlowSettings",
    "FreeParameter", "HealthFinding", "HealthWatch", "HessianDirections", "InputError", "IterationRecord", "Model", "OptimizerSettings",
    "RealNVP", "Run", "Statistic", "TrainingError", "Trajectories", "augmented_lagrangian_loss",
    "available_models", "best_result", "convergence_test", "list_runs", "load_distribution", "load_model", "load_model_class", "load_run",
    "PreflightFinding", "PreflightReport", "penalty_increase_test", "register_model", "reserve_run_dir", "validate_run_name", "resolve_device", "settings_for",
]
