"""Degenerate conductance-based populations from spike times: ``panel serve apps/conductances.py`` (runs dir: $EPI_DASH_RUNS_DIR)."""

from epi_dash.conductances_app import create_conductances_app

create_conductances_app().servable(title="Conductances")
