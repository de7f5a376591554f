"""Baselines for the speed race: SNPE (sbi) and SMC-ABC (pyabc) on the same model code as EPI,
judged by one shared convergence criterion."""

from .criterion import ABC_EPSILON, DISTANCE_THRESHOLD, ConvergenceCriterion, abc_distances, predictive_distance
from .problem import Budget, InferenceProblem, Stopped
from .race import METHODS, MethodSpec, load_comparison, parse_methods, run_comparison, run_method, save_comparison
from .result import MethodResult, StepRecord
from .epi_runner import run_epi
from .smc_abc import SMCABCSettings, run_smc_abc
from .snpe import SNPESettings, run_snpe

__all__ = [
    "ABC_EPSILON", "DISTANCE_THRESHOLD", "ConvergenceCriterion", "abc_distances", "predictive_distance",
    "Budget", "InferenceProblem", "Stopped", "MethodResult", "StepRecord",
    "METHODS", "MethodSpec", "load_comparison", "parse_methods", "run_comparison", "run_method",
    "save_comparison",
    "SNPESettings", "run_snpe", "SMCABCSettings", "run_smc_abc", "run_epi",
]
