"""Fixtures for the worker's tests: contexts on each backend driven by a hand-moved clock.

(`receiver` and `smtp_server` are in tests/conftest.py.)"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from worker_support import QUIET, RUNBOOK_TOML

from cortex_change.services.context import Context, system_clock
from support import FakeClock


@pytest.fixture(autouse=True)
def _direct(direct: None) -> None:
    """No proxy between the worker (in-process and in CLI subprocesses) and the local receivers."""


@pytest.fixture
def clock() -> FakeClock:
    """Starts at the real time (so CLI runs and services agree); moves only when the test says so."""
    return FakeClock(system_clock())


@pytest.fixture
def make_ctx(make_ctx: Callable[..., Context], tmp_path: Path) -> Callable[..., Context]:
    """tests/conftest.py's `make_ctx` (driven by the clock above), QUIET unless overridden; the
    catalog has the `noop` runbook emergencies run (automatic routes run runbooks only)."""
    (tmp_path / "cortex-change.toml").write_text(RUNBOOK_TOML)

    def make(**env: str) -> Context:
        return make_ctx(**{**QUIET, **env})

    return make


@pytest.fixture
def quiet_cli(cli: Any) -> Any:
    """The `cli` fixture with no CAB agenda due during the test."""
    cli.env.update(QUIET)
    return cli
