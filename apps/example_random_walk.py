"""The smallest app built from epi_dash.panels: ``panel serve apps/example_random_walk.py``."""

from epi_dash.assets import serve_assets_locally
from epi_dash.closed_pages import quiet_closed_pages
from epi_dash.examples.random_walk import create_random_walk_app

serve_assets_locally()  # fonts and icons from this server, not the internet
quiet_closed_pages()  # a tab closed mid-write is no traceback
create_random_walk_app().servable(title="Random walk (example)")
