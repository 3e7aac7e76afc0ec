"""Who may do what (SPEC §11): one table, read by every door through the services."""

from __future__ import annotations

from enum import StrEnum

from .errors import Forbidden
from .lifecycle import Action, check
from .model import Change
from .policy import Policy


class Act(StrEnum):
    """What an identity asks to do; the value reads in a refusal ("may not implement RFC-…")."""

    CREATE = "create"
    READ = "read"
    ASSESS = "assess"
    UPDATE = "update"
    RESCHEDULE = "reschedule"
    IMPLEMENT = "implement"
    ROLLBACK = "roll back"
    REPORT = "report the outcome of"
    CLOSE = "close"
    CANCEL = "cancel"
    LOWER_ROUTE = "lower the approval route of"
    MANAGE_TOKENS = "manage API tokens"
    MANAGE_WINDOWS = "manage freeze and maintenance windows"
    OBSERVE = "report observed changes"
    MANAGE_FEEDS = "manage calendar feeds"
    HALT = "stop or restart all automation (freeze on|off)"


class Holder(StrEnum):
    """Who an action is allowed to; the value names them in a refusal."""

    ANYONE = "any authenticated identity"
    REQUESTER = "the requester"
    CHANGE_MANAGERS = "CHANGE_MANAGERS"
    IMPLEMENTERS = "IMPLEMENTERS"
    LEASE_HOLDER = "the worker holding the lease"
    ADMINS = "ADMINS"


H = Holder
CARRY_OUT = (H.REQUESTER, H.IMPLEMENTERS, H.LEASE_HOLDER, H.CHANGE_MANAGERS)

# Approvals, rejections and reviews are decided by the route's roles and segregation of duties
# (routing.py, workflow.review): they are not rows here.
PERMISSIONS: dict[Act, tuple[Holder, ...]] = {
    Act.CREATE: (H.ANYONE,),
    Act.READ: (H.ANYONE,),
    Act.ASSESS: (H.ANYONE,),
    Act.UPDATE: (H.REQUESTER, H.CHANGE_MANAGERS),
    Act.RESCHEDULE: (H.REQUESTER, H.CHANGE_MANAGERS),
    Act.IMPLEMENT: CARRY_OUT,
    Act.ROLLBACK: CARRY_OUT,
    Act.REPORT: CARRY_OUT,
    Act.CLOSE: CARRY_OUT,
    Act.CANCEL: (H.REQUESTER, H.CHANGE_MANAGERS),
    Act.LOWER_ROUTE: (H.CHANGE_MANAGERS,),
    Act.MANAGE_TOKENS: (H.ADMINS,),
    Act.MANAGE_WINDOWS: (H.CHANGE_MANAGERS,),
    # The deploy tooling (IMPLEMENTERS' identities) reports what it did; change managers too.
    Act.OBSERVE: (H.IMPLEMENTERS, H.CHANGE_MANAGERS),
    Act.MANAGE_FEEDS: (H.CHANGE_MANAGERS, H.ADMINS),
    Act.HALT: (H.CHANGE_MANAGERS,),
}


# The lifecycle rule checked first: a change in the wrong state is refused as such (the
# `unauthorized_attempt` of SPEC §2) whoever asks.
STATE_RULE: dict[Act, Action] = {
    Act.UPDATE: Action.UPDATE,
    Act.RESCHEDULE: Action.RESCHEDULE,
    Act.IMPLEMENT: Action.IMPLEMENT,
    Act.ROLLBACK: Action.ROLLBACK,
    Act.CLOSE: Action.CLOSE,
    Act.CANCEL: Action.CANCEL,
    Act.LOWER_ROUTE: Action.REASSESS,
}


def _members(holder: Holder, policy: Policy) -> frozenset[str]:
    return {
        H.CHANGE_MANAGERS: policy.change_managers,
        H.IMPLEMENTERS: policy.implementers,
        H.ADMINS: policy.admins,
    }.get(holder, frozenset())


def _holds(holder: Holder, actor: str, policy: Policy, change: Change | None, lease: str | None) -> bool:
    if holder is H.ANYONE:
        return True
    if holder is H.REQUESTER:
        return change is not None and actor == change.requested_by
    if holder is H.LEASE_HOLDER:
        return lease is not None and actor == lease
    return actor in _members(holder, policy)


def allowed(
    act: Act, actor: str, policy: Policy, change: Change | None = None, lease_holder: str | None = None
) -> bool:
    """True when `actor` may do `act` (to `change`, whose lease `lease_holder` holds, if any)."""
    return any(_holds(h, actor, policy, change, lease_holder) for h in PERMISSIONS[act])


def describe(act: Act, policy: Policy, change: Change | None = None) -> str:
    """Who may do `act`, in words: `the requester (alice), CHANGE_MANAGERS (change-manager)`."""
    parts = []
    for holder in PERMISSIONS[act]:
        if holder is H.REQUESTER and change is not None:
            parts.append(f"{holder.value} ({change.requested_by})")
        elif holder in (H.CHANGE_MANAGERS, H.IMPLEMENTERS, H.ADMINS):
            parts.append(f"{holder.value} ({', '.join(sorted(_members(holder, policy))) or 'nobody'})")
        else:
            parts.append(holder.value)
    return ", ".join(parts)


def require(
    act: Act, actor: str, policy: Policy, change: Change | None = None, lease_holder: str | None = None
) -> None:
    """Raise Forbidden, naming the action and who may do it, unless `actor` may.

    The change's state is checked first (InvalidTransition), so the refusal names the real obstacle.
    """
    if change is not None and act in STATE_RULE:
        check(change.change_id, STATE_RULE[act], change.state)
    if allowed(act, actor, policy, change, lease_holder):
        return
    target = f" {change.change_id}" if change is not None else ""
    raise Forbidden(f"{actor} may not {act.value}{target}: allowed to {describe(act, policy, change)}")
