"""Reporting periods: today, week, month, or 'YYYY-MM-DD to YYYY-MM-DD' (end inclusive)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta

from .errors import ValidationError
from .values import Frozen

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Final

ROLLING_DAYS = {"today": 1, "week": 7, "month": 30}
RANGE = re.compile(r"^\s*(\d{4}-\d{2}-\d{2})\s+to\s+(\d{4}-\d{2}-\d{2})\s*$")
ALLOWED = "today, week (last 7 days), month (last 30 days) or 'YYYY-MM-DD to YYYY-MM-DD'"
FIRST_YEAR, LAST_YEAR = 1970, 9999  # SPEC §11: periods lie within these years


class Period(Frozen):
    __slots__ = ("end", "label", "start")

    def __init__(self, label: str, start: datetime, end: datetime) -> None:
        self.label: Final = label
        self.start: Final = start  # inclusive
        self.end: Final = end  # exclusive

    @property
    def days(self) -> float:
        return (self.end - self.start).total_seconds() / 86400


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationError("period", f"{text!r} is not a date; allowed: {ALLOWED}") from None


def parse(text: str, now: datetime) -> Period:
    """The half-open UTC interval a period names; rolling periods end at the end of today."""
    today = now.astimezone(UTC).date()
    if text in ROLLING_DAYS:
        first = today - timedelta(days=ROLLING_DAYS[text] - 1)
        return Period(text, _midnight(first), _midnight(today + timedelta(days=1)))
    m = RANGE.match(text)
    if not m:
        raise ValidationError("period", f"{text!r} is not a period; allowed: {ALLOWED}")
    first, last = _day(m.group(1)), _day(m.group(2))
    if last < first:
        raise ValidationError("period", f"{text!r} ends before it starts")
    if first.year < FIRST_YEAR:  # `last` is not before `first`, and no date is after 9999
        raise ValidationError(
            "period", f"{text!r} is out of range; allowed: dates within years {FIRST_YEAR}–{LAST_YEAR}"
        )
    return Period(f"{first} to {last}", _midnight(first), _end(last))


def _end(last: date) -> datetime:
    """The exclusive end after day `last`: the next midnight, or for 9999-12-31 the last
    representable instant (its next midnight would be in year 10000)."""
    if last == date.max:
        return datetime.max.replace(tzinfo=UTC)
    return _midnight(last + timedelta(days=1))
