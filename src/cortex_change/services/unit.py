"""The unit of work: the one write path every use case that changes a change goes through.

A use case opens one `work` on a change: inside one transaction the change is loaded once (row
locked for update on PostgreSQL; SQLite's write lock already holds every other writer off), the
use case reads what else its decision needs through `work.tx`, the domain decides
(`work.decide`), and on leaving the block the record (version-checked), its audit events, a
`config_changed` event if the rules changed since the last write, and what the events set going
(timers, outbox rows: `followups`) are written together. The change keeps its whole audit trail
(`change.trail`), so a door answers with the record in hand instead of reading it again.

A refusal raised inside the block (`Refused`: a rule, a permission) writes only its audit event
and is raised again; any other error writes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

from ..domain import compliance
from ..domain import validation as v
from ..domain.errors import InvalidTransition, PreconditionFailed, Refused
from ..domain.events import Event, EventKind
from ..domain.model import Change
from ..store import audit, changes
from ..store.db import Tx
from . import followups
from .context import Context

Operation = Callable[[Change], list[Event]]


class Work:
    """One use case's hold on one change inside its transaction."""

    __slots__ = ("actor", "change", "ctx", "events", "now", "services", "tx", "version")

    def __init__(self, ctx: Context, tx: Tx, change: Change, actor: str, now: datetime) -> None:
        self.ctx, self.tx, self.change, self.actor, self.now = ctx, tx, change, actor, now
        self.version = change.version
        self.services = list(change.affected_services)
        self.events: list[Event] = []

    def decide(self, op: Operation) -> None:
        """Let the domain decide on the change; its events are written on commit."""
        self.events.extend(op(self.change))

    def add(self, events: list[Event]) -> None:
        """Events of what the use case did itself in this transaction (a lease, an incident)."""
        self.events.extend(events)

    def _commit(self) -> None:
        tx, change, now = self.tx, self.change, self.now
        audit_config(tx, self.ctx, now)
        trail = audit.for_change(tx, change.change_id)
        actions = [*(e["action"] for e in trail), *(e.action for e in self.events)]
        policy = self.ctx.policy
        results = compliance.evaluate(change, policy, policy.frameworks or ("soc2",), actions, now)
        moved = self.services != change.affected_services
        changes.save(tx, change, self.version, compliance.complete(results), services_changed=moved)
        trail.extend(followups.commit(tx, self.ctx, change, self.events, now))
        change.trail = trail


@contextmanager
def work(ctx: Context, change_id: str, actor: str, if_version: int | None = None) -> Iterator[Work]:
    """Open the unit of work on `change_id` (see the module's text)."""
    v.change_id(change_id)
    now = ctx.clock()
    refusal: Refused | None = None
    with ctx.db.transaction() as tx:
        change = changes.get(tx, change_id, for_update=True)
        if if_version is not None and change.version != if_version:
            raise PreconditionFailed(
                f"{change_id} is at version {change.version}, not {if_version} (If-Match): read it again"
            )
        unit = Work(ctx, tx, change, actor, now)
        try:
            yield unit
        except Refused as exc:
            refusal = exc
            invalid = isinstance(exc, InvalidTransition)
            action = EventKind.UNAUTHORIZED_ATTEMPT if invalid else EventKind.REFUSED
            audit_config(tx, ctx, now)
            audit.append(tx, change_id, [Event(action, actor, {"error": str(exc)})], now)
        else:
            unit._commit()
    if refusal is not None:
        raise refusal


def apply(
    ctx: Context,
    change_id: str,
    actor: str,
    op: Operation,
    if_version: int | None = None,
    extra: Callable[[Tx, Change], list[Event]] | None = None,
) -> Change:
    """A unit of work whose decision needs nothing more than the change: `op`, then `extra` (more
    done in the same transaction, adding its events)."""
    with work(ctx, change_id, actor, if_version) as unit:
        unit.decide(op)
        if extra is not None:
            unit.add(extra(unit.tx, unit.change))
    return unit.change


def load(ctx: Context, change_id: str) -> Change:
    """The change as stored now (a read, outside any unit of work)."""
    v.change_id(change_id)
    with ctx.db.read() as tx:
        return changes.get(tx, change_id)


def record(ctx: Context, change_id: str, events: list[Event]) -> None:
    """Audit events that move no state (a step's result, an escalation), with what they cause."""
    now = ctx.clock()
    with ctx.db.transaction() as tx:
        audit_config(tx, ctx, now)
        followups.commit(tx, ctx, changes.get(tx, change_id), events, now)


def audit_config(tx: Tx, ctx: Context, now: datetime) -> None:
    """Record a `config_changed` event when this write runs under different rules than the last."""
    current, text = ctx.rules
    stored = audit.config_snapshot_text(tx)
    if stored == text:  # the common case: one row read, no JSON parsed
        return
    previous = None if stored is None else dict(json.loads(stored))
    if previous == current:
        return
    if previous is not None:
        diff = {
            k: {"old": previous.get(k), "new": current.get(k)}
            for k in sorted(set(previous) | set(current))
            if previous.get(k) != current.get(k)
        }
        audit.append(tx, None, [Event(EventKind.CONFIG_CHANGED, "configuration", {"changes": diff})], now)
    audit.save_config_snapshot(tx, current)
