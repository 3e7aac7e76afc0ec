"""The outbox as operators see it: what waits, what was delivered, the dead letters."""

from __future__ import annotations

from typing import Any

from ..domain.codec import fmt_epoch
from ..domain.errors import ValidationError
from ..store import outbox
from .context import Context


def list_outbox(ctx: Context, *, state: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Newest first, optionally one state: pending, delivered or dead."""
    if state is not None and state not in (outbox.PENDING, outbox.DELIVERED, outbox.DEAD):
        raise ValidationError("state", f"{state!r} is not allowed; allowed: pending, delivered, dead")
    with ctx.db.read() as tx:
        rows = outbox.listing(tx, state, limit)
    keys = (
        "message_id",
        "event_id",
        "channel",
        "kind",
        "change_id",
        "state",
        "attempts",
        "created_at",
        "next_attempt_at",
        "last_error",
        "delivered_at",
    )
    out = []
    for row in rows:
        doc = dict(zip(keys, row, strict=True))
        for k in ("created_at", "next_attempt_at", "delivered_at"):
            doc[k] = fmt_epoch(doc[k]) if doc[k] else None
        out.append(doc)
    return out


def retry(ctx: Context, *, message_id: str) -> bool:
    """Queue a dead-lettered message again; False when there is no such dead letter."""
    if not isinstance(message_id, str) or not message_id.isalnum() or len(message_id) > 64:
        raise ValidationError("message_id", f"{message_id!r} is not an outbox message id (hex)")
    with ctx.db.transaction() as tx:
        return outbox.retry(tx, message_id, ctx.clock().timestamp()) == 1
