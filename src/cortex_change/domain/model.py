"""The change record (SPEC §1) and its value types."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from .lifecycle import State


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


Plan = dict[str, Any]


@dataclass
class Approval:
    approver: str
    role: str
    decision: Decision
    reason: str
    at: datetime
    # False once an update discarded it; kept so the record shows what happened.
    active: bool = True


@dataclass(frozen=True)
class RiskComponent:
    points: int
    reason: str


@dataclass
class Assessment:
    score: int
    level: Level
    priority: str
    route: Route
    components: dict[str, RiskComponent]
    history_used: list[str]
    testing_required: str
    assigned_to: str
    assessed_at: datetime
    route_reason: str = ""
    staging_evidence: str | None = None


@dataclass
class Review:
    due_at: datetime
    reviewed_at: datetime | None = None
    reviewer: str | None = None
    outcome: ReviewOutcome | None = None
    notes: str | None = None


@dataclass
class Timeline:
    """When the change passed each milestone (SPEC §1 `metrics`)."""

    created_at: datetime
    assessed_at: datetime | None = None
    approved_at: datetime | None = None
    implementation_started_at: datetime | None = None
    implemented_at: datetime | None = None
    closed_at: datetime | None = None

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


@dataclass
class Change:
    change_id: str
    type: ChangeType
    category: str
    title: str
    description: str
    requested_by: str
    impact: Level
    urgency: Level
    timeline: Timeline
    implementation_plan: Plan | None = None
    rollback_plan: Plan | None = None
    test_plan: Plan | None = None
    # Post-change validation: health checks, period, interval, Prometheus queries (SPEC §7).
    validation: dict[str, Any] | None = None
    affected_services: list[str] = field(default_factory=list)
    affected_cis: list[str] = field(default_factory=list)
    dependencies: list[str] = field(default_factory=list)
    environment: str | None = None
    tested_in_staging: str | None = None
    state: State = State.PENDING_ASSESSMENT
    closure_status: ClosureStatus | None = None
    closure_notes: str | None = None
    approvals: list[Approval] = field(default_factory=list)
    assessment: Assessment | None = None
    review: Review | None = None
    # Set when a standard request was turned into another type, with why.
    reclassified_from: ChangeType | None = None
    # The standard change model a standard request asks for, and the values it is judged on.
    standard_model: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    # Everyone who edited plans, services, impact or description after filing (SPEC §11): none
    # of them may approve, reject or review the change.
    authors: list[str] = field(default_factory=list)
    # The highest approval route a human had to decide; re-assessment never routes below it
    # unless a change manager lowers it (SPEC §11).
    route_floor: Route | None = None
    version: int = 0

    @property
    def active_approvals(self) -> list[Approval]:
        return [a for a in self.approvals if a.active]

    def authored_by(self, person: str) -> bool:
        """True for the requester and everyone who edited the change's substance."""
        return person == self.requested_by or person in self.authors


def has_steps(plan: Plan | None) -> bool:
    """True when a plan names at least one step."""
    return bool(plan) and bool(plan.get("steps")) if plan is not None else False
