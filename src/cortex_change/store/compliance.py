"""Reads for compliance reports: the changes created in a period, their audit events and incidents."""

from __future__ import annotations

from collections import defaultdict

from ..domain.codec import from_document, parse_stored
from ..domain.compliance_report import AuditRef
from ..domain.model import Change
from ..domain.period import Period
from .db import Tx

IN_PERIOD = "SELECT change_id FROM changes WHERE created_at >= ? AND created_at < ?"


def _span(p: Period) -> tuple[float, float]:
    return p.start.timestamp(), p.end.timestamp()


def changes_created(tx: Tx, p: Period) -> list[Change]:
    """The records of the changes created in the period, oldest first."""
    rows = tx.all(
        "SELECT doc FROM changes WHERE created_at >= ? AND created_at < ? ORDER BY created_at, change_id",
        _span(p),
    )
    return [from_document(parse_stored(r[0])) for r in rows]


def events_by_change(tx: Tx, p: Period) -> dict[str, list[AuditRef]]:
    """The audit events of the changes created in the period, per change in chain order."""
    rows = tx.all(
        f"SELECT change_id, seq, action, actor, hash FROM audit_events WHERE change_id IN ({IN_PERIOD}) "
        "ORDER BY change_id, seq",
        _span(p),
    )
    out: dict[str, list[AuditRef]] = defaultdict(list)
    for change_id, seq, action, actor, digest in rows:
        out[str(change_id)].append(AuditRef(int(seq), str(action), str(actor), str(digest)))
    return out


def incidents_by_change(tx: Tx, p: Period) -> dict[str, list[str]]:
    """The ids of the incidents linked to the changes created in the period, oldest first."""
    rows = tx.all(
        f"SELECT change_id, incident_id FROM incidents WHERE change_id IN ({IN_PERIOD}) "
        "ORDER BY change_id, opened_at, incident_id",
        _span(p),
    )
    out: dict[str, list[str]] = defaultdict(list)
    for change_id, incident_id in rows:
        out[str(change_id)].append(str(incident_id))
    return out
