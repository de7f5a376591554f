"""The inference job (``core.jobs`` contract): observation -> method (fm | epi | gd) -> loadings.npz and
validation numbers. Used by ``epi-dash connectivity infer``, the benchmark and the /connectivity app."""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor

from ..errors import InputError
from ..jobs import JobContext
from ..runs import atomic_write
from .baseline import fit_latent_gd, residual_sd
from .maxent import constraint_error
from .network import loading_names
from .observation import Observation
from .teachers import TEACHERS, make_teacher, tail_index
from .validation import TOLERANCES, dynamics_error, mc_field, network_dynamics, reference_dynamics

METHODS = ("fm", "epi", "gd")
DEFAULTS: dict[str, Any] = {
    "teacher": None, "data": None, "rank": None, "method": "fm", "seed": 0, "pin_m": True,
    "observation": "field", "fm_steps": 3000, "correction_rounds": 1, "epi_epochs": 6, "epi_iters": 800,
    "gd_steps": 400, "gd_units": 500, "n_noise": 0.5, "validate": True, "networks": 4, "N": 1000,
    "num_samples": 5000, "entropy_samples": 2000, "compare_gd": False,
}
QUICK = {"fm_steps": 300, "correction_rounds": 0, "epi_epochs": 1, "epi_iters": 100, "gd_steps": 30,
         "networks": 1, "num_samples": 2000,
         "entropy_samples": 300}


def normalize_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """Defaults filled in and checked; InputErrors name the field."""
    unknown = set(settings) - set(DEFAULTS) - {"quick"}
    if unknown:
        raise InputError(f"settings[{sorted(unknown)[0]}]", f"unknown setting; known: {', '.join(DEFAULTS)}")
    s = {**DEFAULTS, **(QUICK if settings.get("quick") else {}), **{k: v for k, v in settings.items() if v is not None}}
    s.pop("quick", None)
    if (s["teacher"] is None) == (s["data"] is None):
        raise InputError("teacher", "give exactly one of a teacher or a data file")
    if s["teacher"] is not None:
        if s["teacher"] not in TEACHERS:
            raise InputError("teacher", f"unknown teacher {s['teacher']!r}; choose one of {', '.join(TEACHERS)}")
        R = make_teacher(s["teacher"]).rank
        if s["rank"] is not None and s["rank"] != R:
            raise InputError("rank", f"teacher {s['teacher']} has rank {R}; got {s['rank']}")
    if s["data"] is not None:
        if s["rank"] is None:
            raise InputError("rank", "a data file needs --rank")
        from .data import check_data

        check_data(s["data"], s["rank"])
    if s["method"] not in METHODS:
        raise InputError("method", f"unknown method {s['method']!r}; choose one of {', '.join(METHODS)}")
    for k in ("entropy_samples", "fm_steps", "epi_epochs", "epi_iters", "gd_steps", "gd_units", "networks", "N", "num_samples"):
        if not isinstance(s[k], int) or s[k] < 1:
            raise InputError(k, f"must be a positive integer; got {s[k]!r}")
    return s


def build_observation(s: dict[str, Any]) -> tuple[Observation, dict[str, Any]]:
    """The observation of a teacher or a data file (settings as ``normalize_settings`` returns)."""
    if s["teacher"] is not None:
        t = make_teacher(s["teacher"])
        if s["rank"] is not None and s["rank"] != t.rank:
            raise InputError("rank", f"teacher {t.name} has rank {t.rank}; got {s['rank']}")
        obs = t.observation(mode=s["observation"], pin_m=bool(s["pin_m"]), seed=s["seed"])
        return obs, {"teacher": t.name, "description": t.description}
    from .data import observation_from_data

    return observation_from_data(s["data"], int(s["rank"]), n_noise=float(s["n_noise"]), gd_steps=s["gd_steps"],
                                 seed=s["seed"])


def save_loadings(path: str | Path, samples: Tensor, obs: Observation, method: str, **extra: Any) -> None:
    """``loadings.npz``: samples (n, k), names (k,), rank, phi, tau, inputs, method (+ extra arrays)."""
    arrays = {"samples": samples.double().cpu().numpy(), "names": np.array(loading_names(obs.rank, obs.inputs)),
              "rank": np.array(obs.rank), "phi": np.array(obs.phi), "tau": np.array(obs.tau),
              "inputs": np.array(obs.inputs), "method": np.array(method), **{k: np.asarray(v) for k, v in extra.items()}}

    def write(p: Path) -> None:
        with open(p, "wb") as fh:
            np.savez(fh, **arrays)

    atomic_write(Path(path), write)


def _sampler(samples: Tensor, draw: Callable[[int, int], Tensor] | None) -> Callable[[int, int], Tensor]:
    if draw is not None:
        return draw

    def boot(n: int, seed: int) -> Tensor:
        g = torch.Generator().manual_seed(seed)
        return samples[torch.randint(len(samples), (n,), generator=g)]

    return boot


@functools.lru_cache(maxsize=16)
def teacher_reference(name: str) -> dict[str, float]:
    """The validation protocol on the teacher's mean field (closed form; Monte Carlo over 50k fixed samples
    for heavy teachers). Cached: it is a pure function of the teacher."""
    teacher = make_teacher(name)
    field = teacher.field if not teacher.heavy else mc_field(teacher.sample(50_000, seed=12345), teacher.rank,
                                                              teacher.phi)
    ref = reference_dynamics(teacher.kind, field, teacher.tau)
    if teacher.kind == "ring":  # finite-N drift of the teacher's own N = 1,000 networks sets the bar
        ref["network_slowness"] = network_dynamics("ring", teacher.sample, N=1000, networks=4, seed=4242,
                                                   tau=teacher.tau, phi=teacher.phi)["slowness"]
    return ref


def validate(kind: str, obs: Observation, draw: Callable[[int, int], Tensor], samples: Tensor,
             teacher=None, networks: int = 4, N: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Resampled N-unit networks vs the teacher's mean-field dynamics; tails of m and of n given m."""
    out: dict[str, Any] = {}
    if teacher is not None:
        ref = teacher_reference(teacher.name)
        got = network_dynamics(kind, draw, N=N, networks=networks, seed=seed + 77, tau=obs.tau, phi=obs.phi)
        err = dynamics_error(kind, got, ref)
        out.update(reference=ref, networks=got, dynamics_error=err, tolerance=TOLERANCES[kind],
                   dynamics_ok=bool(err <= TOLERANCES[kind]))
    m = samples[:, 0::2]
    n = samples[:, 1::2]
    resid = n - n.mean(0)
    feats = torch.cat([m, m**3, torch.ones(len(m), 1, dtype=m.dtype)], 1)
    resid = n - feats @ torch.linalg.lstsq(feats, n).solution
    out["tail_m"] = [tail_index(m[:, r]) for r in range(obs.rank)]
    out["tail_n_given_m"] = [tail_index(resid[:, r]) for r in range(obs.rank)]
    out["residual_sd_n_given_m"] = residual_sd(samples, obs.rank).tolist()
    if teacher is not None:
        zt = teacher.sample(len(samples), seed=seed + 5)
        mt, nt = zt[:, 0::2], zt[:, 1::2]
        ft = torch.cat([mt, mt**3, torch.ones(len(mt), 1, dtype=mt.dtype)], 1)
        rt = nt - ft @ torch.linalg.lstsq(ft, nt).solution
        out["teacher_tail_m"] = [tail_index(mt[:, r]) for r in range(obs.rank)]
        out["teacher_tail_n_given_m"] = [tail_index(rt[:, r]) for r in range(obs.rank)]
        out["teacher_residual_sd_n_given_m"] = residual_sd(zt, obs.rank).tolist()
    return out


def infer(s: dict[str, Any], ctx: JobContext | None = None) -> dict[str, Any]:
    """Run one inference (settings already normalized). With ``ctx``: progress, stop and resume."""
    t0 = time.perf_counter()
    obs, info = build_observation(s)
    teacher = make_teacher(s["teacher"]) if s["teacher"] else None
    kind = teacher.kind if teacher is not None else None

    def progress(step: int, total: int, scalars: dict[str, float]) -> None:
        if ctx is not None:
            ctx.progress(step, total, **scalars)

    draw = None
    extra: dict[str, Any] = {}
    if s["method"] == "fm":
        from .flow_matching import FlowMatchingSettings, fit_maxent_flow

        fs = FlowMatchingSettings(steps=s["fm_steps"], correction_rounds=s["correction_rounds"], seed=s["seed"],
                                  entropy_samples=s["entropy_samples"], eval_samples=max(s["num_samples"], 4000))
        res = fit_maxent_flow(obs, fs, on_progress=progress,
                              state=ctx.load_checkpoint() if ctx is not None else None,
                              checkpoint=ctx.save_checkpoint if ctx is not None else None,
                              check_stop=ctx.check_stop if ctx is not None else None)
        cnf = res["cnf"]

        def draw(n: int, seed: int) -> Tensor:
            return cnf.sample(n, seed=seed).double()

        sol = res["solution"]
        extra = {"dual_converged": sol.converged, "dual_constraint_error": sol.constraint_error,
                 "entropy_n_given_m_exact": sol.entropy_given_m(), "history": res["history"]}
        if not obs.pinned:
            extra["entropy_exact"] = sol.dual
        if ctx is not None:
            torch.save(cnf.state_dict(), ctx.path("cnf.pt"))
    elif s["method"] == "epi":
        from .epi_problem import run_epi

        res = run_epi(obs, seed=s["seed"], num_epochs=s["epi_epochs"], iters_per_epoch=s["epi_iters"],
                      on_progress=progress, should_stop=(lambda: ctx.stop_requested) if ctx is not None else None)
        dist = res["distribution"]

        def draw(n: int, seed: int) -> Tensor:
            torch.manual_seed(seed)
            return dist.sample(n).double()

        extra = {"epi_state": res["state"], "epi_error": res["error"], "history": res["history"]}
        if res["state"] == "stopped" and ctx is not None:
            ctx.check_stop()
    else:
        tr = obs.trajectories
        if not tr:
            raise InputError("method", "gradient descent needs trajectories")

        def on_step(k, total, loss):
            if k % 10 == 0 or k == total:
                progress(k, total, {"loss": loss})
                if ctx is not None:
                    ctx.check_stop()  # a stopped fit starts again on resume (it takes seconds)

        res = fit_latent_gd(tr["t"], tr["kappa"], obs.rank, N=s["gd_units"], steps=s["gd_steps"],
                            tau=obs.tau, phi=obs.phi, seed=s["seed"], on_step=on_step)
        res["constraint_error"] = constraint_error(res["samples"], obs)
        res["entropy"] = float("nan")  # a point estimate: N units, no density
        res["converged"] = True
        extra = {"gd_loss": res["loss"]}
    samples = res["samples"] if s["method"] == "gd" else draw(s["num_samples"], s["seed"] + 3)
    draw = _sampler(res["samples"], draw)
    result: dict[str, Any] = {
        **info, "method": s["method"], "rank": obs.rank, "pinned_m": obs.pinned and s["method"] != "epi", "probes": int(obs.kappa.shape[0]),
        "constraint_error": res["constraint_error"], "entropy": res["entropy"], "converged": res["converged"],
        "fit_wall_time_s": res["wall_time_s"],
        **{k: v for k, v in extra.items() if k != "history"},
    }
    if not res["converged"]:
        result["message"] = "did not converge: the best result is kept"
        if ctx is not None:
            ctx.message(result["message"], level="warning")
    if teacher is not None:
        result["teacher_entropy"] = teacher.entropy()
    if s["validate"] and teacher is not None:
        if ctx is not None:
            ctx.message(f"validating: {s['networks']} networks of N = {s['N']} sampled from the inferred p")
        result["validation"] = validate(kind, obs, draw, samples, teacher, networks=s["networks"], N=s["N"],
                                        seed=s["seed"])
    if s["compare_gd"] and s["method"] != "gd" and obs.trajectories:
        if ctx is not None:
            ctx.message("fitting one lrRNN by gradient descent for comparison")
        gd = fit_latent_gd(obs.trajectories["t"], obs.trajectories["kappa"], obs.rank, N=s["gd_units"],
                           steps=s["gd_steps"], tau=obs.tau, phi=obs.phi, seed=s["seed"])
        result["gd_constraint_error"] = constraint_error(gd["samples"], obs)
        result["gd_residual_sd_n_given_m"] = residual_sd(gd["samples"], obs.rank).tolist()
        if ctx is not None:
            save_loadings(ctx.path("gd_loadings.npz"), gd["samples"], obs, "gd")
    result["wall_time_s"] = time.perf_counter() - t0
    if ctx is not None:
        save_loadings(ctx.path("loadings.npz"), samples, obs, s["method"])
        atomic_write(ctx.path("observation.npz"), lambda p: _save_obs(p, obs))
    result["_samples"] = samples
    return result


def _save_obs(path: Path, obs: Observation) -> None:
    arrays = {"kappa": obs.kappa.numpy(), "F": obs.F.numpy(), "C_n": obs.C_n.numpy(), "C_m": obs.C_m.numpy()}
    if obs.trajectories:
        arrays.update(traj_t=obs.trajectories["t"].numpy(), traj_kappa=obs.trajectories["kappa"].numpy())
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def infer_job(ctx: JobContext) -> dict[str, Any]:
    """Job function (kind "connectivity.infer"): settings as ``DEFAULTS``."""
    torch.set_num_threads(1)
    s = normalize_settings(ctx.settings)
    result = infer(s, ctx)
    result.pop("_samples", None)
    return json.loads(json.dumps(result, default=float))
