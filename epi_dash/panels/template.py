"""The page every app is laid out in."""

from __future__ import annotations

from typing import Any

import panel as pn


def app_template(**params: Any) -> pn.template.FastListTemplate:
    """Panel's ``FastListTemplate(**params)`` without the header's busy spinner.

    Panel drives that spinner from one server-wide busy flag: on a shared server it spins for anybody's
    work, and every flip (each browser event, each timer) updates the spinner of every open page, O(N^2)
    updates for N pages: a third of the server's time while 30 pages arrived together."""
    return pn.template.FastListTemplate(busy_indicator=None, **params)
