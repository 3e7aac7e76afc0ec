"""What a committed event sets going, written in the same transaction: timers and outbox messages."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from ..domain import notifications
from ..domain.codec import fmt_time
from ..domain.events import Event, EventKind
from ..domain.lifecycle import State
from ..domain.model import Change, ChangeType, ClosureStatus, Route
from ..domain.values import Frozen
from ..notify.message import Message
from ..store import audit, outbox, timers
from ..store.db import Tx
from .context import Context

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any, Final

# Timer kinds (the worker fires them: services/worker.py's FIRE). VERIFY is a round of post-change
# verification; its stored kind keeps the name it was first written under.
IMPLEMENT, VERIFY, APPROVAL_TIMEOUT = "implement", "validate", "approval_timeout"
REVIEW_DUE, REVIEW_OVERDUE, CAB_AGENDA = "review_due", "review_overdue", "cab_agenda"
RESUME = "resume"  # a run the kill switch paused, resumed once it is off (services/automation.py)
ENDED_BY_CLOSE = (IMPLEMENT, VERIFY, APPROVAL_TIMEOUT, RESUME)
REVIEW_REMINDER = 0.75  # "review due" goes out when three quarters of the SLA have passed
# Events that may open a post-implementation review (domain/pir.py decides: services/pir.py).
PIR_CAUSES = frozenset({EventKind.CLOSED, EventKind.INCIDENT_OPENED})


def timer_id(kind: str, subject: str, due: float) -> str:
    return f"{kind}:{subject}:{due:.0f}"


def schedule(tx: Tx, kind: str, change_id: str | None, due: float, payload: dict[str, object]) -> str:
    """Add a timer (idempotent: the same kind, subject and due time is one timer)."""
    tid = timer_id(kind, change_id or "-", due)
    timers.schedule(tx, tid, kind, change_id, due, dict(payload))
    return tid


def commit(tx: Tx, ctx: Context, change: Change, events: list[Event], now: datetime) -> list[dict[str, Any]]:
    """Append the change's events to the audit chain and set going what they cause; the rows written."""
    if any(e.action in PIR_CAUSES for e in events):  # a failure opens its review (docs/pir.md)
        from .pir import opened  # imported by the writes that may need it only (start-up time)

        events = [*events, *opened(tx, ctx, change, events, now)]
    written = audit.append(tx, change.change_id, events, now)
    after(tx, ctx, change, [(row["event_id"], e) for row, e in zip(written, events, strict=True)], now)
    return written


def after(tx: Tx, ctx: Context, change: Change, events: Sequence[tuple[str, Event]], now: datetime) -> None:
    """Schedule and cancel the change's timers and queue its notifications for these events."""
    for event_id, event in events:
        _timers(tx, ctx, change, event, now)
        enqueue(tx, ctx, change, event_id, event, now)


Schedules = Callable[[Tx, Context, Change, float], None]


def _always(change: Change) -> bool:
    return True


class Reaction(Frozen):
    """What one event does to its change's timers: cancel pending ones of some kinds, then, when
    `when(change)` holds, schedule more."""

    __slots__ = ("cancels", "schedules", "when")

    def __init__(
        self,
        cancels: tuple[str, ...] = (),
        schedules: Schedules | None = None,
        when: Callable[[Change], bool] = _always,
    ) -> None:
        self.cancels: Final = cancels
        self.schedules: Final = schedules
        self.when: Final = when


def _assessed(change: Change) -> bool:
    return change.assessment is not None


def _now_approved(change: Change) -> bool:
    """Approved and still so (not implemented or cancelled in the same write)."""
    return change.state is State.APPROVED


def _approval_timeout(tx: Tx, ctx: Context, change: Change, t: float) -> None:
    """The approval's deadline by its route; a new request restarts the clock."""
    assert change.assessment is not None
    key = (
        "TECH_LEAD_APPROVAL_TIMEOUT"
        if change.assessment.route in (Route.TECHNICAL_LEAD, Route.EMERGENCY_CAB)
        else "CAB_APPROVAL_TIMEOUT"
    )
    timers.cancel(tx, change.change_id, (APPROVAL_TIMEOUT,))
    schedule(tx, APPROVAL_TIMEOUT, change.change_id, t + ctx.settings[key], {"config_key": key})


def _approved(tx: Tx, ctx: Context, change: Change, t: float) -> None:
    """AUTO_IMPLEMENT's implementation; an emergency's review reminders."""
    auto = change.type in (ChangeType.STANDARD, ChangeType.EMERGENCY) and ctx.settings["AUTO_IMPLEMENT"]
    if auto:  # never before its planned window opens
        start = change.planned_start.timestamp() if change.planned_start is not None else t
        schedule(tx, IMPLEMENT, change.change_id, max(t + ctx.settings["IMPLEMENTATION_DELAY"], start), {})
    if change.review is not None and change.review.reviewed_at is None:
        due = change.review.due_at.timestamp()
        schedule(tx, REVIEW_DUE, change.change_id, t + (due - t) * REVIEW_REMINDER, {"due_at": due})
        schedule(tx, REVIEW_OVERDUE, change.change_id, due, {"due_at": due})


# Audit event -> what it does to the change's timers (who hears of it: domain/notifications.py's
# ROUTES). A decided, withdrawn or discarded approval ends the approval's deadline.
TIMERS: dict[EventKind, Reaction] = {
    EventKind.APPROVAL_REQUESTED: Reaction(schedules=_approval_timeout, when=_assessed),
    EventKind.APPROVED: Reaction((APPROVAL_TIMEOUT,), _approved, when=_now_approved),
    EventKind.REJECTED: Reaction((APPROVAL_TIMEOUT,)),
    EventKind.APPROVALS_DISCARDED: Reaction((APPROVAL_TIMEOUT,)),
    EventKind.RESCHEDULED: Reaction((IMPLEMENT,)),  # the old window's automatic implementation
    EventKind.REVIEW_RECORDED: Reaction((REVIEW_DUE, REVIEW_OVERDUE)),
    EventKind.CLOSED: Reaction(ENDED_BY_CLOSE),
    EventKind.CANCELLED: Reaction(ENDED_BY_CLOSE),  # APPROVAL_TIMEOUT among them
}


def _timers(tx: Tx, ctx: Context, change: Change, event: Event, now: datetime) -> None:
    reaction = TIMERS.get(event.action)
    if reaction is None:
        return
    if reaction.cancels:
        timers.cancel(tx, change.change_id, reaction.cancels)
    if reaction.schedules is not None and reaction.when(change):
        reaction.schedules(tx, ctx, change, now.timestamp())


def enqueue(tx: Tx, ctx: Context, change: Change, event_id: str, event: Event, now: datetime) -> int:
    """Queue one outbox row per (notification, enabled channel); returns how many."""
    count = 0
    for rule in notifications.rules_for(change, event):
        message = _message(ctx, change, event_id, event, rule, now)
        count += queue(tx, ctx, message, now, paged=_paged(rule.kind, change))
    return count


def announce(
    tx: Tx,
    ctx: Context,
    event: Event,
    now: datetime,
    *,
    subject: str,
    text: str,
    ask: str,
    recipients: Iterable[str],
    paged: bool = False,
    change_id: str | None = None,
) -> None:
    """An event no notification rule covers (an unauthorized change seen, an identity over its
    rate, the kill switch; with `change_id`, on that change's trail: a remediation that waits for
    a person): appended to the audit chain and, in the same transaction, queued to `recipients`
    on every enabled channel (`kind`: the event's action; PagerDuty only when `paged`)."""
    (row,) = audit.append(tx, change_id, [event], now)
    message = Message(
        event_id=row["event_id"],
        kind=event.action.value,
        change_id=change_id,
        subject=f"[cortex-change] {subject}"[:300],
        text=text[:4000],
        ask=ask,
        recipients=tuple(sorted(recipients)),
        change=None,
        at=fmt_time(now) or "",
    )
    queue(tx, ctx, message, now, paged=paged)


def queue(tx: Tx, ctx: Context, message: Message, now: datetime, paged: bool = False) -> int:
    """One outbox row per enabled channel (PagerDuty only when `paged`); returns how many."""
    from ..notify.channels import enabled

    body = json.dumps(message.to_json(), ensure_ascii=False)
    rows: list[outbox.NewMessage] = [
        (
            os.urandom(12).hex(),
            message.event_id,
            channel,
            message.kind,
            message.change_id,
            body,
            now.timestamp(),
        )
        for channel in enabled(ctx.settings)
        if channel != "pagerduty" or paged
    ]
    outbox.enqueue(tx, rows)
    return len(rows)


def _paged(kind: str, change: Change) -> bool:
    """PagerDuty hears emergencies, failed rollbacks and stuck leases, and an emergency's close —
    unless it closed failed: then its page (a failed rollback's) stays open for the incident."""
    if kind in notifications.PAGED_KINDS:
        return True
    closed_ok = change.closure_status is not ClosureStatus.FAILED
    return kind == "closed" and change.type is ChangeType.EMERGENCY and closed_ok


def _message(
    ctx: Context, change: Change, event_id: str, event: Event, rule: notifications.Rule, now: datetime
) -> Message:
    a = change.assessment
    summary = {
        "change_id": change.change_id,
        "title": change.title,
        "type": change.type.value,
        "category": change.category,
        "state": change.state.value,
        "requested_by": change.requested_by,
        "risk_score": a.score if a else None,
        "risk_level": a.level.value if a else None,
        "approval_required": a.route.value if a else None,
        "closure_status": change.closure_status.value if change.closure_status else None,
        "services": list(change.affected_services),
    }
    why = event.details.get("reason") or event.details.get("notes") or ""
    text = f"{rule.headline}: {change.change_id} '{change.title}' is {change.state.value}."
    if why:
        text += f" {why}"
    return Message(
        event_id=event_id,
        kind=rule.kind,
        change_id=change.change_id,
        subject=f"[cortex-change] {rule.headline}: {change.change_id} '{change.title}'"[:300],
        text=text[:4000],
        ask=rule.ask,
        recipients=notifications.recipients(rule, change, ctx.policy, event),
        change=summary,
        at=fmt_time(now) or "",
    )
