"""Change queries: one record as SPEC §1's document, and listings. Read-only: nothing of the write
side (workflow, follow-ups, runbooks) is imported, so `show` and `list` start fast."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from ..domain import compliance
from ..domain import validation as v
from ..domain.codec import fmt_epoch, to_document
from ..domain.errors import NotFound, ValidationError
from ..domain.lifecycle import states_for
from ..domain.model import Change, ChangeType, Level
from ..store import audit, changes
from .context import Context

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any


def get_change(ctx: Context, *, change_id: str) -> dict[str, Any]:
    """The full record as SPEC §1's JSON document, with audit trail and compliance."""
    v.change_id(change_id)
    with ctx.db.read() as tx:
        change = changes.get(tx, change_id)
        trail = audit.for_change(tx, change_id)
    return document(ctx, change, trail)


def change_and_trail(ctx: Context, *, change_id: str) -> tuple[Change, list[dict[str, Any]]]:
    """The record and its audit trail's rows, read together (the portal's detail page)."""
    v.change_id(change_id)
    with ctx.db.read() as tx:
        return changes.get(tx, change_id), audit.for_change(tx, change_id)


def records(ctx: Context, *, state: str, limit: int = 200) -> list[Change]:
    """The records in a state or group, newest first (the portal's inbox: who may approve what is
    the domain's question, asked of each record)."""
    with ctx.db.read() as tx:
        rows = changes.listing(tx, states_for(state), limit, None, {})
        return [changes.get(tx, row[0]) for row in rows]


def trail(ctx: Context, *, change_id: str) -> list[dict[str, Any]]:
    """The change's audit trail, oldest first (as the document's `audit_trail` gives it)."""
    v.change_id(change_id)
    with ctx.db.read() as tx:
        if not changes.exists(tx, change_id):
            raise NotFound(f"no change {change_id!r}")
        rows = audit.for_change(tx, change_id)
    return [{k: e[k] for k in TRAIL_KEYS} for e in rows]


TRAIL_KEYS = ("seq", "timestamp", "action", "actor", "details", "hash")


def written(ctx: Context, change: Change) -> dict[str, Any]:
    """SPEC §1's document of a change a use case returned: built from the record in hand when a
    unit of work has just written it (`change.trail`), else read (the doors answer with it)."""
    if change.trail is None:
        return get_change(ctx, change_id=change.change_id)
    return document(ctx, change, change.trail)


def document(ctx: Context, change: Change, trail: list[dict[str, Any]]) -> dict[str, Any]:
    """SPEC §1's document of a change in hand and its audit trail's rows (`store.audit.as_dict`)."""
    doc = to_document(change)
    now = ctx.clock()
    results = compliance.evaluate(
        change, ctx.policy, ctx.policy.frameworks, [e["action"] for e in trail], now
    )
    doc["compliance"] = {
        f: [{"control": r.control, "status": r.status, "reason": r.reason} for r in rs]
        for f, rs in results.items()
    }
    doc["audit_trail"] = [{k: e[k] for k in TRAIL_KEYS} for e in trail]
    return doc


def list_changes(
    ctx: Context,
    *,
    state: str | None = None,
    limit: int = 50,
    before: str | None = None,
    filters: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Newest first, optionally filtered by a state or a seed folder name, and by `filters`:
    type, category, risk_level, requested_by, service, created_from, created_to (ISO 8601, UTC)."""
    states = None if state is None else states_for(state)
    where = _list_filters(filters or {})
    if not 1 <= limit <= 1000:
        raise ValidationError("limit", f"{limit} is out of range (1–1000)")
    if before is not None:
        v.change_id(before)
    with ctx.db.read() as tx:
        if before is not None and not changes.exists(tx, before):  # else: silently an empty page
            raise NotFound(f"no change {before!r} (--before names the last change of the previous page)")
        rows = changes.listing(tx, states, limit, before, where)
    out = []
    for change_id, st, typ, category, level, score, created, title in rows:
        out.append(
            {
                "change_id": change_id,
                "state": st,
                "type": typ,
                "category": category,
                "risk_level": level,
                "risk_score": score,
                "title": title,
                "created_at": fmt_epoch(created),
            }
        )
    return out


def _list_filters(filters: Mapping[str, str]) -> dict[str, Any]:
    """Validate listing filters (the CLI's wording) into store values."""
    out: dict[str, Any] = {}
    for key, value in filters.items():
        if key == "type":
            out[key] = v.choice(key, value, ChangeType).value
        elif key == "risk_level":
            out[key] = v.choice(key, value, Level).value
        elif key in ("category", "service"):
            out[key] = v.name(key, value)
        elif key == "requested_by":
            out[key] = v.identity(key, value)
        elif key in ("created_from", "created_to"):
            out[key] = _instant(key, value).timestamp()
        else:
            raise ValidationError(key, "is not a filter; filters: " + ", ".join(sorted(changes.FILTERS)))
    return out


def _instant(field: str, value: str) -> datetime:
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValidationError(
            field, f"{value!r} is not an ISO 8601 date or time (2026-01-31 or 2026-01-31T12:00:00Z)"
        ) from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when
