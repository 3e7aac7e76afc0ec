"""Fixtures for catalog tests: an in-process context with a clock the test moves."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cortex_change.services.context import Context, open_context


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 2, 9, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_ctx(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: Clock, store_url: str
) -> Iterator[object]:
    """Contexts on one store, on each backend in turn (see store_url in tests/conftest.py)."""
    monkeypatch.chdir(tmp_path)
    opened: list[Context] = []

    def make(**env: str) -> Context:
        ctx = open_context(env={"CORTEX_CHANGE_DB": store_url, **env}, clock=clock)
        opened.append(ctx)
        return ctx

    yield make
    for ctx in opened:
        ctx.close()


@pytest.fixture
def ctx(make_ctx: object) -> Context:
    assert callable(make_ctx)
    made: Context = make_ctx()
    return made
