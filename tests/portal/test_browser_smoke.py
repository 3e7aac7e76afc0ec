"""The browser infrastructure itself: Debian's chromium, driven by Playwright, reaches the server."""

from __future__ import annotations

from typing import TYPE_CHECKING

from portal.browser import shot

if TYPE_CHECKING:
    from playwright.sync_api import Page

    from portal.conftest import Portal


def test_browser_reaches_the_live_server(page: Page, portal: Portal) -> None:
    response = page.goto(f"{portal.url}/healthz")
    assert response is not None and response.status == 200
    assert "ok" in page.inner_text("body")
    path = shot(page, "healthz")
    assert path.is_file() and path.stat().st_size > 0
