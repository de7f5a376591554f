"""Maximum-entropy connectivity (loading) distributions of low-rank RNNs (issue 23). UI-free.

network: finite-N batched simulation; meanfield: F(kappa) by Monte Carlo and closed form; teachers:
synthetic loading laws; observation: the dynamics as expectation constraints; identifiability: what they
pin down; maxent: the exponential tilt and its dual; flow_matching: the CNF and its max-ent training;
epi_problem: the same constraints through the EPI engine; baseline: gradient-descent lrRNN fits;
validation: resampled networks vs the teacher; data: user trajectories and activity; inference: the job."""

from .maxent import MaxEntSolution, constraint_error, dynamics_residual, solve_maxent
from .meanfield import GaussianMixture, field_mc, gaussian_averages, integrate_latent, latent_velocity
from .network import join_loadings, latent_readout, loading_names, phi_fn, simulate_network, split_loadings
from .observation import Observation, field_from_trajectories, subsample_probes
from .teachers import TEACHERS, Teacher, make_teacher, tail_index
from .validation import TOLERANCES, dynamics_error, measure, network_dynamics, reference_dynamics

__all__ = [
    "GaussianMixture", "MaxEntSolution", "Observation", "TEACHERS", "TOLERANCES", "Teacher", "constraint_error",
    "dynamics_error", "dynamics_residual", "field_from_trajectories", "field_mc", "gaussian_averages",
    "integrate_latent", "join_loadings", "latent_readout", "latent_velocity", "loading_names", "make_teacher",
    "measure", "network_dynamics", "phi_fn", "reference_dynamics", "simulate_network", "solve_maxent",
    "split_loadings", "subsample_probes", "tail_index",
]
