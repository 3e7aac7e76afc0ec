"""Issue 11 through the real server, on SQLite and PostgreSQL: empty reasons and details are 422
and write nothing; `GET /reviews/overdue` and the CLI's client mode list the reviews past due."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from cortex_change.services.changes import assess_change
from cortex_change.services.context import open_context
from support import TEST_IMPLEMENTERS, FakeClock, file_change, query

from .conftest import CLI, Api, environment

PLANS = {"implementation_plan": {"steps": ["Deploy"]}, "rollback_plan": {"steps": ["Revert"]}}


def _written(api: Api) -> tuple[int, int]:
    """(changes, audit events) in the store, read directly."""
    changes = int(query(api.store, "SELECT count(*) FROM changes")[0][0])
    return changes, int(query(api.store, "SELECT count(*) FROM audit_events")[0][0])


def test_empty_reasons_and_details_are_422_and_write_nothing(shared_api: Api) -> None:
    api = shared_api
    cid = api.create(**PLANS)["change_id"]
    assert api.as_("alice").post(f"/changes/{cid}/assess").status_code == 200
    cases: list[tuple[str, str, dict[str, Any] | None, str]] = [
        ("tech-lead", f"/changes/{cid}/approve", {"reason": ""}, "reason"),
        ("tech-lead", f"/changes/{cid}/approve", {"reason": " \n "}, "reason"),
        ("tech-lead", f"/changes/{cid}/approve", {"reason": "ok", "role": " "}, "role"),
        ("tech-lead", f"/changes/{cid}/reject", {"reason": ""}, "reason"),
        ("alice", f"/changes/{cid}/cancel", {"reason": ""}, "reason"),
        ("alice", f"/changes/{cid}/cancel", {}, "reason"),
        ("alice", f"/changes/{cid}/cancel", None, "request: Field required"),
        ("alice", f"/changes/{cid}/assess", {"reassess": True, "reason": "  "}, "reason"),
        ("alice", "/integrations/cicd-master/build", {"details": ""}, "details"),
        ("alice", "/integrations/cicd-master/build", {"details": {}}, "details"),
        ("alice", "/integrations/cicd-master/build", {"args": [" "]}, "details"),
        ("tech-lead", "/integrations/coordinator-master/approve", {"args": [cid, ""]}, "reason"),
    ]
    for who, path, body, field in cases:
        before = _written(api)
        r = api.as_(who).post(path, json=body)
        assert r.status_code == 422, (path, body, r.text)
        detail = r.json()["detail"]
        assert detail.startswith(field), (path, body, detail)
        assert _written(api) == before, (path, body)
    doc = api.as_("alice").get(f"/changes/{cid}").json()
    assert (doc["state"], doc["approvals"]) == ("pending_approval", [])


def test_cancel_needs_a_reason_in_the_schema_too(shared_api: Api) -> None:
    schemas = httpx.get(f"{shared_api.server.url}/openapi.json").json()["components"]["schemas"]
    assert schemas["Cancel"]["required"] == ["reason"]
    assert schemas["Cancel"]["properties"]["reason"]["minLength"] == 1
    assert schemas["Decide"]["properties"]["reason"]["minLength"] == 1


@pytest.fixture
def overdue(shared_api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Two emergency changes approved three days ago (their reviews were due two days ago), on the
    server's store, written in-process with a clock set back."""
    monkeypatch.chdir(tmp_path)  # no stray cortex-change.toml
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0) - timedelta(days=3))
    env = {"CORTEX_CHANGE_DB": shared_api.store, "IMPLEMENTERS": TEST_IMPLEMENTERS}
    ctx = open_context(env=env, clock=clock)
    try:
        ids = []
        for title in ("Hotfix one", "Hotfix two"):
            new = file_change(ctx, type="emergency", category="security", title=title, requested_by="dev")
            ids.append(assess_change(ctx, change_id=new.change_id).change_id)
            clock.advance(minutes=1)
    finally:
        ctx.close()
    return ids


def _client(api: Api, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI as the server's client (CORTEX_CHANGE_URL, alice's token)."""
    assert CLI is not None
    env = {
        **environment(api.store, api.server.cwd),
        "CORTEX_CHANGE_URL": api.server.url,
        "CORTEX_CHANGE_TOKEN": api.tokens["alice"],
    }
    return subprocess.run(
        [CLI, *args], env=env, cwd=api.server.cwd, capture_output=True, text=True, timeout=60, check=False
    )


def _without_age(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "overdue_seconds"} for r in rows]


def test_overdue_reviews_through_the_api_and_the_client(shared_api: Api, overdue: list[str]) -> None:
    api = shared_api
    r = api.as_("alice").get("/reviews/overdue")
    assert r.status_code == 200, r.text
    rows = [row for row in r.json() if row["change_id"] in overdue]
    assert [row["change_id"] for row in rows] == overdue
    assert all(row["overdue_seconds"] > 86400 and row["type"] == "emergency" for row in rows)
    assert api.anonymous().get("/reviews/overdue").status_code == 401

    remote = _client(api, "review", "overdue", "--json")
    assert remote.returncode == 0, remote.stderr
    local = api.cli("review", "overdue", "--json")
    assert local.code == 0, local.err
    assert _without_age(json.loads(remote.stdout)) == _without_age(json.loads(local.out))
    text = _client(api, "review", "overdue")
    assert text.returncode == 0, text.stderr
    assert all(cid in text.stdout for cid in overdue)

    r = api.as_("security-lead").post(
        f"/changes/{overdue[0]}/review", json={"outcome": "accepted", "notes": "justified"}
    )
    assert r.status_code == 200, r.text
    left = [row["change_id"] for row in api.as_("alice").get("/reviews/overdue").json()]
    assert overdue[0] not in left and overdue[1] in left
