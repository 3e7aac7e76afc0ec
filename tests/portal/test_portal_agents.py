"""The portal and agents: agents' and scoped tokens do not sign in (the portal is for people), and
while the kill switch is on every page says so — checked over HTTP and in a real chromium."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Browser, expect

from portal.browser import DESKTOP, new_page, shot
from portal.conftest import Portal
from portal.test_portal_http import client, signed_in, try_sign_in


def _token(portal: Portal, *args: str) -> str:
    made = portal.api.cli("token", "create", *args)
    assert made.code == 0, made.err
    return made.out.strip().splitlines()[-1]


def test_agents_and_scoped_tokens_do_not_sign_in(portal: Portal) -> None:
    for name, flags in (("deploy-bot", ("--agent",)), ("dash", ("--read-only",))):
        token = _token(portal, name, *flags)
        with client(portal) as c:
            r = try_sign_in(c, name, token)
            assert r.status_code != 303 and "cc_session" not in c.cookies


def test_the_kill_switch_shows_on_every_page(portal: Portal, browser: Browser) -> None:
    reason = "INC-5 <script>alert(1)</script> & bad rollouts"
    on = portal.api.cli("freeze", "on", "--reason", reason, "--as", "change-manager")
    assert on.code == 0, on.err
    try:
        with signed_in(portal, "alice") as c:
            for path in ("/", "/changes", "/calendar"):
                html = c.get(path).text
                assert "All automation is halted" in html, path
                assert "INC-5 &lt;script&gt;alert(1)&lt;/script&gt; &amp; bad rollouts" in html
                assert "<script>alert(1)" not in html

        page = new_page(browser, DESKTOP)
        page.goto(portal.url + "/")
        page.get_by_label("Identity").fill("alice")
        page.get_by_label("API token").fill(portal.tokens["alice"])
        page.get_by_role("button", name="Sign in").click()
        banner = page.get_by_role("alert").filter(has_text="All automation is halted")
        expect(banner).to_be_visible()
        expect(banner).to_contain_text(re.compile(r"by change-manager: INC-5 <script>alert\(1\)</script>"))
        shot(page, "kill-switch-banner")
    finally:
        off = portal.api.cli("freeze", "off", "--as", "change-manager")
        assert off.code == 0, off.err
    with signed_in(portal, "alice") as c:
        assert "All automation is halted" not in c.get("/").text
    assert httpx.get(portal.url + "/readyz").json()["automation_halted"] is None
