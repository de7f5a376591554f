"""EPI workbench: ``panel serve apps/workbench.py`` (runs dir: $EPI_DASH_RUNS_DIR, models: $EPI_DASH_MODEL_PATH)."""

from epi_dash.workbench import create_workbench

create_workbench().servable(title="EPI workbench")
