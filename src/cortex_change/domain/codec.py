"""The change record as the JSON document of SPEC §1 (what `show` prints and the API serves)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from .lifecycle import State
from .model import (
    Approval,
    Assessment,
    Change,
    ChangeType,
    ClosureStatus,
    Decision,
    Level,
    Review,
    ReviewOutcome,
    RiskComponent,
    Route,
    Timeline,
)

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any

TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def fmt_time(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).strftime(TIME_FORMAT)


def parse_stored(text: str) -> Any:
    """A stored JSON document. NaN and ±Infinity, which json.dumps wrote before the doors refused
    them (SPEC §11), read as null: no answer may carry them and no other JSON parser reads them."""
    return json.loads(text, parse_constant=lambda _: None)


def fmt_epoch(value: float) -> str:
    """A store timestamp (seconds since the epoch) as the record's ISO 8601 UTC text."""
    return datetime.fromtimestamp(float(value), UTC).strftime(TIME_FORMAT)


def parse_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    # fromisoformat reads "…Z" since Python 3.11 and, unlike strptime, imports nothing
    return datetime.fromisoformat(value).astimezone(UTC)


def _time(value: str) -> datetime:
    parsed = parse_time(value)
    assert parsed is not None
    return parsed


def to_document(change: Change) -> dict[str, Any]:
    """Everything of the record except the audit trail and compliance (added by the reader)."""
    a = change.assessment
    t = change.timeline
    return {
        "change_id": change.change_id,
        "type": change.type.value,
        "category": change.category,
        "title": change.title,
        "description": change.description,
        "requested_by": change.requested_by,
        "impact": change.impact.value,
        "urgency": change.urgency.value,
        "implementation_plan": change.implementation_plan,
        "rollback_plan": change.rollback_plan,
        "test_plan": change.test_plan,
        "validation": change.validation,
        "affected_services": change.affected_services,
        "affected_cis": change.affected_cis,
        "dependencies": change.dependencies,
        "environment": change.environment,
        "tested_in_staging": change.tested_in_staging,
        "planned_start": fmt_time(change.planned_start),
        "planned_end": fmt_time(change.planned_end),
        "priority": a.priority if a else None,
        "risk_score": a.score if a else None,
        "risk_level": a.level.value if a else None,
        "approval_required": a.route.value if a else None,
        "assigned_to": a.assigned_to if a else None,
        "assessment": _assessment(a) if a else None,
        "state": change.state.value,
        "closure_status": change.closure_status.value if change.closure_status else None,
        "closure_notes": change.closure_notes,
        "approvals": [_approval(x) for x in change.approvals],
        "review": _review(change.review) if change.review else None,
        "reclassified_from": change.reclassified_from.value if change.reclassified_from else None,
        "standard_model": change.standard_model,
        "parameters": change.parameters,
        "authors": [change.requested_by, *change.authors],
        "route_floor": change.route_floor.value if change.route_floor else None,
        "origin": change.origin,
        "agent_max_level": change.agent_max_level.value if change.agent_max_level else None,
        "metrics": {
            "created_at": fmt_time(t.created_at),
            "assessed_at": fmt_time(t.assessed_at),
            "approved_at": fmt_time(t.approved_at),
            "implementation_started_at": fmt_time(t.implementation_started_at),
            "implemented_at": fmt_time(t.implemented_at),
            "closed_at": fmt_time(t.closed_at),
            "mtta_seconds": t.mtta_seconds,
            "mtti_seconds": t.mtti_seconds,
        },
        "version": change.version,
    }


def _assessment(a: Assessment) -> dict[str, Any]:
    return {
        "score": a.score,
        "level": a.level.value,
        "priority": a.priority,
        "route": a.route.value,
        "route_reason": a.route_reason,
        "components": {k: {"points": c.points, "reason": c.reason} for k, c in a.components.items()},
        "history_used": a.history_used,
        "testing_required": a.testing_required,
        "assigned_to": a.assigned_to,
        "assessed_at": fmt_time(a.assessed_at),
        "staging_evidence": a.staging_evidence,
        "blast_radius": a.blast_radius,
        "features": a.features,
        "prediction": a.prediction,
        "forecast": a.forecast,
    }


def _approval(a: Approval) -> dict[str, Any]:
    return {
        "approver": a.approver,
        "role": a.role,
        "decision": a.decision.value,
        "reason": a.reason,
        "at": fmt_time(a.at),
        "active": a.active,
    }


def _review(r: Review) -> dict[str, Any]:
    return {
        "due_at": fmt_time(r.due_at),
        "reviewed_at": fmt_time(r.reviewed_at),
        "reviewer": r.reviewer,
        "outcome": r.outcome.value if r.outcome else None,
        "notes": r.notes,
    }


def from_document(doc: dict[str, Any]) -> Change:
    """Rebuild a record from its stored document."""
    m = doc["metrics"]
    a = doc.get("assessment")
    r = doc.get("review")
    return Change(
        change_id=doc["change_id"],
        type=ChangeType(doc["type"]),
        category=doc["category"],
        title=doc["title"],
        description=doc["description"],
        requested_by=doc["requested_by"],
        impact=Level(doc["impact"]),
        urgency=Level(doc["urgency"]),
        timeline=Timeline(
            created_at=_time(m["created_at"]),
            assessed_at=parse_time(m["assessed_at"]),
            approved_at=parse_time(m["approved_at"]),
            implementation_started_at=parse_time(m["implementation_started_at"]),
            implemented_at=parse_time(m["implemented_at"]),
            closed_at=parse_time(m["closed_at"]),
        ),
        implementation_plan=doc.get("implementation_plan"),
        rollback_plan=doc.get("rollback_plan"),
        test_plan=doc.get("test_plan"),
        validation=doc.get("validation"),
        affected_services=list(doc.get("affected_services") or []),
        affected_cis=list(doc.get("affected_cis") or []),
        dependencies=list(doc.get("dependencies") or []),
        environment=doc.get("environment"),
        tested_in_staging=doc.get("tested_in_staging"),
        planned_start=parse_time(doc.get("planned_start")),
        planned_end=parse_time(doc.get("planned_end")),
        state=State(doc["state"]),
        closure_status=ClosureStatus(doc["closure_status"]) if doc.get("closure_status") else None,
        closure_notes=doc.get("closure_notes"),
        approvals=[
            Approval(
                x["approver"],
                x["role"],
                Decision(x["decision"]),
                x["reason"],
                _time(x["at"]),
                x.get("active", True),
            )
            for x in doc.get("approvals", [])
        ],
        assessment=Assessment(
            score=a["score"],
            level=Level(a["level"]),
            priority=a["priority"],
            route=Route(a["route"]),
            components={k: RiskComponent(v["points"], v["reason"]) for k, v in a["components"].items()},
            history_used=list(a["history_used"]),
            testing_required=a["testing_required"],
            assigned_to=a["assigned_to"],
            assessed_at=_time(a["assessed_at"]),
            route_reason=a.get("route_reason", ""),
            staging_evidence=a.get("staging_evidence"),
            blast_radius=a.get("blast_radius"),
            features=a.get("features"),
            prediction=a.get("prediction"),
            forecast=a.get("forecast"),
        )
        if a
        else None,
        review=Review(
            due_at=_time(r["due_at"]),
            reviewed_at=parse_time(r["reviewed_at"]),
            reviewer=r["reviewer"],
            outcome=ReviewOutcome(r["outcome"]) if r["outcome"] else None,
            notes=r["notes"],
        )
        if r
        else None,
        reclassified_from=ChangeType(doc["reclassified_from"]) if doc.get("reclassified_from") else None,
        standard_model=doc.get("standard_model"),
        parameters=dict(doc.get("parameters") or {}),
        authors=[x for x in doc.get("authors") or [] if x != doc["requested_by"]],
        route_floor=Route(doc["route_floor"]) if doc.get("route_floor") else None,
        origin=doc.get("origin") or "human",
        agent_max_level=Level(doc["agent_max_level"]) if doc.get("agent_max_level") else None,
        version=int(doc.get("version", 0)),
    )
