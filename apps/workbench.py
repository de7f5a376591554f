"""EPI workbench: ``panel serve apps/workbench.py`` (runs dir: $EPI_DASH_RUNS_DIR, models: $EPI_DASH_MODEL_PATH)."""

from epi_dash.serve import prepare_pages
from epi_dash.workbench import create_workbench

prepare_pages()  # fonts and icons from this server; a closed tab is no traceback
create_workbench().servable(title="EPI workbench")
