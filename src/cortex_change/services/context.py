"""What every use case needs: settings, the store and a clock."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from ..config import Settings, load
from ..domain.policy import Policy
from ..domain.values import Value
from ..store.db import Store, open_store

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """UTC now, to the second (the precision the record keeps)."""
    return datetime.now(UTC).replace(microsecond=0)


class Context(Value):
    __slots__ = ("_policy", "clock", "db", "settings")

    def __init__(self, settings: Settings, db: Store, clock: Clock = system_clock) -> None:
        self.settings = settings
        self.db = db
        self.clock = clock
        self._policy: Policy | None = None  # built on first use

    @property
    def policy(self) -> Policy:
        if self._policy is None:
            self._policy = self.settings.policy()
        return self._policy

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
