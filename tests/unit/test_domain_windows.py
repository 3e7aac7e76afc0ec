"""Freeze and maintenance windows, as tables: definitions refused, scopes, what a freeze does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cortex_change.domain import windows
from cortex_change.domain.errors import Refused, ValidationError
from cortex_change.domain.model import Change, ChangeType, Level, Route, Timeline
from cortex_change.domain.windows import Window

T0 = datetime(2026, 12, 20, tzinfo=UTC)


def _change(**kw: Any) -> Change:
    fields: dict[str, Any] = {
        "change_id": "RFC-20261201000000-abcdef",
        "type": ChangeType.NORMAL,
        "category": "deployment",
        "title": "t",
        "description": "",
        "requested_by": "dev",
        "impact": Level.LOW,
        "urgency": Level.LOW,
        "timeline": Timeline(created_at=T0),
        "affected_services": ["Web"],
        "environment": "production",
    }
    fields.update(kw)
    return Change(**fields)


def _freeze(scope: str, value: str | None, hours: int = 24) -> Window:
    return Window("W-1", "freeze", T0, T0 + timedelta(hours=hours), scope, value, "year end", "cm")


@pytest.mark.parametrize(
    ("kind", "start", "end", "scope", "error"),
    [
        (
            "thaw",
            "2026-12-20",
            "2026-12-21",
            "all",
            "KIND: 'thaw' is not allowed; allowed: freeze, maintenance",
        ),
        ("freeze", "2026-12-21", "2026-12-20", "all", "END: '2026-12-20' is not after START"),
        ("freeze", "2026-12-20", "2026-12-20", "all", "END: '2026-12-20' is not after START"),
        ("freeze", "2026-12-20", "2028-01-01", "all", "END: a window lasts at most 360 days"),
        ("freeze", "soon", "2026-12-21", "all", "START: 'soon' is not an ISO 8601 time"),
        ("freeze", "2026-12-20", "2026-12-21", "galaxy:far", "--scope: 'galaxy:far' is not allowed"),
        ("freeze", "2026-12-20", "2026-12-21", "all:x", "--scope: 'all:x' is not allowed"),
        ("freeze", "2026-12-20", "2026-12-21", "service", "--scope: 'service' is not allowed"),
        ("freeze", "2026-12-20", "2026-12-21", "tier:7", "--scope: tier '7' is not a tier (0, 1, 2 or 3)"),
    ],
)
def test_bad_definitions_are_refused_naming_what_is_allowed(
    kind: str, start: str, end: str, scope: str, error: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        windows.define("W-1", kind, start, end, scope, "reason", "cm")
    assert str(refused.value).startswith(error)


def test_a_window_is_kept_in_utc_with_its_scope() -> None:
    w = windows.define(
        "W-1", "freeze", "2026-12-20T00:00:00+01:00", "2026-12-21", "service:Web", "year end", "cm"
    )
    assert (w.starts_at, w.ends_at) == (
        datetime(2026, 12, 19, 23, tzinfo=UTC),
        datetime(2026, 12, 21, tzinfo=UTC),
    )
    assert (w.scope, w.scope_value) == ("service", "web")


RADIUS = {"cis": [{"name": "db", "tier": 0}, {"name": "web", "tier": 2}]}


@pytest.mark.parametrize(
    ("scope", "value", "change", "radius", "applies"),
    [
        ("all", None, {}, None, True),
        ("environment", "production", {}, None, True),
        ("environment", "staging", {}, None, False),
        ("environment", "production", {"environment": None}, None, False),
        ("service", "web", {}, None, True),  # the change's services are compared in lower case
        ("service", "api", {}, None, False),
        ("tier", "0", {}, RADIUS, True),  # its blast radius reaches a tier-0 CI
        ("tier", "0", {}, {"cis": [{"name": "web", "tier": 2}]}, False),
        ("tier", "2", {}, {"cis": [{"name": "web", "tier": 2}]}, True),
        ("tier", "1", {}, None, False),  # no CMDB: a tier scope cannot apply
    ],
)
def test_scopes(scope: str, value: str | None, change: dict[str, Any], radius: Any, applies: bool) -> None:
    assert _freeze(scope, value).applies_to(_change(**change), radius) is applies


@pytest.mark.parametrize(
    ("start_h", "end_h", "overlaps"),
    [(-2, 0, False), (-2, 1, True), (23, 25, True), (24, 26, False), (2, 3, True), (-5, 30, True)],
)
def test_overlap_is_half_open(start_h: int, end_h: int, overlaps: bool) -> None:
    w = _freeze("all", None)
    assert w.overlaps(T0 + timedelta(hours=start_h), T0 + timedelta(hours=end_h)) is overlaps


@pytest.mark.parametrize(
    ("change_type", "policy", "outcome"),
    [
        (ChangeType.NORMAL, "refuse", "refused"),
        (ChangeType.STANDARD, "refuse", "refused"),
        (ChangeType.NORMAL, "cab", "the CAB decides (FREEZE_POLICY=cab)"),
        (ChangeType.EMERGENCY, "refuse", "an emergency is allowed, flagged for its review"),
        (ChangeType.EMERGENCY, "cab", "an emergency is allowed, flagged for its review"),
    ],
)
def test_what_a_freeze_does_at_assessment(change_type: ChangeType, policy: str, outcome: str) -> None:
    change = _change(type=change_type)
    frozen = [_freeze("all", None)]
    if outcome == "refused":
        with pytest.raises(Refused) as refused:
            windows.freeze_decision(change, frozen, policy)
        assert "is planned during freeze W-1 (everything" in str(refused.value)
        assert "reschedule it outside the freeze" in str(refused.value)
    else:
        assert outcome in (windows.freeze_decision(change, frozen, policy) or "")
    assert windows.freeze_decision(change, [], policy) is None


@pytest.mark.parametrize(
    ("change_type", "route", "policy", "refused"),
    [
        (ChangeType.NORMAL, Route.TECHNICAL_LEAD, "refuse", True),
        (ChangeType.NORMAL, Route.CAB, "refuse", True),
        (ChangeType.NORMAL, Route.CAB, "cab", False),  # the CAB approved it during the freeze
        (ChangeType.NORMAL, Route.TECHNICAL_LEAD, "cab", True),
        (ChangeType.EMERGENCY, Route.EMERGENCY_CAB, "refuse", False),
    ],
)
def test_what_a_freeze_in_force_does_to_implementation(
    change_type: ChangeType, route: Route, policy: str, refused: bool
) -> None:
    from cortex_change.domain.model import Assessment, RiskComponent

    change = _change(type=change_type)
    change.assessment = Assessment(
        50, Level.MEDIUM, "P3", route, {"impact": RiskComponent(20, "")}, [], "", "", T0
    )
    now = T0 + timedelta(hours=1)
    if refused:
        with pytest.raises(Refused) as stopped:
            windows.implementation_frozen(change, [_freeze("all", None)], policy, now)
        assert str(stopped.value).startswith(f"{change.change_id} may not be carried out now: freeze W-1")
    else:
        windows.implementation_frozen(change, [_freeze("all", None)], policy, now)
    windows.implementation_frozen(change, [_freeze("all", None)], policy, T0 + timedelta(hours=25))  # over


SATURDAYS = windows.define(
    "W-2", "maintenance", "2026-12-01", "2027-01-01", "all", "Saturday night", "cm", "0 22 * * 6", "4h"
)  # 2026-12-05 is a Saturday


@pytest.mark.parametrize(
    ("start", "end", "overlaps", "contains"),
    [
        ("2026-12-05T22:00:00Z", "2026-12-06T02:00:00Z", True, True),  # exactly one occurrence
        ("2026-12-05T23:00:00Z", "2026-12-06T01:00:00Z", True, True),
        ("2026-12-05T21:00:00Z", "2026-12-05T23:00:00Z", True, False),  # starts before it opens
        ("2026-12-06T01:00:00Z", "2026-12-06T03:00:00Z", True, False),  # runs past its end
        ("2026-12-06T02:00:00Z", "2026-12-06T03:00:00Z", False, False),  # half-open: ends at 02:00
        ("2026-12-07T22:00:00Z", "2026-12-08T01:00:00Z", False, False),  # a Monday
        ("2027-01-02T22:00:00Z", "2027-01-03T01:00:00Z", False, False),  # after the window's END
    ],
)
def test_a_recurring_window_is_its_occurrences(start: str, end: str, overlaps: bool, contains: bool) -> None:
    s, e = datetime.fromisoformat(start), datetime.fromisoformat(end)
    assert SATURDAYS.overlaps(s, e) is overlaps
    assert SATURDAYS.contains(s, e) is contains


@pytest.mark.parametrize(
    ("cron", "duration", "policy", "kind", "error"),
    [
        ("not a cron", "1h", None, "maintenance", "--cron: 'not a cron' is not a cron expression"),
        (
            "0 * * * *",
            "2h",
            None,
            "maintenance",
            "--duration: '2h' is longer than the time between occurrences",
        ),
        ("0 22 * * 6", None, None, "maintenance", "--cron: give --cron and --duration together"),
        (None, "1h", None, "maintenance", "--cron: give --cron and --duration together"),
        (
            None,
            None,
            "cab",
            "maintenance",
            "--policy: 'cab' is not allowed; a freeze's policy is refuse or cab",
        ),
        (None, None, "maybe", "freeze", "--policy: 'maybe' is not allowed"),
    ],
)
def test_bad_recurrences_and_policies(
    cron: str | None, duration: str | None, policy: str | None, kind: str, error: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        windows.define("W-3", kind, "2026-12-01", "2027-01-01", "all", "r", "cm", cron, duration, policy)
    assert str(refused.value).startswith(error)


def test_a_freeze_s_own_policy_wins_over_freeze_policy() -> None:
    cab_freeze = Window("W-4", "freeze", T0, T0 + timedelta(days=1), "all", None, "r", "cm", policy="cab")
    refuse_freeze = Window(
        "W-5", "freeze", T0, T0 + timedelta(days=1), "all", None, "r", "cm", policy="refuse"
    )
    change = _change()
    assert "the CAB decides" in (windows.freeze_decision(change, [cab_freeze], "refuse") or "")
    with pytest.raises(Refused):
        windows.freeze_decision(change, [refuse_freeze], "cab")
    with pytest.raises(Refused):  # the strictest of several
        windows.freeze_decision(change, [cab_freeze, refuse_freeze], "cab")
