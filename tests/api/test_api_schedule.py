"""The API's schedule and gate (POST /api/v1/changes/{id}/schedule, GET /api/v1/gate) on a real
server per backend, and the client-mode CLI's gate giving the local answer. The server runs on the
real clock: windows are set around now."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.conftest import CLI, Api, environment

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def iso(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    body: dict[str, Any] = r.json()
    return body


def filed(api: Api, service: str, start: str | None, end: str | None, env: str = "production") -> str:
    fields: dict[str, Any] = {"impact": "medium", "affected_services": [service], "environment": env}
    if start is not None:
        fields |= {"planned_start": start, "planned_end": end}
    doc = api.create("alice", **fields)
    return str(doc["change_id"])


def approved(api: Api, service: str, start: str | None, end: str | None, env: str = "production") -> str:
    cid = filed(api, service, start, end, env)
    assert api.as_("alice").post(f"/changes/{cid}/assess").json()["state"] == "pending_approval"
    r = api.as_("tech-lead").post(f"/changes/{cid}/approve", json={"reason": "ok"})
    assert r.json()["state"] == "approved", r.text
    return cid


def events(api: Api, cid: str) -> list[str]:
    return [e["action"] for e in api.as_("alice").get(f"/changes/{cid}/audit").json()]


# --- POST /changes/{id}/schedule -----------------------------------------------------------------


def test_scheduling_before_approval_is_an_update(shared_api: Api) -> None:
    api = shared_api
    cid = filed(api, "sched-a", None, None)
    body = {"planned_start": "2030-06-01T22:00:00+02:00", "planned_end": "2030-06-01T23:00:00Z"}
    r = api.as_("alice").post(f"/changes/{cid}/schedule", json=body)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert r.headers["etag"] == f'"v{doc["version"]}"'
    assert (doc["planned_start"], doc["planned_end"]) == ("2030-06-01T20:00:00Z", "2030-06-01T23:00:00Z")
    assert doc["state"] == "pending_assessment"
    assert api.as_("alice").get(f"/changes/{cid}").json() == doc
    assert events(api, cid)[-1] == "updated"


def test_rescheduling_an_approved_change_asks_for_approval_again(shared_api: Api) -> None:
    api = shared_api
    cid = approved(api, "sched-b", iso(-HOUR), iso(HOUR))
    start, end = iso(DAY), iso(DAY + HOUR)
    r = api.as_("alice").post(f"/changes/{cid}/schedule", json={"planned_start": start, "planned_end": end})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert (doc["state"], doc["planned_start"], doc["planned_end"]) == ("pending_approval", start, end)
    assert r.headers["etag"] == f'"v{doc["version"]}"'
    assert events(api, cid)[-4:] == ["rescheduled", "approvals_discarded", "assessed", "approval_requested"]


def test_schedule_honours_if_match(shared_api: Api) -> None:
    api = shared_api
    cid = filed(api, "sched-c", None, None)
    body = {"planned_start": iso(DAY), "planned_end": iso(DAY + HOUR)}
    stale = problem(
        api.as_("alice").post(f"/changes/{cid}/schedule", json=body, headers={"If-Match": '"v0"'}), 412
    )
    assert stale["status"] == 412
    version = api.as_("alice").get(f"/changes/{cid}").headers["etag"]
    r = api.as_("alice").post(f"/changes/{cid}/schedule", json=body, headers={"If-Match": version})
    assert r.status_code == 200, r.text


def test_an_outsider_may_not_schedule(shared_api: Api) -> None:
    api = shared_api
    cid = approved(api, "sched-d", iso(-HOUR), iso(HOUR))
    before = api.as_("alice").get(f"/changes/{cid}").json()
    body = {"planned_start": iso(DAY), "planned_end": iso(DAY + HOUR)}
    detail = problem(api.as_("ops-lead").post(f"/changes/{cid}/schedule", json=body), 403)["detail"]
    assert "ops-lead may not reschedule" in detail
    after = api.as_("alice").get(f"/changes/{cid}").json()
    assert after["version"] == before["version"] and after["state"] == "approved"
    assert events(api, cid)[-1] == "refused"


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"planned_start": "tonight", "planned_end": "2030-06-01T23:00:00Z"}, "START"),
        ({"planned_start": "2030-06-01T22:00:00Z", "planned_end": "2030-06-01T21:00:00Z"}, "planned_end"),
        ({"planned_start": "2030-06-01T22:00:00Z", "planned_end": "2030-08-01T22:00:00Z"}, "planned_end"),
        ({"planned_start": "1999-06-01T22:00:00Z", "planned_end": "1999-06-01T23:00:00Z"}, "START"),
        ({"planned_start": "0001-01-01T00:00:00+01:00", "planned_end": "2030-06-01T23:00:00Z"}, "START"),
        ({"planned_start": "2030-06-01T22:00:00Z"}, "planned_end"),
        ({"planned_start": 1906000000, "planned_end": 1906003600}, "planned_start"),
    ],
)
def test_a_bad_time_is_422(shared_api: Api, body: dict[str, Any], named: str) -> None:
    api = shared_api
    cid = filed(api, "sched-e", None, None)
    detail = problem(api.as_("alice").post(f"/changes/{cid}/schedule", json=body), 422)["detail"]
    assert named in json.dumps(detail)
    assert api.as_("alice").get(f"/changes/{cid}").json()["version"] == 1


def test_a_change_in_the_wrong_state_is_409(shared_api: Api) -> None:
    api = shared_api
    cid = filed(api, "sched-f", None, None)
    r = api.as_("alice").post(f"/changes/{cid}/cancel", json={"reason": "not needed"})
    assert r.status_code == 200, r.text
    body = {"planned_start": iso(DAY), "planned_end": iso(DAY + HOUR)}
    detail = problem(api.as_("alice").post(f"/changes/{cid}/schedule", json=body), 409)["detail"]
    assert cid in detail
    unknown = api.as_("alice").post("/changes/RFC-20260101000000-abcdef/schedule", json=body)
    assert unknown.status_code == 404


def test_the_api_takes_the_window_on_create_and_patch(shared_api: Api) -> None:
    api = shared_api
    doc = api.create(
        "alice", planned_start="2030-06-01T22:00:00+02:00", planned_end="2030-06-01T23:00:00+02:00"
    )
    assert (doc["planned_start"], doc["planned_end"]) == ("2030-06-01T20:00:00Z", "2030-06-01T21:00:00Z")
    r = api.as_("alice").patch(
        f"/changes/{doc['change_id']}", json={"planned_start": None, "planned_end": None}
    )
    assert r.status_code == 200, r.text
    assert (r.json()["planned_start"], r.json()["planned_end"]) == (None, None)
    half = {
        "type": "normal",
        "category": "deployment",
        "title": "Half",
        "planned_start": "2030-06-01T22:00:00Z",
    }
    assert "together" in problem(api.as_("alice").post("/changes", json=half), 422)["detail"]


# --- GET /gate -----------------------------------------------------------------------------------


def test_the_gate_allows_an_approved_change_in_its_window(shared_api: Api) -> None:
    api = shared_api
    cid = approved(api, "gate-a", iso(-HOUR), iso(HOUR))
    for params in (
        {"service": "gate-a", "environment": "production"},
        {"service": "gate-a"},
        {"service": "gate-a", "change": cid},
    ):
        r = api.as_("ops-lead").get("/gate", params=params)
        assert r.status_code == 200, r.text
        verdict = r.json()
        assert (verdict["allowed"], verdict["change_id"], verdict["reasons"]) == (True, cid, [])
        assert datetime.strptime(verdict["at"], "%Y-%m-%dT%H:%M:%SZ")


def test_the_gate_refuses_with_each_reason(shared_api: Api) -> None:
    api = shared_api
    start, end = iso(DAY), iso(DAY + HOUR)
    cid = approved(api, "gate-b", start, end)
    verdict = api.as_("alice").get("/gate", params={"service": "gate-b", "environment": "staging"}).json()
    assert (verdict["allowed"], verdict["change_id"]) == (False, None)
    assert verdict["reasons"] == [
        f"{cid} is for the environment 'production', not 'staging'",
        f"{cid} is planned for {start} to {end}, not now",
    ]
    nothing = api.as_("alice").get("/gate", params={"service": "gate-none", "environment": "production"})
    assert nothing.status_code == 200
    assert nothing.json()["reasons"] == ["no approved change names the service 'gate-none' in production"]


@pytest.mark.parametrize(
    "params",
    [{}, {"environment": "production"}, {"service": ""}, {"service": "web", "change": "RFC-1"}],
)
def test_a_gate_question_without_a_service_or_with_bad_input_is_422(
    shared_api: Api, params: dict[str, str]
) -> None:
    problem(shared_api.as_("alice").get("/gate", params=params), 422)


def test_the_gate_about_an_unknown_change_is_404(shared_api: Api) -> None:
    r = shared_api.as_("alice").get("/gate", params={"service": "web", "change": "RFC-20260101000000-abcdef"})
    problem(r, 404)


def test_the_gate_needs_a_token(shared_api: Api) -> None:
    with shared_api.anonymous() as anonymous:
        problem(anonymous.get("/gate", params={"service": "web"}), 401)
    revoked = {"Authorization": f"Bearer {shared_api.revoked}"}
    with shared_api.anonymous() as anonymous:
        problem(anonymous.get("/gate", params={"service": "web"}, headers=revoked), 401)


# --- the CLI as a client gives the local answer --------------------------------------------------


def client_gate(api: Api, *args: str) -> tuple[int, str, str]:
    """`cortex-change gate ARGS` through the server (CORTEX_CHANGE_URL, a token), no local store."""
    assert CLI is not None
    cwd = api.server.cwd
    env = environment(str(cwd / "no-such-dir" / "client.db"), cwd)
    env |= {"CORTEX_CHANGE_URL": api.server.url, "CORTEX_CHANGE_TOKEN": api.tokens["ops-lead"]}
    proc = subprocess.run(
        [CLI, "gate", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    assert not (cwd / "no-such-dir").exists(), "the client opened a local store"
    return proc.returncode, proc.stdout, proc.stderr


def verdict_of(out: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(out)
    doc.pop("at")  # the two answers are a moment apart
    return doc


def test_the_client_gate_answers_as_the_local_one(shared_api: Api, tmp_path: Path) -> None:
    api = shared_api
    fits = approved(api, "gate-c", iso(-HOUR), iso(HOUR))
    approved(api, "gate-c", iso(DAY), iso(DAY + HOUR))
    asked = [
        ("--service", "gate-c", "--env", "production"),
        ("--service", "gate-c", "--env", "staging"),
        ("--service", "gate-c", "--change", fits),
        ("--service", "gate-elsewhere", "--env", "production"),
    ]
    for args in asked:
        local = api.cli("gate", *args, "--json")
        code, out, err = client_gate(api, *args, "--json")
        assert (code, verdict_of(out)) == (local.code, verdict_of(local.out)), (args, err, local.err)
        assert code in (0, 1)
        # and the plain lines, but for the time in the allowed line
        plain_local = api.cli("gate", *args)
        code, out, _ = client_gate(api, *args)
        assert code == plain_local.code
        assert out.split(" (")[0] == plain_local.out.split(" (")[0]
    assert client_gate(api, "--service", "gate-c", "--env", "production")[1].startswith(
        f"deploy allowed: {fits} ("
    )
