"""What every use case needs: settings, the store and a clock."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property

from ..config import Settings, load
from ..domain.policy import Policy
from ..store.db import Store, open_store

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """UTC now, to the second (the precision the record keeps)."""
    return datetime.now(UTC).replace(microsecond=0)


@dataclass
class Context:
    settings: Settings
    db: Store
    clock: Clock = field(default=system_clock)

    @cached_property
    def policy(self) -> Policy:
        return self.settings.policy()

    def close(self) -> None:
        self.db.close()


def open_context(
    env: Mapping[str, str] | None = None,
    clock: Clock = system_clock,
    pooled: bool = False,
    create: bool = True,
) -> Context:
    """Load settings, open the store (`pooled`: shareable by threads), creating it if need be
    unless `create` is False (read-only commands: a missing store is an error, never made)."""
    settings = load(env)
    return Context(settings, open_store(settings.database(), pooled, create), clock)
