"""Playwright (sync API) driving Debian's chromium: never a browser Playwright downloads.

`make chromium` installs /usr/bin/chromium; without it, or without the `playwright` package, the
browser tests skip. Playwright's sync API runs its own event loop in a greenlet, so it cannot be
used from inside a running asyncio loop (pytest's sync tests are fine).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

# Defensive: nothing here installs browsers, but no Playwright code path should try to either.
os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "portal"  # gitignored
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
# Headless on a closed network: the background-networking flags keep chromium from retrying
# (slowly, noisily) the update, sync and component services it cannot reach.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    """The Debian chromium (`make chromium`), or None."""
    found = shutil.which("chromium")
    if found:
        return found
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One headless chromium for the session; skips, saying what is missing, without it."""
    executable = chromium_path()
    if executable is None:
        pytest.skip("chromium not found (run `make chromium`): browser tests skipped")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright package is not installed (pip install -e '.[dev]'; then `make chromium`)")
    playwright = sync_playwright().start()
    try:
        launched = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()
    finally:
        playwright.stop()


def new_page(browser: Browser, viewport: dict[str, int]) -> Page:
    """A page in a context of its own (fresh cookies and storage); close it with `page.context.close()`."""
    context = browser.new_context(viewport={"width": viewport["width"], "height": viewport["height"]})
    return context.new_page()


def phone_page(browser: Browser) -> Page:
    """A page at a phone's size (390x844) in a context of its own; close with `page.context.close()`
    (left open, it closes with the browser at the end of the session)."""
    return new_page(browser, PHONE)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A desktop-sized (1280x900) page in a new context per test, JavaScript on."""
    desktop = new_page(browser, DESKTOP)
    try:
        yield desktop
    finally:
        desktop.context.close()


def shot(page: Page, name: str) -> Path:
    """A full-page PNG of `page` at tests/artifacts/portal/<name>.png; returns its path."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "page"
    path = ARTIFACTS / f"{safe}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    return path
