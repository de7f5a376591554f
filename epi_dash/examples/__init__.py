"""Small, complete apps built from ``epi_dash.panels`` (templates for a new system's app)."""
