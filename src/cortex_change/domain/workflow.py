"""The change's use of the rules: each operation checks, mutates the record, returns events."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from . import agents, plan, risk, routing
from .errors import ApprovalRefused, Refused, ValidationError
from .events import Event, EventKind
from .fields import AUTHORING, UPDATABLE, not_updatable
from .lifecycle import Action, State, advance, check
from .model import (
    LEVELS,
    Approval,
    Assessment,
    Change,
    ChangeType,
    ClosureStatus,
    Decision,
    Level,
    Review,
    ReviewOutcome,
    Route,
    has_steps,
)
from .policy import Policy
from .risk import PastChange
from .standard import NO_MODEL, StandardDecision
from .values import Frozen

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any, Final

    from .cmdb import Radius
    from .prediction import Learned, Prediction
    from .windows import Window

# UPDATABLE (what `update` may change) and AUTHORING (edits that make the editor an author) are
# the field table's (fields.py).
CLOSE_STATUSES = (ClosureStatus.SUCCESSFUL, ClosureStatus.FAILED, ClosureStatus.ROLLED_BACK)
RISK_ENGINE = "risk-engine"
CHANGE_MANAGER = "change-manager"
# The assessment lists the most recent comparable changes it used; its reason gives the count.
HISTORY_LISTED = 50


class Circumstances(Frozen):
    """What an assessment reads beyond the change and its comparables: the kill switch's reason
    while it is on (no route approves by itself), the filing agent's own closed changes (its
    track record, for risk; docs/agents.md), and what a learned risk model adds — the facts for
    the features, the model (docs/risk-model.md)."""

    __slots__ = ("forecast", "halted", "learned", "record")

    def __init__(
        self,
        halted: str | None = None,
        record: Sequence[PastChange] | None = None,
        learned: Learned | None = None,
        forecast: dict[str, Any] | None = None,
    ) -> None:
        self.halted: Final = halted
        self.record: Final = record
        self.learned: Final = learned
        # The performance impact forecast, recorded beside the risk (domain/canary.py).
        self.forecast: Final = forecast


def created(change: Change, policy: Policy) -> list[Event]:
    """Check a new record against the policy and return its `created` event."""
    if change.category not in policy.category_weights:
        allowed = ", ".join(policy.categories)
        raise ValidationError("category", f"{change.category!r} is not allowed; allowed: {allowed}")
    if change.type is ChangeType.EMERGENCY and not policy.emergency_enabled:
        raise Refused("emergency changes are disabled (EMERGENCY_CHANGE_ENABLED=false)")
    if change.planned_start is not None or change.planned_end is not None:
        from .schedule import check_window

        check_window(change)
    return [
        Event(
            EventKind.CREATED,
            change.requested_by,
            {
                "type": change.type.value,
                "category": change.category,
                "title": change.title,
                "origin": change.origin,
            },
        )
    ]


def assess(
    change: Change,
    policy: Policy,
    history: Sequence[PastChange],
    now: datetime,
    *,
    standard: StandardDecision | None = None,
    reassess: bool = False,
    staging: str | None = None,
    actor: str = RISK_ENGINE,
    lower_route: str | None = None,
    radius: Radius | None = None,
    frozen: Sequence[Window] = (),
    freeze_policy: str = "refuse",
    conflicts: Sequence[str] = (),
    maintenance: Sequence[Window] = (),
    more: Circumstances | None = None,
) -> list[Event]:
    """Score the change, route it, and auto-approve where the route allows (`more`: the kill
    switch, the filing agent's record, what a learned model adds — `Circumstances`).

    `lower_route` (a change manager's reason, checked by the caller) lets the route fall below
    the highest one already reached.
    """
    check(change.change_id, Action.REASSESS if reassess else Action.ASSESS, change.state)
    events: list[Event] = []
    if reassess:
        events += _discard_approvals(change, "re-assessment", actor)
    if lower_route is not None and change.route_floor is not None:
        floor = change.route_floor.value
        events.append(Event(EventKind.ROUTE_FLOOR_LOWERED, actor, {"from": floor, "reason": lower_route}))
        change.route_floor = None
    more = more or Circumstances()
    components = risk.score(change, policy, history, radius, more.record)
    score = risk.total(components)
    level = policy.level_for(score)
    decision = _classify(change, standard, level, events, policy)
    if decision is not None and decision.pre_approved:
        route, why = Route.PRE_APPROVED, decision.reason
    else:
        route, why = routing.route_for(change, level, score, policy)
    adhoc = plan.has_adhoc_steps(change.implementation_plan) or plan.has_adhoc_steps(change.rollback_plan)
    route, why, human = routing.human_route(change, route, why, adhoc)
    route, why, human = agents.in_the_loop(change, route, why, human, level, policy, more.halted)
    sensitive = [] if radius is None else radius.sensitive()
    if sensitive and change.type is not ChangeType.EMERGENCY:
        where = ", ".join(sorted({f"{ci.data.upper()} in {r.name}" for r, ci in sensitive}))
        if routing.RANK[route] == 0:
            route, why, human = Route.TECHNICAL_LEAD, f"{why}; {where}: a person must approve", True
        why = f"{why}; {where} (blast radius): CISO_MEMBERS approve too"
    if frozen:
        from .windows import freeze_decision

        during = freeze_decision(change, list(frozen), freeze_policy)
        if during is not None and change.type is not ChangeType.EMERGENCY and routing.RANK[route] < 2:
            route, human = Route.CAB, True
        why = f"{why}; {during}"
    if maintenance and change.type is not ChangeType.EMERGENCY:
        from .windows import UP_ONE, outside_maintenance

        outside = outside_maintenance(change, maintenance, None if radius is None else radius.document())
        if outside is not None and route.value in UP_ONE:
            route, why = Route(UP_ONE[route.value]), f"{why}; {outside}"
    if conflicts:
        why = f"{why}; conflicts: {'; '.join(conflicts)}"
    feats, predicted = _learn(change, more.learned, score, now, policy, radius)
    if predicted is not None and more.learned is not None and more.learned.blend:
        route, why, human = _raised(change, route, why, human, predicted, more.learned.threshold)
    change.assessment = Assessment(
        score=score,
        level=level,
        priority=risk.priority(change.impact, change.urgency),
        route=route,
        components=components,
        history_used=[p.change_id for p in history][-HISTORY_LISTED:],
        testing_required=routing.TESTING_REQUIRED[level],
        assigned_to=routing.assessor_for(change.category, score),
        assessed_at=now,
        route_reason=why,
        staging_evidence=staging,
        blast_radius=None if radius is None else radius.document(),
        features=feats,
        prediction=None if predicted is None else predicted.document(),
        forecast=more.forecast,
    )
    change.state = State.ASSESSED
    change.timeline.assessed_at = now
    events.append(
        Event(EventKind.REASSESSED if reassess else EventKind.ASSESSED, actor, _assessment_details(change))
    )
    return events + _route(change, policy, now, decision, human)


def _learn(
    change: Change, learned: Learned | None, score: int, now: datetime, policy: Policy, radius: Radius | None
) -> tuple[dict[str, float] | None, Prediction | None]:
    """The features recorded at this assessment, and the model's prediction when there is one."""
    if learned is None:
        return None, None
    from . import features

    if learned.recorded is not None:
        feats = {**learned.recorded, "rules_score": float(score)}
    else:
        radius_doc = None if radius is None else radius.document()
        feats = features.extract(change, learned.facts, score, now, policy.categories, radius_doc)
    return feats, None if learned.model is None else learned.model.predict(feats)


# RISK_MODEL=blend: a prediction at or above the threshold raises the route one step.
RAISED: dict[Route, Route] = {
    Route.PRE_APPROVED: Route.TECHNICAL_LEAD,
    Route.AUTO_APPROVED: Route.TECHNICAL_LEAD,
    Route.TECHNICAL_LEAD: Route.CAB,
    Route.CAB: Route.CAB_CISO_CTO,
}


def _raised(
    change: Change, route: Route, why: str, human: bool, predicted: Prediction, threshold: float
) -> tuple[Route, str, bool]:
    """RISK_MODEL=blend: a prediction at or above ML_BLEND_THRESHOLD raises the route one step
    (never lowers it)."""
    if predicted.probability < threshold:
        return route, why, human
    said = f"the risk model predicts {predicted.probability:.0%} failure (RISK_MODEL=blend)"
    if change.type is ChangeType.EMERGENCY:  # its route stays; an ECAB member decides
        return route, f"{why}; {said}: an ECAB member approves", True
    if route not in RAISED:
        return route, f"{why}; {said}", human
    up = RAISED[route]
    return up, f"{why}; {said}: raised to {up.value}", True


def _classify(
    change: Change, standard: StandardDecision | None, level: Level, events: list[Event], policy: Policy
) -> StandardDecision | None:
    """Apply the standard-model decision; a request outside its model changes type (SPEC §5, §11)."""
    if change.type is not ChangeType.STANDARD:
        return None
    decision = standard or NO_MODEL
    if decision.pre_approved:
        decision = _within_model(change, decision, level)
    if decision.pre_approved:
        return decision
    becomes, reason = decision.becomes, decision.reason
    if becomes is ChangeType.EMERGENCY and not policy.emergency_enabled:
        becomes = ChangeType.NORMAL
        reason += "; emergency changes are disabled (EMERGENCY_CHANGE_ENABLED=false): normal change"
    change.reclassified_from = ChangeType.STANDARD
    change.type = becomes
    details = {"from": "standard", "to": becomes.value, "model": decision.model, "reason": reason}
    events.append(Event(EventKind.RECLASSIFIED, RISK_ENGINE, details))
    return decision


def _within_model(change: Change, decision: StandardDecision, level: Level) -> StandardDecision:
    """A matching request still leaves its model when it brings its own executable steps or is
    riskier than the model allows (`max_level`): it becomes a normal change."""
    why = ""
    if plan.has_adhoc_steps(change.implementation_plan) or plan.has_adhoc_steps(change.rollback_plan):
        why = "brings its own executable steps (run/http); a standard change runs runbooks only"
    elif LEVELS.index(level) > LEVELS.index(decision.max_level):
        why = f"assessed {level.value} risk, above the model's max_level {decision.max_level.value}"
    if not why:
        return decision
    return StandardDecision(
        decision.model, False, ChangeType.NORMAL, f"standard model {decision.model}: {why}"
    )


def _assessment_details(change: Change) -> dict[str, Any]:
    a = change.assessment
    assert a is not None
    return {
        "risk_score": a.score,
        "risk_level": a.level.value,
        "priority": a.priority,
        "approval_required": a.route.value,
        "assigned_to": a.assigned_to,
        "components": {k: {"points": c.points, "reason": c.reason} for k, c in a.components.items()},
        "history_used": a.history_used,
        "staging_evidence": a.staging_evidence,
        "route_reason": a.route_reason,
        **({"blast_radius": a.blast_radius} if a.blast_radius is not None else {}),
    }


def _route(
    change: Change, policy: Policy, now: datetime, decision: StandardDecision | None, human: bool
) -> list[Event]:
    assert change.assessment is not None
    route = change.assessment.route
    target = routing.state_after_route(route, policy, human)
    change.state = advance(change.change_id, Action.ROUTE, change.state, target)
    if target is not State.APPROVED:
        floor = change.route_floor
        if floor is None or routing.RANK[route] >= routing.RANK[floor]:
            change.route_floor = route
        return [
            Event(
                EventKind.APPROVAL_REQUESTED,
                CHANGE_MANAGER,
                {
                    "approval_required": route.value,
                    "state": target.value,
                    "needs": routing.outstanding(
                        route, change.active_approvals, policy, change.assessment.ciso
                    ),
                },
            )
        ]
    approver = {
        Route.PRE_APPROVED: f"{routing.STANDARD_APPROVER_PREFIX}{decision.model if decision else ''}",
        Route.EMERGENCY_CAB: routing.EMERGENCY_APPROVER,
    }.get(route, routing.AUTO_APPROVER)
    reason = change.assessment.route_reason
    change.approvals.append(Approval(approver, route.value, Decision.APPROVED, reason, now))
    return [_approved(change, approver, reason, now, policy)]


def _approved(change: Change, approver: str, reason: str, now: datetime, policy: Policy) -> Event:
    change.timeline.approved_at = now
    if change.type is ChangeType.EMERGENCY:
        due = now + timedelta(hours=policy.emergency_review_sla_hours)
        change.review = Review(due_at=due)
    return Event(EventKind.APPROVED, approver, {"reason": reason, "state": State.APPROVED.value})


def _discard_approvals(change: Change, why: str, actor: str) -> list[Event]:
    discarded = [a for a in change.active_approvals]
    for approval in discarded:
        approval.active = False
    if not discarded:
        return []
    return [
        Event(
            EventKind.APPROVALS_DISCARDED,
            actor,
            {
                "reason": why,
                "approvers": [a.approver for a in discarded],
            },
        )
    ]


def missing_documentation(change: Change, policy: Policy) -> list[str]:
    """What a high/critical normal change lacks before it may be approved."""
    a = change.assessment
    if change.type is not ChangeType.NORMAL or a is None:
        return []
    if a.level not in (Level.HIGH, Level.CRITICAL):
        return []
    missing = []
    if policy.require_rollback_plan and not has_steps(change.rollback_plan):
        missing.append("a rollback plan with at least one step (REQUIRE_ROLLBACK_PLAN=true)")
    if policy.require_documentation and not has_steps(change.implementation_plan):
        missing.append("an implementation plan with at least one step (REQUIRE_DOCUMENTATION=true)")
    return missing


def documentation_warnings(change: Change) -> list[str]:
    a = change.assessment
    if a is not None and a.level is Level.MEDIUM and not has_steps(change.rollback_plan):
        return [
            f"{change.change_id} has no rollback plan (medium risk): the documentation "
            "control will fail in compliance reports"
        ]
    return []


def approve(
    change: Change,
    approver: str,
    reason: str,
    policy: Policy,
    now: datetime,
    *,
    role: str | None = None,
    who: agents.Principal | None = None,
) -> list[Event]:
    """Record one approval; the change becomes approved when its route is satisfied. `who`: the
    approver as a principal (an agent never approves an agent's change, docs/agents.md)."""
    check(change.change_id, Action.APPROVE, change.state)
    assert change.assessment is not None
    route = change.assessment.route
    routing.check_segregation(change, approver, "approve", policy)
    _check_agent(change, approver, who, "approve")
    missing = missing_documentation(change, policy)
    if missing:
        raise ApprovalRefused(f"{change.change_id} cannot be approved without " + " and ".join(missing))
    seating = routing.seat_vote(change, approver, route, policy, role)
    moved = _reseat(change, seating)
    counted_as = seating[approver]
    change.approvals.append(Approval(approver, counted_as, Decision.APPROVED, reason, now))
    still = routing.outstanding(route, change.active_approvals, policy, change.assessment.ciso)
    if still:
        details = {"role": counted_as, "reason": reason, "outstanding": still, **moved}
        return [Event(EventKind.APPROVAL_GRANTED, approver, details)]
    change.state = advance(change.change_id, Action.APPROVE, change.state, State.APPROVED)
    event = _approved(change, approver, reason, now, policy)
    return [Event(event.action, approver, {**event.details, "role": counted_as, **moved})]


def _reseat(change: Change, seating: dict[str, str]) -> dict[str, Any]:
    """Apply a new seating to earlier approvals; return what moved, for the audit event."""
    moved = {}
    for a in change.active_approvals:
        if a.decision is Decision.APPROVED and a.approver in seating and seating[a.approver] != a.role:
            moved[a.approver] = {"from": a.role, "to": seating[a.approver]}
            a.role = seating[a.approver]
    return {"recounted": moved} if moved else {}


def _check_agent(change: Change, person: str, who: agents.Principal | None, verb: str) -> None:
    if who is not None:
        agents.check_decider(change, person, who.agent, who.scopes.components or (), verb)


def reject(
    change: Change,
    rejector: str,
    reason: str,
    policy: Policy,
    now: datetime,
    who: agents.Principal | None = None,
) -> list[Event]:
    """One rejection by anyone holding a role the route needs rejects the change."""
    check(change.change_id, Action.REJECT, change.state)
    assert change.assessment is not None
    routing.check_segregation(change, rejector, "reject", policy)
    _check_agent(change, rejector, who, "reject")
    held = routing.roles_held(change, rejector, change.assessment.route, policy)
    change.approvals.append(Approval(rejector, held[0].role, Decision.REJECTED, reason, now))
    change.state = advance(change.change_id, Action.REJECT, change.state, State.REJECTED)
    return [Event(EventKind.REJECTED, rejector, {"role": held[0].role, "reason": reason})]


def start_implementation(change: Change, actor: str, now: datetime) -> list[Event]:
    check(change.change_id, Action.IMPLEMENT, change.state)
    check_reviewed(change)
    if change.planned_start is not None:
        from .schedule import require_window

        require_window(change, now)
    change.state = advance(change.change_id, Action.IMPLEMENT, change.state, State.IMPLEMENTING)
    change.timeline.implementation_started_at = now
    steps = (change.implementation_plan or {}).get("steps", [])
    return [Event(EventKind.IMPLEMENTATION_STARTED, actor, {"steps": len(steps)})]


def check_reviewed(change: Change) -> None:
    """Ad-hoc executable steps run only after a person approved the plan holding them (SPEC §11).

    Routing sends such plans to a person; this guard holds even for records routed under older
    rules or written by hand.
    """
    adhoc = plan.has_adhoc_steps(change.implementation_plan) or plan.has_adhoc_steps(change.rollback_plan)
    people = [
        a
        for a in change.active_approvals
        if a.decision is Decision.APPROVED and not routing.is_system_approver(a.approver)
    ]
    if adhoc and not people:
        raise Refused(
            f"{change.change_id} holds ad-hoc executable steps (run/http) that no person approved: "
            "re-assess it so a person approves them, or use runbooks"
        )


def finish_implementation(change: Change, actor: str, now: datetime, summary: str) -> list[Event]:
    change.state = advance(change.change_id, Action.FINISH, change.state, State.IMPLEMENTED)
    change.timeline.implemented_at = now
    return [Event(EventKind.IMPLEMENTED, actor, {"summary": summary})]


def fail(change: Change, reason: str, actor: str, now: datetime, *, auto_rollback: bool) -> list[Event]:
    """A step, a check or a worker failed: start the rollback, or close failed when it is off."""
    if auto_rollback:
        change.state = advance(change.change_id, Action.ROLLBACK, change.state, State.ROLLING_BACK)
        return [Event(EventKind.ROLLBACK_STARTED, actor, {"reason": reason})]
    check(change.change_id, Action.CLOSE, change.state)
    notes = f"{reason}; rollback skipped (AUTO_ROLLBACK_ENABLED=false)"
    skipped = Event(
        EventKind.ROLLBACK_SKIPPED, actor, {"reason": reason, "why": "AUTO_ROLLBACK_ENABLED=false"}
    )
    return [skipped, *close(change, ClosureStatus.FAILED, notes, actor, now)]


def rollback_finished(change: Change, ok: bool, notes: str, actor: str, now: datetime) -> list[Event]:
    """The rollback plan ran: closed rolled_back, or failed when the rollback itself failed."""
    change.state = advance(change.change_id, Action.ROLLBACK_DONE, change.state, State.CLOSED)
    status = ClosureStatus.ROLLED_BACK if ok else ClosureStatus.FAILED
    change.closure_status, change.closure_notes = status, notes
    if change.timeline.implemented_at is None:
        change.timeline.implemented_at = now
    change.timeline.closed_at = now
    outcome = Event(EventKind.ROLLED_BACK if ok else EventKind.ROLLBACK_FAILED, actor, {"notes": notes})
    return [outcome, Event(EventKind.CLOSED, actor, {"closure_status": status.value, "notes": notes})]


def expire_approval(change: Change, reason: str, now: datetime) -> list[Event]:
    """AUTO_REJECT_ON_TIMEOUT: nobody decided in time, so the change manager rejects it."""
    change.state = advance(change.change_id, Action.REJECT, change.state, State.REJECTED)
    change.approvals.append(Approval(CHANGE_MANAGER, "timeout", Decision.REJECTED, reason, now))
    return [Event(EventKind.REJECTED, CHANGE_MANAGER, {"role": "timeout", "reason": reason, "timeout": True})]


def close(change: Change, status: ClosureStatus, notes: str, actor: str, now: datetime) -> list[Event]:
    """Close an implemented change with its outcome."""
    check(change.change_id, Action.CLOSE, change.state)
    if status not in CLOSE_STATUSES:
        allowed = ", ".join(s.value for s in CLOSE_STATUSES)
        raise ValidationError(
            "status", f"{status.value!r} is not allowed for close (use cancel); allowed: {allowed}"
        )
    if change.timeline.implemented_at is None:
        change.timeline.implemented_at = now
    change.state = advance(change.change_id, Action.CLOSE, change.state, State.CLOSED)
    change.closure_status, change.closure_notes = status, notes
    change.timeline.closed_at = now
    return [Event(EventKind.CLOSED, actor, {"closure_status": status.value, "notes": notes})]


def cancel(change: Change, actor: str, reason: str, now: datetime) -> list[Event]:
    change.state = advance(change.change_id, Action.CANCEL, change.state, State.CANCELLED)
    change.closure_status, change.closure_notes = ClosureStatus.CANCELLED, reason
    change.timeline.closed_at = now
    return [Event(EventKind.CANCELLED, actor, {"reason": reason})]


def review(
    change: Change,
    reviewer: str,
    outcome: ReviewOutcome,
    notes: str,
    policy: Policy,
    now: datetime,
    who: agents.Principal | None = None,
) -> list[Event]:
    """Record the retrospective CAB review of an emergency change."""
    check(change.change_id, Action.REVIEW, change.state)
    _check_agent(change, reviewer, who, "review")
    if change.type is not ChangeType.EMERGENCY or change.review is None:
        raise Refused(f"{change.change_id} is not an emergency change; only emergencies are reviewed")
    if change.review.reviewed_at is not None:
        raise ApprovalRefused(f"{change.change_id} was already reviewed by {change.review.reviewer}")
    if change.authored_by(reviewer):
        did = "requested" if reviewer == change.requested_by else "edited"
        raise ApprovalRefused(f"{reviewer} may not review {change.change_id}: they {did} it (an author)")
    reviewers = policy.cab_members | policy.ecab_members
    if reviewer not in reviewers:
        raise ApprovalRefused(
            f"{reviewer} may not review {change.change_id}: a CAB or ECAB member must "
            f"(CAB_MEMBERS, ECAB_MEMBERS: {', '.join(sorted(reviewers))})"
        )
    r = change.review
    r.reviewed_at, r.reviewer, r.outcome, r.notes = now, reviewer, outcome, notes
    late = now > r.due_at
    return [
        Event(
            EventKind.REVIEW_RECORDED,
            reviewer,
            {
                "outcome": outcome.value,
                "notes": notes,
                "late": late,
            },
        )
    ]


def update(
    change: Change,
    actor: str,
    fields: dict[str, Any],
    policy: Policy,
    history: Sequence[PastChange],
    now: datetime,
    *,
    staging: str | None = None,
    radius: Radius | None = None,
    conflicts: Sequence[str] = (),
    more: Circumstances | None = None,
) -> list[Event]:
    """Change descriptive fields before approval; an assessed change is re-assessed at once
    (with `radius`, the CMDB's blast radius of the updated change)."""
    check(change.change_id, Action.UPDATE, change.state)
    for key in fields:  # all keys first: a refused update must leave the record untouched
        if key not in UPDATABLE:
            raise not_updatable(key)
    diff = {}
    for key, new in fields.items():
        old = getattr(change, key)
        if old != new:
            diff[key] = {"old": _plain(old), "new": _plain(new)}
            setattr(change, key, new)
    if not diff:
        raise ValidationError("update", "no field differs from the record; nothing to update")
    if {"planned_start", "planned_end"} & set(diff):
        from .schedule import check_window

        check_window(change)
    authoring = sorted(set(diff) & AUTHORING)
    if authoring and not change.authored_by(actor):
        change.authors.append(actor)
    events = [Event(EventKind.UPDATED, actor, {"changes": diff, "author": bool(authoring)})]
    if change.state is State.PENDING_ASSESSMENT:
        return events
    events += _discard_approvals(change, "the change was updated", actor)
    change.state = advance(change.change_id, Action.UPDATE, change.state, State.PENDING_ASSESSMENT)
    return events + assess(
        change,
        policy,
        history,
        now,
        staging=staging,
        radius=radius,
        conflicts=conflicts,
        more=more,
    )


def reschedule(
    change: Change,
    actor: str,
    start: datetime,
    end: datetime,
    policy: Policy,
    history: Sequence[PastChange],
    now: datetime,
    *,
    radius: Radius | None = None,
    conflicts: Sequence[str] = (),
    more: Circumstances | None = None,
) -> list[Event]:
    """Move an approved change's window. An approval by a person covered the old window: it is
    discarded and the change assessed again (a route needing no person approves it again)."""
    check(change.change_id, Action.RESCHEDULE, change.state)
    old = {"planned_start": _plain(change.planned_start), "planned_end": _plain(change.planned_end)}
    from .schedule import check_window

    change.planned_start, change.planned_end = start, end
    check_window(change)
    new = {"planned_start": _plain(start), "planned_end": _plain(end)}
    if old == new:
        raise ValidationError("schedule", "the change is already planned for that window")
    events = [Event(EventKind.RESCHEDULED, actor, {"old": old, "new": new})]
    events += _discard_approvals(change, "the change was rescheduled", actor)
    change.state = advance(change.change_id, Action.RESCHEDULE, change.state, State.PENDING_ASSESSMENT)
    return events + assess(
        change,
        policy,
        history,
        now,
        radius=radius,
        conflicts=conflicts,
        more=more,
    )


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    return value.value if isinstance(value, Level) else value
