"""EPI workbench: ``panel serve apps/workbench.py`` (runs dir: $EPI_DASH_RUNS_DIR, models: $EPI_DASH_MODEL_PATH)."""

from epi_dash.assets import serve_assets_locally
from epi_dash.closed_pages import quiet_closed_pages
from epi_dash.workbench import create_workbench

serve_assets_locally()  # fonts and icons from this server, not the internet
quiet_closed_pages()  # a tab closed mid-write is no traceback
create_workbench().servable(title="EPI workbench")
