"""Retrospective reviews of emergency changes past due (SPEC §5: `review overdue`)."""

from __future__ import annotations

from typing import Any

from ..domain.codec import fmt_epoch
from ..store import changes
from .context import Context


def overdue_reviews(ctx: Context, *, overdue: bool = True) -> list[dict[str, Any]]:
    """Emergency changes whose review was due before now and is not recorded, longest overdue first
    (they fail the emergency_review control and count against audit compliance); with
    `overdue=False`, those whose review is still to come, soonest due first (`overdue_seconds`
    is then negative)."""
    now = ctx.clock().timestamp()
    with ctx.db.read() as tx:
        rows = changes.overdue_reviews(tx, now, overdue)
    return [
        {
            "change_id": change_id,
            "title": title,
            "state": state,
            "type": typ,
            "category": category,
            "risk_level": level,
            "requested_by": requested_by,
            "created_at": fmt_epoch(created),
            "approved_at": None if approved is None else fmt_epoch(approved),
            "due_at": fmt_epoch(due),
            "overdue_seconds": int(now - due),
        }
        for change_id, state, typ, category, level, _, created, title, requested_by, approved, due in rows
    ]
