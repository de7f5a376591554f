"""Chromium: ``epi-dash serve --basic-auth credentials.json`` asks for a sign-in; a wrong password shows the
login form's error, alice's password opens the workbench, and its run library lists alice's run, not bob's."""

from __future__ import annotations

from .browser import browser_page, open_app, requires_browser, screenshot
from .test_catalogue_signin import epi_dash_serve, write_run


def sign_in(page, username: str, password: str) -> None:
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


@requires_browser
def test_alice_signs_in_and_sees_only_her_runs(tmp_path):
    write_run(tmp_path / "runs", "alice-lds-run", "alice")
    write_run(tmp_path / "runs", "bob-lds-run", "bob")
    with epi_dash_serve(tmp_path) as base, browser_page() as page:
        page.goto(f"{base}/workbench", wait_until="domcontentloaded")
        assert "/login" in page.url  # the workbench is behind the sign-in
        sign_in(page, "alice", "wrong")
        page.wait_for_url("**/login?error=*")
        assert page.locator(".errormessage").inner_text() == "Invalid username or password!"
        sign_in(page, "alice", "pw1")  # back to the index (the failed try reset "next"), signed in
        page.wait_for_url(lambda url: "/login" not in url, wait_until="domcontentloaded")
        open_app(page, f"{base}/workbench")
        page.get_by_text("Runs", exact=True).click()
        page.get_by_text("alice-lds-run", exact=True).wait_for()
        assert page.get_by_text("bob-lds-run").count() == 0
        screenshot(page, "signin-alice-runs")
