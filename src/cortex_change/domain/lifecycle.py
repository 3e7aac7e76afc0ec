"""States, the transition table, and the named state groups of SPEC §2."""

from __future__ import annotations

from enum import StrEnum

from .errors import InvalidTransition, ValidationError
from .values import Frozen

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Final


class State(StrEnum):
    PENDING_ASSESSMENT = "pending_assessment"
    ASSESSED = "assessed"
    PENDING_APPROVAL = "pending_approval"
    PENDING_CAB = "pending_cab"
    APPROVED = "approved"
    REJECTED = "rejected"
    IMPLEMENTING = "implementing"
    IMPLEMENTED = "implemented"
    ROLLING_BACK = "rolling_back"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class Action(StrEnum):
    ASSESS = "assess"
    REASSESS = "reassess"
    ROUTE = "route"
    APPROVE = "approve"
    REJECT = "reject"
    UPDATE = "update"
    IMPLEMENT = "implement"
    FINISH = "finish implementation of"
    CLOSE = "close"
    ROLLBACK = "roll back"
    ROLLBACK_DONE = "finish rollback of"
    CANCEL = "cancel"
    REVIEW = "review"
    RESCHEDULE = "reschedule"


S = State
AWAITING_APPROVAL = frozenset({S.PENDING_APPROVAL, S.PENDING_CAB})
NOT_YET_APPROVED = frozenset({S.PENDING_ASSESSMENT, S.ASSESSED}) | AWAITING_APPROVAL
IN_FLIGHT = frozenset({S.IMPLEMENTING, S.IMPLEMENTED})
TERMINAL = frozenset({S.REJECTED, S.CLOSED, S.CANCELLED})


class Transition(Frozen):
    """An action is allowed from `sources` and may only land in `targets`."""

    __slots__ = ("sources", "targets")

    def __init__(self, sources: frozenset[State], targets: frozenset[State]) -> None:
        self.sources: Final = sources
        self.targets: Final = targets


def _t(sources: frozenset[State] | set[State], *targets: State) -> Transition:
    return Transition(frozenset(sources), frozenset(targets))


TRANSITIONS: dict[Action, Transition] = {
    Action.ASSESS: _t({S.PENDING_ASSESSMENT}, S.ASSESSED),
    Action.REASSESS: _t({S.ASSESSED} | AWAITING_APPROVAL, S.ASSESSED),
    Action.ROUTE: _t({S.ASSESSED}, S.APPROVED, S.PENDING_APPROVAL, S.PENDING_CAB),
    # A vote short of the quorum leaves the change where it is.
    Action.APPROVE: _t(AWAITING_APPROVAL, S.PENDING_APPROVAL, S.PENDING_CAB, S.APPROVED),
    Action.REJECT: _t(AWAITING_APPROVAL, S.REJECTED),
    Action.UPDATE: _t(NOT_YET_APPROVED, *NOT_YET_APPROVED),
    # A new window for an approved change: its approvals are for the old one (workflow.reschedule).
    Action.RESCHEDULE: _t({S.APPROVED}, S.APPROVED, S.PENDING_ASSESSMENT),
    Action.IMPLEMENT: _t({S.APPROVED}, S.IMPLEMENTING),
    Action.FINISH: _t({S.IMPLEMENTING}, S.IMPLEMENTED),
    # A rollback whose runner died can be run again, or closed by hand with its outcome.
    Action.CLOSE: _t(IN_FLIGHT | {S.ROLLING_BACK}, S.CLOSED),
    Action.ROLLBACK: _t(IN_FLIGHT | {S.ROLLING_BACK}, S.ROLLING_BACK),
    Action.ROLLBACK_DONE: _t({S.ROLLING_BACK}, S.CLOSED),
    Action.CANCEL: _t(NOT_YET_APPROVED | {S.APPROVED}, S.CANCELLED),
    # A retrospective review annotates; it never moves the change.
    Action.REVIEW: _t(
        {S.APPROVED, S.IMPLEMENTING, S.IMPLEMENTED, S.ROLLING_BACK, S.CLOSED},
        S.APPROVED,
        S.IMPLEMENTING,
        S.IMPLEMENTED,
        S.ROLLING_BACK,
        S.CLOSED,
    ),
}

GROUPS: dict[str, frozenset[State]] = {
    "pending": NOT_YET_APPROVED,
    "approved": frozenset({S.APPROVED}),
    "rejected": frozenset({S.REJECTED}),
    "implemented": frozenset({S.IMPLEMENTING, S.IMPLEMENTED, S.ROLLING_BACK}),
    "closed": frozenset({S.CLOSED}),
    "cancelled": frozenset({S.CANCELLED}),
}


def check(change_id: str, action: Action, state: State) -> Transition:
    """Return the transition for `action`, or raise if `state` does not allow it."""
    transition = TRANSITIONS[action]
    if state not in transition.sources:
        allowed = sorted(s.value for s in transition.sources)
        raise InvalidTransition(change_id, action.value, state.value, allowed)
    return transition


def advance(change_id: str, action: Action, state: State, target: State) -> State:
    """Check `action` from `state` and that it may land in `target`; return `target`."""
    transition = check(change_id, action, state)
    if target not in transition.targets:  # a programming error, not a user's
        raise AssertionError(f"{action.value} may not move {state.value} to {target.value}")
    return target


def states_for(name: str) -> frozenset[State]:
    """Resolve an exact state or a seed folder name (group) to a set of states."""
    if name in GROUPS:
        return GROUPS[name]
    try:
        return frozenset({State(name)})
    except ValueError:
        allowed = sorted({*GROUPS, *(s.value for s in State)})
        raise ValidationError("state", f"unknown state {name!r}; allowed: {', '.join(allowed)}") from None
