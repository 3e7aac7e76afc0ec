"""What every use case needs: settings, the store and a clock."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from ..config import Settings, load, rules_snapshot
from ..domain.policy import Policy
from ..domain.values import Value
from ..store.db import open_store

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any

    from ..domain.agents import Principal
    from ..store.db import Store, Tx

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """UTC now, to the second (the precision the record keeps)."""
    return datetime.now(UTC).replace(microsecond=0)


class Context(Value):
    __slots__ = ("_policy", "_rules", "clock", "db", "principal", "settings")

    def __init__(
        self, settings: Settings, db: Store, clock: Clock = system_clock, principal: Principal | None = None
    ) -> None:
        self.settings = settings
        self.db = db
        self.clock = clock
        # Who acts through a token (API, portal, MCP): its kind and scopes, which the use cases
        # check (docs/agents.md). None: the local CLI on the store's host, unrestricted.
        self.principal = principal
        self._policy: Policy | None = None  # built on first use
        self._rules: tuple[dict[str, Any], str] | None = None

    def who(self, tx: Tx, name: str) -> Principal:
        """`name` as the principal it acts as: the request's own (its token's scopes) when it is
        the one acting, else by name — an agent if its tokens are agents', unrestricted (the
        local CLI on the store's host: the README's trust note)."""
        if self.principal is not None and self.principal.name == name:
            return self.principal
        from ..domain.agents import Principal
        from ..store.tokens import kinds

        return Principal(name, True in kinds(tx, name))

    def acting(self, principal: Principal) -> Context:
        """This context for one principal's request (the store and caches shared)."""
        ctx = Context(self.settings, self.db, self.clock, principal)
        ctx._policy, ctx._rules = self._policy, self._rules
        return ctx

    @property
    def policy(self) -> Policy:
        if self._policy is None:
            self._policy = self.settings.policy()
        return self._policy

    @property
    def rules(self) -> tuple[dict[str, Any], str]:
        """The rules snapshot (`config.rules_snapshot`) and its canonical JSON text, built once:
        every write compares it with the stored one (services/unit.py)."""
        if self._rules is None:
            from ..store.audit import canonical

            snapshot = rules_snapshot(self.settings)
            self._rules = (snapshot, canonical(snapshot))
        return self._rules

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
