"""Bad-input catalogue, sign-in (issue 28): a session that tries to stop another user's run, and a wrong
password. Each case asserts the exact message or HTTP answer a user gets."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Iterator

from core.jobs import STOP_FILE
from epi_dash.library import RunLibrary
from epi_dash.users import ADMINS_ENV, SIGN_IN_ENV

from .browser import ARTIFACTS, free_port, served

CREDENTIALS = {"alice": "pw1", "bob": "pw2"}


def write_run(runs: Path, name: str, owner: str, running: bool = False) -> Path:
    """A minimal run directory owned by ``owner`` (running: its process is this live one)."""
    path = runs / name
    path.mkdir(parents=True)
    meta = {"kind": "epi", "model": "lds", "owner": owner, "state": "running" if running else "finished"}
    if running:
        meta["process"] = {"host": socket.gethostname(), "pid": os.getpid()}
    (path / "run.json").write_text(json.dumps(meta))
    return path


@contextlib.contextmanager
def epi_dash_serve(tmp_path: Path, *flags: str, timeout: float = 60) -> Iterator[str]:
    """``epi-dash serve --basic-auth <alice/bob credentials> <flags>`` on a free port with its runs in
    ``tmp_path/runs``; yields the base URL (the server's log: ``test-artifacts/epi-dash-serve-<port>.log``)."""
    creds = tmp_path / "credentials.json"
    creds.write_text(json.dumps(CREDENTIALS))
    port = free_port()
    ARTIFACTS.mkdir(exist_ok=True)
    cmd = [sys.executable, "-m", "epi_dash.cli", "serve", "--port", str(port), "--runs-dir", str(tmp_path / "runs"),
           "--basic-auth", str(creds), *flags]
    env = {k: v for k, v in os.environ.items() if k not in (ADMINS_ENV, SIGN_IN_ENV)}
    with open(ARTIFACTS / f"epi-dash-serve-{port}.log", "w") as log:
        with served(cmd, "/login", port, log, env, timeout):  # the login page: no session is built
            yield f"http://127.0.0.1:{port}"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def request(url: str, data: dict | None = None):
    """(status, headers, body) of one request, redirects not followed."""
    opener = urllib.request.build_opener(NoRedirect)
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    try:
        with opener.open(url, data=body, timeout=30) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read().decode()


def test_a_session_that_tries_to_stop_another_users_run_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv(SIGN_IN_ENV, "1")
    monkeypatch.setenv(ADMINS_ENV, "root")
    runs = tmp_path / "runs"
    bobs = write_run(runs, "bob-run", "bob", running=True)
    write_run(runs, "alice-run", "alice")
    alice = RunLibrary(runs, on_open=print, user="alice")
    assert alice.table.value["run"].tolist() == ["alice-run"]  # bob's run is not even listed
    alice.table.value = RunLibrary(runs, on_open=print, user="root").table.value  # a forged selection
    alice.table.selection = [alice.table.value["run"].tolist().index("bob-run")]
    alice.stop_button.clicks += 1
    assert alice.message.object == "⚠️ run: bob-run belongs to another user"
    assert not (bobs / STOP_FILE).exists()
    for user in ("bob", "root"):  # its owner, an admin
        lib = RunLibrary(runs, on_open=print, user=user)
        lib.table.selection = [lib.table.value["run"].tolist().index("bob-run")]
        lib.stop_button.clicks += 1
        assert lib.message.object.startswith("Asked **bob-run** to stop")
    assert (bobs / STOP_FILE).exists()


def test_a_wrong_password_is_sent_back_to_the_login_form_with_its_error(tmp_path):
    with epi_dash_serve(tmp_path) as base:
        status, headers, _ = request(f"{base}/workbench")
        assert status == 302 and headers["Location"] == "./login?next=%2Fworkbench"  # no page without signing in
        status, headers, _ = request(f"{base}/login", {"username": "alice", "password": "wrong"})
        assert status == 302 and headers["Location"] == "/login?error=Invalid+username+or+password%21"
        assert not any(c.startswith("user=") for c in headers.get_all("Set-Cookie") or [])
        status, _, page = request(f"{base}{headers['Location']}")
        assert status == 200 and "Invalid username or password!" in page
        status, headers, _ = request(f"{base}/login", {"username": "nobody", "password": "pw1"})
        assert headers["Location"] == "/login?error=Invalid+username+or+password%21"
        status, headers, _ = request(f"{base}/login", {"username": "alice", "password": "pw1"})
        assert status == 302 and any(c.startswith("user=") for c in headers.get_all("Set-Cookie"))
