"""Aggregate queries for metrics: counted in SQL, never by loading records."""

from __future__ import annotations

from typing import Any

from ..domain.metrics import Figures
from ..domain.period import Period
from . import incidents
from .db import Tx


def _avg(tx: Tx, expr: str, column: str, p: Period, extra: str = "") -> float | None:
    row = tx.one(
        f"SELECT avg({expr}) FROM changes WHERE {column} >= ? AND {column} < ? {extra}",
        (p.start.timestamp(), p.end.timestamp()),
    )
    return None if row is None or row[0] is None else float(row[0])


def _counts(tx: Tx, column: str, when: str, p: Period) -> dict[str, int]:
    rows = tx.all(
        f"SELECT {column}, count(*) FROM changes WHERE {when} >= ? AND {when} < ? GROUP BY {column}",
        (p.start.timestamp(), p.end.timestamp()),
    )
    return {str(k): int(n) for k, n in rows}


def figures(tx: Tx, p: Period) -> Figures:
    span: tuple[Any, ...] = (p.start.timestamp(), p.end.timestamp())
    by_state = _counts(tx, "state", "created_at", p)
    by_type = _counts(tx, "type", "created_at", p)
    closures = _counts(tx, "closure_status", "closed_at", p)
    compliant = tx.one(
        "SELECT count(*) FROM changes WHERE closed_at >= ? AND closed_at < ? AND compliant = 1 "
        "AND closure_status <> 'cancelled'",
        span,
    )
    unauthorized = tx.one(
        "SELECT count(*) FROM audit_events WHERE action = 'unauthorized_attempt' AND at >= ? AND at < ?",
        (p.start.strftime("%Y-%m-%dT%H:%M:%SZ"), p.end.strftime("%Y-%m-%dT%H:%M:%SZ")),
    )
    return Figures(
        days=p.days,
        created=sum(by_state.values()),
        by_state=by_state,
        by_type=by_type,
        closures=closures,
        compliant_closed=int(compliant[0]) if compliant else 0,
        mtta_seconds=_avg(tx, "approved_at - created_at", "approved_at", p),
        mtti_seconds=_avg(tx, "implemented_at - approved_at", "implemented_at", p),
        lead_time_seconds=_avg(tx, "implemented_at - created_at", "implemented_at", p),
        restore_seconds=_avg(
            tx,
            "closed_at - implemented_at",
            "closed_at",
            p,
            "AND closure_status IN ('failed', 'rolled_back')",
        ),
        unauthorized=int(unauthorized[0]) if unauthorized else 0,
        incidents=incidents.count_between(tx, *span),
    )
