"""The weekly CAB: the next meeting (CAB_MEETING_SCHEDULE, cron) and its agenda, sent ahead of it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..domain.codec import fmt_epoch, fmt_time
from ..domain.events import Event, EventKind
from ..domain.lifecycle import State
from ..notify.message import Message
from ..store import audit, changes, timers
from . import followups
from .context import Context

AGENDA_LIMIT = 200


def next_meeting(schedule: str, after: datetime) -> datetime:
    """The first meeting strictly after `after` (UTC), by the cron expression."""
    try:
        from cronsim import CronSim
    except ImportError:  # the `worker` extra brings it: not bad input, an installation to complete
        from ..domain.errors import MissingPackage

        raise MissingPackage("CAB_MEETING_SCHEDULE (the CAB's meetings)", "cronsim", "worker") from None
    naive = after.astimezone(UTC).replace(tzinfo=None, second=0, microsecond=0)
    return next(CronSim(schedule, naive)).replace(tzinfo=UTC)


def agenda(ctx: Context) -> dict[str, Any]:
    """Changes waiting for the CAB, highest risk first (then oldest first), and the next meeting."""
    with ctx.db.read() as tx:
        rows = changes.listing(tx, frozenset({State.PENDING_CAB}), AGENDA_LIMIT, None, {})
    items = [
        {
            "change_id": change_id,
            "title": title,
            "type": typ,
            "category": category,
            "risk_level": level,
            "risk_score": score,
            "created_at": fmt_epoch(created),
        }
        for change_id, _, typ, category, level, score, created, title in rows
    ]
    items.sort(key=lambda i: (-(i["risk_score"] or 0), i["created_at"] or ""))
    meeting = next_meeting(ctx.settings["CAB_MEETING_SCHEDULE"], ctx.clock())
    return {
        "meeting": fmt_time(meeting),
        "schedule": ctx.settings["CAB_MEETING_SCHEDULE"],
        "members": list(ctx.settings["CAB_MEMBERS"]),
        "changes": items,
    }


def ensure_agenda_timer(ctx: Context) -> None:
    """Keep one timer for the next meeting's agenda (idempotent: its id names the meeting)."""
    try:
        meeting = next_meeting(ctx.settings["CAB_MEETING_SCHEDULE"], ctx.clock())
    except Exception:  # no cronsim: `cab agenda` says why; the worker carries on without agendas
        return
    due = max(meeting.timestamp() - float(ctx.settings["CAB_AGENDA_LEAD"]), ctx.clock().timestamp())
    payload = {"meeting": fmt_time(meeting)}
    with ctx.db.transaction() as tx:
        tid = followups.timer_id(followups.CAB_AGENDA, fmt_time(meeting) or "", meeting.timestamp())
        timers.schedule(tx, tid, followups.CAB_AGENDA, None, due, payload)


def send_agenda(ctx: Context, payload: dict[str, Any]) -> None:
    """Record the agenda in the audit trail and send it to CAB_MEMBERS."""
    data = agenda(ctx)
    meeting = payload.get("meeting") or data["meeting"]
    now = ctx.clock()
    lines = [
        f"{i['change_id']}  risk {i['risk_score']} ({i['risk_level']})  {i['title']}" for i in data["changes"]
    ]
    event = Event(
        EventKind.CAB_AGENDA_SENT,
        "change-manager",
        {"meeting": meeting, "changes": [i["change_id"] for i in data["changes"]]},
    )
    with ctx.db.transaction() as tx:
        (written,) = audit.append(tx, None, [event], now)
        event_id = written["event_id"]
        message = Message(
            event_id=event_id,
            kind="cab_agenda",
            change_id=None,
            subject=f"[cortex-change] CAB agenda for {meeting}: {len(lines)} change(s)",
            text="\n".join(lines) or "No change is waiting for the CAB.",
            ask="review these changes before the meeting" if lines else "",
            recipients=tuple(data["members"]),
            change={},
            at=fmt_time(now) or "",
        )
        followups.queue(tx, ctx, message, now)
