"""Who is using this session: the signed-in user (Panel's ``pn.state.user``) and whether they are an admin.

Without sign-in every session is the one local user ``LOCAL_USER``. Admins are listed in the environment
variable ``EPI_DASH_ADMINS`` (comma-separated user names; ``epi-dash serve --admins`` sets it).
"""

from __future__ import annotations

import os
from pathlib import Path

ADMINS_ENV = "EPI_DASH_ADMINS"
#: set (by ``epi-dash serve --basic-auth/--oauth-provider``) when sessions sign in: then ``LOCAL_USER`` is
#: nobody's admin (a session without a user sees only runs owned by "local")
SIGN_IN_ENV = "EPI_DASH_SIGN_IN"
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
    env = os.environ if environ is None else environ
    return user in admins(env) or (user == LOCAL_USER and not env.get(SIGN_IN_ENV))


def may_control(user: str, owner: str | None, environ: dict | None = None) -> bool:
    """Whether ``user`` may see, stop, resume or cancel a run owned by ``owner`` (None: a run from before
    owners were recorded, which only admins control)."""
    return is_admin(user, environ) or (owner is not None and owner == user)


def require_control(run_dir: str | Path, user: str | None = None, environ: dict | None = None) -> None:
    """Refuse (InputError naming ``run``) to open, stop, resume or delete a run that ``user`` (default: this
    session's) may not control: another user's, or one with no recorded owner (admins only)."""
    from core.errors import InputError
    from core.runs import read_run_json, run_owner

    user = user or current_user()
    try:
        owner = run_owner(read_run_json(run_dir))
    except InputError:  # damaged or gone: only an admin may act on it
        owner = None
    if may_control(user, owner, environ):
        return
    name = Path(run_dir).name
    if owner is None:
        raise InputError("run", f"{name} has no recorded owner (it predates sign-in): only an admin may use it")
    raise InputError("run", f"{name} belongs to another user")
