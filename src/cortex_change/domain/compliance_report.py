"""Compliance reports (SPEC §8): each framework's controls, with the audit events that evidence them."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import datetime

from . import compliance
from .compliance import FAIL, NA, PASS, PENDING, Result
from .lifecycle import State
from .model import Change, ChangeType, ClosureStatus, Level, has_steps
from .policy import Policy

STATUSES = (PASS, FAIL, PENDING, NA)
VOTES = frozenset({"approval_granted", "approved", "rejected"})
REFUSALS = frozenset({"refused", "unauthorized_attempt"})


@dataclass(frozen=True)
class AuditRef:
    """One audit event cited as evidence."""

    seq: int
    action: str
    actor: str
    hash: str


@dataclass(frozen=True)
class Chain:
    """The whole audit chain's verification, as the report states it at the top."""

    ok: bool
    checked: int = 0
    head_hash: str = ""
    problem: str = ""
    first_broken: int | None = None


@dataclass(frozen=True)
class Witnessed:
    """A signed audit checkpoint that at least one witness outside the database took
    (docs/checkpoints.md): what a report cites as proof that the events it covers were fixed then."""

    number: int
    length: int  # it vouches for events #1..length
    head: str
    at: str
    witnesses: tuple[tuple[str, str, str], ...]  # (witness, delivered at, what it holds: "" or a detail)
    matches: bool = True  # the chain still has `head` at `length` (else history was rewritten)

    def covers(self, events: tuple[AuditRef, ...]) -> bool:
        """Whether it vouches for every one of `events` (the last is within its length)."""
        return bool(events) and max(e.seq for e in events) <= self.length


@dataclass(frozen=True)
class Facts:
    """What one change's findings are drawn from: the record, its events, linked incidents, PHI."""

    change: Change
    events: tuple[AuditRef, ...] = ()
    incidents: tuple[str, ...] = ()
    phi: tuple[str, ...] = ()  # the PHI_SERVICES / PHI_CIS entries the change touches

    @property
    def actions(self) -> list[str]:
        return [e.action for e in self.events]

    @property
    def last_hash(self) -> str | None:
        return self.events[-1].hash if self.events else None


@dataclass(frozen=True)
class Finding:
    control: str
    status: str
    reason: str
    evidence: tuple[AuditRef, ...]


Check = Callable[[Facts, Policy, datetime], Result]


@dataclass(frozen=True)
class Control:
    """A control of a framework: what it is called, where the framework states it, how it is judged."""

    key: str
    title: str
    reference: str
    check: Check
    cites: frozenset[str]  # the audit actions whose events are its evidence


@dataclass(frozen=True)
class Unassessed:
    """A control the seed lists that change records cannot evidence."""

    key: str
    title: str
    reference: str
    why: str


def phi_matches(change: Change, phi_services: Collection[str], phi_cis: Collection[str]) -> tuple[str, ...]:
    """The change's services and CIs that are configured as holding PHI."""
    from .compliance import phi_in_radius

    services = [s for s in change.affected_services if s in phi_services]
    listed = (*services, *(ci for ci in change.affected_cis if ci in phi_cis))
    return (*listed, *(ci for ci in phi_in_radius(change) if ci not in listed))


def _per_change(control: compliance.Control) -> Check:
    """A control of domain/compliance.py (judged on the record and its actions) as a report check."""
    return lambda facts, policy, now: control(facts.change, policy, facts.actions, now)


def access_control(facts: Facts, policy: Policy, now: datetime) -> Result:
    """Every event names who acted, and every vote on the record was cast by its voter."""
    key = "access_control"
    anonymous = [e for e in facts.events if not e.actor.strip()]
    if anonymous:
        return Result(key, FAIL, f"event #{anonymous[0].seq} ({anonymous[0].action}) names no actor")
    voters = {e.actor for e in facts.events if e.action in VOTES}
    for vote in facts.change.active_approvals:
        if vote.approver not in voters:
            return Result(key, FAIL, f"{vote.approver}'s {vote.decision.value} has no audit event by them")
    refused = sum(e.action in REFUSALS for e in facts.events)
    blocked = f"; {refused} refused attempt(s) blocked" if refused else ""
    votes = len(facts.change.active_approvals)
    return Result(key, PASS, f"{len(facts.events)} event(s) by named identities, {votes} vote(s){blocked}")


def phi_risk_assessment(facts: Facts, policy: Policy, now: datetime) -> Result:
    """A change touching PHI services or CIs is risk-assessed."""
    key = "phi_risk_assessment"
    if not facts.phi:
        return Result(key, NA, "touches no PHI service or CI (PHI_SERVICES, PHI_CIS)")
    where = ", ".join(facts.phi)
    a = facts.change.assessment
    if a is None:
        return Result(key, PENDING, f"PHI change ({where}) not yet assessed")
    return Result(key, PASS, f"PHI change ({where}): score {a.score} ({a.level.value}) by {a.assigned_to}")


def incident_response(facts: Facts, policy: Policy, now: datetime) -> Result:
    """A failed or rolled-back change has its failure recorded; a failed rollback, an incident."""
    key = "incident_response"
    c = facts.change
    if c.state is State.ROLLING_BACK:
        return Result(key, PENDING, "rolling back: the failure is not closed yet")
    status = c.closure_status
    if status not in (ClosureStatus.FAILED, ClosureStatus.ROLLED_BACK):
        return Result(key, NA, "no failure to respond to")
    if not (c.closure_notes or "").strip():
        return Result(key, FAIL, f"closed {status.value} without closure notes recording the failure")
    if "rollback_failed" in facts.actions and not facts.incidents:
        return Result(key, FAIL, "the rollback failed but no incident is linked")
    linked = f"; incident(s) {', '.join(facts.incidents)}" if facts.incidents else ""
    return Result(key, PASS, f"closed {status.value} with the failure recorded{linked}")


def _normal_at_risk(c: Change, key: str) -> Result | None:
    """Pending before assessment; not applicable to standard, emergency or low-risk changes."""
    a = c.assessment
    if a is None:
        return Result(key, PENDING, "not yet assessed")
    if a.level is Level.LOW or c.type is not ChangeType.NORMAL:
        return Result(key, NA, f"{c.type.value} change at {a.level.value} risk")
    return None


def change_documentation(facts: Facts, policy: Policy, now: datetime) -> Result:
    """A normal change at medium risk or above has an implementation plan."""
    c = facts.change
    early = _normal_at_risk(c, "change_documentation")
    if early is not None:
        return early
    plan = c.implementation_plan or {}
    level = c.assessment.level.value if c.assessment else ""
    if not has_steps(plan):
        return Result("change_documentation", FAIL, f"{level} risk without an implementation plan")
    return Result("change_documentation", PASS, f"implementation plan: {len(plan['steps'])} step(s)")


def testing(facts: Facts, policy: Policy, now: datetime) -> Result:
    """A normal change at medium risk or above was tested: staging evidence or a test plan."""
    c = facts.change
    early = _normal_at_risk(c, "testing")
    if early is not None:
        return early
    a = c.assessment
    assert a is not None
    if a.staging_evidence:
        return Result("testing", PASS, f"tested in staging: {a.staging_evidence}")
    if has_steps(c.test_plan):
        return Result("testing", PASS, f"test plan: {len((c.test_plan or {})['steps'])} step(s)")
    need = f"{a.level.value} risk needs {a.testing_required} testing"
    return Result("testing", FAIL, f"{need}: no test plan and no staging evidence")


MILESTONES = frozenset(
    {
        "created",
        "assessed",
        "reassessed",
        "approved",
        "implementation_started",
        "closed",
        "cancelled",
        "rolled_back",
    }
)
ASSESSED = frozenset({"assessed", "reassessed"})
DESCRIBED = frozenset({"created", "updated"})
APPROVAL = VOTES | {"approval_requested"}
SEGREGATION = VOTES | {"created"}
ACCESS = VOTES | REFUSALS
INCIDENTS = frozenset(
    {"rollback_started", "rollback_skipped", "rolled_back", "rollback_failed", "closed", "incident_opened"}
)
REVIEW = frozenset({"approved", "review_recorded"})

# The controls of domain/compliance.py (what `show` reports), judged the same way here.
AUDIT_TRAIL = _per_change(compliance.audit_trail)
SEGREGATED = _per_change(compliance.segregation)
APPROVED = _per_change(compliance.approval_documentation)
ROLLBACK = _per_change(compliance.rollback_procedure)
REVIEWED = _per_change(compliance.emergency_review)
RISK = _per_change(compliance.risk_assessment)

FRAMEWORKS: dict[str, tuple[Control, ...]] = {
    "soc2": (
        Control(
            "audit_trail", "Complete audit trail for all changes", "CC8.1, CC7.2", AUDIT_TRAIL, MILESTONES
        ),
        Control(
            "segregation_of_duties",
            "Segregation of duties (requester ≠ approver)",
            "CC6.3, CC8.1",
            SEGREGATED,
            SEGREGATION,
        ),
        Control("approval_documentation", "Change approval documentation", "CC8.1", APPROVED, APPROVAL),
        Control("rollback_plan", "Rollback procedures", "CC8.1", ROLLBACK, DESCRIBED | ASSESSED),
        Control(
            "access_control", "Access control for change management", "CC6.1-CC6.3", access_control, ACCESS
        ),
        Control("emergency_review", "Emergency change review", "CC8.1", REVIEWED, REVIEW),
    ),
    "hipaa": (
        Control(
            "phi_risk_assessment",
            "Risk assessment for PHI-affecting changes",
            "164.308(a)(1)(ii)(A)",
            phi_risk_assessment,
            ASSESSED,
        ),
        Control("access_control", "Access control documentation", "164.312(a)(1)", access_control, ACCESS),
        Control(
            "incident_response",
            "Incident response integration",
            "164.308(a)(6)",
            incident_response,
            INCIDENTS,
        ),
        Control("risk_assessment", "Risk assessment of every change", "164.308(a)(1)(ii)(A)", RISK, ASSESSED),
        Control("audit_trail", "Audit controls", "164.312(b)", AUDIT_TRAIL, MILESTONES),
        Control(
            "approval_documentation",
            "Change approval documentation",
            "164.308(a)(1)(ii)(B)",
            APPROVED,
            APPROVAL,
        ),
        Control("emergency_review", "Emergency change review", "164.308(a)(1)(ii)(B)", REVIEWED, REVIEW),
    ),
    "iso27001": (
        Control("change_documentation", "Changes documented", "A.8.32", change_documentation, DESCRIBED),
        Control("risk_assessment", "Changes assessed", "A.8.32", RISK, ASSESSED),
        Control("approval_documentation", "Changes approved", "A.8.32", APPROVED, APPROVAL),
        Control("testing", "Changes tested", "A.8.32, A.8.29", testing, DESCRIBED | ASSESSED),
        Control("rollback_plan", "Changes can be rolled back", "A.8.32", ROLLBACK, DESCRIBED | ASSESSED),
        Control("segregation_of_duties", "Segregation of duties", "A.5.3", SEGREGATED, SEGREGATION),
        Control("audit_trail", "Logging of changes", "A.8.15", AUDIT_TRAIL, MILESTONES),
        Control("emergency_review", "Emergency changes reviewed", "A.8.32", REVIEWED, REVIEW),
    ),
}
NAMES = {"soc2": "SOC 2", "hipaa": "HIPAA", "iso27001": "ISO/IEC 27001:2022"}

# Controls the seed lists that no change record can evidence: reported as not assessed, never passed.
NOT_ASSESSED: dict[str, tuple[Unassessed, ...]] = {
    "soc2": (),
    "hipaa": (
        Unassessed(
            "encryption_validation",
            "Encryption validation",
            "164.312(a)(2)(iv), 164.312(e)(2)(ii)",
            "its evidence is the systems' encryption configuration, not change records",
        ),
        Unassessed(
            "baa_compliance",
            "Business Associate Agreement (BAA) compliance",
            "164.308(b)(1)",
            "its evidence is vendor contracts, not change records",
        ),
    ),
    "iso27001": (),
}


def evaluate(framework: str, facts: Facts, policy: Policy, chain: Chain, now: datetime) -> list[Finding]:
    """Each control of `framework` on one change, citing its audit events."""
    out = []
    for control in FRAMEWORKS[framework]:
        result = control.check(facts, policy, now)
        if control.key == "audit_trail" and not chain.ok:
            result = Result(result.control, FAIL, f"the audit chain is broken: {chain.problem}")
        cited = tuple(e for e in facts.events if e.action in control.cites)
        out.append(Finding(control.key, result.status, result.reason, cited))
    return out


def tally(framework: str, findings: Iterable[list[Finding]]) -> dict[str, dict[str, int]]:
    """Per control, how many changes passed, failed, are pending or not applicable."""
    counts = {c.key: dict.fromkeys(STATUSES, 0) for c in FRAMEWORKS[framework]}
    for per_change in findings:
        for f in per_change:
            counts[f.control][f.status] += 1
    return counts
