"""The "Amortized inference" app (``/amortized``): build or pick a data set and estimator, choose or upload
a target, and see the posterior, the re-simulated activity over the target's, the predictive check and
the invariance geometry (README, "Amortized inference of a spiking network").

Set-up and the build job come from ``epi_dash.panels`` (SetupPanel, JobPanel, JobLibrary); the views are
functions of one :class:`AmortizedState` (a ``param.Parameterized``). Bad input is a message naming the
field, never a traceback.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import param

from core.amortized.build import BUILD_KIND, build_and_train
from core.amortized.features import FeatureSettings, population_rate, welch_psd
from core.amortized.geometry import compare_geometries, compare_text
from core.amortized.inference import TargetAnalysis, analyze_target
from core.amortized.posterior import load_posterior
from core.amortized.prior import PARAMETERS, to_unit
from core.amortized.targets import resolve_target
from core.errors import InputError
from core.executors import check_scheduler

from .config import runs_dir_from_env
from .panels import JobLibrary, JobPanel, SetupPanel, app_template, fitted_table, load_extensions, notify, pairplot

MAX_PAIR_DIMS = 6


class BuildSettings(param.Parameterized):
    """A training set and its estimator (defaults: the default network and budget of the CLI)."""

    budget = param.Integer(2000, doc="training simulations")
    heldout = param.Integer(20, doc="held-out simulations (targets heldout:K)")
    chunk_size = param.Integer(50, doc="simulations per chunk (one unit of work)")
    n_neurons = param.Integer(400, doc="cells, E and I")
    duration = param.Number(2.5, doc="simulated seconds")
    seed = param.Integer(0, doc="random seed")
    scheduler = param.String("", doc="Dask scheduler address (tcp://host:8786); empty: local process pool")
    max_epochs = param.Integer(300, doc="estimator training epochs at most")

    def errors(self) -> dict[str, str]:
        errs = {}
        if self.budget < 1:
            errs["budget"] = f"must be at least 1 simulation; got {self.budget}"
        if self.heldout < 1:
            errs["heldout"] = f"must be at least 1 (targets come from it); got {self.heldout}"
        if self.chunk_size < 1:
            errs["chunk_size"] = f"must be >= 1; got {self.chunk_size}"
        if not 10 <= self.n_neurons <= 5000:
            errs["n_neurons"] = f"must be 10-5000; got {self.n_neurons}"
        if not 0.3 <= self.duration <= 600:
            errs["duration"] = f"must be 0.3-600 s; got {self.duration:g}"
        if self.max_epochs < 1:
            errs["max_epochs"] = f"must be >= 1; got {self.max_epochs}"
        if self.scheduler.strip():
            try:
                check_scheduler(self.scheduler.strip())
            except InputError as exc:
                errs["scheduler"] = exc.message
        return errs


def find_datasets(runs_dir: Path) -> list[str]:
    """Data set directories below ``runs_dir`` (up to two levels) that hold a trained estimator."""
    found = []
    for pattern in ("*/estimator/posterior.pt", "*/*/estimator/posterior.pt"):
        found += [str(p.parent.parent) for p in runs_dir.glob(pattern)]
    return sorted(set(found))


def heldout_options(root: str) -> list[str]:
    try:
        from core.amortized.dataset import load_dataset

        d = load_dataset(root, split="heldout")
    except InputError:
        return []
    return [f"heldout:{k}" for k in range(int(d["valid"].sum()))]


class AmortizedState(param.Parameterized):
    """One session's inference choices and results."""

    dataset = param.String("", doc="data set directory (with estimator/)")
    target = param.String("heldout:0", doc="heldout:K or an uploaded spike file")
    compare_target = param.String("", doc="a second target for the side-by-side geometry")
    n = param.Integer(1000, doc="posterior samples")
    k = param.Integer(10, doc="samples re-simulated by the predictive check")
    tol = param.Number(0.5, doc="tolerance (training-set sds, RMS over features)")
    analysis = param.Parameter(None, doc="TargetAnalysis of the target")
    other = param.Parameter(None, doc="TargetAnalysis of the comparison target")
    message = param.String("")

    def run(self) -> None:
        """Sample, check and read the geometry; a message naming the field on bad input."""
        try:
            if not self.dataset:
                raise InputError("dataset", "pick or build a data set first")
            if self.n < 10:
                raise InputError("n", f"must be >= 10 samples; got {self.n}")
            if self.k < 1:
                raise InputError("k", f"must be >= 1; got {self.k}")
            post = load_posterior(self.dataset)
            a = analyze_target(post, resolve_target(self.dataset, self.target), n=self.n, k=self.k, tol=self.tol)
            b = None
            if self.compare_target:
                b = analyze_target(post, resolve_target(self.dataset, self.compare_target), n=self.n, k=self.k,
                                   tol=self.tol)
        except InputError as exc:
            self.message = f"{exc.field}: {exc.message}"
            return
        self.param.update(analysis=a, other=b, message="")


# ------------------------------------------------------------------------------------------ views
def posterior_view(a: TargetAnalysis) -> pn.viewable.Viewable:
    """Pairplot of the most constrained parameters (smallest posterior sd relative to the prior's)."""
    u = to_unit(a.z).numpy()
    dims = list(np.argsort(u.std(0))[:MAX_PAIR_DIMS])
    names = [p.name for p in PARAMETERS]
    grid = pairplot(names, np.array([p.lower for p in PARAMETERS]), np.array([p.upper for p in PARAMETERS]),
                    a.z.numpy()[:500], dims=dims, units=[p.unit for p in PARAMETERS])
    return pn.Column(pn.pane.Markdown(f"**{len(a.z)} posterior samples in {a.sample_s:.2f} s.** The "
                                      f"{MAX_PAIR_DIMS} parameters the target constrains most."), grid)


def raster(spikes, b: int, title: str, n_cells: int = 60) -> hv.Points:
    m = (spikes.batch == b) & (spikes.unit < min(n_cells, int(spikes.n_exc[b])))
    return hv.Points((spikes.time[m], spikes.unit[m]), ["time (s)", "E cell"]).opts(
        title=title, size=1.5, color="black", width=380, height=220, tools=[])


def activity_view(a: TargetAnalysis, feature_settings: FeatureSettings, t_start: float) -> pn.viewable.Viewable:
    """Target raster beside a re-simulated sample's; population-rate spectra of the target and samples."""
    tgt = a.target.spikes
    best = int(np.argmin(a.check.distance))
    plots = [raster(tgt, 0, f"target {a.target.label}"), raster(a.spikes, best, f"re-simulated sample {best}")]
    rate_t, _ = population_rate(tgt, t_start, feature_settings.dt_rate)
    f, p_t = welch_psd(rate_t, feature_settings)
    rate_s, _ = population_rate(a.spikes, t_start, feature_settings.dt_rate)
    fs, p_s = welch_psd(rate_s, feature_settings)
    keep = f > 0
    curves = [hv.Curve((fs[fs > 0], np.maximum(p, 1e-8)[fs > 0]), "frequency (Hz)", "PSD (Hz²/Hz)").opts(
        color="#999999", alpha=0.4) for p in p_s[:10]]
    curves.append(hv.Curve((f[keep], np.maximum(p_t[0], 1e-8)[keep]), "frequency (Hz)", "PSD (Hz²/Hz)",
                           label="target").opts(color="#d62728", line_width=2))
    spec = hv.Overlay(curves).opts(logx=True, logy=True, width=420, height=260,
                                   title="population-rate spectra: target (red), samples (grey)")
    return pn.Column(pn.Row(*[pn.pane.HoloViews(p) for p in plots]), pn.pane.HoloViews(spec))


def check_view(a: TargetAnalysis) -> pn.viewable.Viewable:
    c = a.check
    frame = pd.DataFrame({"feature": c.feature_names, "unit": c.feature_units, "target": c.target,
                          "within tol": [round(100 * v) for v in c.fraction_per_feature]})
    frame.loc[len(frame)] = ["overall (RMS)", "", np.nan, round(100 * c.fraction_overall)]
    warn = pn.pane.Alert(c.coverage_warning, alert_type="warning") if c.coverage_warning else None
    head = pn.pane.Markdown(f"**Posterior-predictive check:** {c.n_resimulated} samples re-simulated, "
                            f"{c.n_valid} not silent or exploding; tolerance {c.tolerance} training sd. "
                            f"Overall **{100 * c.fraction_overall:.0f} %** within tolerance.",
                            name="check-summary")
    table = fitted_table(frame, name="check-table")
    table.height = min(29 * (len(frame) + 1) + 12, 900)
    return pn.Column(*([warn] if warn else []), head, table)


def geometry_plots(a: TargetAnalysis) -> pn.viewable.Viewable:
    g = a.geometry
    var = np.asarray(g.pca_variance)
    pca = hv.Bars((np.arange(1, len(var) + 1), var / var.sum()), "PC", "variance fraction").opts(
        width=360, height=220, title=f"PCA spectrum (PR {g.participation_ratio:.1f})", tools=[])
    eig = np.abs(np.asarray(g.hessian_eigenvalues))
    hes = hv.Overlay([hv.Curve((np.arange(1, eig.shape[1] + 1), np.sort(e)), "rank", "|eigenvalue|").opts(
        color="#1f77b4", alpha=0.6) for e in eig]).opts(logy=True, width=360, height=220,
                                                        title="local: -log q Hessian spectra")
    return pn.Column(pn.pane.Markdown(f"```\n{g.summary()}\n```\n*{a.geometry_source}*"),
                     pn.Row(pn.pane.HoloViews(pca), pn.pane.HoloViews(hes)))


def geometry_view(a: TargetAnalysis, b: TargetAnalysis | None) -> pn.viewable.Viewable:
    if b is None:
        return pn.Column(geometry_plots(a), pn.pane.Markdown("*Choose a comparison target to see the "
                                                              "geometries of two dynamics side by side.*"))
    text = compare_text(compare_geometries(a.geometry, b.geometry))
    return pn.Column(pn.pane.Markdown(f"```\n{text}\n```"), pn.Row(geometry_plots(a), geometry_plots(b)))


class AmortizedApp:
    """One session: the build form and job, the inference controls, and the result tabs."""

    def __init__(self, runs_dir: str | Path | None = None):
        self.runs_dir = Path(runs_dir) if runs_dir is not None else runs_dir_from_env()
        self.build = BuildSettings()
        self.setup = SetupPanel(self.build)
        self.job = JobPanel(build_and_train, BUILD_KIND, self.runs_dir, settings=self.setup.settings,
                            can_start=lambda: self.setup.valid)
        self.setup.param.watch(lambda _e: self.job.refresh(), "valid")
        self.job.subscribe(self._on_events)
        self.state = AmortizedState()
        self.dataset_select = pn.widgets.Select(name="data set", options=find_datasets(self.runs_dir),
                                                sizing_mode="stretch_width")
        self.dataset_path = pn.widgets.TextInput(name="or a data set directory", placeholder="path/to/DIR",
                                                 sizing_mode="stretch_width")
        self.target_select = pn.widgets.Select(name="target", options=[], sizing_mode="stretch_width")
        self.compare_select = pn.widgets.Select(name="compare with", options=[""], sizing_mode="stretch_width")
        self.upload = pn.widgets.FileInput(accept=".npz,.csv,.nwb", name="upload a spike file",
                                           sizing_mode="stretch_width")
        self.n_input = pn.widgets.IntInput(name="posterior samples", value=1000, sizing_mode="stretch_width")
        self.k_input = pn.widgets.IntInput(name="re-simulated samples", value=10, sizing_mode="stretch_width")
        self.infer_button = pn.widgets.Button(name="Infer", button_type="primary", sizing_mode="stretch_width")
        self.message = pn.pane.Alert("", alert_type="danger", visible=False, name="amortized-message")
        self.tabs = pn.Tabs(("Posterior", pn.Column()), ("Activity", pn.Column()), ("Check", pn.Column()),
                            ("Geometry", pn.Column()), sizing_mode="stretch_width", dynamic=False)
        self.library = JobLibrary(self.runs_dir, on_open=lambda path, _k: self.job.open(path), kinds=[BUILD_KIND])
        self.dataset_select.param.watch(lambda e: self._pick(e.new), "value")
        self.dataset_path.param.watch(lambda e: self._pick(e.new.strip()), "value")
        self.upload.param.watch(self._on_upload, "value")
        self.infer_button.on_click(lambda _e: self.infer())
        if self.dataset_select.options:
            self._pick(self.dataset_select.options[-1])
            self.dataset_select.value = self.dataset_select.options[-1]

    # ------------------------------------------------------------------------------ actions
    def _show_error(self, text: str) -> None:
        self.message.object, self.message.visible = text, bool(text)

    def _pick(self, root: str) -> None:
        if not root:
            return
        opts = heldout_options(root)
        if not opts:
            self._show_error(f"dataset: {root} is not a data set with held-out targets")
            return
        self._show_error("")
        self.state.dataset = root
        extra = [o for o in self.target_select.options if not str(o).startswith("heldout:")]
        self.target_select.options = opts + extra
        self.target_select.value = opts[0]
        self.compare_select.options = [""] + opts

    def _on_upload(self, event) -> None:
        if not event.new:
            return
        name = Path(self.upload.filename or "upload.npz").name
        folder = Path(tempfile.mkdtemp(prefix="amortized-upload-"))
        path = folder / name
        path.write_bytes(event.new)
        self.target_select.options = list(self.target_select.options) + [str(path)]
        self.target_select.value = str(path)

    def _on_events(self, events, job: JobPanel) -> None:
        if any(e.kind == "finished" for e in events):
            self.library.refresh()
            if job.state == "finished":
                self.dataset_select.options = find_datasets(self.runs_dir)
                self.dataset_select.value = str(job.run_dir)
                self._pick(str(job.run_dir))

    def infer(self) -> None:
        """Run the inference for the chosen target and fill the tabs."""
        self.state.param.update(target=str(self.target_select.value or ""),
                                compare_target=str(self.compare_select.value or ""),
                                n=int(self.n_input.value or 0), k=int(self.k_input.value or 0))
        self.infer_button.loading = True
        try:
            self.state.run()
        finally:
            self.infer_button.loading = False
        if self.state.message:
            self._show_error(self.state.message)
            notify("error", self.state.message)
            return
        self._show_error("")
        a, b = self.state.analysis, self.state.other
        post = load_posterior(self.state.dataset)
        fs = FeatureSettings.from_dict(post.meta["feature_settings"])
        self.tabs[0].objects = [posterior_view(a)]
        self.tabs[1].objects = [activity_view(a, fs, post.meta["network"]["t_start"])]
        self.tabs[2].objects = [check_view(a)]
        self.tabs[3].objects = [geometry_view(a, b)]

    def template(self) -> pn.template.FastListTemplate:
        infer_box = pn.Column(pn.pane.Markdown("### Inference"), self.dataset_select, self.dataset_path,
                              self.target_select, self.upload, self.compare_select, self.n_input, self.k_input,
                              self.infer_button, sizing_mode="stretch_width")
        build_box = pn.Card(self.setup, self.job.controls, title="Build a data set and estimator",
                            collapsed=False, sizing_mode="stretch_width")
        return app_template(
            title="Amortized inference", sidebar=[infer_box, build_box], sidebar_width=360,
            main=[self.message, pn.Tabs(("Results", self.tabs),
                                        ("Build", pn.Column(self.job.plot_area, self.job.table,
                                                            sizing_mode="stretch_width")),
                                        ("Runs", self.library), sizing_mode="stretch_width")],
            theme_toggle=False)


def create_amortized_app(runs_dir: str | Path | None = None) -> pn.template.FastListTemplate:
    """The amortized-inference page for one session."""
    load_extensions()
    return AmortizedApp(runs_dir).template()


__all__: list[Any] = ["AmortizedApp", "AmortizedState", "BuildSettings", "create_amortized_app"]
