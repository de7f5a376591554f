"""Connectivity app: ``panel serve apps/connectivity.py`` (runs dir: $EPI_DASH_RUNS_DIR)."""

from epi_dash.serve import prepare_pages
from epi_dash.connectivity_app import create_connectivity_app

prepare_pages()  # fonts and icons from this server; a closed tab is no traceback
create_connectivity_app().servable(title="Connectivity")
