"""Post-implementation reviews (docs/pir.md): opened with the failure that causes them, written
and completed through the change's unit of work (each step an audit event of its chain), and
their timers: the review's PIR_SLA and each action item's due date."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from ..domain import pir as rules
from ..domain import validation as v
from ..domain.codec import fmt_epoch
from ..domain.errors import NotFound, ValidationError
from ..domain.events import Event, EventKind
from ..domain.model import Change
from ..domain.pir import Pir
from ..store import changes
from ..store import pir as store
from ..store.db import Tx
from . import followups, unit
from .context import Context

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any

# Timer kinds (services/worker.py's FIRE): the review past its PIR_SLA; action items due.
PIR_OVERDUE, PIR_ACTION_DUE = "pir_overdue", "pir_action_due"
LISTS = ("open", "overdue", "all")


def opened(tx: Tx, ctx: Context, change: Change, events: list[Event], now: datetime) -> list[Event]:
    """In the transaction of a failure (a closure failed or rolled back, an incident opened): the
    change's review, due PIR_SLA days later, with its timer; its `pir_opened` event to append.
    Nothing when these events open none, or the change has one already (one review a change)."""
    why = rules.causes(change, events)
    if not why or store.exists(tx, change.change_id):
        return []
    sla = int(ctx.settings["PIR_SLA"])
    review, event = rules.open_review(change, why, sla, now, store.implementer(tx, change.change_id))
    store.insert(tx, review)
    due = review.due_at.timestamp()
    followups.schedule(tx, PIR_OVERDUE, change.change_id, due, {"due_at": due})
    return [event]


def _load(tx: Tx, change_id: str) -> Pir:
    review = store.get(tx, change_id)
    if review is None:
        raise NotFound(
            f"{change_id} has no post-implementation review (one opens when a change closes failed or "
            "rolled back, or an incident is opened)"
        )
    return review


Decision = Callable[[Pir, Change, datetime], list[Event]]


def _write(ctx: Context, change_id: str, actor: str, decide: Decision) -> dict[str, Any]:
    """One unit of work on the change: the review decided on, saved, its events in the chain."""
    v.change_id(change_id)
    v.identity("actor", actor)
    with unit.work(ctx, change_id, actor) as w:
        review = _load(w.tx, change_id)
        events = decide(review, w.change, w.now)
        store.save(w.tx, review)
        w.add(events)
        _after(w.tx, review, events)
    return rules.document(review, w.now, w.change.title)


def _after(tx: Tx, review: Pir, events: list[Event]) -> None:
    """Timers the events set or end: an action item's due date; a completed review's SLA."""
    for e in events:
        if e.action is EventKind.PIR_ACTION_ADDED:
            item = review.action(e.details["action_id"])
            due = item.due_at.timestamp()
            followups.schedule(tx, PIR_ACTION_DUE, review.change_id, due, {"due_at": due})
        elif e.action is EventKind.PIR_COMPLETED:
            from ..store import timers

            timers.cancel(tx, review.change_id, (PIR_OVERDUE,))


def record_findings(ctx: Context, *, change_id: str, actor: str, findings: str) -> dict[str, Any]:
    """Write (or rewrite) the findings of an open review."""
    rules.findings_text(findings)
    return _write(
        ctx, change_id, actor, lambda p, c, now: rules.record_findings(p, c, actor, findings, ctx.policy, now)
    )


def add_action(
    ctx: Context, *, change_id: str, actor: str, title: str, owner: str, due: str
) -> dict[str, Any]:
    """Add an action item (its owner hears; its due date is a timer)."""
    rules.action_title(title)
    v.identity("owner", owner)
    rules.due_date(due, ctx.clock())
    return _write(
        ctx,
        change_id,
        actor,
        lambda p, c, now: rules.add_action(p, c, actor, title, owner, due, ctx.policy, now),
    )


def finish_action(ctx: Context, *, change_id: str, actor: str, action_id: str) -> dict[str, Any]:
    """Mark an action item done."""
    rules.action_id(action_id)
    return _write(
        ctx, change_id, actor, lambda p, c, now: rules.finish_action(p, c, actor, action_id, ctx.policy, now)
    )


def complete(ctx: Context, *, change_id: str, actor: str) -> dict[str, Any]:
    """Sign the review off (a change manager; findings written, every action item owned and dated)."""
    return _write(ctx, change_id, actor, lambda p, c, now: rules.complete(p, c, actor, ctx.policy, now))


def get_pir(ctx: Context, *, change_id: str) -> dict[str, Any]:
    """A change's review as a document."""
    v.change_id(change_id)
    with ctx.db.read() as tx:
        change = changes.get(tx, change_id)  # NotFound for an unknown change
        review = _load(tx, change_id)
    return rules.document(review, ctx.clock(), change.title)


def list_pirs(ctx: Context, *, which: str = "open") -> list[dict[str, Any]]:
    """Open reviews soonest due first; `overdue` ones longest overdue first; or `all`, newest first."""
    v.one_of("list", which, LISTS)
    now = ctx.clock().timestamp()
    with ctx.db.read() as tx:
        rows = store.listing(tx, now, which)
    return [
        {
            "change_id": change_id,
            "title": title,
            "status": status,
            "reason": reason,
            "owner": owner,
            "opened_at": fmt_epoch(opened_at),
            "due_at": fmt_epoch(due_at),
            "overdue": status == rules.Status.OPEN and now >= float(due_at),
            "overdue_seconds": int(now - float(due_at)) if status == rules.Status.OPEN else None,
            "completed_at": None if completed_at is None else fmt_epoch(completed_at),
            "actions_open": int(actions_open),
        }
        for change_id, title, status, reason, owner, opened_at, due_at, completed_at, actions_open in rows
    ]


# --- the worker's timers (services/worker.py's FIRE) ---------------------------------------------


def fire_overdue(ctx: Context, name: str, change_id: str | None, payload: dict[str, Any]) -> None:
    """The review's PIR_SLA has passed: if it is still open, `pir_overdue` (change managers and
    the owner hear)."""
    if change_id is None:
        raise ValidationError("timer", "a review's timer names its change")
    with ctx.db.read() as tx:
        review = store.get(tx, change_id)
    if review is None or not review.overdue(ctx.clock()):
        return
    unit.record(ctx, change_id, [rules.overdue_event(review)])


def fire_action_due(ctx: Context, name: str, change_id: str | None, payload: dict[str, Any]) -> None:
    """Action items due at this instant and still open: `pir_action_overdue` each (its owner hears)."""
    if change_id is None:
        raise ValidationError("timer", "an action item's timer names its change")
    due = float(payload.get("due_at", 0))
    with ctx.db.read() as tx:
        review = store.get(tx, change_id)
        due_now = {str(r[0]) for r in store.open_actions_due(tx, change_id, due)}
    if review is None:
        return
    events = [rules.action_overdue_event(a) for a in review.actions if a.action_id in due_now]
    if events:
        unit.record(ctx, change_id, events)
