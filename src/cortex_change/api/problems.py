"""Domain errors as RFC 9457 problem details, with the CLI's wording: mapped once, here."""

from __future__ import annotations

from http import HTTPStatus

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from ..domain.errors import (
    ApprovalRefused,
    Conflict,
    CortexError,
    Forbidden,
    InvalidTransition,
    MissingPackage,
    NotFound,
    PreconditionFailed,
    RateLimited,
    Refused,
    StoreError,
    ValidationError,
)
from ..redaction import redact
from ..services.tokens import Unauthenticated
from .strict import allowed_methods

PROBLEM = "application/problem+json"
# Most specific first.
STATUS: list[tuple[type[CortexError], int, str]] = [
    (Unauthenticated, 401, "unauthenticated"),
    (PreconditionFailed, 412, "precondition-failed"),
    (RateLimited, 429, "rate-limited"),
    (Conflict, 409, "conflict"),
    (InvalidTransition, 409, "invalid-transition"),
    (Forbidden, 403, "forbidden"),
    (ApprovalRefused, 403, "forbidden"),
    (Refused, 403, "refused"),
    (NotFound, 404, "not-found"),
    (ValidationError, 422, "invalid-input"),
    (StoreError, 503, "store-unavailable"),
    (MissingPackage, 503, "missing-package"),
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
            location = getattr(request.app.state, "store_location", "")
            detail = redact(" ".join(str(exc).split()), location)  # no password, even unauthenticated
            response = problem(status, slug, detail, request.url.path)
            if isinstance(exc, RateLimited):
                response.headers["Retry-After"] = str(exc.retry_after)
            return response
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


async def http_error(request: Request, exc: Exception) -> Response:
    """Framework errors (unknown route, wrong method, an unreadable body) as problem details too.

    A method the path does not take is 405 with `Allow` naming every method it does (any of its
    routes); OPTIONS on a known path answers 204 with that `Allow`.
    """
    assert isinstance(exc, HTTPException)
    if exc.status_code == 400:  # the body could not be parsed at all: bad input, like malformed JSON
        return problem(422, "invalid-input", "body: is not valid JSON text (UTF-8)", request.url.path)
    if exc.status_code == 405:
        allow = ", ".join(allowed_methods(request))
        if request.method == "OPTIONS":
            return Response(status_code=204, headers={"Allow": allow})
        detail = f"{request.method} is not allowed on {request.url.path}; allowed: {allow}"
        response = problem(405, "method-not-allowed", detail, request.url.path)
        response.headers["Allow"] = allow
        return response
    slug = HTTPStatus(exc.status_code).phrase.lower().replace(" ", "-")
    response = problem(exc.status_code, slug, str(exc.detail), request.url.path)
    response.headers.update(exc.headers or {})
    return response
