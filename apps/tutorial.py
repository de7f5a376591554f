"""Guided EPI tutorial (2D LDS, then STG): ``panel serve apps/tutorial.py``."""

from epi_dash.assets import serve_assets_locally
from epi_dash.closed_pages import quiet_closed_pages
from epi_dash.tutorial import create_tutorial

serve_assets_locally()  # fonts and icons from this server, not the internet
quiet_closed_pages()  # a tab closed mid-write is no traceback
create_tutorial().servable(title="EPI tutorial")
