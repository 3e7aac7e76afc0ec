"""The portal's doors to a session: cookies, who is signed in, CSRF on every form, sign-in throttle.

The session itself (its secret, expiry, provider) is `services/sessions.py`'s; here is only what
HTTP needs. Cookies are HttpOnly and SameSite=Strict, Secure when the request came over https.
Every POST carries a CSRF token derived from the cookie's secret (the sign-in form's from a
pre-session cookie) and, when the browser sends an Origin, it must be this server's.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Final
from urllib.parse import parse_qs

from fastapi import Request
from starlette.responses import Response

from ..domain.errors import CortexError
from ..domain.values import Frozen
from ..services import sessions
from ..services.context import Context
from ..services.tokens import new_secret

COOKIE = "cc_session"
SIGNIN_COOKIE = "cc_signin"  # the sign-in form's CSRF secret, before there is a session
FORM_FIELDS_MAX = 500


class SignInRequired(CortexError):
    """No live session: the door sends the browser to the sign-in page."""


class CsrfRefused(CortexError):
    """A form without this session's CSRF token, or from another origin."""


class Throttled(CortexError):
    """Too many failed sign-ins from one address or for one identity."""


class Viewer(Frozen):
    """Who is looking: their identity, their session's secret (for CSRF tokens) and the roles
    they hold (the configuration's lists they are in)."""

    __slots__ = ("csrf", "identity", "roles", "secret")

    def __init__(self, identity: str, secret: str, roles: tuple[str, ...]) -> None:
        self.identity: Final = identity
        self.secret: Final = secret
        self.roles: Final = roles
        self.csrf: Final = sessions.csrf_token(secret)


ROLE_KEYS = (
    "CAB_MEMBERS",
    "ECAB_MEMBERS",
    "TECH_LEADS",
    "CISO_MEMBERS",
    "CTO_MEMBERS",
    "CHANGE_MANAGERS",
    "IMPLEMENTERS",
    "ADMINS",
)


def viewer(ctx: Context, request: Request) -> Viewer:
    """The signed-in identity, or SignInRequired."""
    secret = request.cookies.get(COOKIE)
    session = sessions.lookup(ctx, secret)
    if session is None or secret is None:
        raise SignInRequired("sign in to continue")
    roles = tuple(k for k in ROLE_KEYS if session.identity in ctx.settings[k])
    return Viewer(session.identity, secret, roles)


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def signin_secret(request: Request) -> str:
    """The pre-session secret the sign-in form's CSRF token derives from (new if absent)."""
    current = request.cookies.get(SIGNIN_COOKIE, "")
    return current if sessions.SECRET.match(current) else new_secret()


async def form(request: Request) -> dict[str, list[str]]:
    """The POSTed form, after the origin and CSRF checks (the session's, or the sign-in form's)."""
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        raise CsrfRefused(f"refused: a form from another origin ({origin[:100]})")
    body = await request.body()
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=FORM_FIELDS_MAX)
    except (UnicodeDecodeError, ValueError):
        raise CsrfRefused("refused: the form could not be read (URL-encoded UTF-8 expected)") from None
    secret = request.cookies.get(SIGNIN_COOKIE if request.url.path == "/signin" else COOKIE, "")
    sent = fields.get("csrf", [""])[0]
    if not secret or not sessions.csrf_ok(secret, sent):
        raise CsrfRefused("refused: the form's CSRF token is missing or not this session's; reload the page")
    return fields


class Throttle:
    """At most `limit` failed sign-ins per `window` seconds per client address and per identity
    (in this process; each server process counts its own)."""

    def __init__(self, limit: int = 5, window: float = 300.0) -> None:
        self.limit = limit
        self.window = window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._failures.setdefault(key, deque())
        while q and q[0] <= now - self.window:
            q.popleft()
        return q

    def check(self, *keys: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key in keys:
                q = self._recent(key, now)
                if len(q) >= self.limit:
                    wait = int(q[0] + self.window - now) + 1
                    raise Throttled(f"too many failed sign-ins; try again in {wait} s")

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._failures) > 100_000:  # bounded memory under a spray of addresses
                self._failures.clear()
            for key in keys:
                self._recent(key, now).append(now)
