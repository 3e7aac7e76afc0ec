"""Agents over the live API, tried as an attacker with an ordinary agent token would: whoami
shows the scopes, filing outside them is 403 and writes nothing, a read-only token reads only,
an expired or rotated-out token is 401 saying so, an agent approving an agent's change is 403
naming the rule, and the kill switch is the change managers' and shows in /readyz."""

from __future__ import annotations

import sqlite3
from typing import Any

import httpx

from api.conftest import Api
from support import query


def _token(api: Api, *args: str) -> str:
    made = api.cli("token", "create", *args)
    assert made.code == 0, made.err
    return made.out.strip().splitlines()[-1]


def _client(api: Api, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=f"{api.server.url}/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


def _write(store: str, sql: str, *params: str) -> None:
    """One committed statement, as a clock gone past the token's expiry would leave it."""
    if store.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(store, autocommit=True) as pg:
            pg.execute(sql.replace("?", "%s"), params)
        return
    with sqlite3.connect(store) as conn:
        conn.execute(sql, params)


BODY: dict[str, Any] = {"type": "normal", "category": "deployment", "title": "Roll out the new build"}


def test_an_agent_acts_within_its_scopes_and_is_never_its_own_approver(api: Api) -> None:
    bot = _client(api, _token(api, "cicd-bot", "--agent", "--scope", "categories=deployment"))
    me = bot.get("/whoami").json()
    assert me == {
        "name": "cicd-bot",
        "agent": True,
        "scopes": {"categories": ["deployment"], "components": [], "read_only": False, "worker": False},
    }
    before = query(api.store, "SELECT count(*) FROM changes", ())[0][0]
    out = bot.post("/changes", json={**BODY, "category": "security"})
    assert out.status_code == 403
    assert "cicd-bot may not file security changes: outside its token's scopes" in out.json()["detail"]
    assert bot.post("/integrations/cicd-master/deploy", json={"details": "x"}).status_code == 403
    assert query(api.store, "SELECT count(*) FROM changes", ())[0][0] == before

    filed = bot.post("/changes", json={**BODY, "impact": "high", "affected_services": ["api"]})
    assert filed.status_code == 201, filed.text
    doc = filed.json()
    assert (doc["origin"], doc["requested_by"]) == ("agent", "cicd-bot")
    cid = doc["change_id"]
    assert bot.post(f"/changes/{cid}/assess").status_code == 200

    reviewer = _client(api, _token(api, "coordinator-master", "--agent"))  # a TECH_LEADS member
    assessed = api.as_("alice").get(f"/changes/{cid}").json()
    assert assessed["state"] in ("pending_approval", "pending_cab")
    refused = reviewer.post(f"/changes/{cid}/approve", json={"reason": "lgtm"})
    assert refused.status_code == 403
    assert "agents never approve agents' changes" in refused.json()["detail"]
    trail = api.as_("alice").get(f"/changes/{cid}/audit").json()
    assert trail[-1]["action"] == "refused"


def test_read_only_expired_and_rotated_tokens(api: Api) -> None:
    reader = _client(api, _token(api, "dashboard", "--read-only"))
    assert reader.get("/changes").status_code == 200
    refused = reader.post("/changes", json=BODY)
    assert refused.status_code == 403 and "read-only" in refused.json()["detail"]

    old = _token(api, "deploy-bot", "--agent")
    rotated = api.cli("token", "rotate", old.split("_")[1], "--grace", "0")
    assert rotated.code == 0, rotated.err
    new = rotated.out.strip().splitlines()[-1]
    gone = _client(api, old).get("/whoami")
    assert gone.status_code == 401 and "rotated out" in gone.json()["detail"]
    assert _client(api, new).get("/whoami").json()["name"] == "deploy-bot"

    expired = _token(api, "short-bot", "--agent", "--expires", "1m")
    _write(
        api.store,
        "UPDATE api_tokens SET expires_at='2020-01-01T00:00:00Z' WHERE token_id=?",
        expired.split("_")[1],
    )
    late = _client(api, expired).get("/whoami")
    assert late.status_code == 401 and "token expired at 2020-01-01T00:00:00Z" in late.json()["detail"]


def test_the_kill_switch_over_the_api(api: Api) -> None:
    assert api.as_("alice").post("/freeze", json={"reason": "no"}).status_code == 403
    cm = _client(api, _token(api, "change-manager"))
    on = cm.post("/freeze", json={"reason": "INC-7: bad rollouts"})
    assert on.status_code == 200 and on.json()["halted"] is True
    ready = httpx.get(f"{api.server.url}/readyz").json()
    assert ready["automation_halted"]["reason"] == "INC-7: bad rollouts"
    assert api.as_("alice").get("/freeze").json()["by"] == "change-manager"
    assert cm.post("/freeze", json={"reason": ""}).status_code == 422
    off = cm.delete("/freeze")
    assert off.status_code == 200 and off.json()["halted"] is False
    assert httpx.get(f"{api.server.url}/readyz").json()["automation_halted"] is None
