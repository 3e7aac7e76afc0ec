"""What an identity may do to a change now: the actions a door offers (the web portal's buttons).

Nothing here is a second copy of a rule: each offer asks the rule itself — the lifecycle table,
`permissions.require`, and for decisions the workflow operation run on a copy of the change (so
segregation of duties, roles, quorum seating and documentation are exactly the ones a real
request meets). An offer withheld keeps the rule's message (`why`), for the door to show.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime
from typing import Final

from . import permissions, routing, workflow
from .errors import CortexError
from .lifecycle import Action, check
from .model import Change, ChangeType, ReviewOutcome
from .permissions import Act
from .policy import Policy
from .values import Frozen


class Offer(Frozen):
    """An action and whether `actor` may take it now; if not, the rule's words."""

    __slots__ = ("action", "allowed", "why")

    def __init__(self, action: str, allowed: bool, why: str = "") -> None:
        self.action: Final = action
        self.allowed: Final = allowed
        self.why: Final = why


def _try(action: str, attempt: Callable[[], object]) -> Offer:
    try:
        attempt()
    except CortexError as exc:
        return Offer(action, False, str(exc))
    return Offer(action, True)


def _on_copy(change: Change, operation: Callable[[Change], object]) -> Callable[[], object]:
    return lambda: operation(copy.deepcopy(change))


def offers(
    change: Change, actor: str, policy: Policy, now: datetime, lease_holder: str | None = None
) -> dict[str, Offer]:
    """Every action a door offers on `change`, keyed by name: assess, approve, reject,
    implement, close, cancel, review."""
    cid = change.change_id

    def may(act: Act) -> Callable[[], object]:
        return lambda: permissions.require(act, actor, policy, change, lease_holder)

    out = [
        _try("assess", lambda: check(cid, Action.ASSESS, change.state)),
        _try("approve", _on_copy(change, lambda c: workflow.approve(c, actor, "offer", policy, now))),
        _try("reject", _on_copy(change, lambda c: workflow.reject(c, actor, "offer", policy, now))),
        _try("implement", may(Act.IMPLEMENT)),
        _try("close", may(Act.CLOSE)),
        _try("cancel", may(Act.CANCEL)),
    ]
    if change.type is ChangeType.EMERGENCY:
        out.append(
            _try(
                "review",
                _on_copy(
                    change, lambda c: workflow.review(c, actor, ReviewOutcome.ACCEPTED, "offer", policy, now)
                ),
            )
        )
    return {o.action: o for o in out}


def waits_for(change: Change, actor: str, policy: Policy, now: datetime) -> bool:
    """True when `actor` may approve `change` now: it belongs in their approvals inbox."""
    return offers(change, actor, policy, now)["approve"].allowed


def quorum(change: Change, policy: Policy) -> list[dict[str, object]]:
    """The route's requirements with who counted under each and how many are still needed."""
    if change.assessment is None:
        return []
    out: list[dict[str, object]] = []
    active = change.active_approvals
    for req in routing.needs(change, policy):
        voters = [a.approver for a in active if a.role == req.role and a.decision.value == "approved"]
        out.append(
            {
                "role": req.role,
                "config_key": req.config_key,
                "needed": req.count,
                "have": len(voters),
                "approvers": voters,
                "members": sorted(req.members),
            }
        )
    return out
