"""Where the dashboard finds runs and user models: arguments first, then environment variables.

``EPI_DASH_RUNS_DIR``  runs directory (default ``runs``)
``EPI_DASH_MODEL_PATH`` folders with user model files, separated by ``os.pathsep`` (``:`` on Linux)
``EPI_DASH_SCHEDULER`` where trainings run: unset for this server process (the embedded default), or the
                       address of a Dask scheduler (``epi-dash serve --scheduler`` sets it)
``EPI_DASH_TORCH_THREADS`` torch intra-op threads in the server (default 1: every session trains in its
                       own Python thread, and intra-op threads on top oversubscribe the cores; measured
                       on 2 busy cores: LDS batch 100 ran 241 it/s with 1 thread, 8 it/s with 2)

so that ``panel serve apps/*.py`` is configured the same way as ``epi-dash serve``.
"""

from __future__ import annotations

import ast
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import InputError
from core.model import Model, available_models, load_model_class

RUNS_DIR_ENV = "EPI_DASH_RUNS_DIR"
MODEL_PATH_ENV = "EPI_DASH_MODEL_PATH"
TORCH_THREADS_ENV = "EPI_DASH_TORCH_THREADS"
SCHEDULER_ENV = "EPI_DASH_SCHEDULER"


def runs_dir_from_env(default: str | Path = "runs") -> Path:
    """The runs directory: ``$EPI_DASH_RUNS_DIR`` or ``default``."""
    return Path(os.environ.get(RUNS_DIR_ENV) or default).expanduser()


def model_path_from_env() -> list[Path]:
    """Folders listed in ``$EPI_DASH_MODEL_PATH`` (empty when unset)."""
    raw = os.environ.get(MODEL_PATH_ENV, "")
    return [Path(p).expanduser() for p in raw.split(os.pathsep) if p.strip()]


def scheduler_from_env() -> str | None:
    """``$EPI_DASH_SCHEDULER`` (a Dask scheduler address), or None for the embedded executor."""
    return os.environ.get(SCHEDULER_ENV) or None


def executor_from_env():
    """The executor trainings of this server process go to: the embedded in-process executor, or one
    Dask executor per scheduler address, shared by every session of the process (one client connection).
    An unreachable scheduler raises an InputError naming "scheduler"."""
    from core.executors import InProcessExecutor

    address = scheduler_from_env()
    if address is None:
        return InProcessExecutor()
    with _EXECUTORS_LOCK:
        if address not in _EXECUTORS:
            from core.executors import DaskExecutor

            import atexit

            from core.executors import DaskExecutor, close_quietly

            _EXECUTORS[address] = DaskExecutor(address)
            atexit.register(close_quietly, _EXECUTORS[address], os.getpid())  # before the cluster it talks to
        return _EXECUTORS[address]


#: one Dask client per scheduler address and server process (sessions share the connection)
_EXECUTORS: dict[str, object] = {}
_EXECUTORS_LOCK = threading.Lock()


def configure_torch_threads() -> int:
    """Apply ``$EPI_DASH_TORCH_THREADS`` (default 1) to torch's intra-op pool; returns the count."""
    import torch

    raw = os.environ.get(TORCH_THREADS_ENV, "1")
    try:
        threads = max(1, int(raw))
    except ValueError:
        raise InputError(TORCH_THREADS_ENV, f"must be a positive integer; got {raw!r}") from None
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads


@dataclass
class ModelCatalog:
    """Models offered in the UI: ``specs`` maps a display label to a ``load_model_class`` spec."""

    specs: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _class_names(path: Path) -> list[str]:
    """Top-level class names in a Python file (parsed, not imported)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [node.name for node in tree.body if isinstance(node, ast.ClassDef)]


def _catalog_key(folders: list[Path]) -> tuple:
    """What a catalog depends on: the registered models and each folder's ``*.py`` files with their
    modification times and sizes."""
    key = []
    for folder in folders:
        try:
            files = tuple((p.name, st.st_mtime_ns, st.st_size) for p in sorted(folder.glob("*.py"))
                          for st in [p.stat()])
        except OSError:
            files = None
        key.append((str(folder), folder.is_dir(), files))
    return tuple(available_models()), tuple(key)


#: catalogs by ``_catalog_key``: every session of a server process shares one (discovery imports user files)
_CATALOGS: dict[tuple, ModelCatalog] = {}
_CATALOGS_LOCK = threading.Lock()


def discover_models(model_path: list[str | Path] | None = None) -> ModelCatalog:
    """Built-in models plus every ``Model`` subclass defined in ``*.py`` files of ``model_path``.

    A file that fails to import is reported in ``problems`` instead of raising, so one broken
    user file never hides the other models. Sessions share the result while no file in the folders
    changes (a new, edited or removed file is discovered by the next session); each gets its own copy.
    """
    folders = [Path(p).expanduser() for p in (model_path or [])]
    key = _catalog_key(folders)
    with _CATALOGS_LOCK:
        if key not in _CATALOGS:
            if len(_CATALOGS) >= 16:  # files edited again and again: forget the old versions
                _CATALOGS.clear()
            _CATALOGS[key] = _discover(folders)
        found = _CATALOGS[key]
    return ModelCatalog(dict(found.specs), list(found.problems))


def _discover(folders: list[Path]) -> ModelCatalog:
    catalog = ModelCatalog({name: name for name in available_models()})
    for folder in folders:
        if not folder.is_dir():
            catalog.problems.append(f"model path {folder} is not a folder")
            continue
        for path in sorted(folder.glob("*.py")):
            try:
                names = _class_names(path)
            except (SyntaxError, UnicodeDecodeError) as exc:
                catalog.problems.append(f"{path.name}: {exc}")
                continue
            for name in names:
                spec = f"{path}:{name}"
                try:
                    cls = load_model_class(spec)
                except InputError as exc:
                    if "no Model subclass" not in exc.message:
                        catalog.problems.append(f"{path.name}: {exc.message}")
                        break
                    continue
                if issubclass(cls, Model) and cls.__module__.startswith("epi_user_model_"):
                    catalog.specs[f"{name} ({path.name})"] = spec
    return catalog
