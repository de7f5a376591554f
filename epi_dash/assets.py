"""Pages that need no internet: every font, icon, stylesheet and script comes from the epi-dash server.

Panel and Bokeh already serve their own JS and CSS from the server's ``/static`` routes. Two things
still went to the internet: the Fast design's Open Sans (``fonts.googleapis.com``) and Bokeh's Tabler
icons (``cdn.jsdelivr.net``), so an offline lab saw fallback fonts and blank icons on every button.
Both are vendored under ``epi_dash/static`` (licenses there) and served through Panel's
``/components/<module>/<class>/<attribute>/<path>`` route, which exists under ``epi-dash serve`` and
``panel serve`` alike and serves only the files a class lists: :class:`LocalAssets` lists them.
:func:`serve_assets_locally` points the pages at them; call it once per process before the pages are
built (``serve`` does) or at the top of an ``apps/*.py`` script.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).parent
STATIC = PACKAGE / "static"
#: the page at ``/`` listing the apps (``pn.serve(index=...)``); Panel's own asks Google Fonts and its CDN
INDEX_HTML = STATIC / "index.html"

#: name of the page resources added to ``pn.config`` (so calling twice adds nothing twice)
RESOURCE_NAME = "epi_dash_local_assets"


class LocalAssets:
    """The files under ``static/`` that Panel's component route may serve (paths relative to this module)."""

    __css__ = sorted(p.relative_to(PACKAGE).as_posix() for p in STATIC.rglob("*")
                     if p.is_file() and p not in (INDEX_HTML, STATIC / "README.md"))


def asset_url(path: str) -> str:
    """The page-relative URL of ``static/<path>`` on this server."""
    from panel.io.resources import component_resource_path

    return component_resource_path(LocalAssets, "__css__", f"static/{path}")


def panel_css_from_this_server(_context: object = None) -> None:
    """Give the session's document the local path of Panel's CSS, unless resources come from a CDN.

    Panel sets it when it renders a page's HTML. A page that connects after its session expired (a slow
    arrival at a busy server: Bokeh keeps an unconnected session 15 s) gets a session built anew, with
    no HTML rendered, and its stylesheets would then point at cdn.holoviz.org."""
    import panel as pn
    from panel.io.resources import LOCAL_DIST, use_cdn

    doc = pn.state.curdoc
    if doc is None or use_cdn():
        return
    rel_path = pn.state.rel_path
    doc._template_variables.setdefault("dist_url", f"{rel_path}/{LOCAL_DIST}" if rel_path else LOCAL_DIST)


def serve_assets_locally() -> None:
    """Load Open Sans and the Tabler icons from this server instead of Google Fonts and jsDelivr.

    Process-wide for the font (the Fast design's class-level resource) and for ``pn.config`` and
    :func:`panel_css_from_this_server` when called outside a session (else for the session); idempotent."""
    import panel as pn
    from panel.theme.fast import Fast

    if Fast._resources.get("font"):
        Fast._resources = {**Fast._resources, "font": {}}  # was //fonts.googleapis.com/css?family=Open+Sans
    pn.config.css_files = [*[c for c in pn.config.css_files if not str(c).endswith("fonts/open-sans.css")],
                           asset_url("fonts/open-sans.css")]
    pn.config.js_files = {**pn.config.js_files, RESOURCE_NAME: asset_url("offline.js")}
    if pn.state.curdoc is not None:  # an apps/*.py script, in its session
        panel_css_from_this_server()
    elif panel_css_from_this_server not in pn.state._on_session_created:
        pn.state.on_session_created(panel_css_from_this_server)
