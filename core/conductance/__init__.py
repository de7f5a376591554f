"""Degenerate populations of conductance-based neurons from spike times, via Dynamic Input Conductances
(Brandoit, Ernst, Drion, Fyon 2025). UI-free.

models (STG, DA equations) -> simulate (batched, spikes) -> dic (g_f, g_s, g_u) -> compensation (targets
-> conductances) -> metrics (activity from spike times) -> spikes (files) -> dataset / training (jobs) ->
density (spike train -> q(g_s, g_u)) -> pipeline (all of it).
"""

from .compensation import CompensationResult, check_targets, compensate, neuromodulate, seed_population
from .dataset import load_dataset, simulate_dataset
from .density import DICDensity, check_trains, isi_tokens, load_density
from .dic import dic_curves, dics, sensitivity, timescale_shares
from .metrics import CLASSES, METRICS, activity_metrics, metrics_table
from .models import DA, MODELS, STG, ConductanceModel, get_model
from .pipeline import (PipelineResult, compare, generate, input_population, run_pipeline, sample_targets)
from .simulate import SimulationResult, simulate
from .spikes import SpikeTrains, parse_csv, read_spikes, validate_train, write_spikes
from .training import train_density

__all__ = [
    "CLASSES", "DA", "METRICS", "MODELS", "STG", "CompensationResult", "ConductanceModel", "DICDensity",
    "PipelineResult", "SimulationResult", "SpikeTrains", "activity_metrics", "check_targets", "check_trains",
    "compare", "compensate", "dic_curves", "dics", "generate", "get_model", "input_population", "isi_tokens",
    "load_dataset", "load_density", "metrics_table", "neuromodulate", "parse_csv", "read_spikes",
    "run_pipeline", "sample_targets", "seed_population", "sensitivity", "simulate", "simulate_dataset",
    "timescale_shares", "train_density", "validate_train", "write_spikes",
]
