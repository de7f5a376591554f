"""Degenerate conductance-based populations from spike times: ``panel serve apps/conductances.py`` (runs dir: $EPI_DASH_RUNS_DIR)."""

from epi_dash.assets import serve_assets_locally
from epi_dash.closed_pages import quiet_closed_pages
from epi_dash.conductances_app import create_conductances_app

serve_assets_locally()  # fonts and icons from this server, not the internet
quiet_closed_pages()  # a tab closed mid-write is no traceback
create_conductances_app().servable(title="Conductances")
