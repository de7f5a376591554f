"""Amortized inference of a spiking network: ``panel serve apps/amortized.py`` (runs dir: $EPI_DASH_RUNS_DIR)."""

from epi_dash.assets import serve_assets_locally
from epi_dash.closed_pages import quiet_closed_pages
from epi_dash.amortized_app import create_amortized_app

serve_assets_locally()  # fonts and icons from this server, not the internet
quiet_closed_pages()  # a tab closed mid-write is no traceback
create_amortized_app().servable(title="Amortized inference")
