"""Thin routes: authenticate, call one service, answer with the record (and its ETag)."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..domain.errors import PreconditionFailed
from ..services import audit as audit_service
from ..services import changes as svc
from ..services.context import Context
from ..services.integrations import integrate
from ..services.reports import metrics_report
from ..services.tokens import authenticate
from . import schemas

health = APIRouter(tags=["health"])
api = APIRouter(tags=["changes"])
bearer = HTTPBearer(auto_error=False, description="a token from `cortex-change token create NAME`")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
IfMatch = Annotated[str | None, Header(description='the ETag read before, e.g. "v3"')]


def _ctx(request: Request) -> Context:
    ctx: Context = request.app.state.context()
    return ctx


def _who(ctx: Context, credentials: HTTPAuthorizationCredentials | None) -> str:
    header = f"Bearer {credentials.credentials}" if credentials else None
    return authenticate(ctx, header)


def _version(if_match: str | None) -> int | None:
    if if_match is None:
        return None
    tag = if_match.strip().removeprefix("W/").strip('"')
    if not tag.startswith("v") or not tag[1:].isdigit():
        raise PreconditionFailed(f'If-Match {if_match!r} is not an ETag of this API ("v<version>")')
    return int(tag[1:])


def _record(ctx: Context, change_id: str, status: int = 200) -> JSONResponse:
    doc = svc.get_change(ctx, change_id=change_id)
    return JSONResponse(doc, status_code=status, headers={"ETag": f'"v{doc["version"]}"'})


@health.get("/healthz", summary="the process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@health.get("/readyz", summary="the store is reachable and its schema current")
def readyz(request: Request) -> dict[str, Any]:
    ctx = _ctx(request)
    with ctx.db.read() as tx:
        row = tx.one("SELECT max(version) FROM schema_version")
    return {"status": "ready", "schema_version": int(row[0]) if row and row[0] else 0}


@api.post("/changes", status_code=201, summary="file a request for change")
def create(
    request: Request,
    body: schemas.NewChange,
    credentials: Credentials,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> JSONResponse:
    ctx = _ctx(request)
    who = _who(ctx, credentials)
    fields = body.model_dump()
    once = None
    if idempotency_key is not None:
        digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()
        once = svc.Idempotency(idempotency_key, digest)
    change = svc.create_change(ctx, requested_by=who, idempotency=once, **fields)
    response = _record(ctx, change.change_id, 200 if once and once.replayed else 201)
    response.headers["Location"] = f"/api/v1/changes/{change.change_id}"
    return response


@api.get("/changes", summary="list changes, newest first (cursor: `before`)")
def listing(
    request: Request,
    credentials: Credentials,
    state: str | None = Query(None, description="a state or a group: pending, approved, implemented, closed"),
    limit: int = Query(50, ge=1, le=1000),
    before: str | None = Query(None, description="the last change id of the previous page"),
) -> dict[str, Any]:
    ctx = _ctx(request)
    _who(ctx, credentials)
    items = svc.list_changes(ctx, state=state, limit=limit, before=before)
    return {"items": items, "next": items[-1]["change_id"] if len(items) == limit else None}


@api.get("/changes/{change_id}", summary="one change as SPEC §1's document")
def show(request: Request, change_id: str, credentials: Credentials) -> JSONResponse:
    ctx = _ctx(request)
    _who(ctx, credentials)
    return _record(ctx, change_id)


@api.get("/changes/{change_id}/audit", summary="the change's audit trail, oldest first")
def trail(request: Request, change_id: str, credentials: Credentials) -> list[dict[str, Any]]:
    ctx = _ctx(request)
    _who(ctx, credentials)
    events: list[dict[str, Any]] = svc.get_change(ctx, change_id=change_id)["audit_trail"]
    return events


@api.post("/changes/{change_id}/assess", summary="score and route")
def assess(
    request: Request,
    change_id: str,
    credentials: Credentials,
    body: schemas.Assess | None = None,
    if_match: IfMatch = None,
) -> JSONResponse:
    ctx = _ctx(request)
    _who(ctx, credentials)
    reassess = bool(body and body.reassess)
    svc.assess_change(ctx, change_id=change_id, reassess=reassess, if_version=_version(if_match))
    return _record(ctx, change_id)


@api.post("/changes/{change_id}/approve", summary="approve as the token's identity")
def approve(
    request: Request, change_id: str, body: schemas.Decide, credentials: Credentials, if_match: IfMatch = None
) -> JSONResponse:
    ctx = _ctx(request)
    who = _who(ctx, credentials)
    svc.approve_change(
        ctx,
        change_id=change_id,
        approver=who,
        reason=body.reason,
        role=body.role,
        if_version=_version(if_match),
    )
    return _record(ctx, change_id)


@api.post("/changes/{change_id}/reject", summary="reject as the token's identity")
def reject(
    request: Request, change_id: str, body: schemas.Decide, credentials: Credentials, if_match: IfMatch = None
) -> JSONResponse:
    ctx = _ctx(request)
    who = _who(ctx, credentials)
    svc.reject_change(
        ctx, change_id=change_id, rejector=who, reason=body.reason, if_version=_version(if_match)
    )
    return _record(ctx, change_id)


@api.post("/changes/{change_id}/implement", summary="record the implementation")
def implement(
    request: Request, change_id: str, credentials: Credentials, if_match: IfMatch = None
) -> JSONResponse:
    ctx = _ctx(request)
    who = _who(ctx, credentials)
    svc.implement_change(ctx, change_id=change_id, actor=who, if_version=_version(if_match))
    return _record(ctx, change_id)


@api.post("/changes/{change_id}/close", summary="close with an outcome")
def close(
    request: Request, change_id: str, body: schemas.Close, credentials: Credentials, if_match: IfMatch = None
) -> JSONResponse:
    ctx = _ctx(request)
    who = _who(ctx, credentials)
    svc.close_change(
        ctx,
        change_id=change_id,
        status=body.status,
        notes=body.notes,
        actor=who,
        if_version=_version(if_match),
    )
    return _record(ctx, change_id)


@api.post("/changes/{change_id}/cancel", summary="cancel before implementation")
def cancel(
    request: Request,
    change_id: str,
    credentials: Credentials,
    body: schemas.Cancel | None = None,
    if_match: IfMatch = None,
) -> JSONResponse:
    ctx = _ctx(request)
    who = _who(ctx, credentials)
    reason = body.reason if body else ""
    svc.cancel_change(ctx, change_id=change_id, actor=who, reason=reason, if_version=_version(if_match))
    return _record(ctx, change_id)


@api.post("/changes/{change_id}/review", summary="the retrospective review of an emergency change")
def review(
    request: Request, change_id: str, body: schemas.Review, credentials: Credentials, if_match: IfMatch = None
) -> JSONResponse:
    ctx = _ctx(request)
    who = _who(ctx, credentials)
    svc.review_change(
        ctx,
        change_id=change_id,
        reviewer=who,
        outcome=body.outcome,
        notes=body.notes,
        if_version=_version(if_match),
    )
    return _record(ctx, change_id)


@api.post("/integrations/{component}/{action}", summary="a change from the integration catalog")
def integration(
    request: Request, component: str, action: str, body: schemas.Integrate, credentials: Credentials
) -> JSONResponse:
    ctx = _ctx(request)
    who = _who(ctx, credentials)
    details = (
        body.details if isinstance(body.details, str) or body.details is None else json.dumps(body.details)
    )
    args = [*([details] if details is not None else []), *body.args]
    outcome = integrate(ctx, component=component, action=action, args=args, actor=who)
    response = _record(ctx, outcome.change_id)
    response.headers["X-Cortex-Steps"] = str(len(outcome.steps))
    return response


@api.get("/models", summary="the standard change models")
def models(request: Request, credentials: Credentials) -> list[dict[str, Any]]:
    from ..catalog.loader import load_catalog

    ctx = _ctx(request)
    _who(ctx, credentials)
    return [m.document() for _, m in sorted(load_catalog(ctx.settings).models.items())]


@api.get("/metrics/report", summary="KPIs beside their targets for a period")
def metrics(request: Request, credentials: Credentials, period: str = "today") -> dict[str, Any]:
    ctx = _ctx(request)
    _who(ctx, credentials)
    return metrics_report(ctx, period_text=period)


@api.get("/audit/verify", summary="re-walk the audit hash chain")
def verify(request: Request, credentials: Credentials, response: Response) -> dict[str, Any]:
    ctx = _ctx(request)
    _who(ctx, credentials)
    verdict = audit_service.verify(ctx)
    return {
        "ok": verdict.ok,
        "checked": verdict.checked,
        "head_hash": verdict.head_hash,
        "problem": verdict.problem or None,
        "first_bad_seq": verdict.first_bad_seq,
    }
