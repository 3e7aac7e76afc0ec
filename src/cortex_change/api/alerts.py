"""Self-healing's door (docs/self-healing.md): `POST /hooks/alertmanager` takes Prometheus
Alertmanager's webhook (version 4).

Alertmanager sends the bearer token of its `http_config.authorization`: an API token of an
**agent** identity (`token create alertmanager --agent …`): an automated remediator is an agent,
so its token's scopes, its rate and the person-in-the-loop rules apply to every change it files
(docs/agents.md). No token, or an unknown one: 401; a person's or a read-only token: 403; nothing
is written. The token is checked before the body is read as JSON. Bodies over 1 MiB are 413
(api/limits.py)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ..config import Settings
from ..domain import agents
from ..domain.errors import Forbidden, ValidationError
from ..services.context import Context
from ..services.tokens import principal
from . import ratelimit, schemas
from .strict import only_known_query_parameters

alerts = APIRouter(tags=["self-healing"], dependencies=[Depends(only_known_query_parameters)])
PATH = "/hooks/alertmanager"
EXAMPLE: dict[str, Any] = {
    "version": "4",
    "groupKey": '{}:{alertname="WorkerDown"}',
    "truncatedAlerts": 0,
    "status": "firing",
    "receiver": "cortex-change",
    "groupLabels": {"alertname": "WorkerDown"},
    "commonLabels": {"alertname": "WorkerDown", "severity": "critical"},
    "commonAnnotations": {},
    "externalURL": "http://alertmanager:9093",
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "WorkerDown", "severity": "critical", "deployment": "worker-7"},
            "annotations": {"summary": "worker-7 is down"},
            "startsAt": "2026-01-15T09:00:00.000Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph?g0.expr=up%3D%3D0",
            "fingerprint": "c0ffee0123456789",
        }
    ],
}
_WHY = {
    401: "no bearer token, or an unknown, expired or revoked one; nothing was written",
    403: "not an agent's token, a read-only token, or SELF_HEALING=false; nothing was written",
    413: "the body is larger than 1 MiB; nothing was read or written",
    422: "not Alertmanager's webhook document (version 4): the detail names the field",
    429: "the token's identity is over its requests a minute",
    503: "the store could not be opened or used",
}


class AlertOutcome(BaseModel):
    alert: str = Field(description="the alert's key: Alertmanager's fingerprint @ startsAt")
    alertname: str
    status: str = Field(description="firing | resolved")
    remediation: str | None = Field(description="the remediation it matched (null: none)")
    outcome: str = Field(description="filed | refused | unmatched | resolved | duplicate")
    change_id: str | None = None
    state: str | None = None
    reason: str | None = Field(None, description="why the rules refused it, or why it waits for a person")
    paged: bool | None = Field(None, description="whether a person was paged about it now")


class AlertsReceived(BaseModel):
    receiver: str
    received: int
    counts: dict[str, int] = Field(description="alerts by outcome")
    alerts: list[AlertOutcome]


def check(settings: Settings) -> None:
    """A bad `[remediations.*]` table stops the server before it listens, naming the table."""
    if settings.extra.get("remediations"):
        from ..services.remediation import remediations

        remediations(settings)


def _handle(request: Request, authorization: str | None, raw: bytes) -> dict[str, Any]:
    ctx: Context = request.app.state.context()
    who = principal(ctx, authorization)
    ratelimit.check(request, ctx, who)
    agents.require_write(who, f"POST {PATH}")
    if not who.agent:
        raise Forbidden(
            f"{who.name} is a person: {PATH} takes an agent's token (token create NAME --agent); "
            "an automated remediator is an agent (docs/self-healing.md)"
        )
    try:
        body = json.loads(raw, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        raise ValidationError("body", "is not JSON (Alertmanager's webhook, version 4)") from None
    from ..services.remediation import receive

    return receive(ctx.acting(who), body, actor=who.name)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


@alerts.post(
    PATH,
    summary="Prometheus Alertmanager webhook: alerts matching a remediation file standard changes",
    status_code=202,
    response_model=AlertsReceived,
    response_model_exclude_none=True,
    responses={c: {"model": schemas.Problem, "description": why} for c, why in _WHY.items()},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}, "example": EXAMPLE}},
        }
    },
)
async def alertmanager(request: Request) -> JSONResponse:
    """Each alert is recorded once (fingerprint @ startsAt); a firing alert matching a remediation
    files a standard change through its model (pre-approved: the workers carry it out and validate
    it); refused by the rules, a person is paged instead; resolved and unmatched alerts file
    nothing. 202 with each alert's outcome."""
    raw = await request.body()
    header = request.headers.get("authorization")
    result = await run_in_threadpool(_handle, request, header, raw)
    return JSONResponse(result, status_code=202)
