"""Git and CI webhooks (docs/devops.md): `POST /hooks/github` and `POST /hooks/gitlab`.

No bearer token: the signature authenticates (GitHub's `X-Hub-Signature-256` HMAC of the raw body
with GITHUB_WEBHOOK_SECRET, GitLab's `X-Gitlab-Token` equal to GITLAB_WEBHOOK_TOKEN). Without the
secret configured, or with a wrong or missing signature: 401, nothing written. Bodies over 1 MiB
are refused (413) by api/limits.py before anything is read."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ..domain.gitevents import GITHUB, GITLAB
from ..services.cicd import receive
from ..services.context import Context
from . import schemas
from .strict import only_known_query_parameters

hooks = APIRouter(tags=["devops"], dependencies=[Depends(only_known_query_parameters)])


class HookAnswer(BaseModel):
    """What a webhook delivery did: filed a change, found it filed already, or ignored the event."""

    status: str = Field(json_schema_extra={"enum": ["filed", "duplicate", "ignored"]})
    delivery: str = Field(description="the delivery id (the idempotency key)")
    change_management: str = Field(
        json_schema_extra={"enum": ["enabled", "disabled"]},
        description="disabled: CHANGE_MGMT_ENABLED=false — recorded, but nothing approved by itself or gated",
    )
    reason: str | None = Field(None, description="why an event was ignored")
    change_id: str | None = None
    state: str | None = None
    type: str | None = None
    category: str | None = None
    title: str | None = None
    requested_by: str | None = Field(None, description="PROVIDER:REPOSITORY, an agent identity")
    affected_services: list[str] | None = None
    route: str | None = None
    route_reason: str | None = None


_WHY = {
    401: "the provider's secret is not configured, or the signature or token is missing or wrong: "
    "nothing was written",
    413: "the body is larger than 1 MiB: nothing was read or written",
    422: "a known event whose payload is malformed, or no event or delivery header: nothing was written",
    503: "the store could not be opened or used",
}
RESPONSES: dict[int | str, dict[str, Any]] = {
    201: {"model": HookAnswer, "description": "a change was filed (created and assessed)"},
    200: {
        "model": HookAnswer,
        "description": "a redelivery: the change its first delivery filed; nothing new",
    },
    202: {
        "model": HookAnswer,
        "description": "ignored (an event or branch that files nothing, CICD_AUTO_CHANGE=false): audited as "
        "webhook_ignored, counted by /metrics",
    },
    **{code: {"model": schemas.Problem, "description": why} for code, why in _WHY.items()},
}


async def _answer(request: Request, provider: str) -> JSONResponse:
    body = await request.body()  # the raw bytes: the signature is over them
    headers = {k.lower(): v for k, v in request.headers.items()}

    def handle() -> JSONResponse:  # in a worker thread: SQLite's connection is that thread's
        ctx: Context = request.app.state.context()
        answer = receive(ctx, provider, headers, body)
        managed = "enabled" if ctx.settings["CHANGE_MGMT_ENABLED"] else "disabled"
        return JSONResponse({**answer.body, "change_management": managed}, status_code=answer.status)

    return await run_in_threadpool(handle)


@hooks.post(
    "/hooks/github",
    summary="GitHub webhook (push, merged pull_request, deployment): files a change per event",
    response_model=HookAnswer,
    status_code=201,
    responses=RESPONSES,
)
async def github(request: Request) -> JSONResponse:
    return await _answer(request, GITHUB)


@hooks.post(
    "/hooks/gitlab",
    summary="GitLab webhook (Push, Merge Request merge, Deployment running): files a change per event",
    response_model=HookAnswer,
    status_code=201,
    responses=RESPONSES,
)
async def gitlab(request: Request) -> JSONResponse:
    return await _answer(request, GITLAB)
