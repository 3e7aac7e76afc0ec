"""Web portal sessions (docs/portal.md): sign in, look up, sign out.

An identity is established by a `Provider` from what the sign-in form sent; today's provider is
`TokenProvider` (an identity and one of its API tokens). Another provider (OIDC, say) is another
class with the same `identify` — the session, its cookie and CSRF token do not change. The cookie
holds a random secret; the store keeps only its SHA-256, so a copy of the database opens no
session. A session ends at `PORTAL_SESSION_TTL`, at sign-out, or when its token is revoked.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Final, Protocol

from ..domain import agents
from ..domain.codec import fmt_time
from ..domain.errors import CortexError
from ..domain.events import Event, EventKind
from ..domain.values import Frozen
from ..store import audit, sessions
from .context import Context
from .tokens import TOKEN, Unauthenticated, digest, new_secret, principal

SECRET = re.compile(r"^[A-Za-z0-9_-]{43}$")  # 32 random bytes, base64url without padding


class SignInFailed(CortexError):
    """One message whatever was wrong: it never says which part."""

    MESSAGE = "sign-in failed: that identity and token do not match an active API token"

    def __init__(self) -> None:
        super().__init__(self.MESSAGE)


class Session(Frozen):
    __slots__ = ("expires_at", "identity", "provider")

    def __init__(self, identity: str, provider: str, expires_at: datetime) -> None:
        self.identity: Final = identity
        self.provider: Final = provider
        self.expires_at: Final = expires_at


class Provider(Protocol):
    """How an identity is proven at sign-in."""

    name: str

    def identify(self, ctx: Context, credentials: Mapping[str, str]) -> tuple[str, str | None]:
        """(identity, the API token's id if one was used) or raise SignInFailed."""


class TokenProvider:
    """An identity and one of its API tokens (`cortex-change token create NAME`)."""

    name = "token"

    def identify(self, ctx: Context, credentials: Mapping[str, str]) -> tuple[str, str | None]:
        """The token's identity, when it is the one named; an agent's or a scoped token does not
        sign in (the portal is for people acting with all their roles: docs/agents.md)."""
        identity = credentials.get("identity", "").strip()
        token = credentials.get("token", "").strip()
        if not identity or TOKEN.match(token) is None:
            raise SignInFailed
        try:
            who = principal(ctx, f"Bearer {token}")
        except Unauthenticated:
            raise SignInFailed from None
        if not hmac.compare_digest(who.name.encode(), identity.encode()):
            raise SignInFailed
        if who.agent or who.scopes != agents.UNRESTRICTED:
            raise SignInFailed
        return identity, who.token_id


def csrf_token(secret: str) -> str:
    """The session's CSRF token: derived from its secret (which scripts cannot read: the cookie
    is HttpOnly), so forms carry it and the server recomputes it."""
    return hashlib.sha256(b"cortex-change csrf\0" + secret.encode("ascii")).hexdigest()


def csrf_ok(secret: str, sent: str) -> bool:
    return hmac.compare_digest(csrf_token(secret).encode(), sent.encode("ascii", "replace"))


def sign_in(ctx: Context, provider: Provider, credentials: Mapping[str, str]) -> tuple[str, Session]:
    """A new session for whoever `provider` recognises: (the cookie's secret, the session)."""
    identity, token_id = provider.identify(ctx, credentials)
    secret = new_secret()
    now = ctx.clock()
    until = now + timedelta(seconds=ctx.settings["PORTAL_SESSION_TTL"])
    with ctx.db.transaction() as tx:
        sessions.purge(tx, now.timestamp())
        sessions.insert(
            tx, digest(secret), identity, provider.name, token_id, now.timestamp(), until.timestamp()
        )
        details = {"provider": provider.name, "token_id": token_id, "expires_at": fmt_time(until)}
        audit.append(tx, None, [Event(EventKind.SIGNED_IN, identity, details)], now)
    return secret, Session(identity, provider.name, until)


def lookup(ctx: Context, secret: str | None) -> Session | None:
    """The live session a cookie names, or None (none, expired, signed out, token revoked)."""
    if not secret or not SECRET.match(secret):
        return None
    with ctx.db.read() as tx:
        row = sessions.find(tx, digest(secret), ctx.clock().timestamp())
    if row is None:
        return None
    return Session(str(row[0]), str(row[1]), datetime.fromtimestamp(float(row[2]), UTC))


def sign_out(ctx: Context, secret: str | None) -> None:
    """End the session server-side (its cookie then opens nothing, even if kept)."""
    if not secret or not SECRET.match(secret):
        return
    now = ctx.clock()
    with ctx.db.transaction() as tx:
        identity = sessions.delete(tx, digest(secret))
        if identity is not None:
            audit.append(tx, None, [Event(EventKind.SIGNED_OUT, identity, {})], now)
