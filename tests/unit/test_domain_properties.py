"""Invariants under random sequences of operations (DESIGN: property-based tests).

Random policies (role lists drawn from one small pool, so people hold several roles and the
requester may hold any of them), random changes and random operations by random people.
Refusals (CortexError) are part of the game; after every step:

1. no change is approved without the approvals its route requires;
2. with segregation of duties on, the requester is never among the active approvers;
3. nobody counts twice among the active approvals;
4. the state is a State, every successful step moves it as TRANSITIONS allows, and a refused
   step leaves the whole record unchanged.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from cortex_change.domain import codec, routing, workflow
from cortex_change.domain.errors import CortexError
from cortex_change.domain.lifecycle import TRANSITIONS, Action, State
from cortex_change.domain.model import (
    Change,
    ChangeType,
    ClosureStatus,
    Decision,
    Level,
    ReviewOutcome,
    Route,
)
from cortex_change.domain.policy import DEFAULT_CATEGORY_WEIGHTS, Policy
from cortex_change.domain.standard import StandardDecision

if TYPE_CHECKING:
    from conftest import Kit

REQUESTER = "rita"
MEMBERS = ["ann", "bob", "cy", "dee", "eve", REQUESTER]
PEOPLE = [*MEMBERS, "mallory"]  # mallory holds no role, ever
ROLES = [None, "technical-lead", "cab", "ciso", "cto", "ecab"]
roles = st.sampled_from([None, None, None, *ROLES])  # mostly let the domain pick the role
PLAN = {"steps": ["do it"]}
DECISIONS = [
    None,
    StandardDecision("worker-restart", True, ChangeType.STANDARD, "1 restart in the last hour"),
    StandardDecision("autoscale", False, ChangeType.NORMAL, "replicas 40 outside 1..10"),
    StandardDecision("security-patch", False, ChangeType.EMERGENCY, "critical severity"),
]
POST_APPROVAL = {State.APPROVED, State.IMPLEMENTING, State.IMPLEMENTED, State.ROLLING_BACK, State.CLOSED}
OP_ACTIONS: dict[str, list[list[Action]]] = {
    "assess": [[Action.ASSESS, Action.ROUTE]],
    "reassess": [[Action.REASSESS, Action.ROUTE]],
    "approve": [[Action.APPROVE]],
    "reject": [[Action.REJECT]],
    "update": [[Action.UPDATE], [Action.UPDATE, Action.ASSESS, Action.ROUTE]],
    "cancel": [[Action.CANCEL]],
    "implement": [[Action.IMPLEMENT]],
    "finish": [[Action.FINISH]],
    "close": [[Action.CLOSE]],
    "review": [[Action.REVIEW]],
}

Op = tuple[Any, ...]


def _members(min_size: int = 1) -> st.SearchStrategy[frozenset[str]]:
    return st.frozensets(st.sampled_from(MEMBERS), min_size=min_size, max_size=4)


policies = st.builds(
    Policy,
    tech_leads=_members(),
    cab_members=_members(min_size=2),
    cab_min_approvals=st.integers(min_value=1, max_value=3),
    ecab_members=_members(),
    ciso_members=_members(),
    cto_members=_members(),
    segregation_of_duties=st.booleans(),
    auto_approve_low_risk=st.booleans(),
    emergency_auto_approve=st.booleans(),
    require_documentation=st.booleans(),
    require_rollback_plan=st.booleans(),
)

changes = st.fixed_dictionaries(
    {
        "type": st.sampled_from(list(ChangeType)),
        "category": st.sampled_from(sorted(DEFAULT_CATEGORY_WEIGHTS)),
        "impact": st.sampled_from(list(Level)),
        "affected_services": st.lists(st.sampled_from("abcdefgh"), max_size=8, unique=True),
        "implementation_plan": st.sampled_from([None, PLAN, PLAN, PLAN]),
        "rollback_plan": st.sampled_from([None, PLAN, PLAN, PLAN]),
    }
)

people = st.sampled_from(PEOPLE)
UPDATE_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "impact": st.sampled_from(list(Level)),
    "affected_services": st.lists(st.sampled_from("abcdefgh"), max_size=8, unique=True),
    "rollback_plan": st.sampled_from([None, PLAN]),
    "implementation_plan": st.sampled_from([None, PLAN]),
    "title": st.sampled_from(["first title", "second title"]),
}
updates = st.sets(st.sampled_from(sorted(UPDATE_VALUES)), min_size=1, max_size=3).flatmap(
    lambda keys: st.fixed_dictionaries({k: UPDATE_VALUES[k] for k in keys})
)

_approve = st.tuples(st.just("approve"), people, roles)
# Votes are most of the game; the other operations come up now and then (cancel rarely,
# since it ends the game).
operations: st.SearchStrategy[Op] = st.one_of(
    *[_approve] * 8,
    st.tuples(st.just("reject"), people),
    st.tuples(st.just("assess"), st.integers(min_value=0, max_value=len(DECISIONS) - 1)),
    st.tuples(st.just("update"), updates),
    st.tuples(st.sampled_from(["reassess", "cancel", "implement", "finish", "close"])),
    st.tuples(st.just("review"), people, st.sampled_from(list(ReviewOutcome))),
)


def _apply(change: Change, op: Op, policy: Policy, kit: Kit, minute: int) -> None:
    now = kit.T0 + timedelta(minutes=minute)
    kind = op[0]
    run: dict[str, Callable[[], object]] = {
        "assess": lambda: workflow.assess(change, policy, [], now, standard=DECISIONS[op[1]]),
        "reassess": lambda: workflow.assess(change, policy, [], now, reassess=True),
        "approve": lambda: workflow.approve(change, op[1], "ok", policy, now, role=op[2]),
        "reject": lambda: workflow.reject(change, op[1], "no", policy, now),
        "update": lambda: workflow.update(change, "editor", op[1], policy, [], now),
        "cancel": lambda: workflow.cancel(change, "editor", "not needed", now),
        "implement": lambda: workflow.start_implementation(change, "worker", now),
        "finish": lambda: workflow.finish_implementation(change, "worker", now, "ok"),
        "close": lambda: workflow.close(change, ClosureStatus.SUCCESSFUL, "done", "worker", now),
        "review": lambda: workflow.review(change, op[1], op[2], "", policy, now),
    }
    run[kind]()


def _reachable(before: State, after: State, kind: str) -> bool:
    for actions in OP_ACTIONS[kind]:
        possible = {before}
        for action in actions:
            t = TRANSITIONS[action]
            possible = set(t.targets) if possible & t.sources else set()
        if after in possible:
            return True
    return False


def _role_members(policy: Policy) -> dict[str, frozenset[str]]:
    return {r.role: r.members for route in Route for r in routing.requirements(route, policy)}


def _check_invariants(change: Change, policy: Policy) -> None:
    assert isinstance(change.state, State)
    granted = [a for a in change.active_approvals if a.decision is Decision.APPROVED]
    people_votes = [a for a in change.active_approvals if not routing.is_system_approver(a.approver)]
    members = _role_members(policy)
    # Every vote by a person was given under a role that person holds.
    for vote in people_votes:
        assert vote.approver in members[vote.role], f"{vote.approver} is not a {vote.role}"
    # (2) segregation of duties
    if policy.segregation_of_duties:
        assert REQUESTER not in [a.approver for a in change.active_approvals]
    # (3) one person counts once
    counts = Counter(a.approver for a in granted)
    assert all(n == 1 for n in counts.values()), counts
    # (1) approved only with what the route requires
    if change.state in POST_APPROVAL:
        _check_route_met(change, policy, granted)


def _check_route_met(change: Change, policy: Policy, granted: list[Any]) -> None:
    assert change.assessment is not None
    assert change.timeline.approved_at is not None
    route = change.assessment.route
    if route is Route.EMERGENCY_CAB and policy.emergency_auto_approve:
        assert [a.approver for a in granted] == [routing.EMERGENCY_APPROVER]
        return
    if route is Route.PRE_APPROVED:
        assert [a.approver for a in granted] == ["standard-model:worker-restart"]
        return
    if route is Route.AUTO_APPROVED:
        assert [a.approver for a in granted] == [routing.AUTO_APPROVER]
        return
    assert routing.outstanding(route, change.active_approvals, policy) == []
    # Recount independently: distinct people per role, each a holder of that role.
    for req in routing.requirements(route, policy):
        holders = {a.approver for a in granted if a.role == req.role and a.approver in req.members}
        assert len(holders) >= req.count, f"{req.role}: {sorted(holders)} < {req.count}"
    assert not any(routing.is_system_approver(a.approver) for a in granted)


@settings(max_examples=200, deadline=None)
@given(
    policy=policies,
    fields=changes,
    decision=st.sampled_from(DECISIONS),
    ops=st.lists(operations, min_size=4, max_size=24),
)
def test_no_sequence_of_operations_breaks_the_approval_rules(
    kit: Kit, policy: Policy, fields: dict[str, Any], decision: StandardDecision | None, ops: list[Op]
) -> None:
    change = kit.change(requested_by=REQUESTER, **fields)
    workflow.assess(change, policy, [], kit.T0, standard=decision)  # the game starts assessed
    _check_invariants(change, policy)
    for minute, op in enumerate(ops, 1):
        before_state, before_doc = change.state, codec.to_document(change)
        try:
            _apply(change, op, policy, kit, minute)
        except CortexError:
            assert codec.to_document(change) == before_doc, f"refused {op[0]} changed the record"
        else:
            assert _reachable(before_state, change.state, op[0]), (
                f"{op[0]} moved {before_state.value} to {change.state.value}"
            )
        _check_invariants(change, policy)
    assert change.assessment is not None
    event(f"ended {change.state.value} via {change.assessment.route.value}")


VOTE_PROFILES = {
    "technical-lead": ("medium", ChangeType.NORMAL),
    "cab": ("high", ChangeType.NORMAL),
    "cab+ciso+cto": ("critical", ChangeType.NORMAL),
    "emergency-cab": ("critical", ChangeType.EMERGENCY),
}


@settings(max_examples=200, deadline=None)
@given(
    policy=policies.map(lambda p: p.copy_with(emergency_auto_approve=False)),
    route_name=st.sampled_from(sorted(VOTE_PROFILES)),
    data=st.data(),
)
def test_votes_approve_exactly_when_the_route_is_met(
    kit: Kit, policy: Policy, route_name: str, data: st.DataObject
) -> None:
    """Only votes, mostly by the route's role holders: approved exactly when nothing is outstanding."""
    profile, type_ = VOTE_PROFILES[route_name]
    change = kit.change(profile, type=type_, with_plans=True, requested_by=REQUESTER)
    workflow.assess(change, policy, [], kit.T0)
    assert change.assessment is not None
    route = change.assessment.route
    assert route.value == route_name
    holders = sorted({m for r in routing.requirements(route, policy) for m in r.members})
    voter = st.sampled_from([*holders, *holders, *holders, REQUESTER, "mallory"])
    voters = data.draw(st.lists(st.tuples(voter, roles), min_size=1, max_size=16), label="voters")
    for minute, (who, role) in enumerate(voters, 1):
        if change.state is State.APPROVED:
            break
        with contextlib.suppress(CortexError):
            workflow.approve(change, who, "ok", policy, kit.at(minute), role=role)
        still = routing.outstanding(route, change.active_approvals, policy)
        assert (change.state is State.APPROVED) == (still == []), still
        _check_invariants(change, policy)
    event(f"ended {change.state.value} via {route.value}")
