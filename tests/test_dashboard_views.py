"""View functions return HoloViews objects carrying the data; live streams batch updates."""

from __future__ import annotations

import holoviews as hv
import numpy as np
import pandas as pd
import pytest
import torch

from core.model import load_model
from epi_dash.explorer import DegeneracyExplorer, direction_options
from epi_dash.live import LiveRun, run_info
from epi_dash.pairplot import DISPLAY_MARGIN, MAX_POINTS, PairplotFigure, panel_size, share_ranges
from epi_dash.runner import RunnerEvent
from epi_dash import views as V

hv.extension("bokeh", logo=False)


def _info(d: int = 4, m: int = 2) -> V.RunInfo:
    return V.RunInfo([f"p{i}" for i in range(d)], [f"s{k}" for k in range(m)], [0.0] * m, [1.0] * m,
                     np.full(d, -5.0), np.full(d, 5.0), ["Hz"] * d, ["mV"] * m)


def _records(n: int, m: int, start: int = 1) -> list[dict]:
    rng = np.random.default_rng(0)
    return [dict(iteration=i, epoch=1, entropy=float(-i), c=1.0, f_mean=rng.normal(size=m).tolist(),
                 f_std=[1.0] * m, R=rng.normal(size=2 * m).tolist(), eta=[0.0] * (2 * m), wall_time=0.1 * i)
            for i in range(start, start + n)]


def _analysis(d: int, rng=np.random.default_rng(1)) -> dict:
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    vals = np.sort(-np.abs(rng.normal(size=d)) * np.logspace(2, -2, d))
    kinds = ["sensitive" if v < 0.1 * vals[0] else "degenerate" for v in vals]
    return {"mode": rng.uniform(-1, 1, d), "eigenvalues": vals, "eigenvectors": q, "kinds": kinds,
            "log_q_mode": 0.0, "predictive": rng.normal(size=(300, 2))}


def test_progress_frame_flattens_records_and_matches_a_saved_trace():
    frame = V.progress_frame(_records(5, 3), 3)
    assert list(frame.columns) == V.progress_columns(3) and len(frame) == 5
    assert frame["iteration"].tolist() == [1, 2, 3, 4, 5] and frame["entropy"].iloc[-1] == -5
    stats, cons = ["a", "b", "c"], [f"E[{s}]" for s in "abc"] + [f"Var[{s}]" for s in "abc"]
    trace = pd.DataFrame({"iteration": [1.0], "epoch": [1.0], "entropy": [2.0], "cost": [0.0], "c": [3.0],
                          "wall_time": [0.1], **{f"R:{c}": [float(i)] for i, c in enumerate(cons)},
                          **{f"mean:{s}": [10.0 + i] for i, s in enumerate(stats)},
                          **{f"std:{s}": [20.0 + i] for i, s in enumerate(stats)},
                          **{f"eta:{c}": [30.0 + i] for i, c in enumerate(cons)}})
    mapped = V.progress_from_trace(trace, stats, cons)
    assert mapped[["mean_2", "sd_1", "R_5", "eta_0", "c"]].iloc[0].tolist() == [12.0, 21.0, 5.0, 30.0, 3.0]


def test_training_views_render_with_streamed_data():
    info = _info()
    live = LiveRun(info)
    live.apply([RunnerEvent("iteration", r) for r in _records(30, 2)])
    live.apply([RunnerEvent("epoch", dict(epoch=1, iteration=30, p_values=[0.5] * 4, converged=False, c=1.0,
                                          eta=[0.0] * 4, entropy=1.0, wall_time=1.0))])
    entropy = V.entropy_view(live.progress, live.epochs)
    rendered = entropy[()]
    curve = rendered.Curve.I
    assert len(curve) == 30 and curve.dimension_values("entropy")[-1] == -30
    assert rendered.VLines.I.dimension_values("iteration").tolist() == [30.0]
    stat = V.statistic_view(live.progress, info, 1)[()]
    assert len(stat.Curve.I) == 30 and stat.HLine.I.data == 0.0
    assert len(V.constraint_view(live.progress, info)[()].Curve) == 4
    c, eta = V.penalty_view(live.progress, info)
    assert len(c[()]) == 30 and len(eta[()].Curve) == 4
    for view in (entropy, V.statistic_view(live.progress, info, 0)):
        hv.render(view)  # the bokeh plot builds without error
    # R and eta share one HTML legend below them (a legend inside a ~200 px plot hid its curves)
    for view in (V.constraint_view(live.progress, info), eta):
        assert not any(legend.items for legend in hv.render(view).legend)
    legend = V.constraint_legend_html(info.constraint_names + ["<b>"])
    assert all(f"background:{V.PALETTE[k]}\"></span> {name}" in legend
               for k, name in enumerate(info.constraint_names))
    assert "&lt;b&gt;" in legend  # names are escaped


def test_statistic_axis_spans_the_target_band_before_and_after_data():
    info = V.RunInfo(["p0", "p1"], ["s0"], [6.28], [0.63], np.full(2, -5.0), np.full(2, 5.0), ["Hz"] * 2, ["rad/s"])
    live = LiveRun(info)
    empty = hv.render(V.statistic_view(live.progress, info, 0))
    assert (empty.y_range.start, empty.y_range.end) == pytest.approx((6.28 - 0.63, 6.28 + 0.63))
    live.apply([RunnerEvent("iteration", r) for r in _records(10, 1)])  # batch means near 0, far below
    y = hv.render(V.statistic_view(live.progress, info, 0)).y_range
    assert y.start < 0 and y.end >= 6.28 + 0.63


def test_penalty_axis_is_a_positive_log_range_around_c_even_while_c_is_constant():
    info = _info()
    live = LiveRun(info)
    empty = hv.render(V.penalty_view(live.progress, info)[0]).y_range
    assert 0 < empty.start < empty.end
    live.apply([RunnerEvent("iteration", r) for r in _records(30, 2)])  # c = 1 throughout epoch 1
    y = hv.render(V.penalty_view(live.progress, info)[0]).y_range
    assert (y.start, y.end) == pytest.approx((0.5, 2.0))  # one octave either side; was (0.01, 2.2)
    later = [dict(r, epoch=2, c=16.0) for r in _records(10, 2, start=31)]
    live.apply([RunnerEvent("iteration", r) for r in later])
    y = hv.render(V.penalty_view(live.progress, info)[0]).y_range
    assert y.start == pytest.approx(0.5) and y.end == pytest.approx(32.0)


def test_live_run_sends_one_buffer_batch_and_keeps_the_newest_snapshot():
    info = _info(d=3)
    live = LiveRun(info)
    sends = []
    live.progress.add_subscriber(lambda **kw: sends.append(len(kw["data"])))
    z1, z2 = np.zeros((10, 3)), np.ones((20, 3))
    notes = live.apply([RunnerEvent("started", dict(run_dir="/r", iterations_total=100, num_epochs=2,
                                                    iteration=0, resumed=False)),
                        *[RunnerEvent("iteration", r) for r in _records(7, 2)],
                        RunnerEvent("snapshot", dict(iteration=5, z=z1, log_q=np.zeros(10))),
                        RunnerEvent("snapshot", dict(iteration=7, z=z2, log_q=np.zeros(20)))])
    assert sends == [7], "all rows of a batch go in one Buffer.send"
    assert np.array_equal(live.snapshots.data["z"], z2) and live.state.iteration == 7 and live.state.status == "running"
    assert notes and notes[0][0] == "info"
    notes = live.apply([RunnerEvent("finished", dict(state="failed", converged=False, epochs=0, iterations=7,
                                                     wall_time_s=1.0, entropy=0.0, run_dir="/r",
                                                     error="statistic 's' is NaN"))])
    assert live.state.status == "failed" and notes == [("error", "Training failed: statistic 's' is NaN")]


@pytest.mark.parametrize("d", [2, 4, 8])
def test_pairplot_has_lower_triangle_panels_with_samples_mode_and_arrows(d):
    info = _info(d)
    rng = np.random.default_rng(0)
    analysis = _analysis(d)
    taps = []
    figure = PairplotFigure(info, list(range(d)), on_tap=taps.append)
    z = rng.uniform(-1, 1, (3000, d))
    z[:, 0] *= 5  # p0 fills its box [-5, 5]: its axis reaches the bounds
    figure.update({"z": z, "log_q": rng.normal(size=3000), "analysis": analysis})
    assert len(figure.layout.children) == d * (d + 1) // 2  # lower triangle with the diagonal
    assert len(figure.source.data["z0"]) == MAX_POINTS  # capped for the browser
    assert figure.mode_source.data[f"z{d - 1}"] == [pytest.approx(analysis["mode"][d - 1])]
    assert len(figure.arrow_sources[(1, 0)].data["x0"]) >= 2
    assert sum(figure.hist_sources[0].data["top"]) > 0
    shown, z0 = figure.ranges[0], figure.source.data["z0"]
    # the samples' spread inside the bounds, plus a margin that keeps a tick at a bound off the panel
    # border, where its label ran into the next panel's
    margin = DISPLAY_MARGIN * (shown.end - shown.start) / (1 + 2 * DISPLAY_MARGIN)
    assert shown.start <= z0.min() - 0.9 * margin and shown.end >= z0.max() + 0.9 * margin
    assert shown.start >= -5.0 - margin and shown.end <= 5.0 + margin
    bottom_left = next(f for f, r, c in figure.layout.children if (r, c) == (d - 1, 0))
    assert bottom_left.xaxis[0].axis_label == "p0 (Hz)" and bottom_left.yaxis[0].axis_label == f"p{d - 1} (Hz)"
    for fig in (bottom_left, *(f for f, r, c in figure.layout.children if r == d - 1)):
        # room for labels like "-0.50" (~40 px) between ticks, so they never overlap (at D = 8 they did)
        assert 40 * fig.xaxis[0].ticker.desired_num_ticks <= panel_size(d)
    figure.source.selected.indices = [7]  # what a click in the browser sends
    assert taps[-1].shape == (d,) and taps[-1][0] == figure.source.data["z0"][7]


def test_compared_pairplots_share_one_range_per_parameter():
    rng = np.random.default_rng(1)
    narrow, broad = PairplotFigure(_info(3), [0, 1, 2]), PairplotFigure(_info(3), [0, 1, 2])
    narrow.update({"z": rng.normal(0, 0.2, (500, 3)), "log_q": np.zeros(500), "analysis": None})
    broad.update({"z": rng.normal(1, 1.0, (500, 3)), "log_q": np.zeros(500), "analysis": None})
    assert narrow.ranges[0].end < broad.ranges[0].end  # each run's own limits, before
    share_ranges([narrow, broad])
    for i in range(3):
        assert (narrow.ranges[i].start, narrow.ranges[i].end) == (broad.ranges[i].start, broad.ranges[i].end)
        assert narrow.ranges[i].start <= broad.source.data[f"z{i}"].min()
        assert narrow.ranges[i].end >= broad.source.data[f"z{i}"].max()


def test_hessian_arrows_have_length_inverse_sqrt_eigenvalue():
    d = 3
    analysis = {"mode": np.zeros(d), "eigenvalues": np.array([-100.0, -4.0, -0.01]), "eigenvectors": np.eye(d),
                "kinds": ["sensitive", "sensitive", "degenerate"]}
    segs = V.direction_segments(analysis, i=1, j=0)
    # the most sensitive (e0, along x) is drawn with half-length 1/sqrt(100) = 0.1
    first = segs.iloc[0]
    assert first["kind"] == "sensitive" and first["x1"] - first["x0"] == pytest.approx(0.2)
    degenerate = segs[segs.kind == "degenerate"].iloc[0]
    assert degenerate["x1"] - degenerate["x0"] == pytest.approx(0.0)  # e2 is orthogonal to this panel


def test_large_models_default_to_the_parameters_loading_on_sensitive_directions():
    d = 400
    vecs = np.eye(d)
    vecs[:, [0, 1]] = vecs[:, [17, 233]]  # the two sensitive directions point along z_17 and z_233
    vecs[:, [17, 233]] = np.eye(d)[:, [0, 1]]
    analysis = {"eigenvectors": vecs, "kinds": ["sensitive", "sensitive"] + ["degenerate"] * (d - 2)}
    dims = V.sensitive_dimensions(analysis, d, k=6)
    assert len(dims) == 6 and {17, 233} <= set(dims)
    assert V.sensitive_dimensions(None, 3) == [0, 1, 2]
    rng = np.random.default_rng(0)
    figure = PairplotFigure(_info(d), dims)
    figure.update({"z": rng.normal(size=(100, d)), "log_q": np.zeros(100), "analysis": None})
    assert len(figure.arrow_sources) == 15 and set(figure.ranges) == set(dims)


def test_predictive_and_statistic_space_views():
    info = _info(m=3)
    f = np.random.default_rng(0).normal(size=(400, 3))
    pipe = hv.streams.Pipe({"predictive": f})
    panels = V.predictive_view(pipe, info)
    assert len(panels) == 3
    hist = panels[2][()].Histogram.I
    assert hist.dimension_values(1).sum() > 0
    target = next(el for el in panels[2][()] if isinstance(el, hv.Curve))
    peak = target.dimension_values(0)[np.argmax(target.dimension_values(1))]
    assert peak == pytest.approx(info.means[2], abs=0.1)
    scatter = V.statistic_scatter_view(pipe, info)[()]
    assert len(scatter.Points.I) == 400
    empty = V.predictive_view(hv.streams.Pipe({"predictive": None}), info)[0][()]
    assert empty.Histogram.I.dimension_values(1).sum() == 0


def test_traces_and_explorer_move_along_a_direction():
    model = load_model("lds")
    analysis = _analysis(4)
    analysis["mode"] = np.array([-1.0, 6.0, -6.0, -1.0])  # near a 1 Hz rotation
    ex = DegeneracyExplorer(model, analysis=analysis)
    assert np.allclose(ex.probe(), analysis["mode"])
    ex.param.update(direction=0, step=1.0)
    moved = ex.probe()
    lam = abs(analysis["eigenvalues"][0])
    assert np.linalg.norm(moved - analysis["mode"]) == pytest.approx(1 / np.sqrt(lam), rel=1e-6)
    traj = ex.trajectories(moved)
    assert traj.x.shape == (1, model.num_steps, 2)
    stats = ex.statistics(moved)
    expected = model.emergent_statistics(torch.tensor(moved, dtype=torch.float32)[None])[0].numpy()
    assert np.allclose(stats, expected, atol=1e-5)
    ex.clicked = np.zeros(4)
    assert np.allclose(ex.probe(), 0.0)
    labels = list(direction_options(analysis))
    assert labels[0].startswith("v1 ") and "λ" in labels[0]
    pipe = hv.streams.Pipe({"mode": ex.trajectories(ex.mode()), "probe": traj})
    overlay = V.traces_view(pipe, traj.names)[()]
    assert len(overlay.Mode) == 2 and len(overlay.Probe) == 2  # 2 populations x (mode, probe)
    assert len(overlay.get(0)) == model.num_steps
    legend = hv.render(overlay).legend[0].items  # one entry per population, drawing mode and probe
    assert [item.label.value for item in legend] == traj.names and all(len(i.renderers) == 2 for i in legend)
    empty = V.traces_view(hv.streams.Pipe({"mode": None, "probe": None}), traj.names)[()]
    assert len(empty) == 4 and len(empty.get(0)) == 0  # same legend before any mode exists


def test_probes_of_a_stochastic_model_differ_by_z_alone():
    model = load_model("rnn", N=4, g=0.3)  # factor noise g * chi in every simulation
    analysis = _analysis(16)
    analysis["mode"] = np.full(16, 0.2)
    ex = DegeneracyExplorer(model, analysis=analysis)
    mode = ex.trajectories(ex.mode())
    ex.param.update(direction=2, step=0.0)
    at_mode = ex.trajectories(ex.probe())
    np.testing.assert_array_equal(at_mode.x, mode.x)  # the probe at step 0 retraces the mode exactly
    np.testing.assert_array_equal(ex.statistics(ex.probe()), ex.statistics(ex.mode()))
    ex.step = 0.5
    assert not np.allclose(ex.trajectories(ex.probe()).x, mode.x)  # a step still moves the traces
    with torch.no_grad():  # and outside the explorer each simulation draws new noise
        z = torch.as_tensor(ex.mode(), dtype=torch.float32)[None]
        assert not torch.equal(model.simulate(z), model.simulate(z))


def test_run_info_takes_units_from_the_model():
    info = run_info(load_model("lds"), [0.0, 1.0], [0.1, 0.2])
    assert info.parameter_label(0) == "a1 (1/s)" and info.statistic_label(1) == "imag_lambda1 (rad/s)"
    assert info.constraint_names[2] == "Var[real_lambda1]"
