"""The Sweep view: launch a sweep job from a form, follow it, read the posteriors across levels."""

from __future__ import annotations

import holoviews as hv
import numpy as np

from epi_dash.sweep_view import SweepView, marginals_view, parse_settings

hv.extension("bokeh", logo=False)

TINY = "num_epochs=1, iters_per_epoch=20, batch_size=50, num_test_batches=10, init_iters=20, num_units=8, health=off"


def test_bad_sweep_set_ups_are_named_in_the_status(tmp_path):
    view = SweepView(tmp_path)
    for vary, settings, text in (("s_E.mean=5,x", "", "**vary[s_E.mean]**: 'x' is not a number"),
                                 ("s_E.std=1,-1", "", "**vary[s_E.std=-1]**: std[s_E]: standard deviation must be > 0"),
                                 ("s_E.mean=5", "batch_size=1", "settings[batch_size]"),
                                 ("s_E.mean=5", "lr", "**settings**: expected NAME=VALUE")):
        view.setup.param.update(model="v1", vary=vary, settings=settings)
        view.launch()
        assert text in view.status.object and not view.runner.running
    assert not any(tmp_path.iterdir())  # nothing was created for a refused set-up


def test_a_launched_sweep_runs_in_the_background_and_fills_the_table(tmp_path):
    view = SweepView(tmp_path)
    view.setup.param.update(model="lds", vary="real_lambda1.mean=0,0.5", seeds=1, settings=TINY)
    view.launch()
    assert view.runner.running and view.stop_button.disabled is False
    view.runner.join(120)
    view.drain()
    assert "**Finished**" in view.status.object
    frame = view.cells.value
    assert list(frame["level"]) == ["real_lambda1.mean=0", "real_lambda1.mean=0.5"]
    assert list(frame["state"]) == ["finished", "finished"]
    assert view.progress.value == 2 and view.launch_button.disabled is False
    assert any(k.startswith("sweep-lds") for k in view.open_select.options)


def test_parse_settings_and_marginals():
    assert parse_settings("lr=0.001, num_units=8") == {"lr": 0.001, "num_units": 8}
    rng = np.random.default_rng(0)
    layout = marginals_view({"a=1": rng.normal(size=(100, 2)), "a=2": rng.normal(size=(100, 2))}, ["x", "y"])
    assert len(layout) == 2 and len(layout[0]) == 2  # one panel per parameter, one histogram per level
