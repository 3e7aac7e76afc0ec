"""Portal sessions on both backends: only a hash is kept, they end at their expiry, at sign-out
and when their token is revoked, and signing in with anything wrong fails the same way."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest

from cortex_change.services import sessions
from cortex_change.services.context import Context
from cortex_change.services.tokens import create_token, revoke_token
from support import FakeClock, query


def test_a_session_lives_until_its_ttl_and_is_stored_as_a_hash(
    make_ctx: Callable[..., Context], clock: FakeClock, store_url: str
) -> None:
    ctx = make_ctx(PORTAL_SESSION_TTL="600")
    _, token = create_token(ctx, name="alice")
    secret, session = sessions.sign_in(ctx, sessions.TokenProvider(), {"identity": "alice", "token": token})
    assert session.identity == "alice" and (session.expires_at - clock()).total_seconds() == 600
    stored = query(store_url, "SELECT session_hash, identity, provider FROM portal_sessions", ())
    assert [tuple(r) for r in stored] == [(hashlib.sha256(secret.encode()).hexdigest(), "alice", "token")]
    assert secret not in str(query(store_url, "SELECT * FROM portal_sessions", ()))
    clock.advance(seconds=599)
    assert sessions.lookup(ctx, secret) == sessions.Session("alice", "token", session.expires_at)
    clock.advance(seconds=1)
    assert sessions.lookup(ctx, secret) is None


def test_sign_out_and_revocation_end_sessions_and_both_are_audited(
    make_ctx: Callable[..., Context], store_url: str
) -> None:
    ctx = make_ctx()
    token_id, token = create_token(ctx, name="bob")
    creds = {"identity": "bob", "token": token}
    first, _ = sessions.sign_in(ctx, sessions.TokenProvider(), creds)
    second, _ = sessions.sign_in(ctx, sessions.TokenProvider(), creds)
    sessions.sign_out(ctx, first)
    assert sessions.lookup(ctx, first) is None and sessions.lookup(ctx, second) is not None
    revoke_token(ctx, token_id=token_id)
    assert sessions.lookup(ctx, second) is None
    actions = [r[0] for r in query(store_url, "SELECT action FROM audit_events ORDER BY seq", ())]
    assert actions == ["token_created", "signed_in", "signed_in", "signed_out", "token_revoked"]


@pytest.mark.parametrize(
    "identity, token",
    [
        ("mallory", "alice's"),
        ("alice", "cc_000000000000_" + "A" * 43),
        ("alice", "nonsense"),
        ("", "alice's"),
    ],
)
def test_every_wrong_sign_in_fails_alike_and_writes_nothing(
    make_ctx: Callable[..., Context], store_url: str, identity: str, token: str
) -> None:
    ctx = make_ctx()
    _, real = create_token(ctx, name="alice")
    with pytest.raises(sessions.SignInFailed) as refused:
        sessions.sign_in(
            ctx,
            sessions.TokenProvider(),
            {"identity": identity, "token": real if token == "alice's" else token},
        )
    assert str(refused.value) == sessions.SignInFailed.MESSAGE
    assert query(store_url, "SELECT count(*) FROM portal_sessions", ())[0][0] == 0


@pytest.mark.parametrize("cookie", [None, "", "x" * 43, "short", "A" * 42 + "\n", "' OR 1=1 --" + "A" * 32])
def test_a_cookie_that_is_no_session_opens_nothing(
    make_ctx: Callable[..., Context], cookie: str | None
) -> None:
    ctx = make_ctx()
    assert sessions.lookup(ctx, cookie) is None
    sessions.sign_out(ctx, cookie)  # nothing to end, nothing written, no error
