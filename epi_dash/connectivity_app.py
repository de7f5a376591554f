"""The Connectivity app (``/connectivity``): pick a teacher or a data file, infer the max-ent loading
distribution in the background (live progress, stop/resume, the run library), then see loading
pairplots (teacher vs inferred vs a gradient-descent fit), the latent phase portrait with the vector
field, and latent traces of sampled N = 1,000 networks. Built from ``epi_dash.panels``; the job is
``core.connectivity.inference.infer_job``."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import holoviews as hv
import numpy as np
import panel as pn
import param
import torch

from core.connectivity.inference import infer_job, normalize_settings
from core.connectivity.meanfield import field_mc
from core.connectivity.network import simulate_network
from core.connectivity.teachers import TEACHERS, make_teacher
from core.connectivity.validation import PROTOCOL, initial_states
from core.errors import InputError

from .config import runs_dir_from_env
from .panels import JobLibrary, JobPanel, SetupPanel, app_template, key_value_table, load_extensions, trace_plot

KIND = "connectivity.infer"
COLORS = {"teacher": "#7f7f7f", "inferred": "#1f77b4", "gradient descent": "#ff7f0e"}


class ConnectivitySettings(param.Parameterized):
    """What to infer from and how."""

    source = param.Selector(default="teacher", objects=["teacher", "data"], doc="a synthetic teacher or your file")
    teacher = param.Selector(default="bistable", objects=list(TEACHERS), doc="teacher loading distribution")
    data = param.String(default="", doc="path of a .npz/.csv file (latents or activity; or upload below)")
    rank = param.Integer(default=1, bounds=(1, 3), doc="rank R (data files only; teachers know theirs)")
    method = param.Selector(default="fm", objects=["fm", "epi", "gd"],
                            doc="fm: CNF by flow matching; epi: Real NVP + augmented Lagrangian; gd: one lrRNN fit")
    latent_only = param.Boolean(default=False, doc="observe only the latent dynamics (p(m) then free)")
    fm_steps = param.Integer(default=3000, bounds=(1, None), doc="flow-matching steps")
    compare_gd = param.Boolean(default=True, doc="also fit one lrRNN by gradient descent, for the pairplot")
    quick = param.Boolean(default=False, doc="tiny settings (seconds), to try the app")
    seed = param.Integer(default=0, doc="random seed")

    def errors(self) -> dict[str, str]:
        errs = {}
        if self.source == "data" and not self.data.strip():
            errs["data"] = "give a file path (or upload a file)"
        if self.fm_steps < 1:
            errs["fm_steps"] = f"must be >= 1; got {self.fm_steps}"
        return errs

    def job_settings(self) -> dict[str, Any]:
        """The job's settings; bad input raises InputError naming the field (shown by the job panel)."""
        s: dict[str, Any] = {"method": self.method, "pin_m": not self.latent_only, "fm_steps": self.fm_steps,
                             "compare_gd": self.compare_gd, "quick": self.quick, "seed": self.seed}
        if self.source == "teacher":
            s["teacher"] = self.teacher
        else:
            s.update(data=self.data.strip(), rank=self.rank)
        if self.quick:
            s.pop("fm_steps")
        normalize_settings(dict(s))
        return s


def _load(run_dir: Path, name: str) -> dict[str, np.ndarray] | None:
    f = run_dir / name
    if not f.is_file():
        return None
    with np.load(f, allow_pickle=False) as d:
        return {k: d[k] for k in d.files}


def loading_pairplot(groups: dict[str, np.ndarray], names: list[str], n: int = 800) -> pn.GridBox:
    """Scatter of every pair of loadings, one color per group (teacher, inferred, gradient descent); fixed
    size panes in a grid (a stretched Layout collapses to zero width in Chromium)."""
    plots = []
    for i, j in itertools.combinations(range(len(names)), 2):
        layers = []
        for label, z in groups.items():
            zz = z[np.random.default_rng(0).permutation(len(z))[:n]]
            layers.append(hv.Scatter((zz[:, i], zz[:, j]), names[i], names[j], label=label).opts(
                color=COLORS.get(label, "#2ca02c"), size=2, alpha=0.45))
        plots.append(hv.Overlay(layers).opts(width=280, height=250, legend_position="top_left", show_legend=not plots,
                                             xlim=(-4, 4), ylim=(-5, 5)))
    return pn.GridBox(*[pn.pane.HoloViews(p, width=290, height=260, margin=2) for p in plots],
                      ncols=min(3, len(plots)))


def phase_portrait(samples: np.ndarray, rank: int, obs: dict[str, np.ndarray] | None, teacher: str | None) -> hv.Element:
    """Latent vector field F(kappa) - kappa of the inferred p (Monte Carlo over its samples), with the
    observed trajectories; rank 1: the velocity curve, inferred vs teacher."""
    z = torch.as_tensor(samples, dtype=torch.float64)
    if rank == 1:
        k = torch.linspace(-2.2, 2.2, 90, dtype=torch.float64)[:, None]
        curves = [hv.Curve((k[:, 0].numpy(), (field_mc(k, z, 1) - k)[:, 0].numpy()), "kappa", "dkappa/dt",
                           label="inferred").opts(color=COLORS["inferred"])]
        if teacher:
            t = make_teacher(teacher)
            curves.append(hv.Curve((k[:, 0].numpy(), (t.field(k) - k)[:, 0].numpy()), "kappa", "dkappa/dt",
                                   label="teacher").opts(color=COLORS["teacher"], line_dash="dashed"))
        return hv.Overlay(curves + [hv.HLine(0).opts(color="black", line_width=0.5)]).opts(
            title="Latent velocity (rank 1)", width=420, height=320, legend_position="top_right")
    if rank != 2:
        return hv.Text(0, 0, f"phase portrait shown for rank 1 and 2 (this is rank {rank})")
    g = torch.linspace(-2.0, 2.0, 15, dtype=torch.float64)
    X, Y = torch.meshgrid(g, g, indexing="xy")
    pts = torch.stack([X.flatten(), Y.flatten()], 1)
    v = (field_mc(pts, z, 2) - pts).numpy()
    mag = np.hypot(v[:, 0], v[:, 1])
    field = hv.VectorField((pts[:, 0].numpy(), pts[:, 1].numpy(), np.arctan2(v[:, 1], v[:, 0]), mag),
                           ["kappa1", "kappa2"], ["angle", "mag"]).opts(magnitude="mag", color="mag", cmap="Blues",
                                                                        pivot="tail", line_width=1.5)
    layers: list[hv.Element] = [field]
    if obs is not None and "traj_kappa" in obs:
        for tr in obs["traj_kappa"]:
            layers.append(hv.Curve((tr[:, 0], tr[:, 1]), "kappa1", "kappa2").opts(color=COLORS["teacher"], line_width=1))
    return hv.Overlay(layers).opts(title="Phase portrait: inferred field, observed trajectories", width=440, height=400)


def network_traces(samples: np.ndarray, rank: int, teacher: str | None, N: int = 1000, seed: int = 0) -> hv.Overlay:
    """Latent traces kappa(t) of one network of N units resampled from the inferred p."""
    kind = make_teacher(teacher).kind if teacher else ("bistable" if rank == 1 else "cycle")
    duration, dt = PROTOCOL[kind]
    k0 = initial_states(kind)[:4]
    if k0.shape[1] != rank:
        k0 = torch.zeros(4, rank, dtype=torch.float64) + torch.linspace(-1, 1, 4, dtype=torch.float64)[:, None]
    rng = np.random.default_rng(seed)
    z = torch.as_tensor(samples[rng.choice(len(samples), N, replace=len(samples) < N)], dtype=torch.float64)
    out = simulate_network(z[None].expand(len(k0), N, z.shape[1]), rank, k0, duration, dt, record_every=4)
    t = out["t"].numpy()
    traces = {f"kappa{r + 1} (start {i + 1})": out["kappa"][i, :, r].numpy() for i in range(len(k0)) for r in range(rank)}
    return trace_plot(t, traces, time_unit="tau", title=f"Latents of a sampled N = {N} network")


def result_view(run_dir: str | Path, result: dict[str, Any]) -> pn.viewable.Viewable:
    """Everything a finished run shows."""
    run_dir = Path(run_dir)
    inferred = _load(run_dir, "loadings.npz")
    if inferred is None:
        return pn.pane.Markdown("*No loadings.npz in this run (it did not finish).*")
    names = [str(n) for n in inferred["names"]]
    rank = int(inferred["rank"])
    teacher = result.get("teacher")
    groups: dict[str, np.ndarray] = {}
    if teacher:
        groups["teacher"] = make_teacher(teacher).sample(3000, seed=1).numpy()
    groups["inferred"] = inferred["samples"]
    gd = _load(run_dir, "gd_loadings.npz")
    if gd is not None and str(inferred["method"]) != "gd":
        groups["gradient descent"] = gd["samples"]
    obs = _load(run_dir, "observation.npz")
    summary = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in result.items()
               if not isinstance(v, (dict, list))}
    v = result.get("validation", {})
    for k in ("dynamics_error", "tolerance", "dynamics_ok"):
        if k in v:
            summary[f"validation {k}"] = round(v[k], 4) if isinstance(v[k], float) else v[k]
    return pn.Column(
        pn.pane.Markdown(f"### Loadings ({', '.join(groups)})"),
        loading_pairplot(groups, names),
        pn.Row(pn.pane.HoloViews(phase_portrait(inferred["samples"], rank, obs, teacher)),
               pn.pane.HoloViews(network_traces(inferred["samples"], rank, teacher), width=520)),
        key_value_table(summary), sizing_mode="stretch_width")


class ConnectivityApp:
    """One session: set-up form, job panel, result views and the run library."""

    def __init__(self, runs_dir: str | Path | None = None):
        self.runs_dir = Path(runs_dir) if runs_dir is not None else runs_dir_from_env()
        self.settings = ConnectivitySettings()
        self.setup = SetupPanel(self.settings)
        self.upload = pn.widgets.FileInput(accept=".npz,.csv", name="Upload data")
        self.upload.param.watch(self._on_upload, "value")
        self.job = JobPanel(infer_job, KIND, self.runs_dir, settings=self.settings.job_settings,
                            can_start=lambda: self.setup.valid)
        self.setup.param.watch(lambda _e: self.job.refresh(), "valid")
        self.results = pn.Column(pn.pane.Markdown("*Run an inference to see its results here.*"),
                                 sizing_mode="stretch_width")
        self.library = JobLibrary(self.runs_dir, on_open=lambda path, _kind: self.job.open(path), kinds=[KIND])
        self.job.subscribe(self._on_events)

    def _on_upload(self, event) -> None:
        if not event.new:
            return
        name = Path(self.upload.filename or "data.npz").name
        folder = self.runs_dir / "uploads"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(event.new)
        self.settings.param.update(source="data", data=str(folder / name))

    def _on_events(self, events, job: JobPanel) -> None:
        if not any(e.kind == "finished" for e in events):
            return
        self.library.refresh()
        if job.state == "finished":
            try:
                self.results.objects = [result_view(job.run_dir, job.result)]
            except (InputError, OSError, ValueError) as exc:  # a damaged run: a message, never a traceback
                self.results.objects = [pn.pane.Markdown(f"**Cannot show this run:** {exc}")]

    def template(self) -> pn.template.FastListTemplate:
        return app_template(
            title="Connectivity: max-entropy loadings of low-rank RNNs",
            sidebar=[self.setup, self.upload, self.job.controls], sidebar_width=340,
            main=[pn.Tabs(("Live", pn.Column(self.job.plot_area, self.job.table, sizing_mode="stretch_width")),
                          ("Result", self.results), ("Runs", self.library), dynamic=True,
                          sizing_mode="stretch_width")], theme_toggle=False)


def create_connectivity_app(runs_dir: str | Path | None = None) -> pn.template.FastListTemplate:
    """The Connectivity app's page for one session."""
    load_extensions()
    return ConnectivityApp(runs_dir).template()
