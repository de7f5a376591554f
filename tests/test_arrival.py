"""A workshop's arrival (issue 28): what every session builds the same is shared, what it does not show
yet is built when first shown, so a new session costs the server a fraction of a second.
``benchmarks/load.py`` measures the whole arrival in real browsers; ``test_load_benchmark_quick`` runs it small."""

from __future__ import annotations

import time

import panel as pn
import pytest
from bokeh.document import Document
from bokeh.models import Plot
from panel.io.state import set_curdoc

from epi_dash import config
from epi_dash.config import discover_models
from epi_dash.workbench import Workbench, create_workbench, ensure_extensions
from tests.browser import requires_browser


@pytest.fixture(autouse=True)
def extensions():
    ensure_extensions()


def test_the_model_catalog_is_shared_until_a_file_changes(tmp_path, monkeypatch, user_model_spec):
    """The second session reuses the first one's catalog (no import of the user files again); an edited
    or new file is discovered by the next session; each session gets its own copy."""
    model_file = tmp_path / "osc.py"
    model_file.write_text(open(user_model_spec.split(":")[0]).read())
    loads = []
    real = config.load_model_class
    monkeypatch.setattr(config, "load_model_class", lambda spec: loads.append(spec) or real(spec))
    first = discover_models([tmp_path])
    assert len(loads) == 1 and any(s.endswith(":DampedOscillator") for s in first.specs.values())
    second = discover_models([tmp_path])
    assert len(loads) == 1 and second.specs == first.specs and second.specs is not first.specs
    (tmp_path / "broken.py").write_text("import not_a_module_xyz\nclass Thing: pass\n")
    third = discover_models([tmp_path])
    assert len(loads) == 3 and any("broken.py" in p for p in third.problems) and not first.problems


def _page(app) -> Document:
    """The document a server session gets (built and attached as ``panel serve`` does)."""
    doc = Document()
    with set_curdoc(doc):
        app().server_doc(doc)
    return doc


def test_a_new_session_leaves_the_hidden_views_for_later(tmp_path, monkeypatch):
    """The arriving page holds the form and the status line, not the empty training curves, the pairplot
    or the advanced settings; each appears when its place is first shown."""
    monkeypatch.setenv("EPI_DASH_RUNS_DIR", str(tmp_path))
    doc = _page(create_workbench)
    assert len(doc.models) < 120  # 512 when every view was built at once
    assert not [m for m in doc.models if isinstance(m, Plot)]
    wb = Workbench(runs_dir=tmp_path)
    assert wb.samples._pairplot is None and wb.form.advanced.objects == []
    root = wb.tabs.get_root(Document())
    wb.tabs.active = 1  # Samples & modes
    assert wb.samples._pairplot is not None and wb.samples.pairplot_area.objects
    assert len(list(root.select({"type": Plot}))) >= 10  # the pairplot's panels are in the page now
    wb.form.advanced.collapsed = False
    labels = {w.name for w in wb.form.advanced.select(pn.widgets.Widget)}
    assert {"Iters per epoch", "Batch size", "Num units"} <= labels
    assert wb.training_tab.objects != [wb.training.training_area]
    wb._show_curves()  # what Start and opening a run do
    assert wb.training_tab.objects == [wb.training.training_area]


def test_a_session_costs_the_server_little_cpu(tmp_path, monkeypatch):
    """Building and attaching one workbench page: ~0.5 CPU s on a 2-core machine (2.7 s before; the
    floor of an empty Panel template is ~0.07 s). Process time, so the machine's other load counts little;
    the bound leaves twice the room."""
    monkeypatch.setenv("EPI_DASH_RUNS_DIR", str(tmp_path))
    _page(create_workbench)
    costs = []
    for _ in range(3):
        start = time.process_time()
        _page(create_workbench)
        costs.append(time.process_time() - start)
    assert min(costs) < 1.2, costs


@requires_browser
@pytest.mark.browser
def test_load_benchmark_quick(tmp_path):
    """benchmarks/load.py, smallest: two pages arrive while nothing trains; both are ready, their widget
    round trips come back, no page, console or server error."""
    from benchmarks import load

    (row,) = load.main(["--pages", "2", "--trainings", "0", "--num-procs", "1", "--round-trips", "1",
                        "--timeout", "60", "--out", str(tmp_path / "load.json")])
    assert row["errors"] == 0, row["error_messages"]
    assert all(r is not None and 0 < r < 60 for r in row["ready_s"]) and len(row["round_trip_s"]) == 4
    assert row["server_rss_mb"] > 50 and row["arrival_cpu_s"] > 0 and row["browser_cpu_s"] > 0
    assert (tmp_path / "load.json").is_file()
