"""Guided EPI tutorial (2D LDS, then STG): ``panel serve apps/tutorial.py``."""

from epi_dash.serve import prepare_pages
from epi_dash.tutorial import create_tutorial

prepare_pages()  # fonts and icons from this server; a closed tab is no traceback
create_tutorial().servable(title="EPI tutorial")
