"""Incidents: opened when a rollback fails, listed and shown by operators."""

from __future__ import annotations

import json

from ..domain import validation
from ..domain.codec import fmt_epoch
from ..domain.errors import NotFound, ValidationError
from ..store import incidents
from .context import Context

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any

    from ..store.db import Row


def _doc(row: Row) -> dict[str, Any]:
    incident_id, change_id, opened_at, opened_by, title, details, state, resolved_at = row
    return {
        "incident_id": incident_id,
        "change_id": change_id,
        "opened_at": fmt_epoch(opened_at),
        "opened_by": opened_by,
        "title": title,
        "details": json.loads(details),
        "state": state,
        "resolved_at": fmt_epoch(resolved_at) if resolved_at is not None else None,
    }


def list_incidents(ctx: Context, *, change_id: str | None = None) -> list[dict[str, Any]]:
    """Newest first (of one change when given)."""
    if change_id is not None:
        validation.change_id(change_id)
    with ctx.db.read() as tx:
        return [_doc(r) for r in incidents.listing(tx, change_id)]


def get_incident(ctx: Context, *, incident_id: str) -> dict[str, Any]:
    if not isinstance(incident_id, str) or not 1 <= len(incident_id) <= 64 or not incident_id.isprintable():
        raise ValidationError("incident_id", "is not an incident id (INC-YYYYMMDDHHMMSS-xxxxxx)")
    with ctx.db.read() as tx:
        row = incidents.get(tx, incident_id)
    if row is None:
        raise NotFound(f"no incident {incident_id!r}")
    return _doc(row)
