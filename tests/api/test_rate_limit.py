"""Per-identity rate limits (docs/security.md#rate-limits) on the live server, SQLite and
PostgreSQL: real concurrent bursts, 429 with Retry-After, the alert audited and queued once."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from cortex_change.services.context import open_context
from cortex_change.services.tokens import create_token
from support import query

from .conftest import Api, serving

LIMIT = 20
PROBLEM = "application/problem+json"
TOML = f'RATE_LIMIT_PER_MINUTE = {LIMIT}\nWEBHOOK_URL = "http://127.0.0.1:9/hook"\n'  # one channel on


@pytest.fixture
def limited(store_url: str, tmp_path: Path) -> Iterator[Api]:
    """A live server allowing each identity RATE_LIMIT_PER_MINUTE=20, with the webhook channel on
    (nothing delivers: no worker runs) so an alert is one outbox row."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    with serving(store_url, cwd, TOML) as running:
        yield running


def burst(n: int, send: Callable[[], httpx.Response]) -> list[httpx.Response]:
    """`n` requests at once, from as many threads."""
    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(lambda _: send(), range(n)))


def alerts(api: Api, identity: str) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """The rate_limited audit events and outbox messages naming `identity`."""
    events = [
        json.loads(r[1])
        for r in query(api.store, "SELECT change_id, details FROM audit_events WHERE action='rate_limited'")
        if r[0] is None
    ]
    messages = [
        json.loads(r[0]) for r in query(api.store, "SELECT payload FROM outbox WHERE kind='rate_limited'")
    ]
    return (
        [e for e in events if e["identity"] == identity],
        [m for m in messages if f" {identity} over " in str(m["subject"])],
    )


def assert_throttled(r: httpx.Response, identity: str, limit: int, source: str) -> None:
    assert r.status_code == 429, r.text
    assert r.headers["content-type"] == PROBLEM
    retry = r.headers["Retry-After"]
    assert retry.isdigit() and 1 <= int(retry) <= 60, retry
    body = r.json()
    assert body["status"] == 429 and body["type"].endswith("/rate-limited")
    detail = body["detail"]
    assert "\n" not in detail and identity in detail and f"{limit} requests a minute" in detail
    assert source in detail, detail


def test_a_burst_from_one_identity_gets_exactly_its_limit_and_alerts_once(limited: Api) -> None:
    alice = limited.as_("alice")
    audit_before = int(query(limited.store, "SELECT count(*) FROM audit_events")[0][0])
    answers = burst(3 * LIMIT, lambda: alice.get("/whoami"))
    ok = [r for r in answers if r.status_code == 200]
    refused = [r for r in answers if r.status_code != 200]
    assert len(ok) == LIMIT and len(refused) == 2 * LIMIT, sorted({r.status_code for r in answers})
    for r in refused:
        assert_throttled(r, "alice", LIMIT, "RATE_LIMIT_PER_MINUTE")
    assert_throttled(alice.get("/changes"), "alice", LIMIT, "RATE_LIMIT_PER_MINUTE")  # still, any route

    # Another identity is unaffected; health, readiness and metrics are never limited.
    assert all(r.status_code == 200 for r in burst(LIMIT, lambda: limited.as_("tech-lead").get("/whoami")))
    base = limited.server.url
    for path in ("/healthz", "/readyz", "/metrics"):
        assert all(httpx.get(f"{base}{path}", timeout=30).status_code == 200 for _ in range(LIMIT + 5))

    # One alert for the whole burst: one audit event (no change) and one outbox message, and
    # nothing else written for the refused requests.
    events, messages = alerts(limited, "alice")
    assert events == [{"identity": "alice", "limit": LIMIT, "window_seconds": 60}]
    assert len(messages) == 1
    message = messages[0]
    assert message["subject"] == f"[cortex-change] Rate limit: alice over {LIMIT} requests a minute"
    assert message["change_id"] is None and message["recipients"]
    assert int(query(limited.store, "SELECT count(*) FROM audit_events")[0][0]) == audit_before + 1
    assert limited.cli("audit", "verify").code == 0
    assert alerts(limited, "tech-lead") == ([], [])


def test_a_runaway_agent_is_held_to_its_tokens_rate(limited: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(limited.server.cwd)
    ctx = open_context(env={"CORTEX_CHANGE_DB": limited.store})
    try:
        _, token = create_token(ctx, name="deploy-bot", agent=True, scopes=["rate=5"])
    finally:
        ctx.close()
    body = {"type": "normal", "category": "deployment", "title": "Runaway deploy"}
    with httpx.Client(
        base_url=f"{limited.server.url}/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as bot:
        answers = burst(40, lambda: bot.post("/changes", json=body))
        assert sorted(r.status_code for r in answers) == [201] * 5 + [429] * 35
        for r in answers:
            if r.status_code == 429:
                assert_throttled(r, "deploy-bot", 5, "the token's rate scope")
        assert bot.get("/whoami").status_code == 429  # reads count too
    filed = query(limited.store, "SELECT count(*) FROM changes WHERE requested_by='deploy-bot'")
    assert int(filed[0][0]) == 5
    events, messages = alerts(limited, "deploy-bot")
    assert events == [{"identity": "deploy-bot", "limit": 5, "window_seconds": 60}]
    assert len(messages) == 1 and "deploy-bot over 5 requests a minute" in str(messages[0]["subject"])
    # The default limit still holds for everyone else.
    assert limited.as_("alice").get("/whoami").status_code == 200
