"""``epi-dash serve``: the workbench and the tutorial on one Bokeh server, in this process.

Same semantics as ``panel serve apps/workbench.py apps/tutorial.py``: every browser session gets a
fresh app (the functions below run per session), ``/`` lists both apps, and the server binds
127.0.0.1 unless told otherwise. The settings are passed to the sessions through the same environment
variables the ``apps/*.py`` scripts read (``EPI_DASH_RUNS_DIR``, ``EPI_DASH_MODEL_PATH``), so both ways
of serving behave identically. For a lab server::

    epi-dash serve --address 0.0.0.0 --port 5006 --allow-websocket-origin lab-host:5006

(every ``host:port`` that browsers use must be listed, else the page stays blank).
"""

from __future__ import annotations

import os
from pathlib import Path

from .config import MODEL_PATH_ENV, RUNS_DIR_ENV


def websocket_origins(address: str, port: int, extra: list[str] | None = None) -> list[str]:
    """Origins browsers may connect from: the bound address (and localhost for loopback) plus ``extra``."""
    origins = [f"{address}:{port}"]
    if address in ("127.0.0.1", "localhost", "0.0.0.0", "::1"):
        origins += [f"localhost:{port}", f"127.0.0.1:{port}"]
    return list(dict.fromkeys([*origins, *(extra or [])]))


def configure_environment(runs_dir: str | Path, model_path: list[str] | None) -> None:
    """Export the settings for the per-session app functions (and any ``apps/*.py``)."""
    os.environ[RUNS_DIR_ENV] = str(Path(runs_dir).expanduser())
    if model_path:
        os.environ[MODEL_PATH_ENV] = os.pathsep.join(str(Path(p).expanduser()) for p in model_path)


def apps() -> dict[str, callable]:
    from .tutorial import create_tutorial
    from .workbench import create_workbench

    return {"workbench": create_workbench, "tutorial": create_tutorial}


def serve(address: str = "127.0.0.1", port: int = 5006, allow_websocket_origin: list[str] | None = None,
          runs_dir: str | Path = "runs", model_path: list[str] | None = None, show: bool = False,
          threaded: bool = False):
    """Serve both apps until interrupted (``threaded=True``: return the server thread; ``.stop()`` it)."""
    import panel as pn

    configure_environment(runs_dir, model_path)
    return pn.serve(
        apps(), address=address, port=port, websocket_origin=websocket_origins(address, port, allow_websocket_origin),
        show=show, threaded=threaded, title={"workbench": "EPI workbench", "tutorial": "EPI tutorial"},
        verbose=True,
    )
