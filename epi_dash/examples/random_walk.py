"""The smallest real app built from the panels: random walkers diffusing from the origin.

Three parts, as every app (README "Writing an app"):

1. ``WalkSettings``: the set-up, a param class (the setup panel turns it into a form) and ``errors``,
   which names the bad field;
2. ``simulate_walk(ctx)``: the job, a plain module-level function of a ``core.jobs.JobContext``: one step
   of every walker per unit of work, a checkpoint after each, ``ctx.progress`` with the named series
   ``msd`` (mean squared displacement) and ``theory`` (steps x dims x step_size^2), a stop check;
3. ``result_view(run_dir, on_tap)``: what a finished run shows: the final positions as a pairplot (click a
   walker to see it in the table), its mean squared displacement against theory, and the result table.

Serve it with ``panel serve apps/example_random_walk.py`` (runs go to ``$EPI_DASH_RUNS_DIR``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import panel as pn
import param

from core.jobs import JobContext

from ..config import runs_dir_from_env
from ..panels import JobLibrary, JobPanel, SetupPanel, app_template, key_value_table, load_extensions, pairplot, trace_plot

KIND = "example.random_walk"


class WalkSettings(param.Parameterized):
    """Random walkers: each step adds ``step_size`` x a standard normal draw to every coordinate."""

    walkers = param.Integer(default=500, bounds=(1, None), doc="number of walkers")
    steps = param.Integer(default=200, bounds=(1, None), doc="steps per walker")
    dims = param.Integer(default=2, bounds=(2, 4), doc="space dimension")
    step_size = param.Number(default=1.0, doc="standard deviation of one step per coordinate")
    seed = param.Integer(default=0, doc="random seed")
    delay = param.Number(default=0.0, bounds=(0, 1), doc="seconds to wait per step (to watch it live)")

    def errors(self) -> dict[str, str]:
        """Problems by field name (empty when the walk can start)."""
        errs = {}
        if not self.step_size > 0:
            errs["step_size"] = f"must be > 0; got {self.step_size:g}"
        if self.walkers * self.dims > 10_000_000:
            errs["walkers"] = f"{self.walkers} walkers x {self.dims} dims is too many (at most 10^7 coordinates)"
        return errs


def simulate_walk(ctx: JobContext) -> dict[str, Any]:
    """The job: walk ``settings["steps"]`` steps, resumable after any step; returns the final
    mean squared displacement, its theoretical value and their ratio."""
    s = ctx.settings
    n, d, steps, size = int(s["walkers"]), int(s["dims"]), int(s["steps"]), float(s["step_size"])
    state = ctx.load_checkpoint() or {"done": 0, "x": np.zeros((n, d)),
                                      "rng": np.random.default_rng(int(s.get("seed", 0))).bit_generator.state}
    rng = np.random.default_rng()
    rng.bit_generator.state = state["rng"]
    x = state["x"]  # (walkers, dims)
    for k in range(state["done"], steps):
        x = x + size * rng.standard_normal((n, d))
        state.update(done=k + 1, x=x, rng=rng.bit_generator.state)
        ctx.save_checkpoint(state)
        msd = float((x ** 2).sum(1).mean())
        ctx.progress(k + 1, steps, msd=msd, theory=(k + 1) * d * size ** 2)
        ctx.check_stop()
        if s.get("delay"):
            time.sleep(float(s["delay"]))
    np.save(ctx.path("positions.npy"), x)
    msd, theory = float((x ** 2).sum(1).mean()), steps * d * size ** 2
    return {"msd": msd, "theory": theory, "ratio": msd / theory}


def result_view(run_dir: str | Path, result: dict[str, Any], msd: pd.DataFrame) -> pn.viewable.Viewable:
    """Final positions (click one: it shows in the table below), MSD against theory, the result."""
    x = np.load(Path(run_dir) / "positions.npy")
    names = [f"x{i + 1}" for i in range(x.shape[1])]
    bound = float(np.abs(x).max()) * 1.05 + 1e-9
    picked = pn.pane.Markdown("*Click a walker in the pairplot.*")

    def on_tap(z: np.ndarray) -> None:
        picked.object = (f"**Walker at** ({', '.join(f'{v:.2f}' for v in z)}): distance "
                         f"{np.linalg.norm(z):.2f} from the origin")

    grid = pairplot(names, np.full(len(names), -bound), np.full(len(names), bound), x,
                    weights=-(x ** 2).sum(1), on_tap=on_tap)
    curves = trace_plot(msd["step"].to_numpy(), {"msd": msd["msd"].to_numpy(), "theory": msd["theory"].to_numpy()},
                        time_unit="steps", title="Mean squared displacement")
    return pn.Column(pn.Row(grid, pn.Column(pn.pane.HoloViews(curves, width=420), picked)),
                     key_value_table(result), sizing_mode="stretch_width")


class RandomWalkApp:
    """One session: the setup panel, the job panel and the result view over one ``WalkSettings``."""

    def __init__(self, runs_dir: str | Path | None = None):
        self.runs_dir = Path(runs_dir) if runs_dir is not None else runs_dir_from_env()
        self.settings = WalkSettings()
        self.setup = SetupPanel(self.settings)
        self.job = JobPanel(simulate_walk, KIND, self.runs_dir, settings=self.setup.settings,
                            can_start=lambda: self.setup.valid)
        self.setup.param.watch(lambda _e: self.job.refresh(), "valid")
        self.results = pn.Column(sizing_mode="stretch_width")
        self.library = JobLibrary(self.runs_dir, on_open=lambda path, _kind: self.job.open(path), kinds=[KIND])
        self.job.subscribe(self._on_events)

    def _on_events(self, events, job: JobPanel) -> None:
        if not any(e.kind == "finished" for e in events):
            return
        self.library.refresh()
        if job.state == "finished":
            from core.jobs import read_events

            rows = [{"step": e.step, **e.scalars} for e in read_events(job.run_dir)[0] if e.kind == "progress"]
            self.results.objects = [result_view(job.run_dir, job.result, pd.DataFrame(rows))]

    def template(self) -> pn.template.FastListTemplate:
        return app_template(
            title="Random walk (example app)", sidebar=[self.setup, self.job.controls], sidebar_width=340,
            main=[pn.Tabs(("Live", pn.Column(self.job.plot_area, self.job.table, sizing_mode="stretch_width")),
                          ("Result", self.results), ("Runs", self.library), dynamic=True,
                          sizing_mode="stretch_width")], theme_toggle=False)


def create_random_walk_app(runs_dir: str | Path | None = None) -> pn.template.FastListTemplate:
    """The example app's page for one session."""
    load_extensions()
    return RandomWalkApp(runs_dir).template()
