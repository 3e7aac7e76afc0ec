"""Thin routes: authenticate, call one service, answer with the record (and its ETag)."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..catalog.loader import load_catalog
from ..domain import agents
from ..domain.compliance_report import FRAMEWORKS
from ..domain.errors import NotFound, PreconditionFailed, Refused, ValidationError
from ..domain.lifecycle import GROUPS, State
from ..domain.model import Change, ChangeType, Level
from ..services import audit as audit_service
from ..services import automation, cmdb, queries, reviews, telemetry
from ..services import changes as svc
from ..services import pir as pir_service
from ..services.compliance import compliance_report
from ..services.context import Context
from ..services.dispatch import implement_or_queue
from ..services.health import schema_version
from ..services.integrations import integrate, resolve
from ..services.reports import metrics_report
from ..services.tokens import principal
from . import ratelimit, schemas
from .strict import only_known_query_parameters

health = APIRouter(tags=["health"])
# Every /api/v1 route refuses query parameters it does not take (422), rather than ignoring them.
api = APIRouter(tags=["changes"], dependencies=[Depends(only_known_query_parameters)])
bearer = HTTPBearer(auto_error=False, description="a token from `cortex-change token create NAME`")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


async def _if_match(  # async: a header read needs no thread-pool hop
    request: Request,
    if_match: Annotated[
        str | None,
        Header(description='the ETag read before, e.g. "v3" (or W/"v3"); * for whichever version is current'),
    ] = None,
) -> str | None:
    """The If-Match header; several lines are one list (RFC 9110 §5.3), joined as such."""
    lines = request.headers.getlist("if-match")
    return ", ".join(lines) if len(lines) > 1 else if_match


IfMatch = Annotated[str | None, Depends(_if_match)]
ETAG_VALUE = re.compile(r'(?:W/)?(?:"v([0-9]{1,18})"|v([0-9]{1,18}))')  # W/: a proxy weakened it

_WHY = {
    401: "no bearer token, or an unknown, malformed or revoked one",
    403: "refused by a rule: role, segregation of duties, documentation, disabled feature",
    404: "no such change (or catalog entry)",
    409: "the change's state does not allow the action, or another writer changed it first; "
    "nothing was written",
    412: "If-Match names a version that is no longer current; nothing was written",
    422: "bad input: a field's value is not allowed; nothing was written",
    429: "the identity is over its requests a minute (Retry-After: seconds to wait); nothing was done",
    503: "the store could not be opened or used",
}
ETAG = {
    "ETag": {
        "description": 'the change\'s version, e.g. "v3" (send it back as If-Match)',
        "schema": {"type": "string"},
    }
}


def _problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """Documented problem responses (app.py serves them as application/problem+json)."""
    return {c: {"model": schemas.Problem, "description": _WHY[c]} for c in codes}


AUTHED = (401, 422, 429, 503)
ONE = (*AUTHED, 404)
MOVE = (*ONE, 403, 409, 412)
PERIOD_HELP = 'today, week, month, or "2025-12-01 to 2025-12-31"'  # the periods the reports take
CHANGE: dict[int | str, dict[str, Any]] = {
    200: {"description": "the change as `show` prints it", "headers": ETAG}
}


def _ctx(request: Request) -> Context:
    ctx: Context = request.app.state.context()
    return ctx


READS = frozenset({"GET", "HEAD", "OPTIONS"})


def _acting(request: Request, credentials: HTTPAuthorizationCredentials | None) -> tuple[Context, str]:
    """The bearer token's principal: the request's context acting as it, and its name. Its rate
    is counted (api/ratelimit.py); a read-only token reads only (docs/agents.md)."""
    ctx = _ctx(request)
    header = f"Bearer {credentials.credentials}" if credentials else None
    who = principal(ctx, header)
    ratelimit.check(request, ctx, who)
    if request.method not in READS:
        agents.require_write(who, f"{request.method} {request.url.path}")
    return ctx.acting(who), who.name


def _version(if_match: str | None) -> int | None:
    """The version If-Match names; None without one, or for `*` (any current version of the
    change, which must exist). One tag only: a list is refused (422), a tag of no version this
    API gives is a failed precondition (412)."""
    if if_match is None:
        return None
    tags = [t.strip() for t in if_match.split(",") if t.strip()]
    if len(tags) > 1:
        raise ValidationError(
            "If-Match", 'send one ETag ("v<version>", W/ allowed) or *; lists of ETags are not supported'
        )
    tag = tags[0] if tags else ""
    if tag == "*":
        return None
    m = ETAG_VALUE.fullmatch(tag)
    if m is None:
        shown = repr(tag if len(tag) <= 40 else tag[:40] + "…")
        raise PreconditionFailed(f'If-Match: {shown} is not an ETag of this API ("v<version>")')
    return int(m.group(1) or m.group(2))


def _record(ctx: Context, change: Change | str, status: int = 200) -> JSONResponse:
    """The change as SPEC §1's document with its ETag: built from the record in hand when a unit
    of work has just written it (`change.trail`), else read."""
    if isinstance(change, str):
        doc = queries.get_change(ctx, change_id=change)
    else:
        doc = queries.written(ctx, change)
    return JSONResponse(doc, status_code=status, headers={"ETag": f'"v{doc["version"]}"'})


@health.get("/healthz", summary="the process is up", response_model=schemas.Health)
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@health.get(
    "/readyz",
    summary="the store is reachable and its schema current",
    response_model=schemas.Ready,
    responses=_problems(503),
)
def readyz(request: Request) -> dict[str, Any]:
    ctx = _ctx(request)
    version = schema_version(ctx)
    state = automation.status(ctx)
    halted = {"reason": state["reason"], "by": state["by"], "since": state["since"]}
    return {
        "status": "ready",
        "schema_version": version,
        "automation_halted": halted if state["halted"] else None,
        "change_management": "enabled" if ctx.settings["CHANGE_MGMT_ENABLED"] else "disabled",
    }


@health.get(
    "/metrics",
    summary="Prometheus metrics computed from the store at scrape time (docs/metrics.md)",
    response_class=Response,
    responses={
        200: {
            "description": "the Prometheus text exposition format",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        404: {"model": schemas.Problem, "description": "METRICS_ENABLED is false"},
        **_problems(503),
    },
)
def prometheus_metrics(request: Request) -> Response:
    ctx = _ctx(request)
    if not ctx.settings["METRICS_ENABLED"]:
        raise NotFound("metrics are disabled (METRICS_ENABLED=false)")
    return Response(telemetry.exposition(ctx), media_type=telemetry.CONTENT_TYPE)


@api.get(
    "/whoami",
    summary="the identity the token acts as",
    response_model=schemas.Identity,
    responses=_problems(*AUTHED),
)
def whoami(request: Request, credentials: Credentials) -> dict[str, Any]:
    ctx, name = _acting(request, credentials)
    assert ctx.principal is not None
    return {"name": name, "agent": ctx.principal.agent, "scopes": ctx.principal.scopes.document()}


@api.post(
    "/changes",
    status_code=201,
    summary="file a request for change (requested_by is the token's identity)",
    response_model=schemas.ChangeDocument,
    responses={
        201: {
            "description": "created",
            "headers": {
                **ETAG,
                "Location": {"description": "the change's URL", "schema": {"type": "string"}},
            },
        },
        200: {
            "model": schemas.ChangeDocument,
            "description": "a replay of an earlier Idempotency-Key: the change it created; nothing new",
            "headers": ETAG,
        },
        **_problems(*AUTHED, 403),
    },
)
def create(
    request: Request,
    body: schemas.NewChange,
    credentials: Credentials,
    idempotency_key: Annotated[
        str | None,
        Header(max_length=200, description="retrying with the same key and body returns the first result"),
    ] = None,
) -> JSONResponse:
    ctx, who = _acting(request, credentials)
    fields = body.model_dump()
    once = None
    if idempotency_key is not None:
        digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()
        once = svc.Idempotency(idempotency_key, digest)
    from ..domain.fields import ChangeRequest

    checked = ChangeRequest.of({**fields, "requested_by": who}, svc.limits(ctx.settings))
    change = svc.create_change(ctx, checked, idempotency=once)
    response = _record(ctx, change, 200 if once and once.replayed else 201)
    response.headers["Location"] = f"/api/v1/changes/{change.change_id}"
    return response


@api.get(
    "/changes",
    summary="list changes, newest first (cursor: pass `next` as `before`)",
    response_model=schemas.ChangePage,
    responses=_problems(*ONE),
)
def listing(
    request: Request,
    credentials: Credentials,
    state: str | None = Query(
        None,
        description="a state or a group: pending, approved, rejected, implemented, closed, cancelled",
        json_schema_extra={"enum": sorted({*GROUPS, *(s.value for s in State)})},
    ),
    limit: int = Query(50, ge=1, le=1000),
    before: str | None = Query(None, description="the last change id of the previous page (404 if unknown)"),
    type_: str | None = Query(None, alias="type", json_schema_extra={"enum": [t.value for t in ChangeType]}),
    category: str | None = Query(None),
    risk_level: str | None = Query(None, json_schema_extra={"enum": [lv.value for lv in Level]}),
    requested_by: str | None = Query(None, description="the requester's identity"),
    service: str | None = Query(None, description="changes affecting this service"),
    created_from: str | None = Query(None, description="created at or after (ISO 8601 date or time, UTC)"),
    created_to: str | None = Query(None, description="created before (ISO 8601 date or time, UTC)"),
) -> dict[str, Any]:
    ctx, _ = _acting(request, credentials)
    given = {
        "type": type_,
        "category": category,
        "risk_level": risk_level,
        "requested_by": requested_by,
        "service": service,
        "created_from": created_from,
        "created_to": created_to,
    }
    filters = {k: v for k, v in given.items() if v is not None}
    items = queries.list_changes(ctx, state=state, limit=limit, before=before, filters=filters)
    return {"items": items, "next": items[-1]["change_id"] if len(items) == limit else None}


@api.get(
    "/changes/{change_id}",
    summary="one change as SPEC §1's document",
    response_model=schemas.ChangeDocument,
    responses={**CHANGE, **_problems(*ONE)},
)
def show(request: Request, change_id: str, credentials: Credentials) -> JSONResponse:
    ctx, _ = _acting(request, credentials)
    return _record(ctx, change_id)


@api.get(
    "/changes/{change_id}/audit",
    summary="the change's audit trail, oldest first",
    response_model=list[schemas.AuditEvent],
    responses=_problems(*ONE),
)
def trail(request: Request, change_id: str, credentials: Credentials) -> list[dict[str, Any]]:
    ctx, _ = _acting(request, credentials)
    return queries.trail(ctx, change_id=change_id)


@api.post(
    "/changes/{change_id}/assess",
    summary="score and route",
    response_model=schemas.ChangeDocument,
    responses={**CHANGE, **_problems(*MOVE)},
)
def assess(
    request: Request,
    change_id: str,
    credentials: Credentials,
    body: schemas.Assess | None = None,
    if_match: IfMatch = None,
) -> JSONResponse:
    ctx, who = _acting(request, credentials)
    reassess = bool(body and body.reassess)
    reason = body.reason if body else None
    change = svc.assess_change(
        ctx,
        change_id=change_id,
        reassess=reassess,
        if_version=_version(if_match),
        actor=who if reason is not None else None,
        lower_reason=reason,
    )
    return _record(ctx, change)


@api.post(
    "/changes/{change_id}/approve",
    summary="approve as the token's identity",
    response_model=schemas.ChangeDocument,
    responses={**CHANGE, **_problems(*MOVE)},
)
def approve(
    request: Request, change_id: str, body: schemas.Decide, credentials: Credentials, if_match: IfMatch = None
) -> JSONResponse:
    ctx, who = _acting(request, credentials)
    change, _ = svc.approve_change(
        ctx,
        change_id=change_id,
        approver=who,
        reason=body.reason,
        role=body.role,
        if_version=_version(if_match),
    )
    return _record(ctx, change)


@api.post(
    "/changes/{change_id}/reject",
    summary="reject as the token's identity",
    response_model=schemas.ChangeDocument,
    responses={**CHANGE, **_problems(*MOVE)},
)
def reject(
    request: Request, change_id: str, body: schemas.Decide, credentials: Credentials, if_match: IfMatch = None
) -> JSONResponse:
    ctx, who = _acting(request, credentials)
    change = svc.reject_change(
        ctx, change_id=change_id, rejector=who, reason=body.reason, if_version=_version(if_match)
    )
    return _record(ctx, change)


@api.post(
    "/changes/{change_id}/implement",
    summary="hand an executable plan to the workers (202), or record a plan of text steps (200)",
    response_model=schemas.ChangeDocument,
    responses={
        200: {"description": "a plan of text steps only: implemented, waiting for people", "headers": ETAG},
        202: {
            "model": schemas.ChangeDocument,
            "description": "queued: a worker (`worker run`) runs the plan; the change is still approved",
            "headers": ETAG,
        },
        **_problems(*MOVE),
    },
)
def implement(
    request: Request, change_id: str, credentials: Credentials, if_match: IfMatch = None
) -> JSONResponse:
    ctx, who = _acting(request, credentials)
    change, queued = implement_or_queue(ctx, change_id=change_id, actor=who, if_version=_version(if_match))
    return _record(ctx, change, 202 if queued else 200)


@api.post(
    "/changes/{change_id}/close",
    summary="close with an outcome",
    response_model=schemas.ChangeDocument,
    responses={**CHANGE, **_problems(*MOVE)},
)
def close(
    request: Request, change_id: str, body: schemas.Close, credentials: Credentials, if_match: IfMatch = None
) -> JSONResponse:
    ctx, who = _acting(request, credentials)
    change = svc.close_change(
        ctx,
        change_id=change_id,
        status=body.status,
        notes=body.notes,
        actor=who,
        if_version=_version(if_match),
    )
    return _record(ctx, change)


@api.post(
    "/changes/{change_id}/cancel",
    summary="cancel before implementation",
    response_model=schemas.ChangeDocument,
    responses={**CHANGE, **_problems(*MOVE)},
)
def cancel(
    request: Request,
    change_id: str,
    body: schemas.Cancel,
    credentials: Credentials,
    if_match: IfMatch = None,
) -> JSONResponse:
    ctx, who = _acting(request, credentials)
    change = svc.cancel_change(
        ctx, change_id=change_id, actor=who, reason=body.reason, if_version=_version(if_match)
    )
    return _record(ctx, change)


@api.post(
    "/changes/{change_id}/review",
    summary="the retrospective review of an emergency change",
    response_model=schemas.ChangeDocument,
    responses={**CHANGE, **_problems(*MOVE)},
)
def review(
    request: Request, change_id: str, body: schemas.Review, credentials: Credentials, if_match: IfMatch = None
) -> JSONResponse:
    ctx, who = _acting(request, credentials)
    change = svc.review_change(
        ctx,
        change_id=change_id,
        reviewer=who,
        outcome=body.outcome,
        notes=body.notes,
        if_version=_version(if_match),
    )
    return _record(ctx, change)


@api.post(
    "/integrations/{component}/{action}",
    summary="a change from the integration catalog (the token's identity acts)",
    response_model=schemas.ChangeDocument,
    responses={
        200: {
            "description": "the change the request created or moved",
            "headers": {
                **ETAG,
                "X-Cortex-Steps": {
                    "description": "what was done, one line per step: a JSON list of strings (ASCII)",
                    "schema": {"type": "string"},
                },
            },
        },
        **_problems(*MOVE),
    },
)
def integration(
    request: Request, component: str, action: str, body: schemas.Integrate, credentials: Credentials
) -> JSONResponse:
    ctx, who = _acting(request, credentials)
    details = (
        body.details if isinstance(body.details, str) or body.details is None else json.dumps(body.details)
    )
    args = [*([details] if details is not None else []), *body.args]
    _, named, _ = resolve(load_catalog(ctx.settings), component, action, args)
    if named is not None and named != who:  # `worker NAME ACTION ID`: only the token names the actor
        raise Refused(f"{who} may not act as {named}: the API acts as the token's identity")
    outcome = integrate(
        ctx, component=component, action=action, args=args, actor=who, requester=who, run_steps_here=False
    )
    response = _record(ctx, outcome.change_id)
    response.headers["X-Cortex-Steps"] = json.dumps([line[:1000] for line in outcome.steps])
    return response


@api.get(
    "/models",
    summary="the standard change models",
    response_model=list[schemas.StandardModel],
    responses=_problems(*AUTHED),
)
def models(request: Request, credentials: Credentials) -> list[dict[str, Any]]:
    ctx, _ = _acting(request, credentials)
    return [m.document() for _, m in sorted(load_catalog(ctx.settings).models.items())]


@api.get(
    "/metrics/report",
    summary="KPIs beside their targets for a period",
    response_model=schemas.MetricsReport,
    responses=_problems(*AUTHED),
)
def metrics(
    request: Request,
    credentials: Credentials,
    period: str = Query("today", description=PERIOD_HELP),
) -> dict[str, Any]:
    ctx, _ = _acting(request, credentials)
    return metrics_report(ctx, period_text=period)


@api.get(
    "/compliance/report",
    summary="a framework's controls over the changes created in a period, with audit evidence",
    response_model=schemas.ComplianceReport,
    responses=_problems(*AUTHED),
)
def compliance(
    request: Request,
    credentials: Credentials,
    framework: str = Query(json_schema_extra={"enum": list(FRAMEWORKS)}),
    period: str = Query(description=PERIOD_HELP),
) -> dict[str, Any]:
    ctx, _ = _acting(request, credentials)
    return compliance_report(ctx, framework=framework, period_text=period)


@api.get(
    "/audit/verify",
    summary="re-walk the audit hash chain",
    response_model=schemas.Verdict,
    responses=_problems(*AUTHED),
)
def verify(request: Request, credentials: Credentials, response: Response) -> dict[str, Any]:
    ctx, _ = _acting(request, credentials)
    verdict = audit_service.verify(ctx)
    return {
        "ok": verdict.ok,
        "checked": verdict.checked,
        "head_hash": verdict.head_hash,
        "problem": verdict.problem or None,
        "first_bad_seq": verdict.first_bad_seq,
    }


@api.get(
    "/reviews/overdue",
    summary="emergency changes whose retrospective review is past due, longest overdue first",
    response_model=list[schemas.OverdueReview],
    responses=_problems(*AUTHED),
)
def overdue_reviews(request: Request, credentials: Credentials) -> list[dict[str, Any]]:
    ctx, _ = _acting(request, credentials)
    return reviews.overdue_reviews(ctx)


@api.patch(
    "/changes/{change_id}",
    summary="change descriptive fields before approval (an assessed change is re-assessed)",
    response_model=schemas.ChangeDocument,
    responses={**CHANGE, **_problems(*MOVE)},
)
def update(
    request: Request,
    change_id: str,
    body: schemas.ChangeUpdate,
    credentials: Credentials,
    if_match: IfMatch = None,
) -> JSONResponse:
    ctx, who = _acting(request, credentials)
    fields = body.model_dump(exclude_unset=True)
    change = svc.update_change(
        ctx, change_id=change_id, actor=who, fields=fields, if_version=_version(if_match)
    )
    return _record(ctx, change)


@api.get(
    "/cis",
    summary="configuration items of the CMDB by name (`cmdb list`)",
    response_model=list[schemas.CISummary],
    responses=_problems(*AUTHED),
)
def cis(
    request: Request,
    credentials: Credentials,
    type_: str | None = Query(None, alias="type", json_schema_extra={"enum": schemas.CI_TYPES}),
    tier: int | None = Query(None, ge=0, le=3),
    owner: str | None = Query(None, description="the owning team"),
) -> list[dict[str, Any]]:
    ctx, _ = _acting(request, credentials)
    return cmdb.listing(ctx, type_=type_, tier=tier, owner=owner)


@api.get(
    "/cis/{name:path}/impact",
    summary="the blast radius: every CI that transitively relies on this one, with the path",
    response_model=list[schemas.Reached],
    responses=_problems(*ONE),
)
def ci_impact(request: Request, name: str, credentials: Credentials) -> list[dict[str, Any]]:
    ctx, _ = _acting(request, credentials)
    return cmdb.impact(ctx, names=[name])


@api.get(
    "/cis/{name:path}",
    summary="a CI with what it relies on and what relies on it (`cmdb show`)",
    response_model=schemas.CIDetail,
    responses=_problems(*ONE),
)
def ci(request: Request, name: str, credentials: Credentials) -> dict[str, Any]:
    ctx, _ = _acting(request, credentials)
    return cmdb.show(ctx, name=name)


@api.post(
    "/changes/{change_id}/schedule",
    summary="plan the window it may be carried out in (an approved change is approved again for it)",
    response_model=schemas.ChangeDocument,
    responses={**CHANGE, **_problems(*MOVE)},
)
def schedule(
    request: Request,
    change_id: str,
    body: schemas.Schedule,
    credentials: Credentials,
    if_match: IfMatch = None,
) -> JSONResponse:
    ctx, who = _acting(request, credentials)
    change = svc.schedule_change(
        ctx,
        change_id=change_id,
        actor=who,
        start=body.planned_start,
        end=body.planned_end,
        if_version=_version(if_match),
    )
    return _record(ctx, change)


@api.get(
    "/gate",
    summary="may a deploy of a service go ahead now? (docs/pipelines.md)",
    response_model=schemas.GateVerdict,
    responses=_problems(*ONE),
)
def deploy_gate(
    request: Request,
    credentials: Credentials,
    service: str = Query(description="the service deployed"),
    environment: str | None = Query(None, description="the environment deployed to"),
    change: str | None = Query(None, description="ask about this change only"),
) -> dict[str, Any]:
    ctx, _ = _acting(request, credentials)
    from ..services.gate import gate

    return gate(ctx, service=service, environment=environment, change_id=change)


@api.get(
    "/windows",
    summary="freeze and maintenance windows not yet over, soonest first (`windows list`)",
    response_model=list[schemas.ChangeWindow],
    responses=_problems(*AUTHED),
)
def change_windows(request: Request, credentials: Credentials) -> list[dict[str, Any]]:
    ctx, _ = _acting(request, credentials)
    from ..services.windows import list_windows

    return list_windows(ctx)


@api.post(
    "/observations",
    status_code=201,
    summary="record what really changed; unmatched, it is an unauthorized change (audited, notified)",
    response_model=schemas.ObservationResult,
    responses=_problems(*AUTHED, 403),
)
def observation(request: Request, body: schemas.Observation, credentials: Credentials) -> dict[str, Any]:
    ctx, who = _acting(request, credentials)
    from ..services.observations import observe

    return observe(
        ctx,
        service=body.service,
        environment=body.environment,
        at=body.observed_at,
        source=body.source,
        reference=body.reference,
        actor=who,
    )


@api.get(
    "/calendar",
    summary="planned changes (any state) and freeze/maintenance windows over a span (`calendar`)",
    response_model=schemas.Calendar,
    response_model_by_alias=True,
    responses=_problems(*AUTHED),
)
def change_calendar(
    request: Request,
    credentials: Credentials,
    start: str | None = Query(
        None, alias="from", description="a date or ISO 8601 time (default: today, UTC)"
    ),
    end: str | None = Query(None, alias="to", description="a date (included) or ISO 8601 time"),
    service: str | None = Query(None, description="changes touching this service only"),
    environment: str | None = Query(None, description="changes for this environment (or naming none)"),
) -> dict[str, Any]:
    ctx, _ = _acting(request, credentials)
    from ..services.calendar import calendar_view

    return calendar_view(ctx, start=start, end=end, service=service, environment=environment)


@health.get(
    "/api/v1/calendar/{feed}.ics",
    summary="the iCalendar feed (RFC 5545) to subscribe to: the feed's secret in the path, no bearer "
    "token (`calendar feed create NAME`)",
    response_class=Response,
    responses={
        200: {
            "description": "a VCALENDAR: planned changes from 30 days ago to 180 days ahead, and windows",
            "content": {"text/calendar": {"schema": {"type": "string"}}},
        },
        404: {"model": schemas.Problem, "description": "no such feed (unknown, malformed or revoked)"},
        **_problems(503),
    },
)
def calendar_feed(request: Request, feed: str) -> Response:
    from ..services.calendar import calendar_ics

    body = calendar_ics(_ctx(request), feed)
    return Response(
        body,
        media_type="text/calendar; charset=utf-8",
        headers={
            "Cache-Control": "private, no-store",
            "Content-Disposition": 'inline; filename="cortex-change.ics"',
        },
    )


@api.post(
    "/windows",
    status_code=201,
    summary="add a freeze or maintenance window (CHANGE_MANAGERS)",
    response_model=schemas.ChangeWindow,
    responses=_problems(*AUTHED, 403),
)
def add_change_window(request: Request, body: schemas.NewWindow, credentials: Credentials) -> dict[str, Any]:
    ctx, who = _acting(request, credentials)
    from ..services.windows import add_window

    return add_window(ctx, actor=who, **body.model_dump())


@api.delete(
    "/windows/{window_id}",
    status_code=204,
    summary="remove a window (CHANGE_MANAGERS; a window of cortex-change.toml is removed there)",
    response_class=Response,
    responses=_problems(*ONE, 403),
)
def remove_change_window(request: Request, window_id: str, credentials: Credentials) -> Response:
    ctx, who = _acting(request, credentials)
    from ..services.windows import remove_window

    remove_window(ctx, window_id=window_id, actor=who)
    return Response(status_code=204)


@api.get(
    "/freeze",
    summary="the kill switch: whether all automation is halted, why, by whom (`freeze status`)",
    response_model=schemas.Halt,
    responses=_problems(*AUTHED),
)
def halt_status(request: Request, credentials: Credentials) -> dict[str, Any]:
    ctx, _ = _acting(request, credentials)
    return automation.status(ctx)


@api.post(
    "/freeze",
    summary="halt all automation now (`freeze on`; CHANGE_MANAGERS): docs/agents.md",
    response_model=schemas.Halt,
    responses=_problems(*AUTHED, 403),
)
def halt_on(request: Request, body: schemas.HaltOn, credentials: Credentials) -> dict[str, Any]:
    ctx, who = _acting(request, credentials)
    return automation.switch(ctx, on=True, actor=who, reason=body.reason)


@api.delete(
    "/freeze",
    summary="resume automation (`freeze off`; CHANGE_MANAGERS)",
    response_model=schemas.Halt,
    responses=_problems(*AUTHED, 403),
)
def halt_off(request: Request, credentials: Credentials) -> dict[str, Any]:
    ctx, who = _acting(request, credentials)
    return automation.switch(ctx, on=False, actor=who)


# --- post-implementation reviews (docs/pir.md) ------------------------------------------------

PIR: dict[int | str, dict[str, Any]] = {
    200: {"description": "the change's post-implementation review as `pir show` prints it"}
}


@api.get(
    "/changes/{change_id}/pir",
    summary="a change's post-implementation review: findings and action items (`pir show`)",
    response_model=schemas.PirDocument,
    responses={**PIR, **_problems(*ONE)},
)
def pir_show(request: Request, change_id: str, credentials: Credentials) -> dict[str, Any]:
    ctx, _ = _acting(request, credentials)
    return pir_service.get_pir(ctx, change_id=change_id)


@api.post(
    "/changes/{change_id}/pir/findings",
    summary="write (or rewrite) the review's findings (the requester, the implementer, CHANGE_MANAGERS)",
    response_model=schemas.PirDocument,
    responses={**PIR, **_problems(*ONE, 403, 409)},
)
def pir_findings(
    request: Request, change_id: str, body: schemas.PirFindings, credentials: Credentials
) -> dict[str, Any]:
    ctx, who = _acting(request, credentials)
    return pir_service.record_findings(ctx, change_id=change_id, actor=who, findings=body.findings)


@api.post(
    "/changes/{change_id}/pir/actions",
    summary="add an action item with its owner and due date (YYYY-MM-DD); its owner is notified",
    response_model=schemas.PirDocument,
    responses={**PIR, **_problems(*ONE, 403, 409)},
)
def pir_action_add(
    request: Request, change_id: str, body: schemas.PirAction, credentials: Credentials
) -> dict[str, Any]:
    ctx, who = _acting(request, credentials)
    return pir_service.add_action(
        ctx, change_id=change_id, actor=who, title=body.title, owner=body.owner, due=body.due
    )


@api.post(
    "/changes/{change_id}/pir/actions/{action_id}/done",
    summary="mark an action item done (its owner, CHANGE_MANAGERS)",
    response_model=schemas.PirDocument,
    responses={**PIR, **_problems(*ONE, 403, 409)},
)
def pir_action_done(
    request: Request, change_id: str, action_id: str, credentials: Credentials
) -> dict[str, Any]:
    ctx, who = _acting(request, credentials)
    return pir_service.finish_action(ctx, change_id=change_id, actor=who, action_id=action_id)


@api.post(
    "/changes/{change_id}/pir/complete",
    summary="sign the review off (CHANGE_MANAGERS; needs findings)",
    response_model=schemas.PirDocument,
    responses={**PIR, **_problems(*ONE, 403, 409)},
)
def pir_complete(request: Request, change_id: str, credentials: Credentials) -> dict[str, Any]:
    ctx, who = _acting(request, credentials)
    return pir_service.complete(ctx, change_id=change_id, actor=who)
