"""Who is using this session: the signed-in user (Panel's ``pn.state.user``) and whether they are an admin.

Without sign-in every session is the one local user ``LOCAL_USER``. Admins are listed in the environment
variable ``EPI_DASH_ADMINS`` (comma-separated user names; ``epi-dash serve --admins`` sets it).
"""

from __future__ import annotations

import os

ADMINS_ENV = "EPI_DASH_ADMINS"
#: the owner recorded when nobody is signed in (a laptop, a loopback server)
LOCAL_USER = "local"


def current_user() -> str:
    """The signed-in user of the current Panel session, or ``LOCAL_USER`` without sign-in."""
    try:
        import panel as pn

        user = pn.state.user
    except Exception:  # outside a session (CLI, tests)
        user = None
    return str(user) if user else LOCAL_USER


def admins(environ: dict | None = None) -> frozenset[str]:
    """The admin user names from ``EPI_DASH_ADMINS``."""
    raw = (os.environ if environ is None else environ).get(ADMINS_ENV, "")
    return frozenset(name.strip() for name in raw.split(",") if name.strip())


def is_admin(user: str, environ: dict | None = None) -> bool:
    """An admin sees and stops every run. Without sign-in the local user is everyone's admin."""
    return user == LOCAL_USER or user in admins(environ)


def may_control(user: str, owner: str | None, environ: dict | None = None) -> bool:
    """Whether ``user`` may see, stop, resume or cancel a run owned by ``owner`` (None: a run from before
    owners were recorded, which only admins control)."""
    return is_admin(user, environ) or (owner is not None and owner == user)
