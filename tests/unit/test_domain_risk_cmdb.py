"""The CMDB's risk rules as tables (domain/risk.py, routing.py, workflow.py): impact raised to what
the most critical tier reached implies (with the path in the reason), complexity counting the blast
radius, PHI/PCI in the radius putting the CISO on the route; without a radius, the old rules."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from cortex_change.domain import risk, routing, workflow
from cortex_change.domain.cmdb import CI, Radius, Reach
from cortex_change.domain.events import EventKind
from cortex_change.domain.lifecycle import State
from cortex_change.domain.model import ChangeType, Level, Route
from cortex_change.domain.policy import Policy

if TYPE_CHECKING:
    from conftest import Kit

C, H, M, LO = Level.CRITICAL, Level.HIGH, Level.MEDIUM, Level.LOW


def touched(name: str, tier: int = 3, data: str = "none") -> tuple[Reach, CI]:
    return Reach(name, 0, ()), CI(name, "service", tier, data=data)


def relying(
    name: str, on: str, tier: int = 3, data: str = "none", kind: str = "depends_on"
) -> tuple[Reach, CI]:
    return Reach(name, 1, ((name, kind, on),)), CI(name, "service", tier, data=data)


def reaching(tier: int | None) -> Radius:
    """`app` touched (tier 3) and `front` relying on it at `tier`; None: nothing reached at all."""
    if tier is None:
        return Radius([], ["ghost"])
    return Radius([touched("app"), relying("front", "app", tier)], [])


# --- impact: (the change's impact, the most critical tier reached) -> points, raised? ------------

IMPACT_TABLE = [
    # impact, tier, points, raised to
    (LO, 0, 40, "critical"),
    (LO, 1, 30, "high"),
    (LO, 2, 20, "medium"),
    (LO, 3, 10, None),
    (LO, None, 10, None),
    (M, 0, 40, "critical"),
    (M, 1, 30, "high"),
    (M, 2, 20, None),
    (M, 3, 20, None),
    (M, None, 20, None),
    (H, 0, 40, "critical"),
    (H, 1, 30, None),
    (H, 2, 30, None),
    (H, 3, 30, None),
    (H, None, 30, None),
    (C, 0, 40, None),
    (C, 1, 40, None),
    (C, 2, 40, None),
    (C, 3, 40, None),
    (C, None, 40, None),
]


@pytest.mark.parametrize(("impact", "tier", "points", "raised"), IMPACT_TABLE)
def test_impact_is_raised_to_the_most_critical_tier_reached(
    kit: Kit, impact: Level, tier: int | None, points: int, raised: str | None
) -> None:
    change = kit.change(impact=impact)
    component = risk.impact_component(change, reaching(tier))
    assert component.points == points
    if raised is None:
        assert component.reason == f"impact {impact.value}: {points}"
    else:
        assert f"impact {impact.value} raised to {raised}" in component.reason
        assert f"front → depends on app (tier {tier})" in component.reason
        assert component.reason.endswith(f": {points}")


def test_the_most_critical_ci_is_named_even_when_a_nearer_one_is_less_critical(kit: Kit) -> None:
    radius = Radius(
        [
            touched("cache", tier=2),
            relying("api", "cache", tier=1),
            (
                Reach("edge", 2, (("edge", "runs_on", "api"), ("api", "depends_on", "cache"))),
                CI("edge", "network", 0),
            ),
        ],
        [],
    )
    component = risk.impact_component(kit.change(impact=LO), radius)
    assert component.points == 40
    assert "edge → runs on api → depends on cache (tier 0)" in component.reason


def test_a_touched_tier_zero_ci_raises_impact_naming_itself(kit: Kit) -> None:
    component = risk.impact_component(kit.change(impact=LO), Radius([touched("db", tier=0)], []))
    assert component.points == 40 and "db (tier 0)" in component.reason


# --- complexity: (touched, relying, unknown) -> points ---------------------------------------------

COMPLEXITY_TABLE = [
    # touched, relying, unknown, points, capped
    (1, 0, 0, 5, False),
    (1, 1, 0, 10, False),
    (2, 2, 0, 20, False),
    (1, 4, 0, 25, False),
    (1, 3, 2, 30, False),
    (1, 4, 1, 30, False),
    (2, 4, 1, 30, True),
    (3, 20, 5, 30, True),
    (1, 0, 3, 20, False),
]


@pytest.mark.parametrize(("n_touched", "n_relying", "n_unknown", "points", "capped"), COMPLEXITY_TABLE)
def test_complexity_counts_the_blast_radius(
    kit: Kit, n_touched: int, n_relying: int, n_unknown: int, points: int, capped: bool
) -> None:
    reaches = [touched(f"t{i}") for i in range(n_touched)]
    reaches += [relying(f"r{i}", "t0") for i in range(n_relying)]
    radius = Radius(reaches, [f"ghost-{i}" for i in range(n_unknown)])
    change = kit.change(affected_services=["only-one"])  # the old rule would say 5
    component = risk.complexity_component(change, radius)
    n = n_touched + n_relying + n_unknown
    assert component.points == points
    assert f"{n} in the blast radius ({n_touched} touched, {n_relying} relying on them" in component.reason
    assert (f"{n_unknown} not in the CMDB" in component.reason) == (n_unknown > 0)
    assert ("capped" in component.reason) == capped
    assert component.reason.endswith(f": {points}")


# --- the route: who approves ---------------------------------------------------------------------

REQUIREMENTS_TABLE = [
    # route, ciso, roles
    (Route.PRE_APPROVED, False, []),
    (Route.PRE_APPROVED, True, []),
    (Route.AUTO_APPROVED, False, []),
    (Route.AUTO_APPROVED, True, []),
    (Route.TECHNICAL_LEAD, False, ["technical-lead"]),
    (Route.TECHNICAL_LEAD, True, ["technical-lead", "ciso"]),
    (Route.CAB, False, ["cab"]),
    (Route.CAB, True, ["cab", "ciso"]),
    (Route.CAB_CISO_CTO, False, ["cab", "ciso", "cto"]),
    (Route.CAB_CISO_CTO, True, ["cab", "ciso", "cto"]),  # the CISO once
    (Route.EMERGENCY_CAB, False, ["ecab"]),
    (Route.EMERGENCY_CAB, True, ["ecab"]),
]


@pytest.mark.parametrize(("route", "ciso", "roles"), REQUIREMENTS_TABLE)
def test_requirements(route: Route, ciso: bool, roles: list[str]) -> None:
    policy = Policy()
    reqs = routing.requirements(route, policy, ciso)
    assert [r.role for r in reqs] == roles
    for r in reqs:
        if r.role == "ciso":
            assert (r.config_key, r.members, r.count) == ("CISO_MEMBERS", policy.ciso_members, 1)


N, E = ChangeType.NORMAL, ChangeType.EMERGENCY
TL, PA = Route.TECHNICAL_LEAD, State.PENDING_APPROVAL
TL_CISO = ["technical-lead", "ciso"]

# With AUTO_APPROVE_THRESHOLD 30, the low profiles (score 25 with a radius of one CI) are
# auto-approved unless the radius holds PHI or PCI.
LENIENT = Policy(auto_approve_threshold=30)

ROUTE_TABLE = [
    # profile, change type, data in the radius, route, state, needs
    ("low-auto", N, "none", Route.AUTO_APPROVED, State.APPROVED, []),
    ("low-auto", N, "pii", Route.AUTO_APPROVED, State.APPROVED, []),
    ("low-auto", N, "phi", TL, PA, TL_CISO),
    ("low-auto", N, "pci", TL, PA, TL_CISO),
    ("medium", N, "none", TL, PA, ["technical-lead"]),
    ("medium", N, "phi", TL, PA, TL_CISO),
    ("high", N, "none", Route.CAB, State.PENDING_CAB, ["cab"]),
    ("high", N, "pci", Route.CAB, State.PENDING_CAB, ["cab", "ciso"]),
    ("medium", E, "none", Route.EMERGENCY_CAB, State.APPROVED, ["ecab"]),
    ("medium", E, "phi", Route.EMERGENCY_CAB, State.APPROVED, ["ecab"]),
    ("medium", E, "pci", Route.EMERGENCY_CAB, State.APPROVED, ["ecab"]),
]  # fmt: skip


@pytest.mark.parametrize(("profile", "type_", "data", "route", "state", "needs"), ROUTE_TABLE)
def test_sensitive_data_in_the_radius_puts_the_ciso_on_the_route(
    kit: Kit, profile: str, type_: ChangeType, data: str, route: Route, state: State, needs: list[str]
) -> None:
    change = kit.change(profile, type=type_)
    radius = Radius([touched("app"), relying("billing", "app", data=data)], [])
    if profile.startswith("low"):
        radius = Radius([touched("app", data=data)], [])
    events = workflow.assess(change, LENIENT, [], kit.T0, radius=radius)
    assert change.assessment is not None
    assert change.assessment.route is route
    assert change.state is state
    assert [r.role for r in routing.needs(change, LENIENT)] == needs
    requested = [e for e in events if e.action is EventKind.APPROVAL_REQUESTED]
    if state in (State.PENDING_APPROVAL, State.PENDING_CAB):
        assert [n.split(" ")[0] for n in requested[0].details["needs"]] == needs
    else:
        assert requested == []
    sensitive = data in ("phi", "pci") and type_ is not ChangeType.EMERGENCY
    assert ("CISO_MEMBERS approve too" in change.assessment.route_reason) == sensitive
    if sensitive:
        assert f"{data.upper()} in " in change.assessment.route_reason


def test_a_ciso_vote_counts_and_the_route_needs_both(kit: Kit) -> None:
    change = kit.change("medium", with_plans=True)
    workflow.assess(change, Policy(), [], kit.T0, radius=Radius([touched("db", data="phi")], []))
    assert change.state is State.PENDING_APPROVAL
    workflow.approve(change, "tech-lead", "ok", Policy(), kit.at(1))
    assert change.state is State.PENDING_APPROVAL
    assert routing.outstanding(Route.TECHNICAL_LEAD, change.active_approvals, Policy(), ciso=True) == [
        "ciso 0/1"
    ]
    workflow.approve(change, "ciso", "data reviewed", Policy(), kit.at(2))
    assert change.state is State.APPROVED


# --- without a radius: the old rules, exactly ------------------------------------------------------

PROFILE_SCORES = [("low-auto", 20), ("low-tl", 25), ("medium", 40), ("high", 65), ("critical", 85)]


@pytest.mark.parametrize(("profile", "score"), PROFILE_SCORES)
def test_without_a_radius_the_old_rules_hold(kit: Kit, profile: str, score: int) -> None:
    policy = Policy()
    old = kit.change(profile)
    old_events = workflow.assess(old, policy, [], kit.T0)
    new = kit.change(profile)
    new_events = workflow.assess(new, policy, [], kit.T0, radius=None)
    assert old.assessment is not None and new.assessment is not None
    assert new.assessment.score == old.assessment.score == score
    assert new.assessment == old.assessment and new.state is old.state
    assert new_events == old_events
    assert new.assessment.blast_radius is None and not new.assessment.ciso
    assert all("blast_radius" not in (e.details or {}) for e in new_events)
    n = len(new.affected_services)
    assert new.assessment.components["complexity"].reason.startswith(f"{n} affected service(s) × 5")
    assert (
        new.assessment.components["impact"].reason
        == f"impact {new.impact.value}: {risk.IMPACT_POINTS[new.impact]}"
    )


@pytest.mark.parametrize("impact", [C, H, M, LO])
def test_component_functions_without_a_radius(kit: Kit, impact: Level) -> None:
    change = kit.change(impact=impact, affected_services=["a", "b", "c"])
    assert risk.impact_component(change) == risk.impact_component(change, None)
    assert risk.complexity_component(change) == risk.complexity_component(change, None)
    assert risk.complexity_component(change).points == 15
