"""Compliance controls per framework, evaluated on one change (SPEC §1 `compliance`)."""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime

from .lifecycle import State
from .model import Change, ChangeType, Decision, Level, has_steps
from .policy import Policy
from .routing import is_system_approver, outstanding
from .values import Frozen

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Final

PASS, FAIL, PENDING, NA = "pass", "fail", "pending", "not_applicable"


class Result(Frozen):
    __slots__ = ("control", "reason", "status")

    def __init__(self, control: str, status: str, reason: str) -> None:
        self.control: Final = control
        self.status: Final = status
        self.reason: Final = reason


Control = Callable[[Change, Policy, Collection[str], datetime], Result]

# Milestone -> the audit action that must record it.
MILESTONE_EVENTS = {
    "created_at": "created",
    "assessed_at": "assessed",
    "approved_at": "approved",
    "implementation_started_at": "implementation_started",
    "closed_at": "closed",
}


def audit_trail(change: Change, policy: Policy, actions: Collection[str], now: datetime) -> Result:
    missing = []
    for milestone, action in MILESTONE_EVENTS.items():
        if getattr(change.timeline, milestone) is None:
            continue
        wanted = {action, "reassessed"} if action == "assessed" else {action}
        if action == "closed":
            wanted = {"closed", "cancelled", "rolled_back"}
        if not wanted & set(actions):
            missing.append(action)
    if missing:
        return Result("audit_trail", FAIL, f"no audit event for: {', '.join(missing)}")
    return Result("audit_trail", PASS, f"{len(actions)} audit events cover every milestone")


def segregation(change: Change, policy: Policy, actions: Collection[str], now: datetime) -> Result:
    own = [a for a in change.active_approvals if a.approver == change.requested_by]
    if own:
        return Result("segregation_of_duties", FAIL, f"requester {change.requested_by} approved")
    # Only approvals count: an approver may still reject (one rejection ends the vote).
    people = [a.approver for a in change.active_approvals if a.decision is Decision.APPROVED]
    if len(people) != len(set(people)):
        return Result("segregation_of_duties", FAIL, "one person counted more than once")
    return Result("segregation_of_duties", PASS, "requester is not among the approvers")


def approval_documentation(change: Change, policy: Policy, actions: Collection[str], now: datetime) -> Result:
    a = change.assessment
    if a is None or change.timeline.approved_at is None:
        if change.state in (State.REJECTED, State.CANCELLED):
            return Result("approval_documentation", NA, f"change {change.state.value}")
        return Result("approval_documentation", PENDING, "not yet approved")
    granted = [x for x in change.active_approvals if x.decision is Decision.APPROVED]
    if any(not x.reason.strip() for x in granted):
        return Result("approval_documentation", FAIL, "an approval has no reason")
    system = [x for x in granted if is_system_approver(x.approver)]
    if system:
        return Result("approval_documentation", PASS, f"{a.route.value} by policy: {system[0].approver}")
    missing = outstanding(a.route, granted, policy, a.ciso)
    if missing:
        return Result("approval_documentation", FAIL, f"route unmet: {', '.join(missing)}")
    who = ", ".join(f"{x.approver} ({x.role})" for x in granted)
    return Result("approval_documentation", PASS, f"{a.route.value}: {who}")


def rollback_procedure(change: Change, policy: Policy, actions: Collection[str], now: datetime) -> Result:
    a = change.assessment
    if a is None:
        return Result("rollback_plan", PENDING, "not yet assessed")
    if a.level is Level.LOW or change.type is not ChangeType.NORMAL:
        return Result("rollback_plan", NA, f"{change.type.value} change at {a.level.value} risk")
    if not has_steps(change.rollback_plan):
        return Result("rollback_plan", FAIL, f"{a.level.value} risk without a rollback plan")
    return Result("rollback_plan", PASS, f"{len((change.rollback_plan or {})['steps'])} step(s)")


def emergency_review(change: Change, policy: Policy, actions: Collection[str], now: datetime) -> Result:
    r = change.review
    if change.type is not ChangeType.EMERGENCY or r is None:
        return Result("emergency_review", NA, "not an approved emergency change")
    if r.reviewed_at is None:
        status = FAIL if now > r.due_at else PENDING
        return Result("emergency_review", status, f"review due {r.due_at:%Y-%m-%dT%H:%M:%SZ}")
    if r.reviewed_at > r.due_at:
        return Result("emergency_review", FAIL, f"reviewed late by {r.reviewer}")
    return Result("emergency_review", PASS, f"{r.outcome.value if r.outcome else ''} by {r.reviewer}")


def risk_assessment(change: Change, policy: Policy, actions: Collection[str], now: datetime) -> Result:
    a = change.assessment
    if a is None:
        return Result("risk_assessment", PENDING, "not yet assessed")
    return Result("risk_assessment", PASS, f"score {a.score} ({a.level.value}) by {a.assigned_to}")


FRAMEWORKS: dict[str, list[Control]] = {
    "soc2": [audit_trail, segregation, approval_documentation, rollback_procedure, emergency_review],
    "hipaa": [risk_assessment, audit_trail, approval_documentation, emergency_review],
    "iso27001": [
        risk_assessment,
        segregation,
        approval_documentation,
        rollback_procedure,
        audit_trail,
        emergency_review,
    ],
}


def evaluate(
    change: Change,
    policy: Policy,
    frameworks: Collection[str],
    actions: Collection[str],
    now: datetime,
) -> dict[str, list[Result]]:
    if "hipaa" not in frameworks and phi_in_radius(change):
        frameworks = [*frameworks, "hipaa"]  # PHI in the blast radius brings HIPAA's controls
    return {f: [c(change, policy, actions, now) for c in FRAMEWORKS[f]] for f in frameworks}


def phi_in_radius(change: Change) -> list[str]:
    """The CIs holding PHI that the CMDB found in the change's blast radius (docs/cmdb.md)."""
    a = change.assessment
    radius = a.blast_radius if a is not None else None
    if not radius:
        return []
    return [s["name"] for s in radius.get("sensitive", []) if s["data"] == "phi"]


def complete(results: dict[str, list[Result]]) -> bool:
    """True when no applicable control fails or is still pending."""
    return all(r.status in (PASS, NA) for rs in results.values() for r in rs)
