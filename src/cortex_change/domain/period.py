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
QUARTER = re.compile(r"^(\d{4})-[Qq]([1-4])$")
MONTH = re.compile(r"^(\d{4})-(\d{2})$")
ALLOWED = (
    "today, week (last 7 days), month (last 30 days), a calendar month 'YYYY-MM', a quarter "
    "'YYYY-Q1'..'YYYY-Q4' or 'YYYY-MM-DD to YYYY-MM-DD'"
)
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
    calendar = _calendar(text)
    if calendar is not None:
        return calendar
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


def _calendar(text: str) -> Period | None:
    """A calendar quarter ('2026-Q3': July to September) or month ('2026-07'), or None."""
    q, m = QUARTER.match(text), MONTH.match(text)
    if q:
        year, first_month, months = int(q.group(1)), 3 * int(q.group(2)) - 2, 3
    elif m:
        year, first_month, months = int(m.group(1)), int(m.group(2)), 1
        if not 1 <= first_month <= 12:
            raise ValidationError("period", f"{text!r} names no month; allowed: {ALLOWED}")
    else:
        return None
    if year < FIRST_YEAR:
        raise ValidationError(
            "period", f"{text!r} is out of range; allowed: dates within years {FIRST_YEAR}–{LAST_YEAR}"
        )
    first = date(year, first_month, 1)
    after = first_month + months
    last = date(year, 12, 31) if after > 12 else date(year, after, 1) - timedelta(days=1)
    return Period(text.upper(), _midnight(first), _end(last))
