"""API tokens: created once (only a hash is stored), listed, revoked, and checked per request."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from ..domain import agents, validation
from ..domain.agents import Principal, Scopes
from ..domain.codec import fmt_time, parse_time
from ..domain.errors import CortexError, NotFound, ValidationError
from ..domain.events import Event, EventKind
from ..store import audit, tokens
from ..store.db import Tx
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


DURATION = re.compile(r"^([0-9]{1,6})([mhdw])$")
UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
MAX_SECONDS = 3 * 366 * 86400  # three years: longer-lived credentials are refused


def duration(field: str, text: str) -> int:
    """`90m`, `12h`, `30d`, `2w` in seconds (at most three years)."""
    m = DURATION.match(text.strip())
    seconds = int(m.group(1)) * UNIT_SECONDS[m.group(2)] if m else 0
    if not 0 < seconds <= MAX_SECONDS:
        raise ValidationError(field, f"{text!r} is not a duration like 90m, 12h, 30d or 2w (at most 3 years)")
    return seconds


def _scopes(ctx: Context, agent: bool, specs: Sequence[str], read_only: bool, worker: bool) -> Scopes:
    from ..catalog.loader import load_catalog

    templates = load_catalog(ctx.settings).templates
    components = {component: set(actions) for component, actions in templates.items()}
    return agents.parse_scopes(
        specs,
        agent=agent,
        read_only=read_only,
        worker=worker,
        components=components,
        categories=ctx.policy.categories,
    )


def _same_kind(tx: Tx, name: str, agent: bool) -> None:
    """An identity is a person or an agent, never both: its tokens agree."""
    kinds = tokens.kinds(tx, name)
    if kinds and agent not in kinds:
        was, asked = ("an agent", "a person's") if True in kinds else ("a person", "an agent's")
        flag = "" if agent else " (add --agent)"
        raise ValidationError("name", f"{name} is {was}: it cannot get {asked} token{flag}")


def create_token(
    ctx: Context,
    *,
    name: str,
    actor: str = "token-admin",
    agent: bool = False,
    scopes: Sequence[str] = (),
    read_only: bool = False,
    worker: bool = False,
    expires: str | None = None,
) -> tuple[str, str]:
    """A new token for identity `name`: returns (token_id, the token, shown only now).

    `agent` marks the identity an agent (docs/agents.md); `scopes` are `KEY=VALUE[,VALUE…]`
    specs, each checked against the catalog and policy; `expires` a duration (`30d`)."""
    validation.identity("name", name)
    granted = _scopes(ctx, agent, scopes, read_only, worker)
    now = ctx.clock()
    until = None if expires is None else fmt_time(now + timedelta(seconds=duration("expires", expires)))
    token_id = os.urandom(6).hex()
    secret = new_secret()
    restricted = agent or granted != agents.UNRESTRICTED
    stored = json.dumps(granted.document(), sort_keys=True) if restricted else None
    with ctx.db.transaction() as tx:
        _same_kind(tx, name, agent)
        tokens.insert(tx, token_id, name, digest(secret), fmt_time(now) or "", agent, stored, until)
        details: dict[str, Any] = {"token_id": token_id, "name": name}
        if agent:
            details["agent"] = True
        if stored is not None:
            details["scopes"] = granted.document()
        if until is not None:
            details["expires_at"] = until
        audit.append(tx, None, [Event(EventKind.TOKEN_CREATED, actor, details)], now)
    return token_id, f"cc_{token_id}_{secret}"


def rotate_token(
    ctx: Context, *, token_id: str, grace: str = "1h", actor: str = "token-admin"
) -> tuple[str, str, str]:
    """A new secret for a token's identity, with its scopes and expiry; the old token keeps
    working for `grace` (a duration, `0m`…: at once with 0). Returns (new id, token, old one's end)."""
    seconds = 0 if grace.strip() in ("0", "0m", "0h", "0d") else duration("grace", grace)
    now = ctx.clock()
    retires = fmt_time(now + timedelta(seconds=seconds)) or ""
    new_id = os.urandom(6).hex()
    secret = new_secret()
    with ctx.db.transaction() as tx:
        row = tokens.get(tx, token_id)
        if row is None or row[3] is not None or row[7] is not None or _expired(row[6], now):
            raise NotFound(f"no active token {token_id!r} (revoked, expired or rotated already)")
        tokens.retire(tx, token_id, retires)
        name, agent, scopes, expires_at = row[1], bool(row[4]), row[5], row[6]
        tokens.insert(tx, new_id, name, digest(secret), fmt_time(now) or "", agent, scopes, expires_at)
        details = {"token_id": token_id, "new_token_id": new_id, "name": name, "old_works_until": retires}
        audit.append(tx, None, [Event(EventKind.TOKEN_ROTATED, actor, details)], now)
    return new_id, f"cc_{new_id}_{secret}", retires


def _expired(at: str | None, now: datetime) -> bool:
    """True once `at` (a stored time; None: never) has come."""
    when = parse_time(at)
    return when is not None and now >= when


def _scope_doc(text: str | None) -> dict[str, Any] | None:
    return None if text is None else dict(json.loads(text))


def list_tokens(ctx: Context) -> list[dict[str, Any]]:
    """Every token (never its secret): identity, kind, scopes, and whether it still works."""
    now = ctx.clock()
    with ctx.db.read() as tx:
        rows = tokens.listing(tx)
    out = []
    for r in rows:
        state = "active"
        if r[3] is not None:
            state = "revoked"
        elif _expired(r[7], now):
            state = "rotated out"
        elif _expired(r[6], now):
            state = "expired"
        elif r[7] is not None:
            state = "rotating"
        out.append(
            {
                "token_id": r[0],
                "name": r[1],
                "created_at": r[2],
                "revoked_at": r[3],
                "agent": bool(r[4]),
                "scopes": _scope_doc(r[5]),
                "expires_at": r[6],
                "retires_at": r[7],
                "state": state,
            }
        )
    return out


def revoke_token(ctx: Context, *, token_id: str, actor: str = "token-admin") -> None:
    now = ctx.clock()
    with ctx.db.transaction() as tx:
        if tokens.revoke(tx, token_id, fmt_time(now) or "") != 1:
            raise NotFound(f"no active token {token_id!r}")
        audit.append(tx, None, [Event(EventKind.TOKEN_REVOKED, actor, {"token_id": token_id})], now)


def principal(ctx: Context, authorization: str | None) -> Principal:
    """Who `Authorization: Bearer <token>` is: identity, kind and the token's scopes. An unknown
    token's reason is never echoed; an expired or rotated-out one says so."""
    if not authorization or not authorization.startswith("Bearer "):
        raise Unauthenticated("missing bearer token (Authorization: Bearer <token>)")
    m = TOKEN.match(authorization[len("Bearer ") :].strip())
    if not m:
        raise Unauthenticated("invalid or revoked token")
    with ctx.db.read() as tx:
        row = tokens.find(tx, m.group(1))
    if row is None or row[2] is not None or not hmac.compare_digest(row[1], digest(m.group(2))):
        raise Unauthenticated("invalid or revoked token")
    now = ctx.clock()
    if _expired(row[5], now):
        raise Unauthenticated(f"token expired at {row[5]}: ask an admin for a new one (token create)")
    if _expired(row[6], now):
        raise Unauthenticated(f"token was rotated out at {row[6]}: use its replacement (token rotate)")
    doc = _scope_doc(row[4])
    scopes = agents.UNRESTRICTED if doc is None else Scopes.of_document(doc)
    return Principal(str(row[0]), bool(row[3]), scopes, m.group(1))


def authenticate(ctx: Context, authorization: str | None) -> str:
    """The identity behind `Authorization: Bearer <token>`."""
    return principal(ctx, authorization).name
