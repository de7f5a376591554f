"""Run library: a table of saved runs (every job of the runs directory, with its kind), downloads, stop, and
a side-by-side comparison of two EPI runs.

With sign-in (``epi-dash serve --basic-auth``/``--oauth-provider``) a user sees, opens, compares, downloads
and stops only their own runs (run.json's ``owner``); admins (``--admins``) and the local user of a server
without sign-in see every run, with an owner column. The checks run on the server (``users.require_control``)."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from pathlib import Path
from typing import Callable

import holoviews as hv
import pandas as pd
import panel as pn

from core.errors import InputError
from core.jobs import request_stop
from core.model import load_model
from core.runs import Run, load_run, run_owner, scan_runs

from .live import run_info
from .panels.library import job_kind
from .pairplot import PairplotFigure, share_ranges
from .users import current_user, is_admin, may_control, require_control
from .views import sensitive_dimensions

COLUMNS = ["run", "kind", "model", "property", "state", "converged", "entropy", "iterations", "date", "owner"]
#: pixels per pairplot panel when two runs are compared: both 4 x 4 grids fit beside each other at 1366 px
COMPARE_PANEL_SIZE = 90
#: states of a run that Stop can reach (its job checks for a STOP file between iterations; a queued run is
#: cancelled in its queue)
STOPPABLE_STATES = ("running",)
RUN_COLUMN_WIDTHS = {"owner": 80, "kind": 70, "model": 80, "state": 95, "converged": 75, "entropy": 90, "iterations": 75, "date": 135}


def _property_text(prop: dict) -> str:
    return ", ".join(f"{s}: {m:.3g}±{sd:.2g}" for s, m, sd in zip(prop["statistics"], prop["mean"], prop["std"]))


def runs_table(runs_dir: str | Path, user: str | None = None) -> pd.DataFrame:
    """One row per run directory below ``runs_dir`` that ``user`` (default: this session's) may see, newest
    first: their own runs, or every run for an admin (damaged ones and runs without an owner are admin-only);
    ``path`` is kept hidden."""
    user = user or current_user()
    rows = []
    runs, damaged = scan_runs(runs_dir)
    for run in runs:
        meta = run.meta
        owner = run_owner(meta)
        if not may_control(user, owner):
            continue
        history = meta.get("history") or []
        rows.append({
            "run": run.path.name,
            "kind": job_kind(meta),
            "model": meta.get("model", "?"),
            "property": _property_text(meta["property"]) if "property" in meta else "",
            "state": run.state,
            "converged": bool(meta.get("converged", False)),
            "entropy": float(history[-1]["entropy"]) if history else float("nan"),
            "iterations": int(meta.get("iterations", 0)),
            "date": _modified(run.path),
            "owner": owner or "",
            "path": str(run.path),
        })
    for path, reason in damaged if is_admin(user) else []:
        rows.append({"run": path.name, "kind": "", "model": "?", "property": "", "state": f"damaged: {reason}",
                     "converged": False, "entropy": float("nan"), "iterations": 0, "date": "", "owner": "",
                     "path": str(path)})
    return pd.DataFrame(rows, columns=[*COLUMNS, "path"])


def _modified(path: Path) -> str:
    try:
        return dt.datetime.fromtimestamp((path / "run.json").stat().st_mtime).strftime("%Y-%m-%d %H:%M")
    except OSError:
        return ""  # removed while listing


def stop_run(path: str | Path, user: str | None = None) -> str:
    """Ask the run in ``path`` to stop (a STOP file its job checks between iterations, in whichever process
    or worker trains it); refused (InputError naming ``run``) for another user's run or one that is not
    running. Returns the run's name."""
    require_control(path, user)
    run = load_run(path)
    if run.state not in STOPPABLE_STATES:
        raise InputError("run", f"{run.path.name} is not running (state: {run.state or 'unknown'})")
    request_stop(run.path)
    return run.path.name


def samples_csv(run: Run) -> io.BytesIO:
    s = run.samples
    frame = pd.DataFrame(s["z"], columns=[str(n) for n in s["names"]])
    frame["log_q"] = s["log_q"]
    return io.BytesIO(frame.to_csv(index=False).encode())


def run_bundle(run: Run) -> io.BytesIO:
    """The whole run directory as a zip."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(run.path.rglob("*")):
            if f.is_file():
                zf.write(f, f.relative_to(run.path.parent))
    buf.seek(0)
    return buf


def pairplot_grid(figure: PairplotFigure) -> pn.GridBox:
    """The pairplot's figures, one Bokeh pane each, in a Panel grid (a Bokeh GridPlot inside Panel's
    flex layout collapsed its fixed-size figures to zero width in Chromium; seen in screenshots)."""
    cells = [pn.pane.Bokeh(fig, width=fig.width, height=fig.height, margin=0) if fig is not None
             else pn.Spacer(width=10, height=10, margin=0) for row in figure.cells for fig in row]
    return pn.GridBox(*cells, ncols=len(figure.dims), margin=(5, 10))


def saved_pairplot(run: Run, max_dims: int = 6, num_points: int = 2000, size: int | None = None) -> PairplotFigure:
    """Static pairplot of a saved run's samples (no mode: that needs the flow); ``size``: pixels per panel."""
    meta = run.meta
    model = load_model(meta["model"], **meta.get("model_params", {}))
    prop = meta["property"]
    info = run_info(model, prop["mean"], prop["std"])
    s = run.samples
    snapshot = {"z": s["z"][:num_points], "log_q": s["log_q"][:num_points], "analysis": None}
    dims = sensitive_dimensions(None, model.dim, max_dims)
    figure = PairplotFigure(info, dims, size=size)
    figure.update(snapshot)
    return figure


def figures_html(run: Run) -> io.BytesIO:
    """Self-contained HTML with the run's entropy trace and pairplot."""
    trace = run.trace
    entropy = hv.Curve(trace, "iteration", "entropy").opts(title="Entropy", width=600, height=250) if len(trace) else hv.Div("")
    page = pn.Column(f"# {run.path.name}\n{_property_text(run.meta['property'])}", entropy)
    try:
        page.append(pn.pane.Bokeh(saved_pairplot(run).layout))
    except Exception as exc:  # a stopped run has no samples yet
        page.append(f"*(no samples: {exc})*")
    buf = io.StringIO()
    page.save(buf, resources="inline", embed=False)
    return io.BytesIO(buf.getvalue().encode())


class RunLibrary(pn.viewable.Viewer):
    """Table of runs with Open / Compare / download actions. ``on_open(path)`` loads a run."""

    def __init__(self, runs_dir: str | Path, on_open: Callable[[str], None], user: str | None = None, **params):
        super().__init__(**params)
        self.runs_dir = Path(runs_dir)
        self.on_open = on_open
        #: whose runs this session sees (read once, in the session's thread: ``pn.state.user``)
        self.user = user or current_user()
        self.table = pn.widgets.Tabulator(
            runs_table(self.runs_dir, self.user), hidden_columns=["path"] + ([] if is_admin(self.user) else ["owner"]), selectable="checkbox", show_index=False,
            disabled=True, sizing_mode="stretch_width", height=300, pagination="local", page_size=20,
            formatters={"converged": {"type": "tickCross"}, "entropy": {"type": "money", "precision": 3}},
            # every column in the width (at 1366 px it scrolled sideways to reach state and entropy): the
            # short ones fixed, run and property share the rest; a cut text shows whole on hover
            layout="fit_columns", widths=RUN_COLUMN_WIDTHS, titles={"converged": "conv.", "iterations": "iters"},
            configuration={"columnDefaults": {"tooltip": True}},
        )
        self.refresh_button = pn.widgets.Button(label="Refresh", icon="refresh", width=110)
        self.open_button = pn.widgets.Button(label="Open run", color="primary", width=120)
        self.compare_button = pn.widgets.Button(label="Compare 2 runs", width=140)
        self.stop_button = pn.widgets.Button(label="Stop run", color="danger", width=110)
        self.message = pn.pane.Markdown("", sizing_mode="stretch_width")
        self.compare_area = pn.Column(sizing_mode="stretch_width")
        self.downloads = pn.Row(
            pn.widgets.FileDownload(callback=self._download(samples_csv), filename="samples.csv",
                                    label="Samples (CSV)", color="light", width=150),
            pn.widgets.FileDownload(callback=self._download(lambda r: io.BytesIO((r.path / "samples.npz").read_bytes())),
                                    filename="samples.npz", label="Samples (NPZ)", color="light", width=150),
            pn.widgets.FileDownload(callback=self._download(run_bundle), filename="run.zip",
                                    label="Run bundle (zip)", color="light", width=160),
            pn.widgets.FileDownload(callback=self._download(figures_html), filename="figures.html",
                                    label="Figures (HTML)", color="light", width=150),
        )
        self.refresh_button.on_click(lambda _e: self.refresh())
        self.open_button.on_click(self._open)
        self.compare_button.on_click(self._compare)
        self.stop_button.on_click(self._stop)

    def refresh(self) -> None:
        self.table.value = runs_table(self.runs_dir, self.user)

    def selected_paths(self) -> list[str]:
        frame = self.table.value
        return [frame["path"].iloc[i] for i in self.table.selection if i < len(frame)]

    def _selected_run(self) -> Run:
        paths = self.selected_paths()
        if not paths:
            raise FileNotFoundError("select a run in the table first")
        require_control(paths[0], self.user)
        return load_run(paths[0])

    def _download(self, make: Callable[[Run], object]) -> Callable[[], object]:
        def callback():
            try:
                return make(self._selected_run())
            except Exception as exc:  # shown next to the buttons, never as a traceback
                self.message.object = f"⚠️ Download failed: {exc}"
                return io.BytesIO(b"")
        return callback

    def _open(self, _event=None) -> None:
        paths = self.selected_paths()
        if not paths:
            self.message.object = "⚠️ Select a run (tick its box) first."
            return
        try:
            require_control(paths[0], self.user)
        except InputError as exc:
            self.message.object = f"⚠️ {exc.field}: {exc.message}"
            return
        self.message.object = f"Opened **{Path(paths[0]).name}**: see the Training and Samples tabs."
        self.on_open(paths[0])

    def _stop(self, _event=None) -> None:
        paths = self.selected_paths()
        if not paths:
            self.message.object = "⚠️ Select a running run (tick its box) first."
            return
        try:
            name = stop_run(paths[0], self.user)
        except InputError as exc:
            self.message.object = f"⚠️ {exc.field}: {exc.message}"
            return
        self.message.object = f"Asked **{name}** to stop: it checkpoints after its current iteration."

    def _compare(self, _event=None) -> None:
        paths = self.selected_paths()
        if len(paths) != 2:
            self.message.object = f"⚠️ Tick exactly two runs to compare (ticked: {len(paths)})."
            return
        try:
            for p in paths:
                require_control(p, self.user)
        except InputError as exc:
            self.message.object = f"⚠️ {exc.field}: {exc.message}"
            return
        columns, figures = [], []
        for p in paths:
            run = load_run(p)
            meta = run.meta
            header = pn.pane.Markdown(
                f"### {run.path.name}\n**{meta['model']}** · {_property_text(meta['property'])}  \n"
                f"state: {run.state} · converged: {meta.get('converged')} · "
                f"iterations: {meta.get('iterations')}")
            try:
                figure = saved_pairplot(run, max_dims=4, num_points=1000, size=COMPARE_PANEL_SIZE)
                figures.append((figure, meta["parameter_names"]))
                body = pairplot_grid(figure)
            except Exception as exc:
                body = pn.pane.Markdown(f"*No samples to show: {exc}*")
            columns.append(pn.Column(header, body))
        if len(figures) == 2 and figures[0][1] == figures[1][1]:
            share_ranges([f for f, _ in figures])
        # side by side where the page is wide enough, else one below the other (a Row cut the second off)
        self.compare_area.objects = [pn.FlexBox(*columns, flex_wrap="wrap", sizing_mode="stretch_width")]
        self.message.object = "Comparing the two ticked runs below."

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(
            pn.Row(self.refresh_button, self.open_button, self.compare_button, self.stop_button),
            self.table, self.downloads, self.message, self.compare_area, sizing_mode="stretch_width")

