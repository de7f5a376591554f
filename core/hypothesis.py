"""The two hypothesis tests of EPI's augmented Lagrangian loop (Methods 5.1.3)."""

from __future__ import annotations

import numpy as np
from scipy import stats
from torch import Tensor


def convergence_test(batch_R: Tensor, alpha: float = 0.05) -> tuple[np.ndarray, bool]:
    """Two-tailed sign test per constraint that E[R_i] = 0, Bonferroni-corrected over constraints.

    ``batch_R``: (num_batches, m) constraint violations, each the mean over one fresh batch.
    p_i = 2 min(frac(R_i > 0), frac(R_i < 0)); converged iff p_i > alpha / m for every i.
    Returns (p_values (m,), converged)."""
    R = batch_R.detach().double().cpu().numpy()
    frac_pos = (R > 0).mean(0)
    frac_neg = (R < 0).mean(0)
    p = np.minimum(1.0, 2 * np.minimum(frac_pos, frac_neg))
    return p, bool(np.all(p > alpha / R.shape[1]))


def penalty_increase_test(
    norms: np.ndarray, previous_norms: np.ndarray, gamma: float, u: float
) -> tuple[bool, float, float]:
    """Should c grow? One-sided Welch t-test that E||R_k||^2 > gamma E||R_{k-1}||^2 (per-batch squared
    norms, as the reference code); grow with probability 1 - p when t > 0 (``u`` ~ U(0, 1)).
    Returns (increase, t, p_one_sided)."""
    t, p_two = stats.ttest_ind(norms, gamma * np.asarray(previous_norms), equal_var=False)
    t = float(t)
    if not np.isfinite(t):  # identical constant samples
        return False, t, 1.0
    p_one = float(p_two) / 2 if t > 0 else 1 - float(p_two) / 2
    return bool(t > 0 and u < 1 - p_one), t, p_one
