"""Fixtures for the SPEC §11 attack tests: a world per backend and module, each door in turn."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from security_support import ApiDoor, CliDoor, Door, World

from support import backend_store


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A store with the attack configuration, a live server on it and a token per identity."""
    root = tmp_path_factory.mktemp("security")
    store = backend_store(request, root)
    made = World(store, root)
    try:
        yield made
    finally:
        made.close()


@pytest.fixture(params=["api", "cli"])
def door(request: pytest.FixtureRequest, world: World) -> Iterator[Door]:
    """The REST API with each identity's token, then the local CLI with `--as`."""
    if request.param == "cli":
        yield CliDoor(world)
        return
    api = ApiDoor(world)
    try:
        yield api
    finally:
        api.close_clients()
