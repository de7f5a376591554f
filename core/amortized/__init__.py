"""Amortized inverse modeling of a clustered AdEx spiking network (AutoMIND): batched torch simulator,
summary features, simulated training sets, neural posterior estimation, targets, predictive checks and
invariance geometry. UI-free."""

from .features import FeatureSettings, compute_features, feature_names, feature_specs
from .network import build_connectivity, simulate
from .prior import (
    DEFAULTS,
    MODEL_VERSION,
    PARAMETER_NAMES,
    PARAMETERS,
    NetworkConfig,
    default_theta,
    from_unit,
    sample_prior,
    to_unit,
)
from .spikes import Spikes

__all__ = [
    "DEFAULTS", "FeatureSettings", "MODEL_VERSION", "NetworkConfig", "PARAMETERS", "PARAMETER_NAMES", "Spikes",
    "build_connectivity", "compute_features", "default_theta", "feature_names", "feature_specs", "from_unit",
    "sample_prior", "simulate", "to_unit",
]
