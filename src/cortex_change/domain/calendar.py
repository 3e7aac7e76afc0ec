"""The calendar of planned changes (docs/schedule.md): entries, and the iCalendar feed (RFC 5545)
that Outlook and Google Calendar subscribe to. Pure: entries and windows in, text out."""

from __future__ import annotations

from datetime import UTC, datetime

from .values import Frozen

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Final

    from .model import Change
    from .windows import Window

PRODID = "-//cortex-change//calendar//EN"
DOMAIN = "cortex-change"  # the right-hand side of every UID
LINE_OCTETS = 75  # RFC 5545 §3.1: content lines are folded at 75 octets, CRLF excluded
CRLF = "\r\n"
# STATUS of a planned change: tentative until approved, confirmed from then on, cancelled when it
# will not happen.
TENTATIVE = frozenset({"pending_assessment", "assessed", "pending_approval", "pending_cab"})
CANCELLED = frozenset({"rejected", "cancelled"})


class Entry(Frozen):
    """One planned change as the calendar shows it (times in UTC)."""

    __slots__ = (
        "change_id",
        "environment",
        "planned_end",
        "planned_start",
        "requested_by",
        "risk_level",
        "services",
        "state",
        "title",
        "type",
    )

    def __init__(
        self,
        change_id: str,
        title: str,
        state: str,
        type: str,
        risk_level: str | None,
        services: tuple[str, ...],
        requested_by: str,
        planned_start: datetime,
        planned_end: datetime,
        environment: str | None = None,
    ) -> None:
        self.change_id: Final = change_id
        self.title: Final = title
        self.state: Final = state
        self.type: Final = type
        self.risk_level: Final = risk_level
        self.services: Final = services
        self.requested_by: Final = requested_by
        self.planned_start: Final = planned_start
        self.planned_end: Final = planned_end
        self.environment: Final = environment


def entry(change: Change) -> Entry:
    """A planned change's calendar entry (it must have a planned window)."""
    assert change.planned_start is not None and change.planned_end is not None
    return Entry(
        change.change_id,
        change.title,
        change.state.value,
        change.type.value,
        None if change.assessment is None else change.assessment.level.value,
        tuple(change.affected_services),
        change.requested_by,
        change.planned_start,
        change.planned_end,
        change.environment,
    )


def status(state: str) -> str:
    """An entry's STATUS: TENTATIVE before approval, CONFIRMED approved or later, CANCELLED."""
    if state in CANCELLED:
        return "CANCELLED"
    return "TENTATIVE" if state in TENTATIVE else "CONFIRMED"


def utc(when: datetime) -> str:
    """A DATE-TIME in UTC (RFC 5545 §3.3.5, form #2): 20261201T210000Z."""
    return when.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def text(value: str) -> str:
    """A TEXT value (RFC 5545 §3.3.11): backslash, semicolon, comma and newlines escaped, every
    other control character (tab aside) removed."""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    kept = "".join(c for c in value if c in "\n\t" or not _control(c))
    return kept.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def _control(c: str) -> bool:
    code = ord(c)
    return code < 0x20 or 0x7F <= code <= 0x9F


def fold(line: str) -> str:
    """A content line folded at 75 octets (RFC 5545 §3.1): each continuation begins with a space,
    and no UTF-8 character is split between lines."""
    out: list[str] = []
    chunk: list[str] = []
    size, limit = 0, LINE_OCTETS
    for c in line:
        n = len(c.encode("utf-8"))
        if size + n > limit:
            out.append("".join(chunk))
            chunk, size, limit = [], 0, LINE_OCTETS - 1  # the leading space counts
        chunk.append(c)
        size += n
    out.append("".join(chunk))
    return (CRLF + " ").join(out)


def _description(e: Entry) -> str:
    lines = [
        f"State: {e.state}",
        f"Type: {e.type}",
        f"Risk: {e.risk_level or 'not assessed'}",
        f"Services: {', '.join(e.services) or 'none'}",
    ]
    if e.environment:
        lines.append(f"Environment: {e.environment}")
    lines.append(f"Requested by: {e.requested_by}")
    return "\n".join(lines)


def _change_event(e: Entry, stamp: str) -> list[str]:
    return [
        "BEGIN:VEVENT",
        f"UID:{text(e.change_id)}@{DOMAIN}",
        f"DTSTAMP:{stamp}",
        f"DTSTART:{utc(e.planned_start)}",
        f"DTEND:{utc(e.planned_end)}",
        f"SUMMARY:{text(f'{e.change_id} {e.title}')}",
        f"DESCRIPTION:{text(_description(e))}",
        f"STATUS:{status(e.state)}",
        f"CATEGORIES:{text(e.type)}",
        "END:VEVENT",
    ]


def _window_event(w: Window, stamp: str) -> list[str]:
    label = "Freeze" if w.kind == "freeze" else "Maintenance"
    scope = "everything" if w.scope == "all" else f"{w.scope} {w.scope_value}"
    return [
        "BEGIN:VEVENT",
        f"UID:{text(w.window_id)}@{DOMAIN}",
        f"DTSTAMP:{stamp}",
        f"DTSTART:{utc(w.starts_at)}",
        f"DTEND:{utc(w.ends_at)}",
        f"SUMMARY:{text(f'{label}: {w.reason}')}",
        f"DESCRIPTION:{text(f'{label} window {w.window_id} over {scope}')}",
        "TRANSP:TRANSPARENT",
        f"CATEGORIES:{text(w.kind)}",
        "END:VEVENT",
    ]


def ics(entries: Iterable[Entry], windows: Iterable[Window], now: datetime) -> str:
    """An RFC 5545 VCALENDAR: a VEVENT per planned change and per freeze or maintenance window,
    lines folded at 75 octets, CRLF line ends."""
    stamp = utc(now)
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{DOMAIN}",
    ]
    for e in entries:
        lines += _change_event(e, stamp)
    for w in windows:
        lines += _window_event(w, stamp)
    lines.append("END:VCALENDAR")
    return "".join(fold(line) + CRLF for line in lines)
