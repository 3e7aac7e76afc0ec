"""Change commands: create, assess, approve, reject, close, cancel, review, update (each one unit of
work: services/unit.py; the read side is services/queries.py)."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime, timedelta

from ..config import Settings
from ..domain import agents, permissions, staging, workflow
from ..domain import validation as v
from ..domain.codec import fmt_time
from ..domain.errors import (
    Conflict,
    ValidationError,
)
from ..domain.events import Event
from ..domain.fields import ChangeRequest, update_fields
from ..domain.lifecycle import State
from ..domain.model import Change, ChangeType, ClosureStatus, ReviewOutcome, Timeline
from ..domain.risk import PastChange
from ..domain.standard import NO_MODEL, StandardDecision, StandardModel
from ..domain.values import Value
from ..store import changes, leases, tokens
from ..store.db import Tx
from . import followups, unit
from .context import Context
from .runbooks import stamp_plan

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any

    from ..domain.cmdb import Radius
    from ..domain.windows import Window

Operation = Callable[[Change], list[Event]]


def new_change_id(now: datetime) -> str:
    return f"RFC-{now:%Y%m%d%H%M%S}-{os.urandom(3).hex()}"


def create_change(ctx: Context, request: ChangeRequest, *, idempotency: Idempotency | None = None) -> Change:
    """Store a new RFC in pending_assessment from a checked request (`ChangeRequest.of`: the field
    table's checks, `requested_by` included); here what needs the catalog and the store: the
    standard model's existence, runbook steps stamped, the staging citation, the category.

    With `idempotency`, a repeat of the same request by the same caller returns the change the
    first one created (`idempotency.replayed` is set) and writes nothing.
    """
    now = ctx.clock()
    fields = request.to_fields()
    if ctx.principal is not None:
        workflow.created(Change(change_id="", timeline=Timeline(created_at=now), **fields), ctx.policy)
        agents.require_filing(ctx.principal, fields["category"], fields["type"])
    for key in ("implementation_plan", "rollback_plan"):
        fields[key] = stamp_plan(ctx.settings, key, fields[key])
    model = _model(ctx, request.standard_model)
    change = Change(change_id=new_change_id(now), timeline=Timeline(created_at=now), **fields)
    rate_key = None if model is None else model.rate_key(change.parameters)
    with ctx.db.transaction() as tx:
        filer = ctx.who(tx, change.requested_by)
        change.origin = filer.origin
        change.agent_max_level = filer.scopes.max_level if filer.agent else None
        events = workflow.created(change, ctx.policy)
        _staging_evidence(tx, change)
        while changes.exists(tx, change.change_id):  # 16M ids per second: rare, but never reuse
            change.change_id = new_change_id(now)
        # The key before anything else: a concurrent first request with the same key waits here
        # until this one commits, then replays it (one change, never a unique violation).
        if idempotency is not None and not tokens.claim(
            tx,
            change.requested_by,
            idempotency.key,
            idempotency.request_hash,
            change.change_id,
            fmt_time(now) or "",
        ):
            return _replay(tx, change.requested_by, idempotency)
        unit.audit_config(tx, ctx, now)
        changes.insert(tx, change, rate_key=rate_key)
        change.trail = followups.commit(tx, ctx, change, events, now)
    return change


def preview_change(ctx: Context, request: ChangeRequest) -> Change:
    """What filing and assessing `request` now would decide — score, components, route — from the
    same code as `create` and `assess`, written nowhere (the portal's risk preview)."""
    now = ctx.clock()
    fields = request.to_fields()
    for key in ("implementation_plan", "rollback_plan"):
        fields[key] = stamp_plan(ctx.settings, key, fields[key])
    _model(ctx, request.standard_model)
    change = Change(change_id=new_change_id(now), timeline=Timeline(created_at=now), **fields)
    workflow.created(change, ctx.policy)
    with ctx.db.read() as tx:
        evidence = _staging_evidence(tx, change)
        history = _history(tx, ctx, change, now)
        decision = standard_decision(ctx, tx, change)
        radius = _radius(ctx, tx, change)
        if ctx.principal is not None:
            change.origin = ctx.principal.origin
            change.agent_max_level = ctx.principal.scopes.max_level if ctx.principal.agent else None
        more = _circumstances(tx, ctx, change, now)
    workflow.assess(
        change,
        ctx.policy,
        history,
        now,
        standard=decision,
        staging=evidence,
        radius=radius,
        more=more,
    )
    return change


class Idempotency(Value):
    """A caller's Idempotency-Key and a hash of its request body."""

    __slots__ = ("key", "replayed", "request_hash")

    def __init__(self, key: str, request_hash: str, replayed: bool = False) -> None:
        self.key = key
        self.request_hash = request_hash
        self.replayed = replayed


def _replay(tx: Tx, identity: str, idempotency: Idempotency) -> Change:
    """The change the first request with this caller's key created (422 if its body differed)."""
    first = tokens.idempotent_result(tx, identity, idempotency.key)
    if first is None:  # claimed by a transaction that has committed: its row is readable
        raise Conflict(f"Idempotency-Key {idempotency.key!r} is being used by another request; retry")
    if first[0] != idempotency.request_hash:
        raise ValidationError("Idempotency-Key", "was already used for a different request")
    idempotency.replayed = True
    return changes.get(tx, first[1])


def limits(settings: Settings) -> v.Limits:
    """PLAN_JSON_MAX and STEP_TIMEOUT_MAX: what a filed plan, validation or parameters may hold."""
    return v.Limits(int(settings["PLAN_JSON_MAX"]), float(settings["STEP_TIMEOUT_MAX"]))


def _model(ctx: Context, name: str | None) -> StandardModel | None:
    """The standard model a request names (`ChangeRequest.of` let only standard requests name one)."""
    if name is None:
        return None
    from ..catalog.loader import load_catalog

    known = load_catalog(ctx.settings).models
    if name not in known:
        raise ValidationError("model", f"unknown standard model {name!r}; known: {', '.join(sorted(known))}")
    return known[name]


def _staging_evidence(tx: Tx, change: Change) -> str | None:
    """Check a `tested_in_staging` citation (SPEC §10 rule in domain/staging.py)."""
    if change.tested_in_staging is None:
        return None
    if not changes.exists(tx, change.tested_in_staging):
        raise ValidationError("tested_in_staging", f"no change {change.tested_in_staging!r}")
    cited = changes.get(tx, change.tested_in_staging)
    why = staging.problem(change, cited)
    if why:
        raise ValidationError("tested_in_staging", why)
    return staging.evidence(cited)


def standard_decision(ctx: Context, tx: Tx, change: Change) -> StandardDecision | None:
    """Match a standard request against its model (None for other types)."""
    if change.type is not ChangeType.STANDARD:
        return None
    if change.standard_model is None:
        return NO_MODEL
    from ..catalog.loader import load_catalog

    model = load_catalog(ctx.settings).models.get(change.standard_model)
    if model is None:
        return StandardDecision(
            None, False, ChangeType.NORMAL, f"standard model {change.standard_model} no longer exists"
        )
    recent = 0
    c = model.condition
    key = model.rate_key(change.parameters)
    if key is not None:
        since = change.timeline.created_at - timedelta(seconds=c.window_seconds)
        recent = changes.recent_model_requests(
            tx,
            model.name,
            key,
            c.field,
            change.parameters[c.field],
            since,
            change.timeline.created_at,
            change.change_id,
        )
    return model.decide(change.parameters, recent)


def _radius(ctx: Context, tx: Tx, change: Change) -> Radius | None:
    """The CMDB's blast radius of the change (services/cmdb.py; imported only by an assessment)."""
    from .cmdb import change_radius

    return change_radius(ctx, tx, change)


def freezes_over(ctx: Context, tx: Tx, change: Change, radius: Radius | None) -> list[Window]:
    """The freezes over the change's planned window that apply to it (none without a window: the
    freeze is then checked when it is carried out)."""
    if change.planned_start is None or change.planned_end is None:
        return []
    from ..domain.windows import freezes
    from .windows import overlapping

    found = overlapping(ctx, tx, change.planned_start.timestamp(), change.planned_end.timestamp())
    doc = None if radius is None else radius.document()
    return freezes(found, change, change.planned_start, change.planned_end, doc)


ACTIVE = frozenset(
    {
        State.ASSESSED,
        State.PENDING_APPROVAL,
        State.PENDING_CAB,
        State.APPROVED,
        State.IMPLEMENTING,
    }
)


def _conflicts(tx: Tx, change: Change, radius: Radius | None) -> list[str]:
    """Other active changes planned over the same time on the same services or CIs (with a CMDB,
    anything in the blast radius), named for the assessment."""
    if change.planned_start is None or change.planned_end is None:
        return []
    from ..domain.schedule import conflicts

    ids = changes.planned_between(
        tx, change.planned_start.timestamp(), change.planned_end.timestamp(), ACTIVE
    )
    others = [changes.get(tx, cid) for cid in ids if cid != change.change_id]
    names = {n.strip().lower() for n in [*change.affected_services, *change.affected_cis]}
    if radius is not None:
        names |= {r.name for r, _ in radius.reaches}
    return conflicts(change, others, names)


def _history(tx: Tx, ctx: Context, change: Change, now: datetime) -> list[PastChange]:
    since = now - timedelta(days=ctx.policy.history_window_days)
    return changes.history(tx, change.category, change.affected_services, since, change.change_id)


def _circumstances(tx: Tx, ctx: Context, change: Change, now: datetime) -> workflow.Circumstances:
    """What the assessment of `change` reads beyond its comparables, as the store holds it now."""
    from ..domain.features import Facts
    from ..domain.prediction import Learned
    from ..store import halt, risk

    since = now - timedelta(days=ctx.policy.history_window_days)
    mine = changes.track_record(tx, change.requested_by, since, change.change_id)
    failed = sum(1 for p in mine if p.closure_status is not ClosureStatus.SUCCESSFUL)
    closed, broke = risk.service_outcomes(tx, change.affected_services, since.timestamp(), change.change_id)
    ahead: list[Window] = []  # freezes not yet over (the features' freeze proximity)
    if risk.freezes_ahead(tx, now.timestamp()) or ctx.settings.extra.get("windows"):
        from .windows import upcoming  # only then: an assessment without windows stays lean

        ahead = [w for w in upcoming(ctx, tx, now.timestamp()) if w.kind == "freeze"]
    facts = Facts(len(mine), failed, closed, broke, ahead)
    model = risk.active(tx) if ctx.settings.predicts() else None
    blend = ctx.settings["RISK_MODEL"] == "blend"
    learned = Learned(facts, model, blend, int(ctx.settings["ML_BLEND_THRESHOLD"]) / 100)
    record = mine if change.origin == agents.AGENT else None
    return workflow.Circumstances(halt.reason(tx), record, learned, _forecast(tx, ctx, change, now))


def _forecast(tx: Tx, ctx: Context, change: Change, now: datetime) -> dict[str, Any]:
    """The performance impact forecast: earlier changes' statistical validation of the same
    services within HISTORY_WINDOW_DAYS, written before now (docs/canary.md)."""
    from ..domain import canary
    from ..store import audit

    since = fmt_time(now - timedelta(days=ctx.policy.history_window_days)) or ""
    judged = audit.judgements(
        tx, change.affected_services, since, fmt_time(now) or "", change.change_id, canary.FORECAST_LAST
    )
    return canary.forecast(judged, ctx.policy.history_min_samples)


def assess_change(
    ctx: Context,
    *,
    change_id: str,
    reassess: bool = False,
    if_version: int | None = None,
    actor: str | None = None,
    lower_reason: str | None = None,
) -> Change:
    """Score and route the change (SPEC §3); standard requests are matched against models.

    With `lower_reason`, `actor` (a CHANGE_MANAGERS member) lets the route fall below the
    highest one the change already reached (SPEC §11).
    """
    who = workflow.RISK_ENGINE if actor is None else v.identity("actor", actor)
    if lower_reason is not None:
        v.reason("reason", lower_reason)
        if not reassess:
            raise ValidationError("reason", "lowering the route needs --reassess (a new assessment)")
    with unit.work(ctx, change_id, who, if_version) as w:
        history = _history(w.tx, ctx, w.change, w.now)
        more = _circumstances(w.tx, ctx, w.change, w.now)
        decision = standard_decision(ctx, w.tx, w.change)
        evidence = _staging_evidence(w.tx, w.change)
        radius = _radius(ctx, w.tx, w.change)
        frozen = freezes_over(ctx, w.tx, w.change, radius)
        overlapping = _conflicts(w.tx, w.change, radius)
        maintenance = maintenance_windows(ctx, w.tx, w.now, radius)
        if lower_reason is not None:
            permissions.require(permissions.Act.LOWER_ROUTE, who, ctx.policy, w.change)
        w.decide(
            lambda c: workflow.assess(
                c,
                ctx.policy,
                history,
                w.now,
                reassess=reassess,
                standard=decision,
                staging=evidence,
                lower_route=lower_reason,
                actor=workflow.RISK_ENGINE if lower_reason is None else who,
                radius=radius,
                frozen=frozen,
                freeze_policy=ctx.settings["FREEZE_POLICY"],
                conflicts=overlapping,
                maintenance=maintenance,
                more=more,
            )
        )
    return w.change


def maintenance_windows(ctx: Context, tx: Tx, now: datetime, radius: Radius | None) -> list[Window]:
    """Maintenance windows not yet over, when the change reaches a tier-0 CI (the only case the
    rule reads them)."""
    if radius is None or not any(ci.tier == 0 for _, ci in radius.reaches):
        return []
    from .windows import upcoming

    return [w for w in upcoming(ctx, tx, now.timestamp()) if w.kind == "maintenance"]


def approve_change(
    ctx: Context,
    *,
    change_id: str,
    approver: str,
    reason: str,
    role: str | None = None,
    if_version: int | None = None,
) -> tuple[Change, list[str]]:
    """Record an approval; returns the change and any documentation warnings."""
    v.identity("approver", approver)
    v.reason("reason", reason)
    if role is not None:  # a role named empty is bad input, not "any role"
        v.name("role", role)
    with unit.work(ctx, change_id, approver, if_version) as w:
        by = ctx.who(w.tx, approver)
        w.decide(lambda c: workflow.approve(c, approver, reason, ctx.policy, w.now, role=role, who=by))
    return w.change, workflow.documentation_warnings(w.change)


def reject_change(
    ctx: Context, *, change_id: str, rejector: str, reason: str, if_version: int | None = None
) -> Change:
    v.identity("rejector", rejector)
    v.reason("reason", reason)
    with unit.work(ctx, change_id, rejector, if_version) as w:
        by = ctx.who(w.tx, rejector)
        w.decide(lambda c: workflow.reject(c, rejector, reason, ctx.policy, w.now, by))
    return w.change


def close_change(
    ctx: Context, *, change_id: str, status: str, notes: str, actor: str, if_version: int | None = None
) -> Change:
    v.identity("actor", actor)
    closure = v.choice("status", status, ClosureStatus)
    v.text("notes", notes, max_len=v.DESCRIPTION_MAX)
    with unit.work(ctx, change_id, actor, if_version) as w:
        permissions.require(permissions.Act.CLOSE, actor, ctx.policy, w.change, lease_holder(w.tx, change_id))
        w.decide(lambda c: workflow.close(c, closure, notes, actor, w.now))
    return w.change


def lease_holder(tx: Tx, change_id: str) -> str | None:
    """Who holds the change's lease now (a worker carrying it out), if anyone."""
    lease = leases.get(tx, change_id)
    return lease.holder if lease is not None and lease.flagged_at is None else None


def cancel_change(
    ctx: Context, *, change_id: str, actor: str, reason: str, if_version: int | None = None
) -> Change:
    v.identity("actor", actor)
    v.reason("reason", reason)
    with unit.work(ctx, change_id, actor, if_version) as w:
        permissions.require(permissions.Act.CANCEL, actor, ctx.policy, w.change)
        w.decide(lambda c: workflow.cancel(c, actor, reason, w.now))
    return w.change


def review_change(
    ctx: Context, *, change_id: str, reviewer: str, outcome: str, notes: str, if_version: int | None = None
) -> Change:
    """Record the retrospective CAB review of an emergency change."""
    v.identity("reviewer", reviewer)
    result = v.choice("outcome", outcome, ReviewOutcome)
    if result is ReviewOutcome.CONCERNS:  # concerns must be stated; an acceptance may stand alone
        v.reason("notes", notes, max_len=v.DESCRIPTION_MAX)
    v.text("notes", notes, max_len=v.DESCRIPTION_MAX)
    with unit.work(ctx, change_id, reviewer, if_version) as w:
        by = ctx.who(w.tx, reviewer)
        w.decide(lambda c: workflow.review(c, reviewer, result, notes, ctx.policy, w.now, by))
    return w.change


def update_change(
    ctx: Context, *, change_id: str, actor: str, fields: dict[str, Any], if_version: int | None = None
) -> Change:
    """Change descriptive fields before approval (re-assessing an assessed change)."""
    v.identity("actor", actor)
    clean = _clean_update(ctx.settings, fields)
    with unit.work(ctx, change_id, actor, if_version) as w:
        preview = w.change.copy_with(**clean)
        history = _history(w.tx, ctx, preview, w.now)
        more = _circumstances(w.tx, ctx, preview, w.now)
        evidence = _staging_evidence(w.tx, preview)
        permissions.require(permissions.Act.UPDATE, actor, ctx.policy, w.change)
        radius = None if w.change.state is State.PENDING_ASSESSMENT else _radius(ctx, w.tx, preview)
        w.decide(
            lambda c: workflow.update(
                c,
                actor,
                clean,
                ctx.policy,
                history,
                w.now,
                staging=evidence,
                radius=radius,
                more=more,
            )
        )
    return w.change


def schedule_change(
    ctx: Context, *, change_id: str, actor: str, start: str, end: str, if_version: int | None = None
) -> Change:
    """Plan the window a change may be carried out in (docs/schedule.md): before approval, an
    update of planned_start and planned_end; an approved change is rescheduled — its approvals
    covered the old window, so they are discarded and it is assessed again. One unit of work."""
    from ..domain.schedule import instant

    v.identity("actor", actor)
    start_at, end_at = instant("START", start), instant("END", end)
    window = {"planned_start": start_at, "planned_end": end_at}
    with unit.work(ctx, change_id, actor, if_version) as w:
        history = _history(w.tx, ctx, w.change, w.now)
        more = _circumstances(w.tx, ctx, w.change, w.now)
        preview = w.change.copy_with(**window)
        if w.change.state is State.APPROVED:
            permissions.require(permissions.Act.RESCHEDULE, actor, ctx.policy, w.change)
            radius = _radius(ctx, w.tx, w.change)
            overlapping = _conflicts(w.tx, preview, radius)
            w.decide(
                lambda c: workflow.reschedule(
                    c,
                    actor,
                    start_at,
                    end_at,
                    ctx.policy,
                    history,
                    w.now,
                    radius=radius,
                    conflicts=overlapping,
                    more=more,
                )
            )
        else:
            permissions.require(permissions.Act.UPDATE, actor, ctx.policy, w.change)
            pending = w.change.state is State.PENDING_ASSESSMENT
            radius = None if pending else _radius(ctx, w.tx, w.change)
            overlapping = [] if pending else _conflicts(w.tx, preview, radius)
            evidence = _staging_evidence(w.tx, w.change)
            w.decide(
                lambda c: workflow.update(
                    c,
                    actor,
                    window,
                    ctx.policy,
                    history,
                    w.now,
                    staging=evidence,
                    radius=radius,
                    conflicts=overlapping,
                    more=more,
                )
            )
    return w.change


def _clean_update(settings: Settings, fields: dict[str, Any]) -> dict[str, Any]:
    """The field table's checks (only updatable fields), then runbook steps stamped."""
    clean = update_fields(fields, limits(settings))
    for key in ("implementation_plan", "rollback_plan"):
        if key in clean:
            clean[key] = stamp_plan(settings, key, clean[key])
    return clean
