"""Neural posterior estimation (sbi's NPE with a neural spline flow) on a simulated data set, saved beside
it; loading and fast sampling.

As the reference: theta min-max scaled to [0, 1] by the prior box; then to logit space (the reference's
``sigmoid_theta`` option) so that samples need no rejection at the box's walls (with rejection, an
estimator that leaks mass outside the box took seconds for 1,000 samples); features z-scored by sbi;
single-round amortized NPE.
Scaled down: a smaller NSF (``hidden``/``transforms`` settings) for a few thousand simulations.

Files in ``DIR/estimator/``: ``posterior.pt`` (``torch.save`` of a dict: the sbi DirectPosterior, the
model version, names) and ``posterior.json`` (training summary, feature scales and coverage quantiles),
plus the job's run.json and events.jsonl.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..baselines.snpe import QuietTracker
from ..errors import InputError
from ..jobs import JobContext
from ..runs import atomic_write
from .dataset import check_version, load_dataset
from .prior import MODEL_VERSION, PARAMETER_NAMES, from_unit, to_unit

ESTIMATOR_DIR = "estimator"
#: theta is trained in logit space of the unit box (the reference's ``sigmoid_theta`` option): samples
#: never leave the prior box, so sampling needs no rejection step
LOGIT_EPS = 1e-5
LOGIT_BOUND = 12.0


def to_logit(u: torch.Tensor) -> torch.Tensor:
    """logit of unit-box values (clamped to [1e-5, 1 - 1e-5])."""
    u = torch.as_tensor(u, dtype=torch.float32).clamp(LOGIT_EPS, 1 - LOGIT_EPS)
    return torch.log(u) - torch.log1p(-u)
POSTERIOR_KIND = "amortized.posterior"


def default_train_settings(**overrides: Any) -> dict[str, Any]:
    """Settings of the training job: density estimator, size, batch, lr, patience, epochs, seed."""
    s = {"density_estimator": "nsf", "hidden": 50, "transforms": 5, "bins": 10, "batch_size": 100,
         "lr": 5e-4, "stop_after_epochs": 20, "max_epochs": 300, "seed": 0}
    unknown = set(overrides) - set(s)
    if unknown:
        key = sorted(unknown)[0]
        raise InputError(f"train[{key}]", f"unknown training setting {key!r}")
    s.update(overrides)
    if s["density_estimator"] not in ("nsf", "maf"):
        raise InputError("train[density_estimator]", "use 'nsf' (the reference) or 'maf'")
    return s


def feature_summary(x: np.ndarray) -> dict[str, list[float]]:
    """Scales of the training features (valid sims): mean, sd, and the 0.5 % / 99.5 % quantiles, min, max."""
    sd = x.std(0)
    return {"mean": x.mean(0).tolist(), "std": np.where(sd > 0, sd, 1.0).tolist(),
            "q_low": np.quantile(x, 0.005, axis=0).tolist(), "q_high": np.quantile(x, 0.995, axis=0).tolist(),
            "min": x.min(0).tolist(), "max": x.max(0).tolist()}


def train_posterior(ctx: JobContext) -> dict[str, Any]:
    """The training job (run dir ``DATASET/estimator``): NPE on the valid training simulations, one epoch
    per sbi call so progress (validation loss) is reported and a stop is honoured between epochs."""
    from sbi.inference import NPE
    from sbi.neural_nets import posterior_nn
    from sbi.utils import BoxUniform

    s = default_train_settings(**ctx.settings.get("train", {}))
    root = Path(ctx.settings["dataset"])
    data = load_dataset(root)
    theta, x = data["theta"][data["valid"]], data["x"][data["valid"]]
    if len(theta) < 20:
        raise InputError("budget", f"only {len(theta)} valid simulations in {root} (need at least 20); "
                         "raise the budget")
    torch.manual_seed(s["seed"])
    prior = BoxUniform(-LOGIT_BOUND * torch.ones(theta.shape[1]), LOGIT_BOUND * torch.ones(theta.shape[1]))
    builder = posterior_nn(model=s["density_estimator"], hidden_features=s["hidden"],
                           num_transforms=s["transforms"], num_bins=s["bins"])
    tracker = QuietTracker()
    inference = NPE(prior=prior, density_estimator=builder, tracker=tracker, show_progress_bars=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sbi's z-scoring outlier note: burst features have fill values
        inference.append_simulations(to_logit(to_unit(theta)), torch.as_tensor(x))
    t0 = time.perf_counter()
    epoch, converged, estimator = 0, False, None
    best = float("inf")
    while epoch < s["max_epochs"]:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            estimator = inference.train(training_batch_size=s["batch_size"], learning_rate=s["lr"],
                                        stop_after_epochs=s["stop_after_epochs"], max_num_epochs=epoch + 1,
                                        resume_training=epoch > 0)
        converged = inference.epoch <= epoch + 1
        epoch = inference.epoch
        best = float(inference._best_val_loss)
        ctx.progress(min(epoch, s["max_epochs"]), s["max_epochs"], validation_loss=float(inference._val_loss),
                     best_validation_loss=best)
        if converged:
            break
        ctx.check_stop()
    posterior = inference.build_posterior(estimator)
    summary = {"format": "epi-dash amortized estimator 1", "model_version": MODEL_VERSION,
               "parameter_names": list(PARAMETER_NAMES), "feature_names": data["meta"]["feature_names"],
               "feature_units": data["meta"]["feature_units"], "train": s, "epochs": int(epoch),
               "converged": bool(converged), "best_validation_loss": best, "n_train": int(len(theta)),
               "n_simulated": int(len(data["theta"])), "train_s": time.perf_counter() - t0,
               "features": feature_summary(x), "network": data["meta"]["settings"]["network"],
               "feature_settings": data["meta"]["settings"]["features"]}
    atomic_write(ctx.path("posterior.pt"), lambda p: torch.save({"posterior": posterior, **summary}, p))
    text = json.dumps(summary, indent=2)
    atomic_write(ctx.path("posterior.json"), lambda p: p.write_text(text))
    return {k: summary[k] for k in ("epochs", "converged", "best_validation_loss", "n_train", "train_s")}


@dataclass
class AmortizedPosterior:
    """A trained estimator: ``sample(x, n)`` in parameter units, ``log_prob`` in the unit box."""

    posterior: Any
    meta: dict[str, Any]
    path: Path

    @property
    def feature_names(self) -> list[str]:
        return list(self.meta["feature_names"])

    @property
    def parameter_names(self) -> list[str]:
        return list(self.meta["parameter_names"])

    def _x(self, x) -> torch.Tensor:
        x = torch.as_tensor(np.asarray(x, dtype=np.float32)).reshape(1, -1)
        if x.shape[1] != len(self.feature_names):
            raise InputError("target", f"expected {len(self.feature_names)} features, got {x.shape[1]}")
        bad = [n for n, v in zip(self.feature_names, x[0].tolist()) if not np.isfinite(v)]
        if bad:
            raise InputError("target", f"feature {bad[0]} is not finite ({len(bad)} such); the target cannot be used")
        return x

    def sample_unit(self, x, n: int = 1000, seed: int = 0) -> torch.Tensor:
        """n samples (n, 28) in the unit box for features x (F,)."""
        if n < 1:
            raise InputError("n", f"must be >= 1, got {n}")
        torch.manual_seed(seed)
        xx = self._x(x)
        est = self.posterior.posterior_estimator
        est.eval()
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            s = est.sample((n,), condition=xx).reshape(n, -1)
        return torch.sigmoid(s)  # logit space -> inside the box by construction, no rejection

    def sample(self, x, n: int = 1000, seed: int = 0) -> torch.Tensor:
        """n samples (n, 28) in parameter units for features x (F,)."""
        return from_unit(self.sample_unit(x, n, seed))

    def log_prob_unit(self, u: torch.Tensor, x) -> torch.Tensor:
        """log q(u | x) in the unit box (the flow's logit-space density plus the logit Jacobian): (n,),
        differentiable in u."""
        est = self.posterior.posterior_estimator
        est.eval()
        u = u.clamp(LOGIT_EPS, 1 - LOGIT_EPS)
        lq = est.log_prob(to_logit(u)[:, None], condition=self._x(x)).reshape(-1)
        return lq - torch.log(u * (1 - u)).sum(-1)

    def log_prob(self, theta: torch.Tensor, x) -> torch.Tensor:
        return self.log_prob_unit(to_unit(theta), x)


def estimator_dir(root: str | Path) -> Path:
    return Path(root) / ESTIMATOR_DIR


def load_posterior(path: str | Path) -> AmortizedPosterior:
    """The estimator of a data set directory (or a ``posterior.pt`` path); an InputError naming
    "estimator" when it is missing, does not load, or is from another model version."""
    path = Path(path)
    f = path if path.suffix == ".pt" else estimator_dir(path) / "posterior.pt"
    if not f.is_file():
        raise InputError("estimator", f"no trained estimator at {f}; run `epi-dash amortized build` first")
    try:
        d = torch.load(f, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise InputError("estimator", f"{f} does not load: {type(exc).__name__}: {exc}") from exc
    if not isinstance(d, dict) or "posterior" not in d:
        raise InputError("estimator", f"{f} is not an amortized estimator file")
    if d.get("model_version") != MODEL_VERSION:
        raise InputError("estimator", f"{f} was trained for model version {d.get('model_version')!r}; this "
                         f"code is {MODEL_VERSION!r}: rebuild")
    posterior = d.pop("posterior")
    return AmortizedPosterior(posterior, d, f)


__all__ = ["AmortizedPosterior", "check_version", "default_train_settings", "load_posterior", "train_posterior"]
