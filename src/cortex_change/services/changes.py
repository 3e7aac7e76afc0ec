"""Change use cases: create, assess, approve, reject, close, cancel, review, update; the one write path."""

from __future__ import annotations

import os
from collections.abc import Callable, Collection
from datetime import datetime, timedelta
from typing import Any

from ..config import Settings, rules_snapshot
from ..domain import compliance, permissions, staging, workflow
from ..domain import validation as v
from ..domain.codec import fmt_time
from ..domain.errors import (
    Conflict,
    InvalidTransition,
    PreconditionFailed,
    Refused,
    ValidationError,
)
from ..domain.events import Event
from ..domain.model import Change, ChangeType, ClosureStatus, Level, ReviewOutcome, Timeline
from ..domain.risk import PastChange
from ..domain.standard import NO_MODEL, StandardDecision, StandardModel
from ..domain.values import Value
from ..store import audit, changes, leases, tokens
from ..store.db import Tx
from . import followups
from .context import Context
from .runbooks import stamp_plan

Operation = Callable[[Change], list[Event]]


def new_change_id(now: datetime) -> str:
    return f"RFC-{now:%Y%m%d%H%M%S}-{os.urandom(3).hex()}"


def create_change(
    ctx: Context,
    *,
    type: str,
    category: str,
    title: str,
    description: str = "",
    requested_by: str,
    impact: str = "medium",
    urgency: str = "medium",
    affected_services: Collection[str] = (),
    affected_cis: Collection[str] = (),
    dependencies: Collection[str] = (),
    implementation_plan: Any = None,
    rollback_plan: Any = None,
    test_plan: Any = None,
    validation: Any = None,
    environment: str | None = None,
    tested_in_staging: str | None = None,
    standard_model: str | None = None,
    parameters: dict[str, Any] | None = None,
    idempotency: Idempotency | None = None,
) -> Change:
    """Validate and store a new RFC in pending_assessment.

    With `idempotency`, a repeat of the same request by the same caller returns the change the
    first one created (`idempotency.replayed` is set) and writes nothing.
    """
    now = ctx.clock()
    change = Change(
        change_id=new_change_id(now),
        type=v.choice("type", type, ChangeType),
        category=category,
        title=v.title(title),
        description=v.description(description),
        requested_by=v.identity("requested_by", requested_by),
        impact=v.choice("impact", impact, Level),
        urgency=v.choice("urgency", urgency, Level),
        timeline=Timeline(created_at=now),
        **_descriptive(
            ctx.settings,
            affected_services,
            affected_cis,
            dependencies,
            implementation_plan,
            rollback_plan,
            test_plan,
            environment,
            tested_in_staging,
        ),
    )
    if validation is not None:
        from ..domain.plan import check_validation

        change.validation = check_validation(
            v.document("validation", validation, limits(ctx.settings).json_bytes)
        )
    model = _model(ctx, change, standard_model)
    change.standard_model = None if model is None else model.name
    change.parameters = v.parameters(parameters or {}, limits(ctx.settings).json_bytes)
    rate_key = None if model is None else model.rate_key(change.parameters)
    events = workflow.created(change, ctx.policy)
    _staging_evidence(ctx, change)
    with ctx.db.transaction() as tx:
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
        _audit_config(tx, ctx, now)
        changes.insert(tx, change, rate_key=rate_key)
        followups.commit(tx, ctx, change, events, now)
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


def _descriptive(
    settings: Settings,
    services: Collection[str],
    cis: Collection[str],
    deps: Collection[str],
    impl: Any,
    rollback: Any,
    test: Any,
    environment: str | None,
    staging: str | None,
) -> dict[str, Any]:
    most = limits(settings)
    return {
        "affected_services": v.names("affected_services", services),
        "affected_cis": v.names("affected_cis", cis),
        "dependencies": v.names("dependencies", deps),
        "implementation_plan": stamp_plan(
            settings, "implementation_plan", v.plan("implementation_plan", impl, most)
        ),
        "rollback_plan": stamp_plan(settings, "rollback_plan", v.plan("rollback_plan", rollback, most)),
        "test_plan": v.plan("test_plan", test, most),
        "environment": None if environment is None else v.name("environment", environment),
        "tested_in_staging": None if staging is None else v.change_id(staging),
    }


def limits(settings: Settings) -> v.Limits:
    """PLAN_JSON_MAX and STEP_TIMEOUT_MAX: what a filed plan, validation or parameters may hold."""
    return v.Limits(int(settings["PLAN_JSON_MAX"]), float(settings["STEP_TIMEOUT_MAX"]))


def _model(ctx: Context, change: Change, name: str | None) -> StandardModel | None:
    """The standard model a request names (only standard requests name one)."""
    if name is None:
        return None
    if change.type is not ChangeType.STANDARD:
        raise ValidationError(
            "model", f"only standard changes name a model (this one is {change.type.value})"
        )
    from ..catalog.loader import load_catalog

    known = load_catalog(ctx.settings).models
    if name not in known:
        raise ValidationError("model", f"unknown standard model {name!r}; known: {', '.join(sorted(known))}")
    return known[name]


def _staging_evidence(ctx: Context, change: Change) -> str | None:
    """Check a `tested_in_staging` citation (SPEC §10 rule in domain/staging.py)."""
    if change.tested_in_staging is None:
        return None
    with ctx.db.read() as tx:
        if not changes.exists(tx, change.tested_in_staging):
            raise ValidationError("tested_in_staging", f"no change {change.tested_in_staging!r}")
        cited = changes.get(tx, change.tested_in_staging)
    why = staging.problem(change, cited)
    if why:
        raise ValidationError("tested_in_staging", why)
    return staging.evidence(cited)


def _standard_decision(ctx: Context, change: Change, now: datetime) -> StandardDecision | None:
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
        with ctx.db.read() as tx:
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


def _load(ctx: Context, change_id: str) -> Change:
    v.change_id(change_id)
    with ctx.db.read() as tx:
        return changes.get(tx, change_id)


def _history(ctx: Context, change: Change, now: datetime) -> list[PastChange]:
    since = now - timedelta(days=ctx.policy.history_window_days)
    with ctx.db.read() as tx:
        return changes.history(tx, change.category, change.affected_services, since, change.change_id)


def _audit_config(tx: Tx, ctx: Context, now: datetime) -> None:
    """Record a `config_changed` event when this write runs under different rules than the last."""
    current = rules_snapshot(ctx.settings)
    previous = audit.config_snapshot(tx)
    if previous == current:
        return
    if previous is not None:
        diff = {
            k: {"old": previous.get(k), "new": current.get(k)}
            for k in sorted(set(previous) | set(current))
            if previous.get(k) != current.get(k)
        }
        audit.append(tx, None, [Event("config_changed", "configuration", {"changes": diff})], now)
    audit.save_config_snapshot(tx, current)


def _compliant(tx: Tx, ctx: Context, change: Change, events: list[Event], now: datetime) -> bool:
    actions = [*audit.actions_for(tx, change.change_id), *(e.action for e in events)]
    results = compliance.evaluate(change, ctx.policy, ctx.policy.frameworks or ("soc2",), actions, now)
    return compliance.complete(results)


def _apply(
    ctx: Context,
    change_id: str,
    actor: str,
    op: Operation,
    if_version: int | None = None,
    extra: Callable[[Tx, Change], list[Event]] | None = None,
) -> Change:
    """Load, let the domain decide, then commit record, events, timers and outbox together.

    A refusal is recorded instead. `extra` does more in the same transaction (a lease, an
    incident) and may add events.
    """
    change = _load(ctx, change_id)
    if if_version is not None and change.version != if_version:
        raise PreconditionFailed(
            f"{change_id} is at version {change.version}, not {if_version} (If-Match): read it again"
        )
    version = change.version
    now = ctx.clock()
    try:
        events = op(change)
    except Refused as refusal:
        action = "unauthorized_attempt" if isinstance(refusal, InvalidTransition) else "refused"
        with ctx.db.transaction() as tx:
            _audit_config(tx, ctx, now)
            audit.append(tx, change_id, [Event(action, actor, {"error": str(refusal)})], now)
        raise
    with ctx.db.transaction() as tx:
        _audit_config(tx, ctx, now)
        if extra is not None:
            events = events + extra(tx, change)
        changes.save(tx, change, version, _compliant(tx, ctx, change, events, now))
        followups.commit(tx, ctx, change, events, now)
    return change


def record(ctx: Context, change_id: str, events: list[Event]) -> None:
    """Audit events that move no state (a step's result, an escalation), with what they cause."""
    now = ctx.clock()
    with ctx.db.transaction() as tx:
        followups.commit(tx, ctx, changes.get(tx, change_id), events, now)


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
    change = _load(ctx, change_id)
    now = ctx.clock()
    history = _history(ctx, change, now)
    decision = _standard_decision(ctx, change, now)
    evidence = _staging_evidence(ctx, change)

    def op(c: Change) -> list[Event]:
        if lower_reason is not None:
            permissions.require(permissions.Act.LOWER_ROUTE, who, ctx.policy, c)
        return workflow.assess(
            c,
            ctx.policy,
            history,
            now,
            reassess=reassess,
            standard=decision,
            staging=evidence,
            lower_route=lower_reason,
            actor=workflow.RISK_ENGINE if lower_reason is None else who,
        )

    return _apply(ctx, change_id, who, op, if_version=if_version)


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
    now = ctx.clock()
    change = _apply(
        ctx,
        change_id,
        approver,
        lambda c: workflow.approve(c, approver, reason, ctx.policy, now, role=role),
        if_version=if_version,
    )
    return change, workflow.documentation_warnings(change)


def reject_change(
    ctx: Context, *, change_id: str, rejector: str, reason: str, if_version: int | None = None
) -> Change:
    v.identity("rejector", rejector)
    v.reason("reason", reason)
    now = ctx.clock()
    return _apply(
        ctx,
        change_id,
        rejector,
        lambda c: workflow.reject(c, rejector, reason, ctx.policy, now),
        if_version=if_version,
    )


def close_change(
    ctx: Context, *, change_id: str, status: str, notes: str, actor: str, if_version: int | None = None
) -> Change:
    v.identity("actor", actor)
    closure = v.choice("status", status, ClosureStatus)
    v.text("notes", notes, max_len=v.DESCRIPTION_MAX)
    now = ctx.clock()
    holder = lease_holder(ctx, change_id)

    def op(c: Change) -> list[Event]:
        permissions.require(permissions.Act.CLOSE, actor, ctx.policy, c, holder)
        return workflow.close(c, closure, notes, actor, now)

    return _apply(ctx, change_id, actor, op, if_version=if_version)


def lease_holder(ctx: Context, change_id: str) -> str | None:
    """Who holds the change's lease now (a worker carrying it out), if anyone."""
    with ctx.db.read() as tx:
        lease = leases.get(tx, v.change_id(change_id))
    return lease.holder if lease is not None and lease.flagged_at is None else None


def cancel_change(
    ctx: Context, *, change_id: str, actor: str, reason: str, if_version: int | None = None
) -> Change:
    v.identity("actor", actor)
    v.reason("reason", reason)
    now = ctx.clock()

    def op(c: Change) -> list[Event]:
        permissions.require(permissions.Act.CANCEL, actor, ctx.policy, c)
        return workflow.cancel(c, actor, reason, now)

    return _apply(ctx, change_id, actor, op, if_version=if_version)


def review_change(
    ctx: Context, *, change_id: str, reviewer: str, outcome: str, notes: str, if_version: int | None = None
) -> Change:
    """Record the retrospective CAB review of an emergency change."""
    v.identity("reviewer", reviewer)
    result = v.choice("outcome", outcome, ReviewOutcome)
    if result is ReviewOutcome.CONCERNS:  # concerns must be stated; an acceptance may stand alone
        v.reason("notes", notes, max_len=v.DESCRIPTION_MAX)
    v.text("notes", notes, max_len=v.DESCRIPTION_MAX)
    now = ctx.clock()
    return _apply(
        ctx,
        change_id,
        reviewer,
        lambda c: workflow.review(c, reviewer, result, notes, ctx.policy, now),
        if_version=if_version,
    )


def update_change(
    ctx: Context, *, change_id: str, actor: str, fields: dict[str, Any], if_version: int | None = None
) -> Change:
    """Change descriptive fields before approval (re-assessing an assessed change)."""
    v.identity("actor", actor)
    clean = _clean_update(ctx.settings, fields)
    preview = _load(ctx, change_id).copy_with(**clean)
    now = ctx.clock()
    history = _history(ctx, preview, now)
    evidence = _staging_evidence(ctx, preview)

    def op(c: Change) -> list[Event]:
        permissions.require(permissions.Act.UPDATE, actor, ctx.policy, c)
        return workflow.update(c, actor, clean, ctx.policy, history, now, staging=evidence)

    return _apply(ctx, change_id, actor, op, if_version=if_version)


def _clean_update(settings: Settings, fields: dict[str, Any]) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    for key, value in fields.items():
        if key == "title":
            clean[key] = v.title(value)
        elif key == "description":
            clean[key] = v.description(value)
        elif key in ("impact", "urgency"):
            clean[key] = v.choice(key, value, Level)
        elif key in ("affected_services", "affected_cis", "dependencies"):
            clean[key] = v.names(key, value)
        elif key in ("implementation_plan", "rollback_plan"):
            clean[key] = stamp_plan(settings, key, v.plan(key, value, limits(settings)))
        elif key == "test_plan":
            clean[key] = v.plan(key, value, limits(settings))
        elif key == "validation":
            from ..domain.plan import check_validation

            clean[key] = check_validation(v.document(key, value, limits(settings).json_bytes))
        elif key == "environment":  # null clears it
            clean[key] = None if value is None else v.name(key, value)
        elif key == "tested_in_staging":
            clean[key] = None if value is None else v.change_id(value)
        else:
            raise ValidationError(key, f"cannot be updated; updatable: {', '.join(workflow.UPDATABLE)}")
    return clean
