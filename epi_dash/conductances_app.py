"""The "Conductances" app (``/conductances``): spike times -> DIC density -> a degenerate population of
conductance-based neurons -> its activity beside the input's (README, "Degenerate populations from spike
times").

Load a spike-time file (NPZ/CSV, the formats of ``core.conductance.spikes``) or generate input spike trains
from a chosen (g_s, g_u); the app shows the density over the (g_s, g_u) plane, the generated population's
conductance distributions, example voltage traces beside the input's, and the metric violins. The
network comes from ``epi-dash dic train`` (``$EPI_DASH_RUNS_DIR/dic/MODEL/network``). Views are functions
of one :class:`ConductancesState`; bad input is a message naming the field, never a traceback.

A Run computes in a worker thread that first takes a slot of the server's scheduler (``max_runs_per_user``,
the fair queue shared with every other job), so one person's population of 5,000 neurons neither blocks the
other pages nor takes more than its share of the cores; the page shows the result when it is done.
"""

from __future__ import annotations

import tempfile
import threading
from functools import partial
from pathlib import Path

import holoviews as hv
import numpy as np
import panel as pn
import param
import torch
from panel.io.state import set_curdoc

from core.conductance import (METRICS, activity_metrics, compare, compensate, generate, get_model, load_density,
                              read_spikes, simulate)
from core.conductance.pipeline import REGIME_METRICS
from core.errors import InputError

from .config import runs_dir_from_env
from .panels import app_template, load_extensions, notify
from .scheduler import Scheduler, scheduler as process_scheduler, slot_for
from .users import current_user


class ConductancesState(param.Parameterized):
    """One session's inputs and results."""

    model = param.Selector(default="stg", objects=["stg", "da"], label="model", doc="conductance-based model")
    source = param.Selector(default="dic", objects=["dic", "file"], label="source", doc="input spike trains: from (g_s, g_u) or a file")
    g_s = param.Number(-8.0, label="g_s", doc="slow DIC of the input population (source 'dic')")
    g_u = param.Number(6.0, label="g_u", doc="ultraslow DIC of the input population (source 'dic')")
    n_input = param.Integer(4, bounds=(1, 256), label="input neurons", doc="input neurons simulated (source 'dic')")
    n = param.Integer(24, bounds=(1, 5000), label="neurons to generate", doc="neurons to generate")
    duration = param.Number(1000.0, bounds=(50, 20000), label="duration (ms)", doc="ms simulated after the transient")
    transient = param.Number(500.0, bounds=(0, 10000), label="transient (ms)", doc="ms discarded")
    seed = param.Integer(0)
    network_dir = param.String("", label="network folder", doc="trained network (default: RUNS_DIR/dic/MODEL/network)")

    message = param.String("")
    result = param.Dict(default=None, allow_None=True)

    def network_path(self) -> Path:
        return Path(self.network_dir) if self.network_dir.strip() else runs_dir_from_env() / "dic" / self.model / "network"

    def run(self, file_bytes: bytes | None = None, filename: str = "") -> None:
        """Compute everything and show it; a bad input becomes ``message`` (field: why) and no result."""
        self.show(*self.outcome(file_bytes, filename))

    def outcome(self, file_bytes: bytes | None = None, filename: str = "") -> tuple[dict | None, str]:
        """(result, message) of a run, without touching the page (any thread): a bad input gives no result
        and a message naming the field; an unexpected error its type and text, never a traceback."""
        try:
            r = self._compute(file_bytes, filename)
        except InputError as exc:
            return None, f"{exc.field}: {exc.message}"
        except Exception as exc:  # keep the server up: show the cause
            return None, f"error: {type(exc).__name__}: {exc}"
        failed = f"; {len(r['failures'])} failed ({r['failures'][0][1]})" if r["failures"] else ""
        return r, (f"{r['n_ok']} of {self.n} neurons generated in {r['gen_ms']:.0f} ms{failed}; input regime "
                   f"{r['cmp']['regime']}, {100 * r['cmp']['in_regime']:.0f} % of generated neurons in it")

    def show(self, result: dict | None, message: str) -> None:
        self.param.update(result=result, message=message)

    def scheduled_outcome(self, file_bytes: bytes | None, filename: str, owner: str,
                          sched: Scheduler | None = None, on_admitted=lambda: None) -> tuple[dict | None, str]:
        """:meth:`outcome` as a job of the server's scheduler (``sched``; None: the process's) for ``owner``:
        refused past ``max_runs_per_user`` (the message names it), else computed once admitted (then
        ``on_admitted()``), its slot freed however it ends. Blocks: call it from a worker thread."""
        try:
            with slot_for(sched or process_scheduler(), owner, f"conductances-{self.model}", threading.Event()):
                on_admitted()
                return self.outcome(file_bytes, filename)
        except InputError as exc:  # over the server's max_runs_per_user
            return None, f"{exc.field}: {exc.message}"

    def _compute(self, file_bytes: bytes | None, filename: str) -> dict:
        import time

        torch.set_num_threads(1)
        model = get_model(self.model)
        sim_kw = dict(duration=self.duration, transient=self.transient)
        V_in = t_in = None
        if self.source == "file":
            if not file_bytes:
                raise InputError("file", "choose a spike-time file (.npz or .csv) first")
            suffix = Path(filename).suffix.lower() or ".csv"
            with tempfile.TemporaryDirectory() as d:
                p = Path(d) / f"spikes{suffix}"
                p.write_bytes(file_bytes)
                trains = read_spikes(p)
        else:
            comp_in = compensate(model, (self.g_s, self.g_u), n=self.n_input, seed=self.seed)
            sim_in = simulate(model, comp_in.g[comp_in.ok], seed=self.seed, record=1, **sim_kw)
            trains, V_in, t_in = sim_in.spikes, sim_in.V[0], sim_in.t
            silent = trains.counts < 3
            if silent.all():
                raise InputError("g_s", f"the input neurons at (g_s, g_u) = ({self.g_s:g}, {self.g_u:g}) are silent; "
                                        f"choose another target")
            trains = trains.subset(torch.nonzero(~silent).flatten())
        net = load_density(self.network_path())
        t0 = time.perf_counter()
        comp = generate(model, net, trains, self.n, seed=self.seed)
        gen_ms = (time.perf_counter() - t0) * 1e3
        if not comp.ok.any():
            raise InputError("n", "compensation kept no neuron positive; " + comp.failures()[0][1])
        sim = simulate(model, comp.g[comp.ok], seed=self.seed + 1, record=3, **sim_kw)
        m_in, m_gen = activity_metrics(trains), activity_metrics(sim.spikes)
        box = model.dic_box
        gs = torch.linspace(*box["g_s"], 81)
        gu = torch.linspace(*box["g_u"], 41)
        gs, gu = (gs[1:] + gs[:-1]) / 2, (gu[1:] + gu[:-1]) / 2
        dens = net.grid_log_prob(trains.subset([0]), gs, gu)[0].exp().numpy()
        return dict(model=model.name, names=model.names, g=comp.g[comp.ok].numpy(), targets=comp.targets.numpy(),
                    density=dens, gs=gs.numpy(), gu=gu.numpy(), box=box, m_in=m_in, m_gen=m_gen,
                    cmp=compare(m_in, m_gen), V_gen=sim.V, t_gen=sim.t, V_in=V_in, t_in=t_in,
                    n_ok=int(comp.ok.sum()), gen_ms=gen_ms, failures=comp.failures(),
                    target=(self.g_s, self.g_u) if self.source == "dic" else None)


# ------------------------------------------------------------------------------------------ views
def density_view(r: dict | None):
    if r is None:
        return pn.pane.Markdown("*No result yet: choose the input and press Run.*")
    (l, rgt), (b, t) = r["box"]["g_s"], r["box"]["g_u"]
    img = hv.Image(r["density"][::-1], bounds=(l, b, rgt, t), kdims=["g_s", "g_u"], vdims=["density"]).opts(
        cmap="Blues", colorbar=True, width=420, height=260, title="DIC density of the first input train")
    pts = hv.Points(r["targets"][:400], kdims=["g_s", "g_u"]).opts(color="orange", size=3, alpha=0.6)
    out = img * pts
    if r["target"] is not None:
        out = out * hv.Points([r["target"]], kdims=["g_s", "g_u"]).opts(color="green", size=12, marker="x")
    return pn.pane.HoloViews(out, name="density")


def conductance_view(r: dict | None):
    if r is None:
        return pn.Spacer()
    g = r["g"]
    groups, values = [], []
    for j, name in enumerate(r["names"]):
        groups += [name] * len(g)
        values += list(np.log10(np.maximum(g[:, j], 1e-6)))
    v = hv.BoxWhisker((groups, values), "channel", "log10 g").opts(width=420, height=260,
                                                                  title="generated conductances (log10)")
    return pn.pane.HoloViews(v, name="conductances")


def traces_view(r: dict | None):
    if r is None:
        return pn.Spacer()
    curves = []
    if r["V_in"] is not None:
        curves.append(hv.Curve((r["t_in"], r["V_in"]), "t (ms)", "V (mV)", label="input").opts(color="green"))
    for i in range(min(3, r["V_gen"].shape[0])):
        curves.append(hv.Curve((r["t_gen"], r["V_gen"][i]), "t (ms)", "V (mV)", label=f"generated {i + 1}"))
    layout = hv.Layout([c.opts(width=860, height=120, title=c.label) for c in curves]).cols(1)
    return pn.pane.HoloViews(layout, name="traces")


def violin_view(r: dict | None):
    if r is None:
        return pn.Spacer()
    regime = r["cmp"]["regime"]
    plots = []
    for k in REGIME_METRICS.get(regime, ()) or METRICS[:1]:
        groups, values = [], []
        for src, m in (("input", r["m_in"]), ("generated", r["m_gen"])):
            x = m[k].numpy()
            x = x[np.isfinite(x)]
            groups += [src] * len(x)
            values += list(x)
        if values:
            plots.append(hv.Violin((groups, values), "population", k).opts(width=210, height=240, title=k))
    if not plots:
        return pn.pane.Markdown("*no metric defined for this regime*")
    return pn.pane.HoloViews(hv.Layout(plots).cols(4), name="violins")


def summary_view(r: dict | None):
    if r is None:
        return pn.Spacer()
    c = r["cmp"]
    rows = [f"| metric | input median | generated median | median rel. error |", "|---|---|---|---|"]
    for k, e in c["err"].items():
        rows.append(f"| {k} | {c['median_in'].get(k, float('nan')):.3g} | {c['median_gen'].get(k, float('nan')):.3g} | {100 * e:.1f} % |")
    return pn.pane.Markdown(f"**regime** {c['regime']}, **in regime** {100 * c['in_regime']:.0f} %\n\n" + "\n".join(rows))


def create_conductances_app() -> pn.template.FastListTemplate:
    """One session's page."""
    load_extensions()
    state = ConductancesState()
    widgets = pn.Param(state, parameters=["model", "source", "g_s", "g_u", "n_input", "n", "duration",
                                          "transient", "seed", "network_dir"],
                       widgets={"g_s": pn.widgets.FloatInput, "g_u": pn.widgets.FloatInput,
                                "n_input": pn.widgets.IntInput, "n": pn.widgets.IntInput,
                                "duration": pn.widgets.FloatInput, "transient": pn.widgets.FloatInput,
                                "seed": pn.widgets.IntInput}, show_name=False)
    upload = pn.widgets.FileInput(accept=".csv,.npz", name="spike file")
    run = pn.widgets.Button(name="Run", button_type="primary")
    message = pn.pane.Alert("", alert_type="info", visible=False, name="message")

    def on_message(*_):
        message.object = state.message
        message.visible = bool(state.message)
        message.alert_type = "danger" if (state.result is None and state.message) else "success"

    state.param.watch(on_message, ["message", "result"])

    doc = pn.state.curdoc

    def on_page(callback) -> None:
        """``callback()`` on this session's event loop, as this session's (inline outside a server)."""
        if doc is not None and doc.session_context is not None:
            def in_session() -> None:
                with set_curdoc(doc):  # Panel renders the bound views into the current document
                    callback()

            doc.add_next_tick_callback(in_session)
        else:
            callback()

    def finish(result: dict | None, message: str) -> None:
        state.show(result, message)
        if result is None:
            notify("error", message)
        run.disabled, run.name = False, "Run"

    def on_run(_):
        run.disabled, run.name = True, "Waiting for a slot..."
        file_bytes, filename, owner = upload.value, upload.filename or "", current_user()

        def work() -> None:
            def running() -> None:
                run.name = "Running..."

            outcome = state.scheduled_outcome(file_bytes, filename, owner, on_admitted=lambda: on_page(running))
            on_page(partial(finish, *outcome))

        threading.Thread(target=work, name="conductances-run", daemon=True).start()

    run.on_click(on_run)
    help_md = pn.pane.Markdown(
        "Spike files: **CSV** `unit,time` (ms) or **NPZ** `times`, `units`. The network comes from "
        "`epi-dash dic train --model stg|da`.", width=300)
    main = pn.Column(
        message,
        pn.Row(pn.bind(density_view, state.param.result), pn.bind(conductance_view, state.param.result)),
        pn.bind(summary_view, state.param.result),
        pn.bind(violin_view, state.param.result),
        pn.bind(traces_view, state.param.result),
    )
    return app_template(title="Conductances: degenerate populations from spike times",
                                        sidebar=[widgets, upload, run, help_md], main=[main])
