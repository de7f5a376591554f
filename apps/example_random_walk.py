"""The smallest app built from epi_dash.panels: ``panel serve apps/example_random_walk.py``."""

from epi_dash.examples.random_walk import create_random_walk_app
from epi_dash.serve import prepare_pages

prepare_pages()  # fonts and icons from this server; a closed tab is no traceback
create_random_walk_app().servable(title="Random walk (example)")
