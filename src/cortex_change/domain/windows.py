"""Freeze and maintenance windows (docs/schedule.md): which apply to a change, and what a freeze
does to it. Pure: windows and the change in, a decision out."""

from __future__ import annotations

from datetime import datetime, timedelta

from . import validation as v
from .errors import Refused, ValidationError
from .schedule import WINDOW_MAX, instant
from .values import Frozen

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from typing import Any, Final

    from .model import Change

KINDS = ("freeze", "maintenance")
SCOPES = ("all", "environment", "service", "tier")
FREEZE_POLICIES = ("refuse", "cab")
LONGEST = WINDOW_MAX * 12  # a freeze may span a season, not forever
ONE_SECOND = timedelta(seconds=1)
OCCURRENCES_MAX = 10_000  # a minutely cron over a long span is refused at definition, but bounded anyway


def _times(cron: str, after: datetime) -> Iterator[datetime]:
    """The cron expression's times (UTC) from `after` on."""
    from datetime import UTC

    try:
        from cronsim import CronSim
    except ImportError:
        from .errors import MissingPackage

        raise MissingPackage("recurring windows (--cron)", "cronsim", "worker") from None
    naive = after.astimezone(UTC).replace(tzinfo=None, microsecond=0) - ONE_SECOND
    for t in CronSim(cron, naive):
        yield t.replace(tzinfo=UTC)


class Window(Frozen):
    """A window from `starts_at` to `ends_at`; with `cron`, a window of `duration` at each of the
    expression's times (UTC) between them. `policy` (freezes): refuse or cab; None follows
    FREEZE_POLICY."""

    __slots__ = (
        "created_by",
        "cron",
        "duration",
        "ends_at",
        "kind",
        "policy",
        "reason",
        "scope",
        "scope_value",
        "starts_at",
        "window_id",
    )

    def __init__(
        self,
        window_id: str,
        kind: str,
        starts_at: datetime,
        ends_at: datetime,
        scope: str,
        scope_value: str | None,
        reason: str,
        created_by: str,
        cron: str | None = None,
        duration: timedelta | None = None,
        policy: str | None = None,
    ) -> None:
        self.window_id: Final = window_id
        self.kind: Final = kind
        self.starts_at: Final = starts_at
        self.ends_at: Final = ends_at
        self.scope: Final = scope
        self.scope_value: Final = scope_value
        self.reason: Final = reason
        self.created_by: Final = created_by
        self.cron: Final = cron
        self.duration: Final = duration
        self.policy: Final = policy

    def describe(self) -> str:
        where = "everything" if self.scope == "all" else f"{self.scope} {self.scope_value}"
        span = f"{self.starts_at:%Y-%m-%dT%H:%M:%SZ} to {self.ends_at:%Y-%m-%dT%H:%M:%SZ}"
        if self.cron is not None and self.duration is not None:
            span = f"{self.duration} at '{self.cron}' (UTC) from {span}"
        return f"{self.kind} {self.window_id} ({where}, {span}: {self.reason})"

    def occurrences(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        """The window's spans that overlap [start, end): itself, or each cron occurrence."""
        if not (self.starts_at < end and start < self.ends_at):
            return []
        if self.cron is None or self.duration is None:
            return [(self.starts_at, self.ends_at)]
        spans: list[tuple[datetime, datetime]] = []
        for t in _times(self.cron, max(self.starts_at, start - self.duration)):
            if t >= min(end, self.ends_at) or len(spans) >= OCCURRENCES_MAX:
                break
            spans.append((t, min(t + self.duration, self.ends_at)))
        return [(s, e) for s, e in spans if s < end and start < e]

    def overlaps(self, start: datetime, end: datetime) -> bool:
        return bool(self.occurrences(start, end))

    def contains(self, start: datetime, end: datetime) -> bool:
        """Whether one of the window's spans holds all of [start, end)."""
        return any(s <= start and end <= e for s, e in self.occurrences(start, end))

    def applies_to(self, change: Change, radius: dict[str, Any] | None = None) -> bool:
        """Whether the change is within this window's scope (services by name; tiers through its
        blast radius: `radius`, else the one its assessment recorded)."""
        if self.scope == "all":
            return True
        if self.scope == "environment":
            return change.environment == self.scope_value
        if self.scope == "service":
            return self.scope_value in {s.strip().lower() for s in change.affected_services}
        if radius is None and change.assessment is not None:
            radius = change.assessment.blast_radius
        tiers = [ci["tier"] for ci in (radius or {}).get("cis", [])]
        return bool(tiers) and min(tiers) <= int(self.scope_value or 0)


def define(
    window_id: str,
    kind: str,
    start: str,
    end: str,
    scope: str,
    reason: str,
    created_by: str,
    cron: str | None = None,
    duration: str | None = None,
    policy: str | None = None,
) -> Window:
    """A window from what a person typed: `scope` is all, environment:NAME, service:NAME or tier:N;
    with `cron` and `duration`, recurring between START and END; `policy` for a freeze."""
    if kind not in KINDS:
        raise ValidationError("KIND", f"{kind!r} is not allowed; allowed: {', '.join(KINDS)}")
    starts, ends = instant("START", start), instant("END", end)
    if ends <= starts:
        raise ValidationError("END", f"{end!r} is not after START")
    if ends - starts > LONGEST:
        raise ValidationError("END", f"a window lasts at most {LONGEST.days} days")
    what, _, value = scope.partition(":")
    if what not in SCOPES or (what == "all") != (value == ""):
        raise ValidationError(
            "--scope", f"{scope!r} is not allowed; allowed: all, environment:NAME, service:NAME, tier:N"
        )
    if what == "tier" and value not in ("0", "1", "2", "3"):
        raise ValidationError("--scope", f"tier {value!r} is not a tier (0, 1, 2 or 3)")
    if what in ("environment", "service"):
        value = v.name("--scope", value).strip().lower() if what == "service" else v.name("--scope", value)
    v.reason("--reason", reason)
    every = _recurring(cron, duration, starts)
    if policy is not None and (kind != "freeze" or policy not in FREEZE_POLICIES):
        raise ValidationError("--policy", f"{policy!r} is not allowed; a freeze's policy is refuse or cab")
    return Window(window_id, kind, starts, ends, what, value or None, reason, created_by, cron, every, policy)


def _recurring(cron: str | None, duration: str | None, starts: datetime) -> timedelta | None:
    if (cron is None) != (duration is None):
        raise ValidationError("--cron", "give --cron and --duration together (a recurring window)")
    if cron is None or duration is None:
        return None
    from .plan import duration as seconds

    length = timedelta(seconds=seconds("--duration", duration))
    try:
        first, second = (t for t, _ in zip(_times(cron, starts), range(2), strict=False))
    except ValueError:  # fewer than two times
        raise ValidationError("--cron", f"{cron!r} names no recurring time") from None
    except Exception as exc:  # cronsim's CronSimError: a bad expression
        if type(exc).__name__ != "CronSimError":
            raise
        raise ValidationError("--cron", f"{cron!r} is not a cron expression: {exc}") from None
    if second - first < length:
        raise ValidationError("--duration", f"{duration!r} is longer than the time between occurrences")
    return length


def freezes(
    windows: Iterable[Window],
    change: Change,
    start: datetime,
    end: datetime,
    radius: dict[str, Any] | None = None,
) -> list[Window]:
    """The freezes over [start, end) that apply to the change."""
    return [
        w for w in windows if w.kind == "freeze" and w.overlaps(start, end) and w.applies_to(change, radius)
    ]


def implementation_frozen(change: Change, active: Iterable[Window], policy: str, now: datetime) -> None:
    """At implementation: a freeze in force now stops all but an emergency, and, with
    FREEZE_POLICY=cab, a change the CAB approved."""
    from .routing import RANK

    frozen = freezes(active, change, now, now + ONE_SECOND)
    if not frozen or change.type.value == "emergency":
        return
    cab = all((w.policy or policy) == "cab" for w in frozen)
    if cab and change.assessment is not None and RANK[change.assessment.route] >= 2:
        return
    named = "; ".join(w.describe() for w in frozen)
    raise Refused(f"{change.change_id} may not be carried out now: {named}")


def freeze_decision(change: Change, frozen: list[Window], policy: str) -> str | None:
    """What freezes do to a change at assessment: an emergency is allowed and flagged (its review
    covers it); otherwise refused, or (FREEZE_POLICY=cab) sent to the CAB. Returns the words for
    the route's reason, or None when nothing freezes it."""
    if not frozen:
        return None
    named = "; ".join(w.describe() for w in frozen)
    if change.type.value == "emergency":
        return f"during {named}: an emergency is allowed, flagged for its review"
    if any((w.policy or policy) == "refuse" for w in frozen):
        raise Refused(
            f"{change.change_id} is planned during {named}: reschedule it outside the freeze "
            "(or FREEZE_POLICY=cab sends such changes to the CAB)"
        )
    return f"during {named}: the CAB decides (FREEZE_POLICY=cab)"


UP_ONE = {"technical-lead": "cab", "cab": "cab+ciso+cto"}


def outside_maintenance(
    change: Change, maintenance: Iterable[Window], radius: dict[str, Any] | None
) -> str | None:
    """A change reaching a tier-0 CI (its blast radius) planned outside every maintenance window
    that applies to it goes one route higher; the words why, or None. No maintenance window for
    it at all: no rule (nothing to be outside of)."""
    tiers = [ci["tier"] for ci in (radius or {}).get("cis", [])]
    if not tiers or min(tiers) != 0:
        return None
    applicable = [w for w in maintenance if w.kind == "maintenance" and w.applies_to(change, radius)]
    if not applicable:
        return None
    start, end = change.planned_start, change.planned_end
    if start is not None and end is not None and any(w.contains(start, end) for w in applicable):
        return None
    named = ", ".join(w.window_id for w in applicable)
    return f"touches tier 0 outside its maintenance windows ({named}): one route higher"
