"""SPEC §3: priority matrix, the four risk components, levels, routes, assessors."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cortex_change.domain import risk, routing, workflow
from cortex_change.domain.lifecycle import State
from cortex_change.domain.model import ChangeType, ClosureStatus, Level, Route
from cortex_change.domain.policy import DEFAULT_CATEGORY_WEIGHTS, Policy
from cortex_change.domain.risk import PastChange

if TYPE_CHECKING:
    from conftest import Kit

L = Level
C, H, M, LO = L.CRITICAL, L.HIGH, L.MEDIUM, L.LOW

# SPEC §3, row by row: impact -> {urgency: priority}
MATRIX = [
    (C, C, "P1"), (C, H, "P1"), (C, M, "P2"), (C, LO, "P3"),
    (H, C, "P2"), (H, H, "P2"), (H, M, "P3"), (H, LO, "P4"),
    (M, C, "P3"), (M, H, "P3"), (M, M, "P4"), (M, LO, "P5"),
    (LO, C, "P4"), (LO, H, "P4"), (LO, M, "P5"), (LO, LO, "P5"),
]  # fmt: skip


def test_matrix_has_all_sixteen_cells() -> None:
    assert len({(i, u) for i, u, _ in MATRIX}) == 16


@pytest.mark.parametrize(("impact", "urgency", "expected"), MATRIX)
def test_priority_matrix(impact: Level, urgency: Level, expected: str) -> None:
    assert risk.priority(impact, urgency) == expected


@pytest.mark.parametrize(("impact", "expected"), [(C, "P2"), (H, "P3"), (M, "P4"), (LO, "P5")])
def test_assessment_records_priority(kit: Kit, impact: Level, expected: str) -> None:
    change = kit.assessed(impact=impact, urgency=M)
    assert change.assessment is not None
    assert change.assessment.priority == expected


@pytest.mark.parametrize(("impact", "points"), [(C, 40), (H, 30), (M, 20), (LO, 10)])
def test_impact_points(kit: Kit, impact: Level, points: int) -> None:
    component = risk.impact_component(kit.change(impact=impact))
    assert component.points == points
    assert impact.value in component.reason


@pytest.mark.parametrize(
    ("services", "points"), [(0, 0), (1, 5), (2, 10), (5, 25), (6, 30), (7, 30), (50, 30)]
)
def test_complexity_is_five_per_service_capped_at_thirty(kit: Kit, services: int, points: int) -> None:
    change = kit.change(affected_services=[f"svc-{i}" for i in range(services)])
    component = risk.complexity_component(change)
    assert component.points == points
    assert ("capped" in component.reason) == (services * 5 > 30)


@pytest.mark.parametrize(
    ("category", "points"),
    [
        ("security", 20),
        ("infrastructure", 20),
        ("deployment", 15),
        ("configuration", 15),
        ("rollback", 15),
        ("patch", 10),
        ("update", 10),
        ("cicd", 10),
        ("inventory", 5),
        ("documentation", 5),
    ],
)
def test_default_category_weights(kit: Kit, category: str, points: int) -> None:
    assert DEFAULT_CATEGORY_WEIGHTS[category] == points
    component = risk.category_component(kit.change(category=category), Policy())
    assert component.points == points
    assert category in component.reason


def test_category_weights_come_from_the_policy(kit: Kit) -> None:
    policy = Policy(category_weights={"security": 3, "database": 17})
    assert risk.category_component(kit.change(category="security"), policy).points == 3
    assert risk.category_component(kit.change(category="database"), policy).points == 17


def _past(*statuses: ClosureStatus) -> list[PastChange]:
    return [PastChange(f"RFC-20250101000000-{i:06x}", s) for i, s in enumerate(statuses)]


S, F, R, X = (
    ClosureStatus.SUCCESSFUL,
    ClosureStatus.FAILED,
    ClosureStatus.ROLLED_BACK,
    ClosureStatus.CANCELLED,
)


@pytest.mark.parametrize(
    ("history", "points"),
    [
        ([], 5),
        ([F, F, F, F], 5),  # four samples: too few, neutral whatever they say
        ([S, S, S, S], 5),
        ([S] * 5, 0),
        ([F] * 5, 10),
        ([F, S, S, S, S], 2),
        ([R, S, S, S, S], 2),  # rolled back counts as a failure
        ([F, R, S, S, S], 4),
        ([X, S, S, S, S], 0),  # cancelled is not a failure
        ([F, S, S, S, S, S], 2),  # 10/6 = 1.67
        ([F, S, S, S, S, S, S], 1),  # 10/7 = 1.43
        ([F, F, S, S, S, S, S], 3),  # 20/7 = 2.86
        ([F] * 7 + [S] * 3, 7),
    ],
)
def test_history_component(history: list[ClosureStatus], points: int) -> None:
    assert risk.history_component(_past(*history), Policy()).points == points


def test_history_minimum_samples_comes_from_the_policy() -> None:
    policy = Policy(history_min_samples=2)
    assert risk.history_component(_past(F, S), policy).points == 5  # 10 × 1/2
    assert risk.history_component(_past(F), policy).points == 5  # one sample: neutral
    assert risk.history_component(_past(F, F), policy).points == 10
    assert risk.history_component(_past(S, S), policy).points == 0


def test_assessment_records_components_with_reasons_and_history_used(kit: Kit) -> None:
    history = kit.history(failures=2, successes=8)
    change = kit.assessed("high", history=history)
    a = change.assessment
    assert a is not None
    assert {k: c.points for k, c in a.components.items()} == {
        "impact": 30,
        "complexity": 10,
        "category": 20,
        "history": 2,
    }
    assert all(c.reason for c in a.components.values())
    assert a.score == 62
    assert a.history_used == [p.change_id for p in history]


@pytest.mark.parametrize(
    ("score", "level"),
    [
        (0, L.LOW),
        (29, L.LOW),
        (30, L.MEDIUM),
        (59, L.MEDIUM),
        (60, L.HIGH),
        (79, L.HIGH),
        (80, L.CRITICAL),
        (100, L.CRITICAL),
    ],
)
def test_levels_at_the_default_thresholds(score: int, level: Level) -> None:
    assert Policy().level_for(score) is level


def test_levels_follow_configured_thresholds() -> None:
    policy = Policy(risk_threshold_low=10, risk_threshold_medium=20, risk_threshold_high=90)
    assert [policy.level_for(s) for s in (9, 10, 19, 20, 89, 90)] == [
        L.LOW,
        L.MEDIUM,
        L.MEDIUM,
        L.HIGH,
        L.HIGH,
        L.CRITICAL,
    ]


# End to end through assess, with the default policy; history (10 samples, k failures)
# adds exactly k points so each threshold can be hit on the nose.
THRESHOLD_CASES = [
    # impact, services, category, failures of 10 -> score, level, route, state, testing
    (LO, 0, "documentation", 9, 24, L.LOW, Route.AUTO_APPROVED, State.APPROVED, "unit"),
    (LO, 0, "documentation", 10, 25, L.LOW, Route.TECHNICAL_LEAD, State.PENDING_APPROVAL, "unit"),
    (LO, 0, "configuration", 4, 29, L.LOW, Route.TECHNICAL_LEAD, State.PENDING_APPROVAL, "unit"),
    (LO, 0, "configuration", 5, 30, L.MEDIUM, Route.TECHNICAL_LEAD, State.PENDING_APPROVAL, "integration"),
    (M, 4, "configuration", 4, 59, L.MEDIUM, Route.TECHNICAL_LEAD, State.PENDING_APPROVAL, "integration"),
    (M, 4, "configuration", 5, 60, L.HIGH, Route.CAB, State.PENDING_CAB, "full staging"),
    (C, 3, "security", 4, 79, L.HIGH, Route.CAB, State.PENDING_CAB, "full staging"),
    (C, 3, "security", 5, 80, L.CRITICAL, Route.CAB_CISO_CTO, State.PENDING_CAB, "complete suite"),
    (C, 9, "security", 10, 100, L.CRITICAL, Route.CAB_CISO_CTO, State.PENDING_CAB, "complete suite"),
]


@pytest.mark.parametrize(
    ("impact", "services", "category", "failures", "score", "level", "route", "state", "testing"),
    THRESHOLD_CASES,
    ids=[f"score-{c[4]}" for c in THRESHOLD_CASES],
)
def test_assessment_at_the_thresholds(
    kit: Kit,
    impact: Level,
    services: int,
    category: str,
    failures: int,
    score: int,
    level: Level,
    route: Route,
    state: State,
    testing: str,
) -> None:
    change = kit.assessed(
        impact=impact,
        category=category,
        affected_services=[f"svc-{i}" for i in range(services)],
        history=kit.history(failures=failures, successes=10 - failures),
    )
    a = change.assessment
    assert a is not None
    assert (a.score, a.level, a.route, change.state, a.testing_required) == (
        score,
        level,
        route,
        state,
        testing,
    )
    assert change.timeline.assessed_at == kit.T0


@pytest.mark.parametrize(
    ("level", "score", "auto", "expected"),
    [
        (L.LOW, 0, True, Route.AUTO_APPROVED),
        (L.LOW, 24, True, Route.AUTO_APPROVED),
        (L.LOW, 25, True, Route.TECHNICAL_LEAD),
        (L.LOW, 29, True, Route.TECHNICAL_LEAD),
        (L.LOW, 0, False, Route.TECHNICAL_LEAD),
        (L.LOW, 24, False, Route.TECHNICAL_LEAD),
        (L.MEDIUM, 30, True, Route.TECHNICAL_LEAD),
        (L.MEDIUM, 59, False, Route.TECHNICAL_LEAD),
        (L.HIGH, 60, True, Route.CAB),
        (L.HIGH, 79, True, Route.CAB),
        (L.CRITICAL, 80, True, Route.CAB_CISO_CTO),
        (L.CRITICAL, 100, True, Route.CAB_CISO_CTO),
    ],
)
def test_route_for_normal_changes(kit: Kit, level: Level, score: int, auto: bool, expected: Route) -> None:
    policy = Policy(auto_approve_low_risk=auto)
    route, why = routing.route_for(kit.change(), level, score, policy)
    assert route is expected
    assert why


def test_auto_approve_threshold_is_configurable(kit: Kit) -> None:
    policy = Policy(auto_approve_threshold=10)
    assert routing.route_for(kit.change(), L.LOW, 9, policy)[0] is Route.AUTO_APPROVED
    assert routing.route_for(kit.change(), L.LOW, 10, policy)[0] is Route.TECHNICAL_LEAD


@pytest.mark.parametrize("level", list(Level))
def test_emergency_changes_always_route_to_the_emergency_cab(kit: Kit, level: Level) -> None:
    change = kit.change(type=ChangeType.EMERGENCY)
    assert routing.route_for(change, level, 0, Policy())[0] is Route.EMERGENCY_CAB


@pytest.mark.parametrize(
    ("route", "emergency_auto", "state"),
    [
        (Route.PRE_APPROVED, True, State.APPROVED),
        (Route.AUTO_APPROVED, True, State.APPROVED),
        (Route.TECHNICAL_LEAD, True, State.PENDING_APPROVAL),
        (Route.CAB, True, State.PENDING_CAB),
        (Route.CAB_CISO_CTO, True, State.PENDING_CAB),
        (Route.EMERGENCY_CAB, True, State.APPROVED),
        (Route.EMERGENCY_CAB, False, State.PENDING_APPROVAL),
        (Route.PRE_APPROVED, False, State.APPROVED),
        (Route.CAB, False, State.PENDING_CAB),
    ],
)
def test_state_after_route(route: Route, emergency_auto: bool, state: State) -> None:
    assert routing.state_after_route(route, Policy(emergency_auto_approve=emergency_auto)) is state


@pytest.mark.parametrize(
    ("profile", "type_", "emergency_auto", "route", "state"),
    [
        ("low-auto", ChangeType.NORMAL, True, Route.AUTO_APPROVED, State.APPROVED),
        ("low-tl", ChangeType.NORMAL, True, Route.TECHNICAL_LEAD, State.PENDING_APPROVAL),
        ("medium", ChangeType.NORMAL, True, Route.TECHNICAL_LEAD, State.PENDING_APPROVAL),
        ("high", ChangeType.NORMAL, True, Route.CAB, State.PENDING_CAB),
        ("critical", ChangeType.NORMAL, True, Route.CAB_CISO_CTO, State.PENDING_CAB),
        ("low-auto", ChangeType.EMERGENCY, True, Route.EMERGENCY_CAB, State.APPROVED),
        ("critical", ChangeType.EMERGENCY, True, Route.EMERGENCY_CAB, State.APPROVED),
        ("low-auto", ChangeType.EMERGENCY, False, Route.EMERGENCY_CAB, State.PENDING_APPROVAL),
        ("critical", ChangeType.EMERGENCY, False, Route.EMERGENCY_CAB, State.PENDING_APPROVAL),
    ],
)
def test_state_after_assessment_per_route(
    kit: Kit, profile: str, type_: ChangeType, emergency_auto: bool, route: Route, state: State
) -> None:
    change = kit.assessed(profile, type=type_, policy=Policy(emergency_auto_approve=emergency_auto))
    assert change.assessment is not None
    assert change.assessment.route is route
    assert change.state is state


def test_emergency_change_keeps_its_score_and_level(kit: Kit) -> None:
    change = kit.assessed("critical", type=ChangeType.EMERGENCY)
    assert change.assessment is not None
    assert (change.assessment.score, change.assessment.level) == (85, L.CRITICAL)


def test_approval_requested_event_names_the_route_and_what_is_needed(kit: Kit) -> None:
    change = kit.change("critical")
    events = workflow.assess(change, Policy(), [], kit.T0)
    assert [e.action for e in events] == ["assessed", "approval_requested"]
    assert events[1].details["approval_required"] == "cab+ciso+cto"
    assert events[1].details["needs"] == ["cab 0/2", "ciso 0/1", "cto 0/1"]


@pytest.mark.parametrize(
    ("category", "score", "assessor"),
    [
        ("security", 0, "security-master"),
        ("security", 95, "security-master"),
        ("deployment", 10, "development-master"),
        ("deployment", 90, "development-master"),
        ("infrastructure", 10, "cicd-master"),
        ("infrastructure", 90, "cicd-master"),
        ("inventory", 10, "inventory-master"),
        ("inventory", 90, "inventory-master"),
        ("configuration", 59, "development-master"),
        ("configuration", 60, "coordinator-master"),
        ("patch", 0, "development-master"),
        ("update", 60, "coordinator-master"),
        ("documentation", 59, "development-master"),
        ("cicd", 61, "coordinator-master"),
        ("rollback", 100, "coordinator-master"),
    ],
)
def test_assessor_assignment(category: str, score: int, assessor: str) -> None:
    assert routing.assessor_for(category, score) == assessor


@pytest.mark.parametrize(
    ("profile", "category", "assessor"),
    [
        ("medium", "configuration", "development-master"),  # 40
        ("critical", "configuration", "coordinator-master"),  # 80
        ("critical", "inventory", "inventory-master"),  # 70
        ("low-auto", "security", "security-master"),  # 35
    ],
)
def test_assessment_assigns_the_assessor(kit: Kit, profile: str, category: str, assessor: str) -> None:
    change = kit.assessed(profile, category=category)
    assert change.assessment is not None
    assert change.assessment.assigned_to == assessor


@settings(max_examples=200, deadline=None)
@given(
    impact=st.sampled_from(list(Level)),
    services=st.integers(min_value=0, max_value=40),
    category=st.sampled_from(sorted(DEFAULT_CATEGORY_WEIGHTS)),
    outcomes=st.lists(st.sampled_from(list(ClosureStatus)), max_size=30),
)
def test_score_is_the_bounded_sum_of_its_parts(
    kit: Kit, impact: Level, services: int, category: str, outcomes: list[ClosureStatus]
) -> None:
    change = kit.change(
        impact=impact, category=category, affected_services=[f"s{i}" for i in range(services)]
    )
    parts = risk.score(change, Policy(), _past(*outcomes))
    points = {k: c.points for k, c in parts.items()}
    assert 10 <= points["impact"] <= 40
    assert 0 <= points["complexity"] <= 30
    assert 0 <= points["category"] <= 20
    assert 0 <= points["history"] <= 10
    assert risk.total(parts) == sum(points.values())
    assert 0 <= risk.total(parts) <= 100


@pytest.mark.parametrize(
    ("failures", "n", "points"), [(1, 20, 1), (5, 20, 3), (3, 20, 2), (7, 20, 4), (19, 20, 10)]
)
def test_history_rounds_half_up(failures: int, n: int, points: int) -> None:
    # 1 in 20 is 0.5 points: an SRE reads that as 1, not banker's rounding to 0.
    statuses = [F] * failures + [S] * (n - failures)
    assert risk.history_component(_past(*statuses), Policy()).points == points
