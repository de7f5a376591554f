"""Reusable panels for every app (EPI workbench, tutorial, amortized inference, connectivity, conductances).
Each module holds one idea and knows nothing of EPI:

``setup``    a ``param.Parameterized`` object -> form, with validation messages that name the field
``pump``     moves a background job's queued events into a session's page, throttled
``job``      start/stop/resume a ``core.jobs`` job: status line, progress bar, live series plot, step table
``results``  result views as functions of state: fitted tables, pairplot with a tap callback, trace plots
``library``  the one run library: every job below a runs directory with its kind and state

See the README section "Writing an app" and ``epi_dash/examples/random_walk.py``.
"""

import holoviews as hv
import panel as pn

from .job import JobControls, JobPanel, format_duration, notify, series_plot
from .library import JobLibrary, job_kind, jobs_table
from .pump import EventPump, session_timer
from .template import app_template
from .results import fitted_table, key_value_table, pairplot, pairplot_grid, set_table, table_height, trace_plot
from .setup import SetupPanel, ValidationMessages, check, input_widgets, param_form



def load_extensions() -> None:
    """The Panel and HoloViews extensions the panels use (Bokeh plots, Tabulator, notifications); call
    it once per session before building an app (idempotent)."""
    if hv.Store.current_backend != "bokeh" or "bokeh" not in hv.Store.renderers:
        hv.extension("bokeh", logo=False)  # process-wide, and a tenth of a session's build when repeated
    pn.extension("tabulator", notifications=True)


__all__ = ["EventPump", "load_extensions", "JobControls", "JobLibrary", "JobPanel", "SetupPanel", "ValidationMessages", "check",
           "fitted_table", "format_duration", "input_widgets", "job_kind", "jobs_table", "key_value_table",
           "notify", "pairplot", "pairplot_grid", "param_form", "series_plot", "set_table", "table_height",
           "trace_plot"]
