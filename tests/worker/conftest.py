"""Fixtures for the worker's tests: contexts on each backend driven by a hand-moved clock, receivers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from worker_support import QUIET, Clock, HttpReceiver, SmtpServer

from cortex_change.services.context import Context, open_context

PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


@pytest.fixture(autouse=True)
def _direct(monkeypatch: pytest.MonkeyPatch) -> None:
    # urllib honours proxy variables (here and in the CLI subprocesses, which copy os.environ).
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_ctx(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: Clock, store_url: str
) -> Iterator[Callable[..., Context]]:
    """Contexts on one store (each backend in turn), driven by `clock`; QUIET unless overridden."""
    monkeypatch.chdir(tmp_path)  # no stray cortex-change.toml
    opened: list[Context] = []

    def make(**env: str) -> Context:
        ctx = open_context(env={"CORTEX_CHANGE_DB": store_url, **QUIET, **env}, clock=clock)
        opened.append(ctx)
        return ctx

    yield make
    for ctx in opened:
        ctx.close()


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    srv = HttpReceiver()
    try:
        yield srv
    finally:
        srv.close()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    srv = SmtpServer()
    try:
        yield srv
    finally:
        srv.close()


@pytest.fixture
def quiet_cli(cli: Any) -> Any:
    """The `cli` fixture with no CAB agenda due during the test."""
    cli.env.update(QUIET)
    return cli
