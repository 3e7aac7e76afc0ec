"""Planned windows in the domain (domain/schedule.py, docs/schedule.md): times read as ISO 8601
and kept in UTC to the second, a window's shape, when "now" lies in it, and the refusal to carry
a change out of it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from cortex_change.domain import schedule, workflow
from cortex_change.domain.errors import Refused, ValidationError
from cortex_change.domain.fields import ChangeRequest
from cortex_change.domain.policy import Policy
from cortex_change.domain.schedule import check_window, in_window, instant, require_window

START = datetime(2026, 12, 1, 21, 0, 0, tzinfo=UTC)
END = datetime(2026, 12, 2, 1, 0, 0, tzinfo=UTC)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


# --- instant --------------------------------------------------------------------------------------

INSTANTS: list[tuple[object, datetime]] = [
    ("2026-12-01T22:00:00+01:00", utc(2026, 12, 1, 21, 0, 0)),
    ("2026-12-01T22:00:00-05:30", utc(2026, 12, 2, 3, 30, 0)),
    ("2026-12-01T22:00:00Z", utc(2026, 12, 1, 22, 0, 0)),
    ("2026-12-01T22:00:00+00:00", utc(2026, 12, 1, 22, 0, 0)),
    ("2026-12-01T22:00:00", utc(2026, 12, 1, 22, 0, 0)),  # naive: UTC
    ("2026-12-01T22:00", utc(2026, 12, 1, 22, 0, 0)),
    ("2026-12-01", utc(2026, 12, 1, 0, 0, 0)),
    ("  2026-12-01T22:00:00Z  ", utc(2026, 12, 1, 22, 0, 0)),
    ("2026-12-01T22:00:00.999999Z", utc(2026, 12, 1, 22, 0, 0)),  # microseconds dropped, not rounded
    ("2026-12-01T22:00:59.5+01:00", utc(2026, 12, 1, 21, 0, 59)),
    ("2026-01-01T00:30:00+01:00", utc(2025, 12, 31, 23, 30, 0)),  # crosses the year in UTC
    ("2000-01-01T00:00:00Z", utc(2000, 1, 1, 0, 0, 0)),
    ("9998-12-31T23:59:59Z", utc(9998, 12, 31, 23, 59, 59)),
    (datetime(2026, 12, 1, 22, 0, 0, 123, tzinfo=timezone(timedelta(hours=1))), utc(2026, 12, 1, 21, 0, 0)),
    (datetime(2026, 12, 1, 22, 0, 0), utc(2026, 12, 1, 22, 0, 0)),  # naive datetime: UTC
]


@pytest.mark.parametrize(("given", "expected"), INSTANTS, ids=[str(g) for g, _ in INSTANTS])
def test_an_instant_is_kept_in_utc_to_the_second(given: object, expected: datetime) -> None:
    got = instant("planned_start", given)
    assert got == expected
    assert got.tzinfo is UTC and got.utcoffset() == timedelta(0)
    assert got.microsecond == 0
    assert schedule.stamp(got) == expected.strftime("%Y-%m-%dT%H:%M:%SZ")


NOT_TIMES: list[object] = [
    "",
    "tomorrow",
    "2026-13-01T00:00:00Z",
    "2026-12-32",
    "2026-12-01T24:00:00",
    "2026-12-01T22:00:00+25:00",
    "12/01/2026 22:00",
    "2026",  # too short to be a time
    "2026-12-01T22:00:00.000000000000000000+01:00",  # over 40 characters
    "2026-12-01T22:00:00+01:00 and more text",
    1764626400,  # a number is no ISO 8601 time
    1764626400.0,
    None,
    True,
    ["2026-12-01T22:00:00Z"],
]


@pytest.mark.parametrize("bad", NOT_TIMES, ids=[repr(b) for b in NOT_TIMES])
def test_what_is_not_an_iso_time_is_refused_naming_the_field_and_an_example(bad: object) -> None:
    with pytest.raises(ValidationError) as refused:
        instant("planned_end", bad)
    message = str(refused.value)
    assert message.startswith("planned_end: ")
    assert "is not an ISO 8601 time" in message
    assert schedule.EXAMPLE in message


OUT_OF_RANGE = [
    "1999-12-31T23:59:59Z",
    "2000-01-01T00:30:00+01:00",  # 1999 in UTC
    "9999-01-01T00:00:00Z",
    "9998-12-31T23:00:00-02:00",  # 9999 in UTC
    "1970-01-01T00:00:00Z",
    # At the ends of what Python's datetime holds: converting to UTC overflows. These must be
    # refused like any other year out of range, never escape as an OverflowError.
    "9999-12-31T23:00:00-02:00",
    "0001-01-01T00:00:00+01:00",
]


@pytest.mark.parametrize("bad", OUT_OF_RANGE)
def test_years_outside_2000_to_9998_are_refused_naming_the_field(bad: str) -> None:
    with pytest.raises(ValidationError) as refused:
        instant("planned_start", bad)
    message = str(refused.value)
    assert message.startswith("planned_start: ")
    assert "2000" in message and "9998" in message


# --- check_window ---------------------------------------------------------------------------------

GOOD_WINDOWS = [
    (None, None),
    (START, START + timedelta(seconds=1)),
    (START, END),
    (START, START + timedelta(days=30)),  # exactly the longest window
]


@pytest.mark.parametrize(("start", "end"), GOOD_WINDOWS)
def test_a_window_with_both_ends_in_order_and_at_most_30_days_passes(
    kit: Any, start: datetime | None, end: datetime | None
) -> None:
    check_window(kit.change(planned_start=start, planned_end=end))


BAD_WINDOWS = [
    (START, None, "planned_end", "give planned_start and planned_end together"),
    (None, END, "planned_start", "give planned_start and planned_end together"),
    (START, START, "planned_end", "2026-12-01T21:00:00Z is not after planned_start"),
    (END, START, "planned_end", "2026-12-01T21:00:00Z is not after planned_start"),
    (START, START - timedelta(seconds=1), "planned_end", "is not after planned_start"),
    (START, START + timedelta(days=30, seconds=1), "planned_end", "the window is over 30 days"),
    (START, START + timedelta(days=365), "planned_end", "the window is over 30 days"),
]


@pytest.mark.parametrize(("start", "end", "field", "why"), BAD_WINDOWS)
def test_a_window_missing_an_end_backwards_or_too_long_is_refused(
    kit: Any, start: datetime | None, end: datetime | None, field: str, why: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        check_window(kit.change(planned_start=start, planned_end=end))
    assert str(refused.value).startswith(f"{field}: ")
    assert why in str(refused.value)


# --- in_window and require_window ----------------------------------------------------------------

SECOND = timedelta(seconds=1)
MOMENTS = [
    (START - SECOND, False),
    (START, True),  # the start is in the window
    (START + SECOND, True),
    (END - SECOND, True),
    (END, False),  # the end is not
    (END + SECOND, False),
    (START - timedelta(days=400), False),
    (END + timedelta(days=400), False),
]


@pytest.mark.parametrize(("now", "inside"), MOMENTS)
def test_the_window_holds_its_start_not_its_end(kit: Any, now: datetime, inside: bool) -> None:
    change = kit.change(planned_start=START, planned_end=END)
    assert in_window(change, now) is inside
    if inside:
        require_window(change, now)
    else:
        with pytest.raises(Refused):
            require_window(change, now)


@pytest.mark.parametrize("now", [START - timedelta(days=9999), START, END, END + timedelta(days=9999)])
def test_a_change_without_a_window_may_be_carried_out_at_any_time(kit: Any, now: datetime) -> None:
    change = kit.change()
    assert change.planned_start is None and change.planned_end is None
    assert in_window(change, now) is True
    require_window(change, now)


def test_the_refusal_names_both_ends_now_and_how_to_reschedule(kit: Any) -> None:
    change = kit.change(planned_start=START, planned_end=END)
    with pytest.raises(Refused) as refused:
        require_window(change, END + timedelta(hours=2, seconds=5))
    message = str(refused.value)
    assert kit.CHANGE_ID in message
    assert "2026-12-01T21:00:00Z" in message and "2026-12-02T01:00:00Z" in message
    assert "now (2026-12-02T03:00:05Z)" in message
    assert "reschedule" in message and "cortex-change schedule ID START END" in message


# --- the fields in a request ---------------------------------------------------------------------

REQUEST = {"type": "normal", "category": "deployment", "title": "Deploy", "requested_by": "alice"}


def test_a_request_keeps_its_window_in_utc() -> None:
    request = ChangeRequest.of(
        {**REQUEST, "planned_start": "2026-12-01T22:00:00+01:00", "planned_end": "2026-12-02T02:00:00+01:00"}
    )
    assert (request.planned_start, request.planned_end) == (START, END)


@pytest.mark.parametrize(
    ("window", "field", "why"),
    [
        ({"planned_start": "2026-12-01T22:00:00Z"}, "planned_end", "together"),
        ({"planned_end": "2026-12-01T22:00:00Z"}, "planned_start", "together"),
        (
            {"planned_start": "2026-12-01T22:00:00Z", "planned_end": "2026-12-01T23:00:00+01:00"},
            "planned_end",
            "not after planned_start",
        ),
        (
            {"planned_start": "2026-12-01T22:00:00Z", "planned_end": "2027-01-01T22:00:00Z"},
            "planned_end",
            "over 30 days",
        ),
    ],
)
def test_a_change_filed_with_a_bad_window_is_refused(
    kit: Any, window: dict[str, str], field: str, why: str
) -> None:
    request = ChangeRequest.of({**REQUEST, **window})  # each end is a time; the pair is checked at filing
    ends = {k: getattr(request, k) for k in ("planned_start", "planned_end")}
    with pytest.raises(ValidationError) as refused:
        workflow.created(kit.change(**ends), Policy())
    assert str(refused.value).startswith(f"{field}: ") and why in str(refused.value)


def test_a_request_with_an_end_that_is_no_time_names_it() -> None:
    with pytest.raises(ValidationError) as refused:
        ChangeRequest.of({**REQUEST, "planned_start": "soon", "planned_end": "2026-12-01T22:00:00Z"})
    assert "planned_start" in str(refused.value) and "ISO 8601" in str(refused.value)
