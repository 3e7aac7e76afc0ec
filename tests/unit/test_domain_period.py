"""SPEC §8: reporting periods (`metrics PERIOD`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from cortex_change.domain import period
from cortex_change.domain.errors import ValidationError

NOW = datetime(2025, 3, 3, 15, 30, tzinfo=UTC)


def _day(y: int, m: int, d: int) -> datetime:
    return datetime(y, m, d, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "start", "end", "days"),
    [
        ("today", _day(2025, 3, 3), _day(2025, 3, 4), 1),
        ("week", _day(2025, 2, 25), _day(2025, 3, 4), 7),
        ("month", _day(2025, 2, 2), _day(2025, 3, 4), 30),
        ("2025-01-01 to 2025-01-31", _day(2025, 1, 1), _day(2025, 2, 1), 31),
        ("2025-03-03 to 2025-03-03", _day(2025, 3, 3), _day(2025, 3, 4), 1),
        ("2024-02-28 to 2024-03-01", _day(2024, 2, 28), _day(2024, 3, 2), 3),  # leap year
        ("  2025-01-01   to  2025-01-02 ", _day(2025, 1, 1), _day(2025, 1, 3), 2),
        ("2026-Q3", _day(2026, 7, 1), _day(2026, 10, 1), 92),  # a calendar quarter
        ("2026-q1", _day(2026, 1, 1), _day(2026, 4, 1), 90),
        ("2026-Q4", _day(2026, 10, 1), _day(2027, 1, 1), 92),
        ("2024-02", _day(2024, 2, 1), _day(2024, 3, 1), 29),  # a calendar month (leap year)
        ("2026-12", _day(2026, 12, 1), _day(2027, 1, 1), 31),
    ],
)
def test_periods(text: str, start: datetime, end: datetime, days: int) -> None:
    p = period.parse(text, NOW)
    assert (p.start, p.end, p.days) == (start, end, days)


def test_the_widest_period_spans_1970_to_the_last_instant_of_9999() -> None:
    p = period.parse("1970-01-01 to 9999-12-31", NOW)
    assert p.start == _day(1970, 1, 1)
    assert p.end == datetime.max.replace(tzinfo=UTC)  # 10000-01-01 is not a datetime
    assert (p.start.timestamp(), p.label) == (0, "1970-01-01 to 9999-12-31")
    assert p.end.timestamp() > _day(9999, 12, 31).timestamp()


def test_range_label_is_normalised() -> None:
    assert period.parse(" 2025-01-01  to 2025-01-02", NOW).label == "2025-01-01 to 2025-01-02"
    assert period.parse("week", NOW).label == "week"


def test_today_is_the_utc_day() -> None:
    # 01:30 on the 4th in UTC+3 is still the 3rd in UTC.
    local = datetime(2025, 3, 4, 1, 30, tzinfo=timezone(timedelta(hours=3)))
    assert period.parse("today", local).start == _day(2025, 3, 3)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("yesterday", "is not a period"),
        ("Today", "is not a period"),
        ("", "is not a period"),
        ("2025-01-01", "is not a period"),
        ("2025-01-01 - 2025-01-31", "is not a period"),
        ("2025-1-1 to 2025-1-31", "is not a period"),
        ("2025-02-30 to 2025-03-01", "is not a date"),
        ("2025-13-01 to 2025-13-02", "is not a date"),
        ("2025-02-01 to 2025-01-31", "ends before it starts"),
        ("0001-01-01 to 9999-12-31", "is out of range; allowed: dates within years 1970–9999"),
        ("1969-12-31 to 2025-01-01", "is out of range; allowed: dates within years 1970–9999"),
    ],
)
def test_bad_periods(text: str, needle: str) -> None:
    with pytest.raises(ValidationError, match=needle) as refused:
        period.parse(text, NOW)
    assert refused.value.field == "period"


def test_bad_period_lists_the_allowed_forms() -> None:
    with pytest.raises(ValidationError) as refused:
        period.parse("fortnight", NOW)
    for form in ("today", "week", "month", "YYYY-MM-DD to YYYY-MM-DD"):
        assert form in str(refused.value)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("2026-Q5", "is not a period"),
        ("2026-Q0", "is not a period"),
        ("2026-13", "names no month"),
        ("2026-00", "names no month"),
        ("1969-Q4", "is out of range"),
        ("1969-12", "is out of range"),
    ],
)
def test_quarters_and_months_outside_the_calendar_are_refused_naming_what_is_allowed(
    text: str, says: str
) -> None:
    with pytest.raises(ValidationError) as e:
        period.parse(text, NOW)
    assert says in str(e.value) and "\n" not in str(e.value)


def test_the_last_quarter_of_9999_ends_at_the_last_instant() -> None:
    p = period.parse("9999-Q4", NOW)
    assert (p.start, p.end, p.label) == (_day(9999, 10, 1), datetime.max.replace(tzinfo=UTC), "9999-Q4")
