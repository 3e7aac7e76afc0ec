"""`integrate COMPONENT ACTION DETAILS`: the catalog's templates turned into changes (SPEC §10)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from ..catalog.loader import Catalog, load_catalog
from ..domain import agents, plan
from ..domain.errors import ValidationError
from ..domain.integration import Template, parse_details, render
from ..domain.lifecycle import State
from ..domain.model import Change, ChangeType
from ..domain.values import Value
from . import changes as svc
from . import queries
from .context import Context


class Outcome(Value):
    __slots__ = ("change_id", "steps")

    def __init__(self, change_id: str, steps: list[str] | None = None) -> None:
        self.change_id = change_id
        self.steps: list[str] = [] if steps is None else steps


def resolve(
    catalog: Catalog, component: str, action: str, rest: Sequence[str]
) -> tuple[Template, str | None, list[str]]:
    """Find the template; the seed's `worker WORKER_ID ACTION ID` order names the actor first."""
    actions = catalog.templates.get(component, {})
    if action not in actions and rest and rest[0] in actions:
        return catalog.template(component, rest[0]), action, list(rest[1:])
    return catalog.template(component, action), None, list(rest)


def integrate(
    ctx: Context,
    *,
    component: str,
    action: str,
    args: Sequence[str],
    actor: str | None = None,
    requester: str | None = None,
    run_steps_here: bool = True,
) -> Outcome:
    """Create (and carry as far as the rules allow) a change, or act on an existing one.

    `requester` (the API's authenticated identity) replaces the template's requester. Without
    `run_steps_here` (the API: SPEC §11) executable plans are left to the workers.
    """
    catalog = load_catalog(ctx.settings)
    template, named, rest = resolve(catalog, component, action, args)
    if ctx.principal is not None:
        agents.require_integration(ctx.principal, template.component, template.action)
    who = named if named is not None else (actor or template.who)  # a name given empty is refused
    if template.operation:
        return _operate(ctx, template, who, rest)
    if not rest:
        raise ValidationError("details", f"{component} {action} needs DETAILS (free text or a JSON object)")
    params = parse_details(" ".join(rest), template.text_field, int(ctx.settings["PLAN_JSON_MAX"]))
    request = render(template, params)
    if requester is not None:
        request.fields["requested_by"] = requester
    from ..domain.fields import ChangeRequest

    fields = {**request.fields, "standard_model": template.model, "parameters": request.parameters}
    change = svc.create_change(ctx, ChangeRequest.of(fields, svc.limits(ctx.settings)))
    out = Outcome(
        change.change_id,
        [
            f"created {change.change_id}: {change.type.value} {change.category} "
            f"'{change.title}' requested by {change.requested_by}"
        ],
    )
    change = svc.assess_change(ctx, change_id=change.change_id)
    out.steps.append(_assessed(change))
    out.steps += _carry_on(ctx, change, template.who, run_steps_here)
    return out


def _carry_on(ctx: Context, change: Change, who: str, run_steps_here: bool) -> list[str]:
    """AUTO_IMPLEMENT: an approved standard or emergency change is implemented after
    IMPLEMENTATION_DELAY — by the worker, or here and now when the delay is 0 (an executable
    plan only where `run_steps_here`: its timer, due now, is already set for the workers)."""
    auto = change.type in (ChangeType.STANDARD, ChangeType.EMERGENCY) and ctx.settings["AUTO_IMPLEMENT"]
    if change.state is not State.APPROVED or not auto:
        return []
    delay = int(ctx.settings["IMPLEMENTATION_DELAY"])
    if delay > 0:
        return [f"implementation scheduled in {delay}s (IMPLEMENTATION_DELAY): the worker carries it out"]
    if not run_steps_here and plan.has_executable_steps(change.implementation_plan):
        return ["implementation queued for the workers (IMPLEMENTATION_DELAY=0): worker run carries it out"]
    from .implementation import implement_change

    change = implement_change(ctx, change_id=change.change_id, actor=who, automated=True)
    done = f"closed {change.closure_status.value}" if change.closure_status else change.state.value
    return [f"implemented by {who}: {done}" + (f" ({change.closure_notes})" if change.closure_notes else "")]


def _assessed(change: Change) -> str:
    a = change.assessment
    assert a is not None
    moved = f" (reclassified from {change.reclassified_from.value})" if change.reclassified_from else ""
    return (
        f"assessed: {change.type.value}{moved}, risk {a.score} ({a.level.value}), route {a.route.value}: "
        f"{a.route_reason}; state {change.state.value}"
    )


def _operate(ctx: Context, t: Template, who: str, rest: list[str]) -> Outcome:
    if not rest:
        raise ValidationError("change_id", f"{t.component} {t.action} needs a change id")
    assert t.operation is not None
    # a reason given empty is refused by the service, not replaced
    given = " ".join(rest[1:]) if len(rest) > 1 else None
    return OPERATIONS[t.operation](ctx, t.operation, rest[0], who, given)


# Handler(ctx, operation, change id, who, the text given after the id or None).
Handler = Callable[[Context, str, str, str, str | None], Outcome]


def _done(change_id: str, op: str, who: str, change: Change) -> Outcome:
    return Outcome(change_id, [f"{change_id}: {op} by {who}; state {change.state.value}"])


def _review(ctx: Context, op: str, change_id: str, who: str, text: str | None) -> Outcome:
    doc = queries.get_change(ctx, change_id=change_id)
    return Outcome(
        change_id,
        [
            f"{change_id}: {doc['state']}, {doc['type']} {doc['category']}, "
            f"risk {doc['risk_score']} ({doc['risk_level']}), route "
            f"{doc['approval_required']}: {doc['title']}"
        ],
    )


def _approve(ctx: Context, op: str, change_id: str, who: str, text: str | None) -> Outcome:
    reason = f"approved by {who}" if text is None else text
    change, _ = svc.approve_change(ctx, change_id=change_id, approver=who, reason=reason)
    return _done(change_id, op, who, change)


def _reject(ctx: Context, op: str, change_id: str, who: str, text: str | None) -> Outcome:
    reason = f"rejected by {who}" if text is None else text
    return _done(change_id, op, who, svc.reject_change(ctx, change_id=change_id, rejector=who, reason=reason))


def _route(ctx: Context, op: str, change_id: str, who: str, text: str | None) -> Outcome:
    current = queries.get_change(ctx, change_id=change_id)["state"]
    reassess = current != State.PENDING_ASSESSMENT.value
    return _done(change_id, op, who, svc.assess_change(ctx, change_id=change_id, reassess=reassess))


def _execute(ctx: Context, op: str, change_id: str, who: str, text: str | None) -> Outcome:
    from .workers import execute

    handout = execute(ctx, change_id=change_id, worker=who)
    return Outcome(change_id, [json.dumps(handout, ensure_ascii=False)])


def _report(success: bool) -> Handler:
    default = "worker reported success" if success else "worker reported failure"

    def handle(ctx: Context, op: str, change_id: str, who: str, text: str | None) -> Outcome:
        from .workers import report

        notes = default if text is None else text
        change = report(ctx, change_id=change_id, worker=who, success=success, notes=notes)
        return _done(change_id, op, who, change)

    return handle


# A template's `operation` (domain/integration.py's OPERATIONS) -> what it does to the change.
OPERATIONS: dict[str, Handler] = {
    "review": _review,
    "approve": _approve,
    "reject": _reject,
    "route": _route,
    "execute": _execute,
    "report_success": _report(True),
    "report_failure": _report(False),
}
