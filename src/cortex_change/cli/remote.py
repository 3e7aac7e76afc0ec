"""The server as the CLI's back end: one HTTP client on the standard library (`urllib.request`).

Problem details (RFC 9457) come back as the exceptions the services raise, so `exits.py` gives
them the same exit codes and the message printed is the server's `detail`, worded as the
local error is. Nothing here imports the API's packages (FastAPI, pydantic) or the store.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

from ..domain.errors import (
    ApprovalRefused,
    Conflict,
    CortexError,
    InvalidTransition,
    NotFound,
    PreconditionFailed,
    Refused,
    StoreError,
    ValidationError,
)

API_PREFIX = "/api/v1"
UNMANAGED_HEADER = "X-Cortex-Change-Management"  # "disabled; …" from api/unmanaged.py (not imported here)
TIMEOUT_SECONDS = 30.0


class ServerUnavailable(StoreError):
    """The server could not be reached, or failed (5xx): exit 5, as a store that cannot be used."""


class MissingRoute(ServerUnavailable):
    """A 404 that is not a problem document: the server lacks the route (an older API)."""


class Unauthenticated(Refused):
    """The server refused the token (missing, unknown, malformed or revoked): exit 1."""


class WaitExpired(Refused):
    """`implement --wait` in client mode: the change did not settle within its bound (exit 1)."""


class RemoteInvalidTransition(InvalidTransition):
    """The server's InvalidTransition, carrying its message as it is."""

    def __init__(self, detail: str) -> None:
        Exception.__init__(self, detail)
        self.action = ""
        self.state = ""


def display_url(url: str) -> str:
    """The server's address without any user or password it may carry."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _validation(detail: str) -> ValidationError:
    """Rebuild `field: message` so str() reads exactly as the server's detail."""
    field, sep, message = detail.partition(": ")
    if not sep:
        return ValidationError("request", detail)
    return ValidationError(field, message)


def error_for(status: int, problem: dict[str, Any] | None, url: str) -> CortexError:
    """The service exception a problem+json response stands for (problems.STATUS, reversed)."""
    slug = str((problem or {}).get("type", "")).rsplit("/", 1)[-1]
    detail = " ".join(str((problem or {}).get("detail") or "").split())
    if problem is None and status == 404:
        return MissingRoute(
            f"the server at {url} has no such route (HTTP 404): is it a cortex-change server?"
        )
    if problem is None or not detail:
        # Not one of our problem documents: a proxy, another program on that port, a missing route.
        return ServerUnavailable(
            f"the server at {url} answered HTTP {status} without a problem document "
            f"(is CORTEX_CHANGE_URL a cortex-change server?)"
        )
    if status == 401:
        return Unauthenticated(f"the server at {url} refused the token (CORTEX_CHANGE_TOKEN): {detail}")
    if status == 403:
        return ApprovalRefused(detail) if slug == "forbidden" else Refused(detail)
    if status == 404:
        return NotFound(detail)
    if status == 409:
        return RemoteInvalidTransition(detail) if slug == "invalid-transition" else Conflict(detail)
    if status == 412:
        return PreconditionFailed(detail)
    if status in (400, 422):
        return _validation(detail)
    if status >= 500:
        return ServerUnavailable(f"{detail} (server {url})")
    return Refused(detail)


class Client:
    """Requests to one server with one bearer token; JSON in, JSON out."""

    def __init__(self, url: str, token: str, timeout: float = TIMEOUT_SECONDS) -> None:
        try:  # an unclosed [ or a port that is not a number raises
            parts, shown = urlsplit(url), display_url(url)
        except ValueError:
            raise ValidationError(
                "CORTEX_CHANGE_URL", "is not a well-formed http:// or https:// URL"
            ) from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValidationError("CORTEX_CHANGE_URL", f"{shown!r} is not an http:// or https:// URL")
        if any(ch <= " " or ch == "\x7f" for ch in url):
            raise ValidationError("CORTEX_CHANGE_URL", "must not contain spaces or control characters")
        self.base = url.rstrip("/")
        self.url = display_url(self.base)
        self.token = token
        self.timeout = timeout

    def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        query: dict[str, Any] | None = None,
    ) -> tuple[Any, dict[str, str]]:
        """One request under /api/v1; returns the decoded JSON body and the response headers."""
        import urllib.error
        import urllib.request

        params = {k: v for k, v in (query or {}).items() if v is not None}
        target = self.base + API_PREFIX + path + (f"?{urlencode(params)}" if params else "")
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(target, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = response.read()
                if response.headers.get(UNMANAGED_HEADER, "").startswith("disabled"):
                    from .render import unmanaged

                    unmanaged()  # the server's CHANGE_MGMT_ENABLED=false (api/unmanaged.py)
                return _decode(payload, self.url), dict(response.headers.items())
        except urllib.error.HTTPError as exc:
            with exc:
                raw = exc.read()
            raise error_for(exc.code, _problem(raw), self.url) from None
        except urllib.error.URLError as exc:
            reason = getattr(exc.reason, "strerror", None) or exc.reason
            raise ServerUnavailable(f"cannot reach the server at {self.url}: {reason}") from None
        except (TimeoutError, ConnectionError, OSError) as exc:
            reason = getattr(exc, "strerror", None) or exc
            raise ServerUnavailable(f"cannot reach the server at {self.url}: {reason}") from None

    def get(self, path: str, **query: Any) -> Any:
        return self.call("GET", path, query=query)[0]

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.call("POST", path, body=body)[0]


def segment(value: str) -> str:
    """A path segment, escaped (a change id or a name typed by the user)."""
    return quote(value, safe="")


def _decode(payload: bytes, url: str) -> Any:
    try:
        return json.loads(payload)
    except ValueError:
        raise ServerUnavailable(f"the server at {url} answered something that is not JSON") from None


def _problem(raw: bytes) -> dict[str, Any] | None:
    try:
        doc = json.loads(raw)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) and "status" in doc and "detail" in doc else None
