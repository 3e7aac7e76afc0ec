"""The kill switch (`freeze on|off`, docs/agents.md): one command stops all automation.

While it is on: no route approves by itself (auto-approval, standard pre-approval, emergency
auto-approval: a person decides), the workers start no implementation and pause running ones
after their current step, and agents carry nothing out — except emergency changes an ECAB member
approved. Verification rounds and rollbacks go on: they are safety, not change.
"""

from __future__ import annotations

from ..domain import permissions, validation
from ..domain.codec import fmt_time
from ..domain.events import Event, EventKind
from ..domain.model import Change, ChangeType, Decision
from ..store import audit, halt, timers
from ..store.db import Tx
from . import followups
from .context import Context

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any

RECHECK = 30.0  # seconds: how soon a worker looks again at a change the switch holds


halted = halt.reason  # the switch's reason while it is on, else None


def status(ctx: Context) -> dict[str, Any]:
    """On or off, why, by whom, since when (`freeze status`, /readyz, the portal's banner)."""
    with ctx.db.read() as tx:
        row = halt.get(tx)
    if row is None:
        return {"halted": False, "reason": None, "by": None, "since": None}
    return {"halted": bool(row[0]), "reason": row[1], "by": row[2], "since": row[3]}


def exempt(change: Change) -> bool:
    """An emergency change an ECAB member (a person) approved goes ahead while the switch is on."""
    return change.type is ChangeType.EMERGENCY and any(
        a.role == "ecab" and a.decision is Decision.APPROVED for a in change.active_approvals
    )


def held(tx: Tx, change: Change) -> str | None:
    """Why automation may not carry `change` out now (the switch's reason), or None."""
    reason = halted(tx)
    return None if reason is None or exempt(change) else reason


def switch(ctx: Context, *, on: bool, actor: str, reason: str | None = None) -> dict[str, Any]:
    """Turn the switch on (with a reason) or off; CHANGE_MANAGERS only. Audited, and the change
    managers and on-call leads hear of it through the outbox."""
    validation.identity("actor", actor)
    permissions.require(permissions.Act.HALT, actor, ctx.policy)
    if on:
        validation.reason("reason", reason or "")
    now = ctx.clock()
    stamp = fmt_time(now) or ""
    with ctx.db.transaction() as tx:
        was = halted(tx)
        if on and was is not None:
            return _state(True, was, actor, stamp, changed=False)
        if not on and was is None:
            return _state(False, None, actor, stamp, changed=False)
        why = reason if on and reason is not None else f"turned off (was: {was})"
        halt.put(tx, on, why, actor, stamp)
        if not on:  # what the switch held goes ahead at the workers' next pass
            timers.hasten(tx, followups.RESUME, now.timestamp())
        kind = EventKind.AUTOMATION_HALTED if on else EventKind.AUTOMATION_RESUMED
        headline = "ALL AUTOMATION HALTED" if on else "Automation resumed"
        after = (
            "No change is approved or carried out automatically until it is off; "
            "emergency changes approved by an ECAB member go ahead."
            if on
            else "Auto-approval and the workers' implementations resume; paused changes continue."
        )
        followups.announce(
            tx,
            ctx,
            Event(kind, actor, {"reason": why}),
            now,
            subject=f"{headline} by {actor}: {why}",
            text=f"{actor} turned the kill switch {'on' if on else 'off'} at {stamp}: {why}. {after}",
            ask="freeze off when it is safe again" if on else "",
            recipients=ctx.policy.change_managers | ctx.policy.ecab_members,
        )
    return _state(on, why if on else None, actor, stamp, changed=True)


def _state(on: bool, reason: str | None, actor: str, at: str, changed: bool) -> dict[str, Any]:
    return {"halted": on, "reason": reason, "by": actor, "since": at, "changed": changed}


def paused(ctx: Context, change_id: str, actor: str, step: int, of: int, reason: str) -> None:
    """A run stopped between steps by the switch: audited, its lease released, and a worker timer
    to resume it once the switch is off (services/worker.py)."""
    from ..store import leases

    now = ctx.clock()
    details = {"after_step": step, "of": of, "reason": f"automation halted (freeze on: {reason})"}
    with ctx.db.transaction() as tx:
        leases.release(tx, change_id)
        audit.append(tx, change_id, [Event(EventKind.IMPLEMENTATION_PAUSED, actor, details)], now)
        followups.schedule(tx, followups.RESUME, change_id, now.timestamp() + RECHECK, {"paused": True})
