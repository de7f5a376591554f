"""Amortized inference of a spiking network: ``panel serve apps/amortized.py`` (runs dir: $EPI_DASH_RUNS_DIR)."""

from epi_dash.serve import prepare_pages
from epi_dash.amortized_app import create_amortized_app

prepare_pages()  # fonts and icons from this server; a closed tab is no traceback
create_amortized_app().servable(title="Amortized inference")
