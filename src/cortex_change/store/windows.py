"""Freeze and maintenance windows (domain/windows.py's values)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ..domain.windows import Window
from .db import Tx

COLUMNS = (
    "window_id, kind, starts_at, ends_at, scope, scope_value, reason, created_by, cron, duration_seconds, "
    "policy"
)


def _window(row: tuple[object, ...]) -> Window:
    wid, kind, starts, ends, scope, value, reason, by, cron, seconds, policy = row
    return Window(
        str(wid),
        str(kind),
        datetime.fromtimestamp(float(starts), UTC),  # type: ignore[arg-type]
        datetime.fromtimestamp(float(ends), UTC),  # type: ignore[arg-type]
        str(scope),
        None if value is None else str(value),
        str(reason),
        str(by),
        None if cron is None else str(cron),
        None if seconds is None else timedelta(seconds=float(seconds)),  # type: ignore[arg-type]
        None if policy is None else str(policy),
    )


def insert(tx: Tx, w: Window, now: float) -> None:
    tx.run(
        f"INSERT INTO change_windows ({COLUMNS}, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            w.window_id,
            w.kind,
            w.starts_at.timestamp(),
            w.ends_at.timestamp(),
            w.scope,
            w.scope_value,
            w.reason,
            w.created_by,
            w.cron,
            None if w.duration is None else w.duration.total_seconds(),
            w.policy,
            now,
        ),
    )


def overlapping(tx: Tx, start: float, end: float) -> list[Window]:
    """Windows over any part of [start, end), soonest first."""
    rows = tx.all(
        f"SELECT {COLUMNS} FROM change_windows WHERE starts_at < ? AND ends_at > ? "
        "ORDER BY starts_at, window_id",
        (end, start),
    )
    return [_window(tuple(r)) for r in rows]


def listing(tx: Tx, after: float) -> list[Window]:
    """Windows not over by `after`, soonest first."""
    rows = tx.all(
        f"SELECT {COLUMNS} FROM change_windows WHERE ends_at > ? ORDER BY starts_at, window_id", (after,)
    )
    return [_window(tuple(r)) for r in rows]


def delete(tx: Tx, window_id: str) -> int:
    return tx.run("DELETE FROM change_windows WHERE window_id = ?", (window_id,))
