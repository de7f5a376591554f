"""Connectivity app: ``panel serve apps/connectivity.py`` (runs dir: $EPI_DASH_RUNS_DIR)."""

from epi_dash.connectivity_app import create_connectivity_app

create_connectivity_app().servable(title="Connectivity")
