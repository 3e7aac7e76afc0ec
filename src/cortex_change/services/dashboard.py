"""The portal's dashboard (issue 13): weekly series over the last weeks and the month's KPIs and
DORA figures, counted in SQL (store/reports.py) in one read, as plain JSON-able values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ..domain import period
from ..domain.errors import ValidationError
from ..store import reports
from .context import Context
from .reports import report

MAX_WEEKS = 53  # a year of weeks, whichever way it falls
KPI_PERIOD = "month"  # the KPIs' and DORA figures' period (domain/period.py: the last 30 days)


def week_start(now: datetime) -> datetime:
    """Monday 00:00 UTC of the week holding `now`."""
    day = now.astimezone(UTC).date()
    return datetime.combine(day - timedelta(days=day.weekday()), datetime.min.time(), tzinfo=UTC)


def _stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _scaled(values: list[float | None], seconds: int) -> list[float | None]:
    return [None if v is None else round(v / seconds, 2) for v in values]


def dashboard(ctx: Context, *, weeks: int = 12) -> dict[str, Any]:
    """The last `weeks` weeks (Monday 00:00 UTC to Monday, the current week last) as series of
    one value a week, the window's risk-level mix, and the `metrics_report` of the month.

    Shape (every list has one entry per week, oldest first):

        {"generated_at": "2026-01-15T09:00:00Z",
         "window": {"start": "…Z", "end": "…Z"},           # end exclusive: next Monday
         "weeks": ["2025-10-27", …],                       # each week's Monday (ISO date)
         "created": [int, …],                              # changes created that week
         "outcomes": {"successful"|"failed"|"rolled_back"|"cancelled"|"rejected"|"open": [int, …]},
         "mtta_hours": [float | None, …],                  # by week of approval; None: none
         "mtti_minutes": [float | None, …],                # by week of implementation; None: none
         "emergency": [int, …],                            # emergency changes created that week
         "emergency_rate": [float | None, …],              # % of that week's created; None: none
         "risk_mix": {"low"|"medium"|"high"|"critical"|"unassessed": int},  # created in window
         "metrics": {…}}                                   # services/reports.metrics_report's shape

    `outcomes` sorts the changes created in a week by how they ended: their closure status, else
    `rejected`, else `open` (still under way); its lists add up to `created`.
    """
    if isinstance(weeks, bool) or not isinstance(weeks, int) or not 1 <= weeks <= MAX_WEEKS:
        raise ValidationError("weeks", f"{weeks!r} is not a number of weeks; allowed: 1 to {MAX_WEEKS}")
    now = ctx.clock()
    first = week_start(now) - timedelta(weeks=weeks - 1)
    start = first.timestamp()
    month = period.parse(KPI_PERIOD, now)
    with ctx.db.read() as tx:
        created = reports.created_by_week(tx, start, weeks)
        mtta = reports.approval_seconds_by_week(tx, start, weeks)
        mtti = reports.implementation_seconds_by_week(tx, start, weeks)
        figures = reports.figures(tx, month)
    return {
        "generated_at": _stamp(now),
        "window": {"start": _stamp(first), "end": _stamp(first + timedelta(weeks=weeks))},
        "weeks": [(first + timedelta(weeks=n)).date().isoformat() for n in range(weeks)],
        "created": created.created,
        "outcomes": created.outcomes,
        "mtta_hours": _scaled(mtta, 3600),
        "mtti_minutes": _scaled(mtti, 60),
        "emergency": created.emergency,
        "emergency_rate": [
            None if total == 0 else round(100.0 * e / total, 2)
            for e, total in zip(created.emergency, created.created, strict=True)
        ],
        "risk_mix": created.risk,
        "metrics": report(month, figures),
    }
