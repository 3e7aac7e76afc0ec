"""Post-implementation reviews through the real server, on SQLite and PostgreSQL: GET …/pir and
the POSTs that write it, as the token's identity; refusals 403, bad input 422, unknown 404, each
writing nothing but a refusal's audit event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from support import query

from .conftest import Api, make_token

PLANS: dict[str, Any] = {"implementation_plan": {"steps": ["Deploy"]}, "rollback_plan": {"steps": ["Revert"]}}


def failed_change(api: Api) -> str:
    cid = str(api.create(**PLANS)["change_id"])
    assert api.as_("alice").post(f"/changes/{cid}/assess").status_code == 200
    r = api.as_("tech-lead").post(f"/changes/{cid}/approve", json={"reason": "fine"})
    assert r.status_code == 200, r.text
    r = api.as_("alice").post(f"/changes/{cid}/implement")
    assert r.status_code in (200, 202), r.text
    r = api.as_("alice").post(f"/changes/{cid}/close", json={"status": "rolled_back", "notes": "reverted"})
    assert r.status_code == 200, r.text
    return cid


def written(api: Api) -> tuple[int, ...]:
    tables = ("audit_events", "pirs", "pir_actions", "outbox", "timers")
    return tuple(int(query(api.store, f"SELECT count(*) FROM {t}")[0][0]) for t in tables)


def tomorrow() -> str:
    return (datetime.now(UTC).date() + timedelta(days=1)).isoformat()


def manager(api: Api) -> Any:
    """A client for `change-manager` (CHANGE_MANAGERS' default)."""
    if "change-manager" not in api.tokens:
        api.tokens["change-manager"] = make_token(api.store, api.server.cwd, "change-manager")
    return api.as_("change-manager")


def test_a_review_through_the_api(shared_api: Api) -> None:
    api = shared_api
    cid = failed_change(api)
    r = api.as_("ops-lead").get(f"/changes/{cid}/pir")  # anyone may read it
    assert r.status_code == 200, r.text
    doc = r.json()
    assert (doc["status"], doc["reason"], doc["owner"], doc["implementer"]) == (
        "open",
        "closed rolled_back",
        "alice",
        "alice",
    )
    r = api.as_("alice").post(f"/changes/{cid}/pir/findings", json={"findings": "Missing canary.\nAdd one."})
    assert r.status_code == 200 and r.json()["findings_by"] == "alice", r.text
    body = {"title": "Add a canary stage", "owner": "ops-lead", "due": tomorrow()}
    r = api.as_("alice").post(f"/changes/{cid}/pir/actions", json=body)
    assert r.status_code == 200, r.text
    assert [(a["action_id"], a["owner"], a["due"], a["status"]) for a in r.json()["actions"]] == [
        ("A1", "ops-lead", tomorrow(), "open")
    ]
    r = manager(api).post(f"/changes/{cid}/pir/complete")
    assert r.status_code == 200 and r.json()["status"] == "completed", r.text
    r = api.as_("ops-lead").post(f"/changes/{cid}/pir/actions/A1/done")
    assert r.status_code == 200 and r.json()["actions"][0]["done_by"] == "ops-lead", r.text
    trail = [e["action"] for e in api.as_("alice").get(f"/changes/{cid}").json()["audit_trail"]]
    assert [a for a in trail if a.startswith("pir_")] == [
        "pir_opened",
        "pir_findings_recorded",
        "pir_action_added",
        "pir_completed",
        "pir_action_done",
    ]
    metrics = api.as_("alice").get("/metrics/report", params={"period": "today"}).json()
    assert metrics["post_implementation_reviews"]["opened"] >= 1


def test_refusals_bad_input_and_unknown(shared_api: Api) -> None:
    api = shared_api
    cid = failed_change(api)
    before = written(api)
    cases: list[tuple[str, str, dict[str, Any] | None, int, str]] = [
        ("alice", f"/changes/{cid}/pir/findings", {"findings": ""}, 422, "findings"),
        ("alice", f"/changes/{cid}/pir/findings", {"findings": "a\x00b"}, 422, "findings"),
        ("alice", f"/changes/{cid}/pir/findings", {"findings": "x", "extra": 1}, 422, ""),
        (
            "alice",
            f"/changes/{cid}/pir/actions",
            {"title": "T", "owner": "bob", "due": "2001-01-01"},
            422,
            "due",
        ),
        ("alice", f"/changes/{cid}/pir/actions", {"title": "T", "owner": "bob", "due": "1e999"}, 422, "due"),
        (
            "alice",
            f"/changes/{cid}/pir/actions",
            {"title": "T", "owner": "b\nob", "due": tomorrow()},
            422,
            "owner",
        ),
        (
            "alice",
            f"/changes/{cid}/pir/actions",
            {"title": "T" * 201, "owner": "bob", "due": tomorrow()},
            422,
            "title",
        ),
        ("alice", f"/changes/{cid}/pir/actions/X9/done", None, 422, "action_id"),
        ("alice", f"/changes/{cid}/pir/actions/A9/done", None, 404, ""),
        ("alice", "/changes/RFC-20200101000000-abcdef/pir/findings", {"findings": "x"}, 404, ""),
    ]
    for who, path, body, status, field in cases:
        r = api.as_(who).post(path, json=body)
        assert r.status_code == status, (path, body, r.text)
        assert r.json()["detail"].startswith(field), (path, body, r.text)
        assert written(api) == before, (path, body)
    assert api.as_("alice").get("/changes/RFC-20200101000000-abcdef/pir").status_code == 404
    assert api.anonymous().get(f"/changes/{cid}/pir").status_code == 401
    r = api.as_("cto").post(f"/changes/{cid}/pir/findings", json={"findings": "mine"})
    assert r.status_code == 403 and "cto may not record the findings" in r.json()["detail"]
    r = api.as_("alice").post(f"/changes/{cid}/pir/complete")
    assert r.status_code == 403 and "allowed to CHANGE_MANAGERS" in r.json()["detail"]
    after = written(api)
    assert after[0] == before[0] + 2 and after[1:] == before[1:]
