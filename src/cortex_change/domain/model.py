"""The change record (SPEC §1) and its value types."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from .lifecycle import State
from .values import Frozen, Value

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any, Final


class ChangeType(StrEnum):
    STANDARD = "standard"
    NORMAL = "normal"
    EMERGENCY = "emergency"


class Level(StrEnum):
    """Impact, urgency and risk level share one scale."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


LEVELS = tuple(Level)  # in order: low < medium < high < critical


class Route(StrEnum):
    PRE_APPROVED = "pre-approved"
    AUTO_APPROVED = "auto-approved"
    TECHNICAL_LEAD = "technical-lead"
    CAB = "cab"
    CAB_CISO_CTO = "cab+ciso+cto"
    EMERGENCY_CAB = "emergency-cab"


class Decision(StrEnum):
    APPROVED = "approved"
    REJECTED = "rejected"


class ClosureStatus(StrEnum):
    SUCCESSFUL = "successful"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"
    CANCELLED = "cancelled"


class ReviewOutcome(StrEnum):
    ACCEPTED = "accepted"
    CONCERNS = "concerns"


Plan = dict[str, "Any"]


class Approval(Value):
    __slots__ = ("active", "approver", "at", "decision", "reason", "role")

    def __init__(
        self, approver: str, role: str, decision: Decision, reason: str, at: datetime, active: bool = True
    ) -> None:
        self.approver = approver
        self.role = role
        self.decision = decision
        self.reason = reason
        self.at = at
        # False once an update discarded it; kept so the record shows what happened.
        self.active = active


class RiskComponent(Frozen):
    __slots__ = ("points", "reason")

    def __init__(self, points: int, reason: str) -> None:
        self.points: Final = points
        self.reason: Final = reason


class Assessment(Value):
    __slots__ = (
        "assessed_at",
        "assigned_to",
        "blast_radius",
        "components",
        "features",
        "forecast",
        "history_used",
        "level",
        "prediction",
        "priority",
        "route",
        "route_reason",
        "score",
        "staging_evidence",
        "testing_required",
    )

    def __init__(
        self,
        score: int,
        level: Level,
        priority: str,
        route: Route,
        components: dict[str, RiskComponent],
        history_used: list[str],
        testing_required: str,
        assigned_to: str,
        assessed_at: datetime,
        route_reason: str = "",
        staging_evidence: str | None = None,
        blast_radius: dict[str, Any] | None = None,
        features: dict[str, float] | None = None,
        prediction: dict[str, Any] | None = None,
        forecast: dict[str, Any] | None = None,
    ) -> None:
        self.score = score
        self.level = level
        self.priority = priority
        self.route = route
        self.components = components
        self.history_used = history_used
        self.testing_required = testing_required
        self.assigned_to = assigned_to
        self.assessed_at = assessed_at
        self.route_reason = route_reason
        self.staging_evidence = staging_evidence
        # What the CMDB said (services/cmdb.py): the radius, its size, sensitive data, unknown names.
        self.blast_radius = blast_radius
        # What a learned model may know of the change at this assessment (domain/features.py), and
        # its prediction when one was made (domain/prediction.py; docs/risk-model.md).
        self.features = features
        self.prediction = prediction
        # The expected change in error rate and latency, from earlier changes' statistical
        # validation of the same services (domain/canary.py `forecast`; docs/canary.md).
        self.forecast = forecast

    @property
    def ciso(self) -> bool:
        """PHI or PCI data in the blast radius: the CISO approves too (docs/cmdb.md)."""
        return bool(self.blast_radius and self.blast_radius.get("sensitive"))


class Review(Value):
    __slots__ = ("due_at", "notes", "outcome", "reviewed_at", "reviewer")

    def __init__(
        self,
        due_at: datetime,
        reviewed_at: datetime | None = None,
        reviewer: str | None = None,
        outcome: ReviewOutcome | None = None,
        notes: str | None = None,
    ) -> None:
        self.due_at = due_at
        self.reviewed_at = reviewed_at
        self.reviewer = reviewer
        self.outcome = outcome
        self.notes = notes


class Timeline(Value):
    """When the change passed each milestone (SPEC §1 `metrics`)."""

    __slots__ = (
        "approved_at",
        "assessed_at",
        "closed_at",
        "created_at",
        "implementation_started_at",
        "implemented_at",
    )

    def __init__(
        self,
        created_at: datetime,
        assessed_at: datetime | None = None,
        approved_at: datetime | None = None,
        implementation_started_at: datetime | None = None,
        implemented_at: datetime | None = None,
        closed_at: datetime | None = None,
    ) -> None:
        self.created_at = created_at
        self.assessed_at = assessed_at
        self.approved_at = approved_at
        self.implementation_started_at = implementation_started_at
        self.implemented_at = implemented_at
        self.closed_at = closed_at

    @property
    def mtta_seconds(self) -> float | None:
        return _seconds(self.created_at, self.approved_at)

    @property
    def mtti_seconds(self) -> float | None:
        return _seconds(self.approved_at, self.implemented_at)


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (end - start).total_seconds()


class Change(Value):
    __slots__ = (
        "affected_cis",
        "affected_services",
        "agent_max_level",
        "approvals",
        "assessment",
        "authors",
        "category",
        "change_id",
        "closure_notes",
        "closure_status",
        "dependencies",
        "description",
        "environment",
        "impact",
        "implementation_plan",
        "origin",
        "parameters",
        "planned_end",
        "planned_start",
        "reclassified_from",
        "requested_by",
        "review",
        "rollback_plan",
        "route_floor",
        "standard_model",
        "state",
        "test_plan",
        "tested_in_staging",
        "timeline",
        "title",
        "trail",
        "type",
        "urgency",
        "validation",
        "version",
    )

    def __init__(
        self,
        change_id: str,
        type: ChangeType,
        category: str,
        title: str,
        description: str,
        requested_by: str,
        impact: Level,
        urgency: Level,
        timeline: Timeline,
        implementation_plan: Plan | None = None,
        rollback_plan: Plan | None = None,
        test_plan: Plan | None = None,
        validation: dict[str, Any] | None = None,
        affected_services: list[str] | None = None,
        affected_cis: list[str] | None = None,
        dependencies: list[str] | None = None,
        environment: str | None = None,
        tested_in_staging: str | None = None,
        state: State = State.PENDING_ASSESSMENT,
        closure_status: ClosureStatus | None = None,
        closure_notes: str | None = None,
        approvals: list[Approval] | None = None,
        assessment: Assessment | None = None,
        review: Review | None = None,
        reclassified_from: ChangeType | None = None,
        standard_model: str | None = None,
        parameters: dict[str, Any] | None = None,
        authors: list[str] | None = None,
        route_floor: Route | None = None,
        planned_start: datetime | None = None,
        planned_end: datetime | None = None,
        origin: str = "human",
        agent_max_level: Level | None = None,
        version: int = 0,
    ) -> None:
        self.planned_start = planned_start  # the window implementation may happen in (schedule.py)
        self.planned_end = planned_end
        self.change_id = change_id
        self.type = type
        self.category = category
        self.title = title
        self.description = description
        self.requested_by = requested_by
        self.impact = impact
        self.urgency = urgency
        self.timeline = timeline
        self.implementation_plan = implementation_plan
        self.rollback_plan = rollback_plan
        self.test_plan = test_plan
        # Post-change validation: health checks, period, interval, Prometheus queries (SPEC §7).
        self.validation = validation
        self.affected_services: list[str] = [] if affected_services is None else affected_services
        self.affected_cis: list[str] = [] if affected_cis is None else affected_cis
        self.dependencies: list[str] = [] if dependencies is None else dependencies
        self.environment = environment
        self.tested_in_staging = tested_in_staging
        self.state = state
        self.closure_status = closure_status
        self.closure_notes = closure_notes
        self.approvals: list[Approval] = [] if approvals is None else approvals
        self.assessment = assessment
        self.review = review
        # Set when a standard request was turned into another type, with why.
        self.reclassified_from = reclassified_from
        # The standard change model a standard request asks for, and the values it is judged on.
        self.standard_model = standard_model
        self.parameters: dict[str, Any] = {} if parameters is None else parameters
        # Everyone who edited plans, services, impact or description after filing (SPEC §11): none
        # of them may approve, reject or review the change.
        self.authors: list[str] = [] if authors is None else authors
        # The highest approval route a human had to decide; re-assessment never routes below it
        # unless a change manager lowers it (SPEC §11).
        self.route_floor = route_floor
        # Who filed it (docs/agents.md): "human" or "agent" (requested_by names the identity), and
        # an agent token's max-level, above which a person co-signs.
        self.origin = origin
        self.agent_max_level = agent_max_level
        self.version = version
        # Not a field: the audit trail's rows as the store holds them, when a unit of work has
        # just written the change (services/unit.py), so a door answers without reading it again.
        self.trail: list[dict[str, Any]] | None = None

    @property
    def active_approvals(self) -> list[Approval]:
        return [a for a in self.approvals if a.active]

    def authored_by(self, person: str) -> bool:
        """True for the requester and everyone who edited the change's substance."""
        return person == self.requested_by or person in self.authors


def has_steps(plan: Plan | None) -> bool:
    """True when a plan names at least one step."""
    return bool(plan) and bool(plan.get("steps")) if plan is not None else False
