"""Amortized inverse modeling of a clustered AdEx spiking network (AutoMIND): batched torch simulator,
summary features, simulated training sets, neural posterior estimation, targets, predictive checks and
invariance geometry. UI-free."""

from .build import BUILD_KIND, build_and_train
from .check import DEFAULT_TOL, PredictiveCheck, compare, coverage, predictive_check
from .dataset import DATASET_KIND, build_dataset, check_version, default_settings, load_dataset, simulate_chunk
from .features import (
    FILL_RULES,
    REGIMES,
    FeatureSettings,
    classify_regimes,
    compute_features,
    feature_names,
    feature_specs,
)
from .geometry import Geometry, compare_geometries, global_geometry, local_geometry, participation_ratio
from .inference import TargetAnalysis, analyze_target
from .network import build_connectivity, simulate
from .posterior import POSTERIOR_KIND, AmortizedPosterior, load_posterior, train_posterior
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
from .targets import Target, heldout_target, load_spike_file, resolve_target, save_spike_file

__all__ = [
    "BUILD_KIND", "DATASET_KIND", "DEFAULTS", "DEFAULT_TOL", "FILL_RULES", "MODEL_VERSION", "POSTERIOR_KIND",
    "PARAMETERS", "PARAMETER_NAMES", "REGIMES", "AmortizedPosterior", "FeatureSettings", "Geometry",
    "NetworkConfig", "PredictiveCheck", "Spikes", "Target", "TargetAnalysis", "analyze_target",
    "build_and_train", "build_connectivity", "build_dataset", "check_version", "classify_regimes", "compare",
    "compare_geometries", "compute_features", "coverage", "default_settings", "default_theta", "feature_names",
    "feature_specs", "from_unit", "global_geometry", "heldout_target", "load_dataset", "load_posterior",
    "load_spike_file", "local_geometry", "participation_ratio", "predictive_check", "resolve_target",
    "sample_prior", "save_spike_file", "simulate", "simulate_chunk", "to_unit", "train_posterior",
]
