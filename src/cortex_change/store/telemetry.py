"""Scrape-time figures for Prometheus: counted in SQL over the whole store, never by loading records."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .db import Tx


@dataclass(frozen=True)
class Latency:
    """A histogram of approval latencies: cumulative counts at each upper bound, count and sum."""

    bounds: tuple[float, ...]
    cumulative: tuple[int, ...]
    count: int = 0
    total: float = 0.0


@dataclass(frozen=True)
class Snapshot:
    """Everything /metrics reports, read in one snapshot of the store."""

    changes_by_state: dict[str, int] = field(default_factory=dict)
    events_by_action: dict[str, int] = field(default_factory=dict)
    outbox_by_state: dict[str, int] = field(default_factory=dict)
    chain_length: int = 0
    incidents_open: int = 0
    approval_latency: Latency = field(default_factory=lambda: Latency((), ()))


def _grouped(tx: Tx, table: str, column: str) -> dict[str, int]:
    rows = tx.all(f"SELECT {column}, count(*) FROM {table} GROUP BY {column}")
    return {str(key): int(n) for key, n in rows}


def _scalar(tx: Tx, sql: str) -> int:
    row = tx.one(sql)
    return int(row[0]) if row and row[0] is not None else 0


def approval_latency(tx: Tx, bounds: Sequence[float]) -> Latency:
    """approved_at − created_at of every change that reached approval, bucketed in one scan."""
    buckets = ", ".join("sum(CASE WHEN approved_at - created_at <= ? THEN 1 ELSE 0 END)" for _ in bounds)
    row = tx.one(
        f"SELECT {buckets}{', ' if bounds else ''}count(*), sum(approved_at - created_at) "
        "FROM changes WHERE approved_at IS NOT NULL",
        [float(b) for b in bounds],
    )
    assert row is not None  # an aggregate always answers one row
    counts = tuple(int(n or 0) for n in row[: len(bounds)])
    count, total = row[len(bounds)], row[len(bounds) + 1]
    return Latency(tuple(bounds), counts, int(count or 0), float(total or 0.0))


def snapshot(tx: Tx, bounds: Sequence[float]) -> Snapshot:
    """Counts by change state, audit events by action, outbox rows by state, chain, incidents."""
    return Snapshot(
        changes_by_state=_grouped(tx, "changes", "state"),
        events_by_action=_grouped(tx, "audit_events", "action"),
        outbox_by_state=_grouped(tx, "outbox", "state"),
        chain_length=_scalar(tx, "SELECT seq FROM audit_head WHERE id = 1"),
        incidents_open=_scalar(tx, "SELECT count(*) FROM incidents WHERE state = 'open'"),
        approval_latency=approval_latency(tx, bounds),
    )
