"""Domain errors as RFC 9457 problem details, with the CLI's wording: mapped once, here."""

from __future__ import annotations

from http import HTTPStatus

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from ..domain.errors import (
    ApprovalRefused,
    Conflict,
    CortexError,
    Forbidden,
    InvalidTransition,
    NotFound,
    PreconditionFailed,
    Refused,
    ValidationError,
)
from ..services.tokens import Unauthenticated
from ..store.db import StoreError

PROBLEM = "application/problem+json"
# Most specific first.
STATUS: list[tuple[type[CortexError], int, str]] = [
    (Unauthenticated, 401, "unauthenticated"),
    (PreconditionFailed, 412, "precondition-failed"),
    (Conflict, 409, "conflict"),
    (InvalidTransition, 409, "invalid-transition"),
    (Forbidden, 403, "forbidden"),
    (ApprovalRefused, 403, "forbidden"),
    (Refused, 403, "refused"),
    (NotFound, 404, "not-found"),
    (ValidationError, 422, "invalid-input"),
    (StoreError, 503, "store-unavailable"),
]


def problem(status: int, slug: str, detail: str, instance: str) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    body = {
        "type": f"https://cortex-change.dev/problems/{slug}",
        "title": slug.replace("-", " "),
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


async def domain_error(request: Request, exc: Exception) -> JSONResponse:
    for kind, status, slug in STATUS:
        if isinstance(exc, kind):
            return problem(status, slug, " ".join(str(exc).split()), request.url.path)
    return problem(500, "internal", "internal error", request.url.path)


async def request_invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {}
    if first.get("type") == "json_invalid":
        return problem(422, "invalid-input", "body: is not valid JSON text (UTF-8)", request.url.path)
    where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path"))
    return problem(
        422, "invalid-input", f"{where or 'request'}: {first.get('msg', 'invalid')}", request.url.path
    )


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    """Framework errors (unknown route, wrong method, an unreadable body) as problem details too."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 400:  # the body could not be parsed at all: bad input, like malformed JSON
        return problem(422, "invalid-input", "body: is not valid JSON text (UTF-8)", request.url.path)
    slug = HTTPStatus(exc.status_code).phrase.lower().replace(" ", "-")
    response = problem(exc.status_code, slug, str(exc.detail), request.url.path)
    response.headers.update(exc.headers or {})
    return response
