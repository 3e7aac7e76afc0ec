"""Who hears what: the notification routing table (docs/notifications.md shows it)."""

from __future__ import annotations

from . import routing
from .events import Event, EventKind
from .model import Change, ChangeType
from .policy import Policy
from .values import Frozen

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Final


class Rule(Frozen):
    __slots__ = ("ask", "audiences", "headline", "kind")

    def __init__(self, kind: str, audiences: tuple[str, ...], ask: str, headline: str) -> None:
        self.kind: Final = kind
        # requester | approvers | cab | ecab | oncall | change_managers | owner (the event's)
        self.audiences: Final = audiences
        self.ask: Final = ask
        self.headline: Final = headline


# Audit event -> the notification it causes. `oncall` is ECAB_MEMBERS (the on-call leads).
# (What an event schedules and cancels is services/followups.py's TIMERS, beside this table.)
ROUTES: dict[EventKind, Rule] = {
    EventKind.APPROVAL_REQUESTED: Rule(
        "approval_requested", ("approvers",), "approve or reject this change", "Approval requested"
    ),
    EventKind.APPROVED: Rule("decision", ("requester",), "", "Approved"),
    EventKind.REJECTED: Rule("decision", ("requester",), "", "Rejected"),
    EventKind.ROLLBACK_STARTED: Rule(
        "failure", ("requester", "oncall"), "watch the automated rollback", "Failed: rolling back"
    ),
    EventKind.ROLLBACK_SKIPPED: Rule(
        "failure", ("requester", "oncall"), "roll back by hand (automated rollback is off)", "Failed"
    ),
    EventKind.ROLLED_BACK: Rule("rollback", ("requester", "oncall"), "", "Rolled back"),
    EventKind.ROLLBACK_FAILED: Rule(
        "rollback_failed",
        ("requester", "oncall", "cab"),
        "handle the incident: the rollback failed",
        "Rollback FAILED",
    ),
    EventKind.LEASE_EXPIRED: Rule(
        "lease_expired",
        ("requester", "oncall"),
        "resume (implement ID --resume) or roll back (rollback ID)",
        "Stuck: worker lease expired",
    ),
    EventKind.APPROVAL_ESCALATED: Rule(
        "approval_timeout", ("cab", "approvers"), "decide: the approval timed out", "Approval overdue"
    ),
    EventKind.REVIEW_DUE: Rule(
        "review_due", ("cab", "ecab"), "record the retrospective review", "Review due"
    ),
    EventKind.REVIEW_OVERDUE: Rule(
        "review_overdue", ("cab", "ecab"), "record the retrospective review (SLA missed)", "Review OVERDUE"
    ),
    EventKind.CLOSED: Rule("closed", ("requester",), "", "Closed"),
    # Post-implementation reviews (docs/pir.md). `change_managers` is CHANGE_MANAGERS; `owner` is
    # the identity the event names as owner (an action item's).
    EventKind.PIR_OPENED: Rule(
        "pir_opened",
        ("requester", "change_managers"),
        "write the post-implementation review within PIR_SLA: findings and action items",
        "Post-implementation review opened",
    ),
    EventKind.PIR_OVERDUE: Rule(
        "pir_overdue",
        ("change_managers", "requester"),
        "complete the post-implementation review (PIR_SLA missed)",
        "Post-implementation review OVERDUE",
    ),
    EventKind.PIR_ACTION_ADDED: Rule(
        "pir_action", ("owner",), "carry out the action item by its due date", "Action item assigned"
    ),
    EventKind.PIR_ACTION_OVERDUE: Rule(
        "pir_action_overdue",
        ("owner",),
        "carry out the action item (past its due date), then mark it done",
        "Action item OVERDUE",
    ),
    # The statistical validation stayed inconclusive after its one extension (docs/canary.md):
    # those who may close or roll back the change decide.
    EventKind.ROLLBACK_DECISION_REQUESTED: Rule(
        "rollback_decision",
        ("requester", "change_managers"),
        "keep it (close ID successful NOTES) or roll it back (rollback ID REASON)",
        "Validation inconclusive: keep or roll back?",
    ),
}
# An emergency change's assessment also tells the ECAB.
EMERGENCY_ASSESSED = frozenset({EventKind.ASSESSED, EventKind.REASSESSED})
EMERGENCY = Rule("emergency", ("ecab",), "review within EMERGENCY_CAB_REVIEW_SLA", "EMERGENCY change")
# The kinds PagerDuty hears (all others go to chat, mail and webhook only).
PAGED_KINDS = frozenset({"emergency", "rollback_failed", "lease_expired"})


def rules_for(change: Change, event: Event) -> list[Rule]:
    """The notifications one event causes."""
    rule = ROUTES.get(event.action)
    out = [rule] if rule is not None else []
    if change.type is ChangeType.EMERGENCY and event.action in EMERGENCY_ASSESSED:
        out.append(EMERGENCY)
    return out


def recipients(rule: Rule, change: Change, policy: Policy, event: Event | None = None) -> tuple[str, ...]:
    """The identities a rule's audiences name for this change (requester first, no repeats)."""
    seen: dict[str, None] = {}
    for audience in rule.audiences:
        for who in _audience(audience, change, policy, event):
            seen.setdefault(who, None)
    return tuple(seen)


def _audience(name: str, change: Change, policy: Policy, event: Event | None = None) -> list[str]:
    if name == "requester":
        return [change.requested_by]
    if name == "change_managers":
        return sorted(policy.change_managers)
    if name == "owner":
        owner = event.details.get("owner") if event is not None else None
        return [owner] if isinstance(owner, str) and owner else []
    if name == "cab":
        return sorted(policy.cab_members)
    if name in ("ecab", "oncall"):
        return sorted(policy.ecab_members)
    if change.assessment is None:
        return []
    reqs = routing.needs(change, policy)
    return sorted({m for r in reqs for m in r.members})
