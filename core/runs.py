"""Run directories: plain files any tool can read.

``run.json``     settings, model, property, bounds, state, per-epoch ``history`` (see README)
``trace.csv``    one row per iteration: entropy, cost, c, R per constraint, batch mean/sd per statistic, eta
``checkpoint.pt`` flow + optimizer + multipliers + RNG state (torch.save) to resume or reload
``samples.npz``  ``z`` (n, d) from the final q, ``log_q`` (n,), ``names`` (d,)

run.json's ``owner`` names who started the run: the signed-in user for a dashboard run (``reserve_run_dir(...,
owner=)``), else the OS login name of the process (the CLI, see :func:`default_owner`). Every writer keeps
the owner already recorded, and a run inside another run's directory (a sweep's cells) inherits its owner.
"""

from __future__ import annotations

import csv
import getpass
import json
import os
import threading
import platform
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .errors import InputError

if TYPE_CHECKING:
    import pandas as pd

    from .analysis import EPIDistribution


def library_versions() -> dict[str, str]:
    import param
    import scipy

    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
            "scipy": scipy.__version__, "param": param.__version__}


def atomic_write(path: Path, write) -> None:
    """Write ``path`` through ``write(tmp_path)`` and an atomic rename: readers never see half a file."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # disk full or a failed writer: the previous file stays as it was
        raise


def validate_run_name(name: str, field: str = "run_name") -> str:
    """``name`` if it is one plain directory name inside a runs directory; else InputError(field): empty,
    ``.``/``..``, a path separator (``../x``, ``a/../../b``, an absolute path) or a NUL / control character."""
    if not isinstance(name, str) or not name.strip():
        raise InputError(field, "a run name is required")
    if name in (".", "..") or "/" in name or "\\" in name or os.sep in name:
        raise InputError(field, f"{name!r} is not a plain name: a run name cannot contain '/' or be '.' or '..'")
    if any(ord(ch) < 32 for ch in name):
        raise InputError(field, "a run name cannot contain control characters (NUL, newline, ...)")
    return name


#: run.json's key naming the user who started the run
OWNER_KEY = "owner"
#: how many directories up a run looks for an enclosing run whose owner it inherits (sweep/cell, train/seed-k)
OWNER_INHERIT_DEPTH = 3


def default_owner() -> str:
    """The owner of a run started outside a signed-in session (the CLI, a script, a Dask job without one):
    the OS login name, so a lab server's shell user and their dashboard sign-in can match; "local" when the
    process has no login name (some containers)."""
    try:
        return getpass.getuser() or "local"
    except (KeyError, OSError, ImportError):
        return "local"


def recorded_owner(run_dir: str | Path) -> str | None:
    """The owner recorded in ``run_dir``'s run.json or in that of the nearest enclosing run directory (up to
    ``OWNER_INHERIT_DEPTH`` levels up); None when there is none (an older run, a fresh directory)."""
    path = Path(run_dir)
    for directory in [path, *path.parents][: OWNER_INHERIT_DEPTH + 1]:
        f = directory / "run.json"
        if not f.is_file():
            continue
        try:
            owner = json.loads(f.read_text()).get(OWNER_KEY)
        except (OSError, ValueError, AttributeError):
            continue
        if owner:
            return str(owner)
    return None


def run_owner(meta: dict[str, Any]) -> str | None:
    """Who started a run (run.json's ``owner``); None for runs from before owners were recorded."""
    owner = meta.get(OWNER_KEY) if isinstance(meta, dict) else None
    return str(owner) if owner else None


def reserve_run_dir(parent: str | Path, name: str, owner: str | None = None) -> Path:
    """Create and return a new, empty run directory ``parent/name``, or ``name-2``, ``name-3``, ... if
    that exists. Each is made with an exclusive ``mkdir``, so trainings started in the same instant
    (two sessions, two processes) never write into one directory. ``owner``: the user starting the run,
    recorded at once in a run.json ``{"owner", "state": "queued", "created"}`` that the job then completes
    (so the owner is known wherever the job runs: a thread, another process, a Dask worker)."""
    validate_run_name(name)
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    for k in range(1, 10_000):
        path = parent / (name if k == 1 else f"{name}-{k}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        if owner is not None:
            record = {OWNER_KEY: owner, "state": "queued", "created": time.time()}
            atomic_write(path / "run.json", lambda p: p.write_text(json.dumps(record, indent=2)))
        return path
    raise InputError("run_dir", f"no free name for {name!r} in {parent}")


def discard_run_dir(path: str | Path) -> None:
    """Remove a directory from :func:`reserve_run_dir` whose job never started (empty, or holding only the
    reserved run.json); a directory with anything else in it is left alone."""
    path = Path(path)
    try:
        entries = list(path.iterdir())
    except FileNotFoundError:
        return
    if all(e.name == "run.json" for e in entries):
        for e in entries:
            e.unlink(missing_ok=True)
        path.rmdir()


class RunWriter:
    """Writes a run directory; each file is replaced atomically so a reader never sees half a file."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        #: kept from the run.json already there (reserved, resumed) or an enclosing run's, else this process's
        self.owner = recorded_owner(self.path) or default_owner()

    def write_meta(self, meta: dict[str, Any]) -> None:
        meta = {OWNER_KEY: self.owner, **meta, "versions": library_versions()}
        atomic_write(self.path / "run.json", lambda p: p.write_text(json.dumps(meta, indent=2, default=json_default)))

    def write_trace(self, columns: list[str], rows: list[list[float]]) -> None:
        def write(p: Path) -> None:
            with open(p, "w", newline="") as fh:
                w = csv.writer(fh)
                w.writerow(columns)
                w.writerows(rows)

        atomic_write(self.path / "trace.csv", write)

    def write_checkpoint(self, state: dict[str, Any]) -> None:
        atomic_write(self.path / "checkpoint.pt", lambda p: torch.save(state, p))

    def write_samples(self, dist: EPIDistribution, n: int = 5000) -> None:
        with torch.no_grad():
            z, log_q = dist.sample_with_log_prob(n)
        save = lambda p: np.savez(  # noqa: E731
            p, z=z.cpu().numpy(), log_q=log_q.cpu().numpy(), names=np.array(dist.parameter_names)
        )
        tmp = self.path / "samples.tmp.npz"
        save(tmp)
        os.replace(tmp, self.path / "samples.npz")


def json_default(o: Any) -> Any:
    """JSON for numpy and torch values (``json.dumps(..., default=json_default)``)."""
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, torch.Tensor):
        return o.tolist()
    return str(o)


def read_run_json(path: str | Path) -> dict[str, Any]:
    f = Path(path) / "run.json"
    if not f.is_file():
        raise InputError("run_dir", f"not a run directory (no run.json): {path}")
    try:
        return json.loads(f.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError("run_dir", f"run.json in {path} is not valid JSON: {exc}") from exc


def read_trace_rows(path: str | Path) -> list[list[float]]:
    f = Path(path) / "trace.csv"
    if not f.is_file():
        return []
    with open(f, newline="") as fh:
        reader = csv.reader(fh)
        next(reader, None)
        # iteration and epoch are integers; the rest floats
        return [[int(row[0]), int(row[1]), *map(float, row[2:])] for row in reader]


def process_identity() -> dict[str, Any]:
    """Host name and process id of this process: run.json's ``process`` while the run trains."""
    return {"host": socket.gethostname(), "pid": os.getpid()}


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # a process of another user (or an odd id): don't claim it is gone
    return True


def run_state(meta: dict[str, Any]) -> str:
    """The run's ``state``, except "interrupted" for a run whose run.json still says "running" although the
    process that trained it (``process``, same host) is gone: a killed server or job. Its last checkpoint
    (the latest epoch end or stop) is kept, and ``epi-dash resume`` / the workbench's Resume continue it.
    On another host (a shared disk) "running" cannot be checked and is reported as it is."""
    state = str(meta.get("state", ""))
    process = meta.get("process") or {}
    if state == "running" and process.get("host") == socket.gethostname() and isinstance(process.get("pid"), int):
        if not _process_alive(process["pid"]):
            return "interrupted"
    return state


def final_entropy(history: list[dict[str, Any]]) -> float:
    """Entropy of q at the last epoch's test (nats) from a run's per-epoch ``history``; NaN if empty."""
    return float(history[-1]["entropy"]) if history else float("nan")


@dataclass
class Run:
    """A saved run: ``meta`` (run.json), ``path``; trace and samples load on demand. (q itself needs the
    trainer: ``core.epi.load_distribution(run)``; the run format does not depend on it.)"""

    path: Path
    meta: dict[str, Any]

    @property
    def converged(self) -> bool:
        """Whether the run passed the convergence test."""
        return bool(self.meta.get("converged"))

    @property
    def owner(self) -> str | None:
        """Who started the run (None: recorded before owners were)."""
        return run_owner(self.meta)

    @property
    def state(self) -> str:
        """``run_state``: run.json's state, or "interrupted" when its training process is gone."""
        return run_state(self.meta)

    @property
    def entropy(self) -> float:
        """Entropy estimate of q from the last epoch's test batches (nats); NaN before an epoch ends."""
        return final_entropy(self.meta.get("history") or [])

    @property
    def trace(self) -> pd.DataFrame:
        import pandas as pd

        f = self.path / "trace.csv"
        return pd.read_csv(f) if f.is_file() else pd.DataFrame()

    @property
    def samples(self) -> dict[str, np.ndarray]:
        f = self.path / "samples.npz"
        if not f.is_file():
            raise InputError("run_dir", f"no samples.npz in {self.path} (the run has not finished)")
        with np.load(f) as d:
            return {k: d[k] for k in d.files}



def load_run(path: str | Path) -> Run:
    """Open a run directory written by EPITrainer."""
    p = Path(path)
    return Run(path=p, meta=read_run_json(p))


def scan_runs(root: str | Path) -> tuple[list[Run], list[tuple[Path, str]]]:
    """One pass over the run directories below ``root`` (each holding a run.json): the readable runs, newest
    first, and the damaged ones (half-written, bad JSON, not an object) as ``(path, reason)``, so a library
    lists those as "damaged" instead of dropping them or failing. A run removed meanwhile is skipped."""
    root = Path(root)
    if not root.is_dir():
        return [], []
    runs, damaged = [], []
    for f in sorted(root.rglob("run.json")):
        try:
            meta = read_run_json(f.parent)
            if not isinstance(meta, dict):
                raise InputError("run_dir", f"run.json in {f.parent} is not a JSON object")
            runs.append((f.stat().st_mtime, Run(path=f.parent, meta=meta)))
        except FileNotFoundError:
            continue
        except (InputError, OSError) as exc:
            damaged.append((f.parent, getattr(exc, "message", str(exc))))
    return [run for _, run in sorted(runs, key=lambda item: item[0], reverse=True)], damaged


def damaged_runs(root: str | Path) -> list[tuple[Path, str]]:
    """The damaged run directories below ``root`` as ``(path, reason)`` (see :func:`scan_runs`)."""
    return scan_runs(root)[1]


def list_runs(root: str | Path) -> list[Run]:
    """All readable runs below ``root`` (directories holding a run.json), newest first."""
    return scan_runs(root)[0]
