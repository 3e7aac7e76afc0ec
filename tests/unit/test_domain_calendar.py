"""The iCalendar feed (domain/calendar.py): RFC 5545 text escaping, folding at 75 octets without
splitting a UTF-8 character, CRLF line ends, STATUS by state; parsed back with `icalendar`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from icalendar import Calendar

from cortex_change.domain.calendar import Entry, fold, ics, status, text
from cortex_change.domain.windows import Window

NOW = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
START = datetime(2026, 12, 1, 21, 0, tzinfo=UTC)


def _entry(state: str = "approved", title: str = "Deploy web 2.4", **kw: object) -> Entry:
    fields: dict[str, object] = {
        "change_id": "RFC-20261120093000-1a2b3c",
        "title": title,
        "state": state,
        "type": "normal",
        "risk_level": "medium",
        "services": ("web", "api"),
        "requested_by": "alice",
        "planned_start": START,
        "planned_end": START + timedelta(hours=4),
        "environment": "production",
        **kw,
    }
    return Entry(**fields)  # type: ignore[arg-type]


def _window(kind: str = "freeze", reason: str = "Year-end freeze") -> Window:
    return Window(
        f"W-{kind[:4]}0001",
        kind,
        datetime(2026, 12, 20, tzinfo=UTC),
        datetime(2027, 1, 2, tzinfo=UTC),
        "environment",
        "production",
        reason,
        "change-manager",
    )


def _events(body: str) -> dict[str, object]:
    cal = Calendar.from_ical(body)
    return {str(e["UID"]): e for e in cal.walk("VEVENT")}


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("a,b", "a\\,b"),
        ("a;b", "a\\;b"),
        ("a\\b", "a\\\\b"),
        ("a\nb", "a\\nb"),
        ("a\r\nb", "a\\nb"),
        ("a\rb", "a\\nb"),
        ("bell\x07 nul\x00 del\x7f c1\x85", "bell nul del c1"),
        ("tab\tkept", "tab\tkept"),
        ("\\n is not a newline", "\\\\n is not a newline"),
    ],
)
def test_text_values_are_escaped_and_controls_removed(raw: str, escaped: str) -> None:
    assert text(raw) == escaped


@pytest.mark.parametrize(
    "line",
    [
        "SUMMARY:" + "x" * 200,
        "SUMMARY:" + "é" * 100,  # two octets each
        "SUMMARY:" + "€" * 80,  # three
        "SUMMARY:" + "🚀" * 60,  # four
        "SUMMARY:a" + "日本語テキスト" * 20,  # a line whose characters straddle every fold point
        "SUMMARY:short",
        "X:" + "y" * 73,  # exactly 75 octets: not folded
    ],
)
def test_lines_fold_at_75_octets_without_splitting_a_character(line: str) -> None:
    folded = fold(line)
    parts = folded.split("\r\n")
    for i, part in enumerate(parts):
        octets = part.encode("utf-8")
        assert len(octets) <= 75, (i, len(octets))
        if i:
            assert part.startswith(" ") and len(part) > 1
    assert "".join(p[1:] if i else p for i, p in enumerate(parts)) == line  # unfolding restores it
    if len(line.encode("utf-8")) <= 75:
        assert folded == line


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("pending_assessment", "TENTATIVE"),
        ("assessed", "TENTATIVE"),
        ("pending_approval", "TENTATIVE"),
        ("pending_cab", "TENTATIVE"),
        ("approved", "CONFIRMED"),
        ("implementing", "CONFIRMED"),
        ("implemented", "CONFIRMED"),
        ("rolling_back", "CONFIRMED"),
        ("closed", "CONFIRMED"),
        ("rejected", "CANCELLED"),
        ("cancelled", "CANCELLED"),
    ],
)
def test_status_follows_the_state(state: str, expected: str) -> None:
    assert status(state) == expected
    event = _events(ics([_entry(state)], [], NOW))["RFC-20261120093000-1a2b3c@cortex-change"]
    assert str(event["STATUS"]) == expected  # type: ignore[index]


def test_the_calendar_parses_back_with_every_field() -> None:
    body = ics([_entry()], [_window(), _window("maintenance", "Patch Tuesday")], NOW)
    assert body.endswith("\r\n")
    assert "\n" not in body.replace("\r\n", "")  # CRLF only
    assert all(len(line.encode()) <= 75 for line in body.split("\r\n"))
    cal = Calendar.from_ical(body)
    assert str(cal["VERSION"]) == "2.0"
    assert str(cal["PRODID"]) == "-//cortex-change//calendar//EN"
    assert str(cal["CALSCALE"]) == "GREGORIAN"
    assert str(cal["METHOD"]) == "PUBLISH"
    assert str(cal["X-WR-CALNAME"]) == "cortex-change"
    events = _events(body)
    assert set(events) == {
        "RFC-20261120093000-1a2b3c@cortex-change",
        "W-free0001@cortex-change",
        "W-main0001@cortex-change",
    }
    change: object = events["RFC-20261120093000-1a2b3c@cortex-change"]
    assert change["DTSTART"].dt == START  # type: ignore[index]
    assert change["DTEND"].dt == START + timedelta(hours=4)  # type: ignore[index]
    assert change["DTSTAMP"].dt == NOW  # type: ignore[index]
    assert str(change["SUMMARY"]) == "RFC-20261120093000-1a2b3c Deploy web 2.4"  # type: ignore[index]
    description = str(change["DESCRIPTION"])  # type: ignore[index]
    assert description.splitlines() == [
        "State: approved",
        "Type: normal",
        "Risk: medium",
        "Services: web, api",
        "Environment: production",
        "Requested by: alice",
    ]
    assert change["CATEGORIES"].cats == ["normal"]  # type: ignore[index]
    assert "DTSTART:20261201T210000Z\r\n" in body
    freeze: object = events["W-free0001@cortex-change"]
    assert str(freeze["SUMMARY"]) == "Freeze: Year-end freeze"  # type: ignore[index]
    assert str(freeze["TRANSP"]) == "TRANSPARENT"  # type: ignore[index]
    assert freeze["DTSTART"].dt == datetime(2026, 12, 20, tzinfo=UTC)  # type: ignore[index]
    maintenance: object = events["W-main0001@cortex-change"]
    assert str(maintenance["SUMMARY"]) == "Maintenance: Patch Tuesday"  # type: ignore[index]


def test_hostile_titles_survive_the_round_trip() -> None:
    title = "Fix: a,b;c\\d\nsecond line\r\nthird\x00\x1b[31m " + "ü€🚀" * 40
    body = ics([_entry(title=title, risk_level=None, services=())], [_window(reason="x;y,z\\")], NOW)
    for line in body.split("\r\n"):
        assert len(line.encode("utf-8")) <= 75
        line.encode("utf-8").decode("utf-8")  # each physical line is whole UTF-8
    assert "\x00" not in body and "\x1b" not in body
    events = _events(body)
    summary = str(events["RFC-20261120093000-1a2b3c@cortex-change"]["SUMMARY"])  # type: ignore[index]
    assert summary == "RFC-20261120093000-1a2b3c " + "Fix: a,b;c\\d\nsecond line\nthird[31m " + "ü€🚀" * 40
    description = str(events["RFC-20261120093000-1a2b3c@cortex-change"]["DESCRIPTION"])  # type: ignore[index]
    assert "Risk: not assessed" in description and "Services: none" in description
    assert str(events["W-free0001@cortex-change"]["SUMMARY"]) == "Freeze: x;y,z\\"  # type: ignore[index]


def test_an_empty_calendar_is_still_a_calendar() -> None:
    body = ics([], [], NOW)
    assert body.startswith("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n")
    assert body.endswith("END:VCALENDAR\r\n")
    assert Calendar.from_ical(body).walk("VEVENT") == []
