"""API tokens: created once (only a hash is stored), listed, revoked, and checked per request."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from typing import Any

from ..domain import validation
from ..domain.codec import fmt_time
from ..domain.errors import CortexError, NotFound
from ..domain.events import Event, EventKind
from ..store import audit, tokens
from .context import Context

TOKEN = re.compile(r"^cc_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")


class Unauthenticated(CortexError):
    """No token, or one that is unknown, malformed or revoked (the reason is never echoed)."""


def digest(secret: str) -> str:
    """What the store keeps of a secret (API tokens, portal sessions, calendar feeds)."""
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def new_secret() -> str:
    """32 random bytes, base64url without padding: the secret part of a token, session or feed."""
    import base64

    return base64.urlsafe_b64encode(os.urandom(32)).decode("ascii").rstrip("=")


def create_token(ctx: Context, *, name: str, actor: str = "token-admin") -> tuple[str, str]:
    """A new token for identity `name`: returns (token_id, the token, shown only now)."""
    validation.identity("name", name)
    token_id = os.urandom(6).hex()
    secret = new_secret()
    now = ctx.clock()
    with ctx.db.transaction() as tx:
        tokens.insert(tx, token_id, name, digest(secret), fmt_time(now) or "")
        audit.append(
            tx,
            None,
            [Event(EventKind.TOKEN_CREATED, actor, {"token_id": token_id, "name": name})],
            now,
        )
    return token_id, f"cc_{token_id}_{secret}"


def list_tokens(ctx: Context) -> list[dict[str, Any]]:
    with ctx.db.read() as tx:
        rows = tokens.listing(tx)
    return [{"token_id": r[0], "name": r[1], "created_at": r[2], "revoked_at": r[3]} for r in rows]


def revoke_token(ctx: Context, *, token_id: str, actor: str = "token-admin") -> None:
    now = ctx.clock()
    with ctx.db.transaction() as tx:
        if tokens.revoke(tx, token_id, fmt_time(now) or "") != 1:
            raise NotFound(f"no active token {token_id!r}")
        audit.append(tx, None, [Event(EventKind.TOKEN_REVOKED, actor, {"token_id": token_id})], now)


def authenticate(ctx: Context, authorization: str | None) -> str:
    """The identity behind `Authorization: Bearer <token>`."""
    if not authorization or not authorization.startswith("Bearer "):
        raise Unauthenticated("missing bearer token (Authorization: Bearer <token>)")
    m = TOKEN.match(authorization[len("Bearer ") :].strip())
    if not m:
        raise Unauthenticated("invalid or revoked token")
    with ctx.db.read() as tx:
        row = tokens.find(tx, m.group(1))
    if row is None or row[2] is not None or not hmac.compare_digest(row[1], digest(m.group(2))):
        raise Unauthenticated("invalid or revoked token")
    name: str = row[0]
    return name
