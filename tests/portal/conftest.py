"""The portal's browser tests: a live `cortex-change serve` (portal at `/`, API under /api/v1) and
a headless chromium (tests/portal/browser.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from api.conftest import Api, serving
from portal.browser import browser, page

__all__ = ["Portal", "browser", "page", "portal"]


@dataclass(frozen=True)
class Portal:
    """A running server: its base URL, a token per identity (api.conftest.IDENTITIES), and the
    API helper (`api.as_(who)`, `api.create(...)`) to seed data."""

    url: str
    tokens: dict[str, str]
    api: Api


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    """One server per module on a fresh SQLite store (as `shared_api` builds its sqlite one)."""
    cwd = tmp_path_factory.mktemp("portal")
    with serving(str(cwd / "store.db"), cwd) as running:
        yield Portal(url=running.server.url, tokens=running.tokens, api=running)
