"""``epi-dash serve``: the workbench and the tutorial on one Bokeh server, in this process (or forked ones).

Same semantics as ``panel serve apps/workbench.py apps/tutorial.py``: every browser session gets a
fresh app (the functions below run per session), ``/`` lists both apps, and the server binds
127.0.0.1 unless told otherwise. The settings are passed to the sessions through the same environment
variables the ``apps/*.py`` scripts read (``EPI_DASH_RUNS_DIR``, ``EPI_DASH_MODEL_PATH``), so both ways
of serving behave identically. For a lab server::

    epi-dash serve --address 0.0.0.0 --port 5006 --allow-websocket-origin lab-host:5006 --basic-auth credentials.json

(a non-loopback address is refused without ``--basic-auth`` or ``--oauth-provider``, unless ``--no-auth`` is
given explicitly; ``--cookie-secret`` defaults to a random one, so sign-ins last as long as the server;
``--admins alice,bob`` names the users who see and stop every run)

(every ``host:port`` that browsers use must be listed, else the page stays blank).

``num_procs`` > 1 forks that many server processes on one port (Bokeh's multi-process mode; the kernel
hands each new connection to one of them). Trainings run in their session's process, and one process
runs the Python of all its trainings on one core at a time (the GIL): 12 LDS trainings in one process
made 211 it/s in all, one alone 365 it/s. Several processes use every core. The forking process only
supervises; each worker ends itself like Ctrl-C once the supervisor is gone (SIGTERM, kill), so its
trainings stop with a checkpoint instead of serving on as orphans.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

from core.errors import InputError
from core.executors import WORKER_NICE

from .assets import INDEX_HTML, serve_assets_locally
from .closed_pages import quiet_closed_pages
from .config import MODEL_PATH_ENV, RUNS_DIR_ENV, SCHEDULER_ENV


def websocket_origins(address: str, port: int, extra: list[str] | None = None) -> list[str]:
    """Origins browsers may connect from: the bound address (and localhost for loopback) plus ``extra``."""
    origins = [f"{address}:{port}"]
    if address in ("127.0.0.1", "localhost", "0.0.0.0", "::1"):
        origins += [f"localhost:{port}", f"127.0.0.1:{port}"]
    return list(dict.fromkeys([*origins, *(extra or [])]))


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def prepare_pages() -> None:
    """What every page of this server needs, for ``epi-dash serve`` and each ``apps/*.py`` alike: fonts and
    icons from this server (not the internet), and no traceback when a tab closes mid-write."""
    serve_assets_locally()
    quiet_closed_pages()


def check_auth(address: str, basic_auth: str | None, no_auth: bool, oauth_provider: str | None = None) -> None:
    """Refuse to serve a non-loopback address without sign-in unless ``no_auth`` says so explicitly."""
    if address not in LOOPBACK and not basic_auth and not oauth_provider and not no_auth:
        raise InputError("address", f"{address} is reachable from other machines: sign-in is required "
                         "(--basic-auth credentials.json or --oauth-provider), or pass --no-auth to serve it open")


def check_credentials(basic_auth: str) -> None:
    """A ``--basic-auth`` value Panel can use safely: an existing JSON file of ``{"user": "password"}``, or one
    shared password (not ending in .json: Panel would take a mistyped file name as the password). No user
    may be called ``users.LOCAL_USER`` (the name of the local user of a server without sign-in)."""
    import json

    from .users import LOCAL_USER

    path = Path(basic_auth).expanduser()
    if not path.is_file():
        if basic_auth.endswith(".json"):
            raise InputError("basic_auth", f"no such credentials file: {basic_auth}")
        return
    try:
        users = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError("basic_auth", f"{basic_auth} is not a JSON file of user: password ({exc})") from exc
    if not isinstance(users, dict) or not users or not all(isinstance(k, str) and isinstance(v, str) and k and v
                                                             for k, v in users.items()):
        raise InputError("basic_auth", f'{basic_auth} must be a JSON object of user names to passwords, '
                         'e.g. {"alice": "...", "bob": "..."}')
    if LOCAL_USER in users:
        raise InputError("basic_auth", f"{basic_auth}: {LOCAL_USER!r} is reserved (the user of a server "
                         "without sign-in); choose another user name")


def check_oauth(provider: str, key: str | None, secret: str | None) -> None:
    """An OAuth provider Panel knows, with the client id and secret of the app registered with it."""
    from panel.auth import AUTH_PROVIDERS

    if provider not in AUTH_PROVIDERS:
        raise InputError("oauth_provider", f"unknown provider {provider!r}; one of {', '.join(sorted(AUTH_PROVIDERS))}")
    if not (key and secret):
        raise InputError("oauth_provider", f"{provider} sign-in needs --oauth-key and --oauth-secret (or "
                         "PANEL_OAUTH_KEY/PANEL_OAUTH_SECRET): the client id and secret of the app registered "
                         "with the provider")


def configure_users(admins: str | list[str] | None, signed_in: bool) -> None:
    """Export the admins (``users.ADMINS_ENV``) and whether sessions sign in (``users.SIGN_IN_ENV``) for
    every session, in this process and in the forked ones."""
    from .users import ADMINS_ENV, SIGN_IN_ENV

    names = admins.split(",") if isinstance(admins, str) else list(admins or [])
    names = [n.strip() for n in names if n.strip()]
    if names:
        os.environ[ADMINS_ENV] = ",".join(names)
    if signed_in:
        os.environ[SIGN_IN_ENV] = "1"
    else:
        os.environ.pop(SIGN_IN_ENV, None)


def configure_environment(runs_dir: str | Path, model_path: list[str] | None) -> None:
    """Export the settings for the per-session app functions (and any ``apps/*.py``)."""
    os.environ[RUNS_DIR_ENV] = str(Path(runs_dir).expanduser())
    if model_path:
        os.environ[MODEL_PATH_ENV] = os.pathsep.join(str(Path(p).expanduser()) for p in model_path)


#: route -> (module in epi_dash, function building one session's page, page title). A system's app is
#: served once its module exists; ``apps/<route>.py`` serves the same page under ``panel serve``.
APPS = {
    "workbench": ("workbench", "create_workbench", "EPI workbench"),
    "tutorial": ("tutorial", "create_tutorial", "EPI tutorial"),
    "amortized": ("amortized_app", "create_amortized_app", "Amortized inference"),
    "connectivity": ("connectivity_app", "create_connectivity_app", "Connectivity"),
    "conductances": ("conductances_app", "create_conductances_app", "Conductances"),
}


def apps() -> dict[str, callable]:
    """The page function of every app whose module is present, by route."""
    import importlib

    found = {}
    for route, (module_name, function, _title) in APPS.items():
        try:
            module = importlib.import_module(f"epi_dash.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"epi_dash.{module_name}":
                raise
            continue
        found[route] = getattr(module, function)
    return found


def start_scheduler(scheduler: str, worker_nice: int = WORKER_NICE) -> str | None:
    """The Dask scheduler address sessions send trainings to: a LocalCluster started now for "local"
    (one worker process per training slot, ``--max-concurrent``, at nice ``worker_nice``; closed when the
    process exits), else ``scheduler`` once it answers. An unreachable scheduler is reported and None
    returned: the server still starts, with trainings in its own process."""
    import atexit

    from core.executors import WITHOUT_DASHBOARD, check_scheduler, close_quietly, dask_client

    check_scheduler(scheduler)
    if scheduler == "sync":
        raise InputError("scheduler", "'sync' is for tests; use 'local' or a scheduler address")
    if scheduler == "local":
        from distributed import Client, LocalCluster

        from core.limits import ServerLimits

        # K (``--max-concurrent``, default one per CPU core) worker processes: K trainings at once, the rest wait
        workers = ServerLimits.from_env().concurrency
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, **WITHOUT_DASHBOARD)
        atexit.register(close_quietly, cluster, os.getpid())
        if worker_nice > 0:
            from core.worker_priority import LowerPriority

            with Client(cluster) as client:
                client.register_plugin(LowerPriority(worker_nice))
        print(f"Dask LocalCluster with {len(cluster.workers)} workers at {cluster.scheduler_address}", flush=True)
        return cluster.scheduler_address
    try:
        with dask_client(scheduler) as client:
            workers = len(client.scheduler_info().get("workers", {}))
    except InputError as exc:
        print(f"warning: {exc.field}: {exc.message}; trainings run in this server process", flush=True)
        return None
    print(f"Dask scheduler {scheduler}: {workers} workers", flush=True)
    return scheduler


def end_workers_with_supervisor(supervisor: int, every: float = 0.5) -> None:
    """In every process forked from ``supervisor`` from now on, watch it (each ``every`` s): once it is
    gone, interrupt this process as Ctrl-C does (panel then stops the server and the process exits normally)."""

    def watch() -> None:
        while os.getppid() == supervisor:
            time.sleep(every)
        if threading.main_thread().is_alive():  # not already exiting (a signal to the whole group, say)
            os.kill(os.getpid(), signal.SIGINT)

    def after_fork_in_child() -> None:
        if os.getppid() == supervisor:  # a worker of this server, not a grandchild forked later
            threading.Thread(target=watch, name="epi-dash-supervisor-watch", daemon=True).start()

    os.register_at_fork(after_in_child=after_fork_in_child)


def serve(address: str = "127.0.0.1", port: int = 5006, allow_websocket_origin: list[str] | None = None,
          runs_dir: str | Path = "runs", model_path: list[str] | None = None, show: bool = False,
          threaded: bool = False, num_procs: int = 1, scheduler: str | None = None,
          basic_auth: str | None = None, cookie_secret: str | None = None, no_auth: bool = False,
          admins: str | list[str] | None = None, oauth_provider: str | None = None, oauth_key: str | None = None,
          oauth_secret: str | None = None, worker_nice: int = WORKER_NICE):
    """Serve both apps until interrupted (``threaded=True``: return the server thread; ``.stop()`` it).
    ``num_procs``: server processes sharing the port (0: one per CPU core). ``scheduler``: trainings run
    on Dask ("local": a LocalCluster started here, its workers at nice ``worker_nice``; or a scheduler's
    address) instead of this process.
    Sign-in: ``basic_auth`` (a credentials JSON file) or ``oauth_provider`` (Panel's OAuth: github, google,
    azure, okta, ... with ``oauth_key``/``oauth_secret``); ``admins`` see and stop every run."""
    import panel as pn

    num_procs = num_procs or os.cpu_count() or 1
    if num_procs < 1:
        raise InputError("num_procs", f"must be >= 0 (0: one per CPU core); got {num_procs}")
    if num_procs > 1 and threaded:
        raise InputError("num_procs", "a threaded server runs in this process only; use num_procs=1")
    # Panel also reads its OAuth settings from PANEL_OAUTH_PROVIDER/_KEY/_SECRET (a secret kept off the command line)
    oauth_provider = oauth_provider or os.environ.get("PANEL_OAUTH_PROVIDER") or None
    check_auth(address, basic_auth, no_auth, oauth_provider)
    if basic_auth:
        check_credentials(basic_auth)
    if oauth_provider:
        check_oauth(oauth_provider, oauth_key or os.environ.get("PANEL_OAUTH_KEY"),
                    oauth_secret or os.environ.get("PANEL_OAUTH_SECRET"))
    configure_users(admins, signed_in=bool(basic_auth or oauth_provider))
    if (basic_auth or oauth_provider) and not cookie_secret:
        import secrets

        cookie_secret = secrets.token_hex(32)  # sessions' sign-in cookies last as long as this server
    configure_environment(runs_dir, model_path)
    os.environ.pop(SCHEDULER_ENV, None)
    if scheduler is not None:
        scheduler_address = start_scheduler(scheduler, worker_nice)  # not ``address``: that is where we bind
        if scheduler_address is not None:
            os.environ[SCHEDULER_ENV] = scheduler_address
    if num_procs > 1:
        end_workers_with_supervisor(os.getpid())
    prepare_pages()
    pages = apps()
    pn.config.index_titles = {f"/{route}": APPS[route][2] for route in pages}  # the cards at /
    return pn.serve(
        pages, address=address, port=port, websocket_origin=websocket_origins(address, port, allow_websocket_origin),
        show=show, threaded=threaded, title={route: APPS[route][2] for route in pages},
        verbose=True, num_procs=num_procs, index=str(INDEX_HTML),
        **({"basic_auth": basic_auth, "cookie_secret": cookie_secret} if basic_auth else {}),
        **({"oauth_provider": oauth_provider, "oauth_key": oauth_key, "oauth_secret": oauth_secret,
            "cookie_secret": cookie_secret} if oauth_provider else {}),
    )
