"""Guided EPI tutorial (2D LDS, then STG): ``panel serve apps/tutorial.py``."""

from epi_dash.tutorial import create_tutorial

create_tutorial().servable(title="EPI tutorial")
