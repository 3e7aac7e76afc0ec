"""SPEC §2: the transition table, refusals that name both states, and the `list STATE` groups."""

from __future__ import annotations

import itertools

import pytest

from cortex_change.domain.errors import InvalidTransition, ValidationError
from cortex_change.domain.lifecycle import TRANSITIONS, Action, State, advance, check, states_for

S = State
NOT_YET_APPROVED = {S.PENDING_ASSESSMENT, S.ASSESSED, S.PENDING_APPROVAL, S.PENDING_CAB}
AFTER_APPROVAL = {S.APPROVED, S.IMPLEMENTING, S.IMPLEMENTED, S.ROLLING_BACK, S.CLOSED}

# Written out from SPEC §2 (not read from the code): action -> (states it is allowed from,
# states it may land in).
EXPECTED: dict[Action, tuple[set[State], set[State]]] = {
    Action.ASSESS: ({S.PENDING_ASSESSMENT}, {S.ASSESSED}),
    Action.REASSESS: ({S.ASSESSED, S.PENDING_APPROVAL, S.PENDING_CAB}, {S.ASSESSED}),
    Action.ROUTE: ({S.ASSESSED}, {S.APPROVED, S.PENDING_APPROVAL, S.PENDING_CAB}),
    Action.APPROVE: ({S.PENDING_APPROVAL, S.PENDING_CAB}, {S.PENDING_APPROVAL, S.PENDING_CAB, S.APPROVED}),
    Action.REJECT: ({S.PENDING_APPROVAL, S.PENDING_CAB}, {S.REJECTED}),
    Action.UPDATE: (NOT_YET_APPROVED, NOT_YET_APPROVED),
    Action.IMPLEMENT: ({S.APPROVED}, {S.IMPLEMENTING}),
    Action.FINISH: ({S.IMPLEMENTING}, {S.IMPLEMENTED}),
    Action.CLOSE: ({S.IMPLEMENTING, S.IMPLEMENTED, S.ROLLING_BACK}, {S.CLOSED}),
    Action.ROLLBACK: ({S.IMPLEMENTING, S.IMPLEMENTED, S.ROLLING_BACK}, {S.ROLLING_BACK}),
    Action.ROLLBACK_DONE: ({S.ROLLING_BACK}, {S.CLOSED}),
    Action.CANCEL: (NOT_YET_APPROVED | {S.APPROVED}, {S.CANCELLED}),
    Action.REVIEW: (AFTER_APPROVAL, AFTER_APPROVAL),
    # issue 15: a new window for an approved change; approvals by people are for the old one
    Action.RESCHEDULE: ({S.APPROVED}, {S.APPROVED, S.PENDING_ASSESSMENT}),
}
PAIRS = list(itertools.product(Action, State))
CID = "RFC-20250303090000-abcdef"


def test_expected_table_covers_every_action() -> None:
    assert set(EXPECTED) == set(Action) == set(TRANSITIONS)


@pytest.mark.parametrize(("action", "state"), PAIRS, ids=[f"{a.name}-{s.value}" for a, s in PAIRS])
def test_check_every_action_from_every_state(action: Action, state: State) -> None:
    allowed_from, _ = EXPECTED[action]
    if state in allowed_from:
        assert check(CID, action, state) is TRANSITIONS[action]
        return
    with pytest.raises(InvalidTransition) as refused:
        check(CID, action, state)
    message = str(refused.value)
    assert action.value in message
    assert state.value in message
    assert CID in message
    for source in allowed_from:  # the error names the state(s) it would need
        assert source.value in message
    assert refused.value.action == action.value
    assert refused.value.state == state.value


@pytest.mark.parametrize("action", list(Action), ids=[a.name for a in Action])
def test_targets_of_each_action(action: Action) -> None:
    assert set(TRANSITIONS[action].targets) == EXPECTED[action][1]


def test_implementing_a_pending_cab_change_names_both_states() -> None:
    with pytest.raises(InvalidTransition, match=r"cannot implement .*pending_cab.*approved"):
        check(CID, Action.IMPLEMENT, State.PENDING_CAB)


@pytest.mark.parametrize("state", [S.REJECTED, S.CANCELLED])
def test_rejected_and_cancelled_are_dead_ends(state: State) -> None:
    assert [a for a in Action if state in TRANSITIONS[a].sources] == []


def test_closed_allows_only_the_retrospective_review() -> None:
    assert [a for a in Action if S.CLOSED in TRANSITIONS[a].sources] == [Action.REVIEW]


@pytest.mark.parametrize("state", sorted(AFTER_APPROVAL | {S.REJECTED, S.CANCELLED}))
def test_nothing_updates_a_change_once_approved(state: State) -> None:
    with pytest.raises(InvalidTransition):
        check(CID, Action.UPDATE, state)


def test_advance_returns_an_allowed_target() -> None:
    assert advance(CID, Action.APPROVE, S.PENDING_CAB, S.APPROVED) is S.APPROVED
    assert advance(CID, Action.APPROVE, S.PENDING_CAB, S.PENDING_CAB) is S.PENDING_CAB


def test_advance_to_a_target_outside_the_table_is_a_programming_error() -> None:
    with pytest.raises(AssertionError):
        advance(CID, Action.APPROVE, S.PENDING_CAB, S.CLOSED)


def test_advance_from_a_disallowed_state_is_refused() -> None:
    with pytest.raises(InvalidTransition):
        advance(CID, Action.IMPLEMENT, S.PENDING_APPROVAL, S.IMPLEMENTING)


GROUPS = [
    ("pending", {S.PENDING_ASSESSMENT, S.ASSESSED, S.PENDING_APPROVAL, S.PENDING_CAB}),
    ("approved", {S.APPROVED}),
    ("rejected", {S.REJECTED}),
    ("implemented", {S.IMPLEMENTING, S.IMPLEMENTED, S.ROLLING_BACK}),
    ("closed", {S.CLOSED}),
    ("cancelled", {S.CANCELLED}),
]


@pytest.mark.parametrize(("name", "states"), GROUPS, ids=[g for g, _ in GROUPS])
def test_state_groups(name: str, states: set[State]) -> None:
    assert states_for(name) == states


@pytest.mark.parametrize("state", list(State), ids=[s.value for s in State])
def test_every_exact_state_names_itself_or_its_folder(state: State) -> None:
    # `implemented` is the seed's folder name, so it lists the whole group (SPEC §2).
    expected = dict(GROUPS).get(state.value, {state})
    assert state in expected
    assert states_for(state.value) == expected


def test_every_state_is_in_some_group() -> None:
    assert set().union(*(states for _, states in GROUPS)) == set(State)


@pytest.mark.parametrize("name", ["", "Pending", "open", "pending_assesment", " approved"])
def test_unknown_state_lists_allowed_names(name: str) -> None:
    with pytest.raises(ValidationError) as refused:
        states_for(name)
    assert refused.value.field == "state"
    message = str(refused.value)
    assert repr(name) in message
    for allowed in ["pending", "implemented", "pending_cab", "rolling_back", "cancelled"]:
        assert allowed in message
