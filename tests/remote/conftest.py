"""The `server` fixture: one real server per test module (see remote_support.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from remote_support import Server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("remote"))
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()
    assert not srv.nowhere.parent.exists(), "the client created a local store"
