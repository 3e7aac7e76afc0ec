"""When a change may be carried out (docs/schedule.md): its planned window, checked at filing and
at implementation. Times are ISO 8601 with an offset (or Z; none means UTC), kept in UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from .errors import Refused, ValidationError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from collections.abc import Iterable

    from .model import Change

WINDOW_MAX = timedelta(days=30)  # a longer "window" is no schedule at all
EXAMPLE = "2026-12-01T22:00:00+01:00"


def instant(field: str, value: object) -> datetime:
    """An ISO 8601 time (an offset or Z; none means UTC), in UTC to the second."""
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, str) and 10 <= len(value.strip()) <= 40:
        try:
            when = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValidationError(field, f"{value!r} is not an ISO 8601 time (e.g. {EXAMPLE})") from None
    else:
        raise ValidationError(field, f"{value!r} is not an ISO 8601 time (e.g. {EXAMPLE})")
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    # The year is checked before converting too: 0001-01-01T00:00+01:00 has no UTC time.
    if not 2000 <= when.year <= 9998 or not 2000 <= when.astimezone(UTC).year <= 9998:
        raise ValidationError(field, f"{value!r} is outside the years 2000–9998")
    when = when.astimezone(UTC).replace(microsecond=0)
    return when


def check_window(change: Change) -> None:
    """Both ends or neither; the end after the start; at most WINDOW_MAX long."""
    start, end = change.planned_start, change.planned_end
    if (start is None) != (end is None):
        raise ValidationError(
            "planned_end" if end is None else "planned_start", "give planned_start and planned_end together"
        )
    if start is not None and end is not None:
        if end <= start:
            raise ValidationError("planned_end", f"{end:%Y-%m-%dT%H:%M:%SZ} is not after planned_start")
        if end - start > WINDOW_MAX:
            raise ValidationError(
                "planned_end", f"the window is over {WINDOW_MAX.days} days; plan a shorter one"
            )


def in_window(change: Change, now: datetime) -> bool:
    """True when the change has no planned window or `now` lies within it."""
    start, end = change.planned_start, change.planned_end
    return start is None or end is None or start <= now < end


def require_window(change: Change, now: datetime) -> None:
    """Implementation happens within the window the approval covered, or is refused."""
    if not in_window(change, now):
        assert change.planned_start is not None and change.planned_end is not None
        raise Refused(
            f"{change.change_id} is planned for {change.planned_start:%Y-%m-%dT%H:%M:%SZ} to "
            f"{change.planned_end:%Y-%m-%dT%H:%M:%SZ}; now ({now:%Y-%m-%dT%H:%M:%SZ}) is outside that "
            "window: reschedule it (cortex-change schedule ID START END)"
        )


def stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def conflicts(change: Change, others: Iterable[Change], names: Iterable[str]) -> list[str]:
    """Other changes planned over the same time that touch the same services or CIs (`names`:
    the change's own, normalised, and its CMDB blast radius), each in words."""
    start, end = change.planned_start, change.planned_end
    mine = set(names)
    found = []
    for other in others:
        if other.change_id == change.change_id or other.planned_start is None or other.planned_end is None:
            continue
        if start is None or end is None or not (other.planned_start < end and start < other.planned_end):
            continue
        theirs = {n.strip().lower() for n in [*other.affected_services, *other.affected_cis]}
        shared = sorted(mine & theirs)
        if shared:
            found.append(
                f"{other.change_id} ({other.state.value}) also changes {', '.join(shared)} from "
                f"{stamp(other.planned_start)} to {stamp(other.planned_end)}"
            )
    return found
