"""Aggregate queries for metrics: counted in SQL, never by loading records."""

from __future__ import annotations

from typing import Any

from ..domain.metrics import Figures
from ..domain.period import Period
from . import incidents, pir
from .db import Tx
from .observations import unauthorized_between


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


def figures(tx: Tx, p: Period, now: float | None = None) -> Figures:
    """The period's aggregates; what is judged "as of" a time (open or overdue reviews and action
    items) is judged at the period's end, or at `now` when that is earlier."""
    span: tuple[Any, ...] = (p.start.timestamp(), p.end.timestamp())
    as_of = span[1] if now is None else min(span[1], now)
    by_state = _counts(tx, "state", "created_at", p)
    by_type = _counts(tx, "type", "created_at", p)
    closures = _counts(tx, "closure_status", "closed_at", p)
    compliant = tx.one(
        "SELECT count(*) FROM changes WHERE closed_at >= ? AND closed_at < ? AND compliant = 1 "
        "AND closure_status <> 'cancelled'",
        span,
    )
    unauthorized = unauthorized_between(tx, *span)  # observed changes no change covered
    predictions = tx.one(
        "SELECT "
        "sum(CASE WHEN predicted_failure >= 0.5 AND closure_status IN ('failed', 'rolled_back') "
        "THEN 1 ELSE 0 END), "
        "sum(CASE WHEN predicted_failure >= 0.5 AND closure_status = 'successful' THEN 1 ELSE 0 END), "
        "sum(CASE WHEN predicted_failure < 0.5 AND closure_status = 'successful' THEN 1 ELSE 0 END), "
        "sum(CASE WHEN predicted_failure < 0.5 AND closure_status IN ('failed', 'rolled_back') "
        "THEN 1 ELSE 0 END) "
        "FROM changes WHERE closed_at >= ? AND closed_at < ? AND predicted_failure IS NOT NULL",
        span,
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
        unauthorized=unauthorized,
        incidents=incidents.count_between(tx, *span),
        predictions=tuple(int(n or 0) for n in predictions) if predictions else None,
        pir=pir.figures(tx, span[0], span[1], as_of),
    )


# --- the dashboard's weekly series (services/dashboard.py) -----------------------------------
# Week n of a window starting at `start` (a Monday 00:00 UTC, epoch seconds) holds the instants
# start + n * WEEK_SECONDS <= t < start + (n + 1) * WEEK_SECONDS. Each series is one GROUP BY
# over the range of one indexed time column.

WEEK_SECONDS = 604_800
OUTCOMES = ("successful", "failed", "rolled_back", "cancelled", "rejected", "open")
RISK_LEVELS = ("low", "medium", "high", "critical", "unassessed")


def _week(tx: Tx, column: str) -> str:
    """The week number of `column` in the window, taking the window's start as its `?`. The
    query's WHERE keeps the difference non-negative, where SQLite's CAST truncates as floor does
    (without needing SQLite's optional math functions); PostgreSQL's CAST rounds, hence floor."""
    diff = f"({column} - ?) / {WEEK_SECONDS}.0"
    return f"CAST(floor({diff}) AS INTEGER)" if tx.dialect == "postgres" else f"CAST({diff} AS INTEGER)"


class CreatedWeeks:
    """Changes created in each week of the window: how they ended, their type, their risk level."""

    __slots__ = ("created", "emergency", "outcomes", "risk")

    def __init__(self, weeks: int) -> None:
        self.created = [0] * weeks
        self.emergency = [0] * weeks
        # A closure status; else `rejected` (a rejected change has none); else `open`.
        self.outcomes: dict[str, list[int]] = {name: [0] * weeks for name in OUTCOMES}
        self.risk: dict[str, int] = dict.fromkeys(RISK_LEVELS, 0)  # NULL: not assessed (yet)


def created_by_week(tx: Tx, start: float, weeks: int) -> CreatedWeeks:
    """One pass over the window's range of `changes_by_created` (covering, migration 10: no row
    is read), grouped by week, outcome, risk level and type (at most weeks x 6 x 5 x 3 groups),
    folded into the series here."""
    rows = tx.all(
        f"SELECT {_week(tx, 'created_at')}, "
        "CASE WHEN closure_status IS NOT NULL THEN closure_status "
        "WHEN state = 'rejected' THEN 'rejected' ELSE 'open' END, "
        "COALESCE(risk_level, 'unassessed'), type, count(*) "
        "FROM changes WHERE created_at >= ? AND created_at < ? GROUP BY 1, 2, 3, 4",
        (start, start, start + weeks * WEEK_SECONDS),
    )
    out = CreatedWeeks(weeks)
    for week, outcome, risk, kind, n in rows:
        w, count = int(week), int(n)
        if not 0 <= w < weeks:  # only float rounding at the window's very end could do it
            continue
        out.created[w] += count
        if kind == "emergency":
            out.emergency[w] += count
        out.outcomes.setdefault(str(outcome), [0] * weeks)[w] += count
        out.risk[str(risk)] = out.risk.get(str(risk), 0) + count
    return out


def _mean_by_week(tx: Tx, expr: str, column: str, start: float, weeks: int) -> list[float | None]:
    rows = tx.all(
        f"SELECT {_week(tx, column)}, avg({expr}) FROM changes "
        f"WHERE {column} >= ? AND {column} < ? GROUP BY 1",
        (start, start, start + weeks * WEEK_SECONDS),
    )
    means: list[float | None] = [None] * weeks
    for week, mean in rows:
        if 0 <= int(week) < weeks and mean is not None:
            means[int(week)] = float(mean)
    return means


def approval_seconds_by_week(tx: Tx, start: float, weeks: int) -> list[float | None]:
    """Mean seconds from creation to approval of the changes approved each week (MTTA; None:
    none approved), over `changes_by_approved` (approved_at, created_at) alone."""
    return _mean_by_week(tx, "approved_at - created_at", "approved_at", start, weeks)


def implementation_seconds_by_week(tx: Tx, start: float, weeks: int) -> list[float | None]:
    """Mean seconds from approval to implementation of the changes implemented each week (MTTI;
    None: none implemented), over `changes_by_implemented` alone; avg skips a NULL approved_at."""
    return _mean_by_week(tx, "implemented_at - approved_at", "implemented_at", start, weeks)
