"""Self-healing (docs/self-healing.md): Alertmanager alerts matching a `[remediations.NAME]` table
file a standard change through its model, which the workers carry out and validate; a remediation
the rules refuse (kill switch, a freeze, outside the model, over its rate) pages a person instead.

Each alert is recorded once by its key (fingerprint @ startsAt): a repeat files nothing. A
remediation's decisions are serialized (services never race past its bound): the alert is claimed,
judged and — when it may go ahead — counted in one transaction, before its change is filed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ..config import Settings
from ..domain import remediation as rules
from ..domain.errors import Refused, ValidationError
from ..domain.events import Event, EventKind
from ..domain.fields import ChangeRequest
from ..domain.lifecycle import State
from ..domain.model import Change, Timeline
from ..domain.remediation import Alert, Remediation
from ..domain.standard import StandardModel
from ..store import audit, halt
from ..store import remediations as store
from ..store.db import Tx
from . import followups
from .context import Context

DUPLICATE = "duplicate"


def remediations(settings: Settings) -> tuple[dict[str, Remediation], dict[str, StandardModel]]:
    """The configured remediations (checked against the catalog) and the catalog's models."""
    from ..catalog.loader import load_catalog

    catalog = load_catalog(settings)
    found = rules.define_all(settings.extra.get("remediations"), catalog.models, catalog.runbooks)
    return found, catalog.models


def receive(ctx: Context, body: Any, *, actor: str) -> dict[str, Any]:
    """Handle one Alertmanager webhook as `actor` (the token's agent): each alert's outcome."""
    if not ctx.settings["SELF_HEALING"]:
        raise Refused("self-healing is off (SELF_HEALING=false): no alert is acted on; nothing was written")
    hook = rules.parse_webhook(body)
    found, models = remediations(ctx.settings)
    outcomes = [_one(ctx, found, models, alert, actor) for alert in hook.alerts]
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o["outcome"]] = counts.get(o["outcome"], 0) + 1
    return {"receiver": hook.receiver, "received": len(outcomes), "counts": counts, "alerts": outcomes}


def _one(
    ctx: Context, found: dict[str, Remediation], models: dict[str, StandardModel], alert: Alert, actor: str
) -> dict[str, Any]:
    rem = rules.matching(found.values(), alert)
    out: dict[str, Any] = {"alert": alert.key, "alertname": alert.name, "status": alert.status}
    out["remediation"] = None if rem is None else rem.name
    if alert.status == "resolved":
        return {**out, "outcome": _resolved(ctx, rem, alert, actor)}
    if rem is None:
        with ctx.db.transaction() as tx:
            new = store.claim(tx, alert.key, *_row(alert), None, "", store.UNMATCHED, actor, _now(ctx))
        return {**out, "outcome": store.UNMATCHED if new else DUPLICATE}
    return {**out, **_firing(ctx, rem, models[rem.model], alert, actor)}


def _row(alert: Alert) -> tuple[str, str, str, str]:
    return alert.fingerprint, alert.starts_at, alert.name[:200], alert.status


def _now(ctx: Context) -> float:
    return ctx.clock().timestamp()


def _resolved(ctx: Context, rem: Remediation | None, alert: Alert, actor: str) -> str:
    """Recorded (once); on the trail of the change the alert filed, if it filed one. Nothing filed."""
    now = ctx.clock()
    name = None if rem is None else rem.name
    with ctx.db.transaction() as tx:
        key = f"{alert.key}#resolved"
        if not store.claim(tx, key, *_row(alert), name, "", store.RESOLVED, actor, now.timestamp()):
            return DUPLICATE
        fired = store.get(tx, alert.key)
        change_id = None if fired is None else fired[8]
        if change_id is not None:
            store.settle(tx, key, store.RESOLVED, change_id)
            event = Event(EventKind.ALERT_RESOLVED, actor, rules.details(rem, alert))
            audit.append(tx, str(change_id), [event], now)
    return store.RESOLVED


def _firing(ctx: Context, rem: Remediation, model: StandardModel, alert: Alert, actor: str) -> dict[str, Any]:
    """Claim the alert, judge it, and file its change when the rules let it go ahead."""
    now = ctx.clock()
    request, bad, rate_key = None, None, ""
    try:
        request = _request(ctx, rem, alert, actor)
        rate_key = model.rate_key(request.parameters) or ""
    except ValidationError as exc:
        bad = f"the alert's labels do not fit remediation {rem.name}: {exc}"
    with ctx.db.transaction() as tx:
        store.lock(tx, rem.name)
        if not store.claim(
            tx, alert.key, *_row(alert), rem.name, rate_key, store.FILING, actor, now.timestamp()
        ):
            return {"outcome": DUPLICATE}
        why = bad or _refusal(ctx, tx, rem, model, request, alert.key, rate_key)
        if why is not None:
            return _refuse(ctx, tx, rem, alert, actor, rate_key, why)
    assert request is not None
    return _file(ctx, rem, alert, actor, request, rate_key)


def _request(ctx: Context, rem: Remediation, alert: Alert, actor: str) -> ChangeRequest:
    """The change the alert asks for, checked as any filed request is (runbook patterns too)."""
    from .changes import limits
    from .runbooks import stamp_plan

    request = ChangeRequest.of(rules.request_fields(rem, alert, actor), limits(ctx.settings))
    for key in ("implementation_plan", "rollback_plan"):
        stamp_plan(ctx.settings, key, getattr(request, key))
    return request


def _refusal(
    ctx: Context,
    tx: Tx,
    rem: Remediation,
    model: StandardModel,
    request: ChangeRequest | None,
    key: str,
    rate_key: str,
) -> str | None:
    """Why the rules refuse the remediation now (None: it may go ahead): the kill switch, a freeze
    in force over its services, the model's own decision (disabled, outside it, over its rate), the
    remediation's storm bound."""
    assert request is not None
    halted = halt.reason(tx)
    if halted is not None:
        return f"the kill switch is on ({halted}): no automation runs"
    now = ctx.clock()
    preview = Change(change_id="(remediation)", timeline=Timeline(created_at=now), **request.to_fields())
    from ..domain.windows import implementation_frozen
    from .changes import standard_decision
    from .windows import in_force

    try:
        implementation_frozen(preview, in_force(ctx, tx, now.timestamp()), ctx.settings["FREEZE_POLICY"], now)
    except Refused as exc:
        return f"a freeze is in force: {exc}"
    decision = standard_decision(ctx, tx, preview)
    if decision is not None and not decision.pre_approved:
        return decision.reason
    limit, window = rules.bound(rem, model)
    since = (now - timedelta(seconds=window)).timestamp()
    filed = store.filed_since(tx, rem.name, rate_key, since, key)
    if filed >= limit:
        target = f" for {rate_key}" if rate_key else ""
        return (
            f"remediation {rem.name}: {filed} change(s) filed{target} in the last {window}s "
            f"reach its limit of {limit}"
        )
    return None


def _refuse(
    ctx: Context, tx: Tx, rem: Remediation, alert: Alert, actor: str, rate_key: str, why: str
) -> dict[str, Any]:
    """Audit the refusal; page a person unless one was paged about this remediation and target
    within its `page_every` (a storm pages once, and every refusal is still on the trail)."""
    now = ctx.clock()
    since = (now - timedelta(seconds=rem.page_every)).timestamp()
    details = {**rules.details(rem, alert), "reason": why}
    event = Event(EventKind.REMEDIATION_REFUSED, actor, details)
    if store.paged_since(tx, rem.name, rate_key, since):
        store.settle(tx, alert.key, store.REFUSED, reason=why)
        audit.append(tx, None, [event], now)
        return {"outcome": store.REFUSED, "reason": why, "paged": False}
    store.settle(tx, alert.key, store.PAGED, reason=why)
    _page(tx, ctx, event, rem, alert, why)
    return {"outcome": store.REFUSED, "reason": why, "paged": True}


def _page(tx: Tx, ctx: Context, event: Event, rem: Remediation, alert: Alert, why: str) -> None:
    """The on-call leads (ECAB_MEMBERS) hear it on every channel, PagerDuty included."""
    what = f"{alert.name or 'an alert'} ({alert.key})"
    subject = f"Self-healing needs a person: {rem.name} for {alert.name or alert.key}"
    followups.announce(
        tx,
        ctx,
        event,
        ctx.clock(),
        subject=subject,
        text=f"Alertmanager: {what} matched remediation {rem.name}; not carried out automatically: {why}",
        ask="remediate by hand, or file a change",
        recipients=ctx.policy.ecab_members,
        paged=True,
    )


def _file(
    ctx: Context, rem: Remediation, alert: Alert, actor: str, request: ChangeRequest, rate_key: str
) -> dict[str, Any]:
    """File and assess the change (as the token's agent: its scopes apply); a pre-approved one is
    carried out by the workers (AUTO_IMPLEMENT, else queued here); one waiting for a person pages."""
    from .changes import assess_change, create_change

    try:
        change = create_change(ctx, request)
    except (ValidationError, Refused) as exc:
        with ctx.db.transaction() as tx:
            return _refuse(ctx, tx, rem, alert, actor, rate_key, f"the change could not be filed: {exc}")
    with ctx.db.transaction() as tx:
        store.settle(tx, alert.key, store.FILED, change.change_id)
        event = Event(EventKind.REMEDIATION_FILED, actor, rules.details(rem, alert))
        audit.append(tx, change.change_id, [event], ctx.clock())
    try:
        change = assess_change(ctx, change_id=change.change_id)
    except Refused as exc:  # e.g. a freeze over its planned window: the change stays unassessed
        return _waits(ctx, rem, alert, actor, change.change_id, f"the assessment refused it: {exc}")
    out = {"outcome": store.FILED, "change_id": change.change_id, "state": change.state.value}
    if change.state is not State.APPROVED:
        a = change.assessment
        route = f"route {a.route.value}: {a.route_reason}" if a else change.state.value
        return {**out, **_waits(ctx, rem, alert, actor, change.change_id, f"it waits for a person ({route})")}
    if not ctx.settings["AUTO_IMPLEMENT"]:  # no timer was set: hand it to the workers now
        from .dispatch import queue_implementation

        queue_implementation(ctx, change_id=change.change_id, actor=actor)
    return out


def _waits(
    ctx: Context, rem: Remediation, alert: Alert, actor: str, change_id: str, why: str
) -> dict[str, Any]:
    """A filed change the rules did not pre-approve: on its trail, and a person is paged to decide."""
    details = {**rules.details(rem, alert), "reason": why}
    event = Event(EventKind.REMEDIATION_REFUSED, actor, details)
    with ctx.db.transaction() as tx:
        followups.announce(
            tx,
            ctx,
            event,
            ctx.clock(),
            subject=f"Self-healing needs a person: {change_id} ({rem.name})",
            text=f"Alertmanager: {alert.name} ({alert.key}) filed {change_id} through remediation "
            f"{rem.name}; not carried out automatically: {why}",
            ask=f"decide {change_id} (approve or reject)",
            recipients=ctx.policy.ecab_members,
            paged=True,
            change_id=change_id,
        )
    return {"reason": why, "paged": True}
