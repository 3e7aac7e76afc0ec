"""Fixtures for catalog tests: an in-process context with a clock the test moves."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cortex_change.services.context import Context
from support import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 11, 2, 9, 0, 0, tzinfo=UTC))


@pytest.fixture
def ctx(make_ctx: object) -> Context:
    """A context on the test's store (`make_ctx` is in tests/conftest.py)."""
    assert callable(make_ctx)
    made: Context = make_ctx()
    return made
