"""Degenerate conductance-based populations from spike times: ``panel serve apps/conductances.py`` (runs dir: $EPI_DASH_RUNS_DIR)."""

from epi_dash.serve import prepare_pages
from epi_dash.conductances_app import create_conductances_app

prepare_pages()  # fonts and icons from this server; a closed tab is no traceback
create_conductances_app().servable(title="Conductances")
