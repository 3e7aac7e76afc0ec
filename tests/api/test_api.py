"""The REST API through the real server (a subprocess), on SQLite and PostgreSQL.

Each test makes its own changes on a server shared by the module (one per backend).
"""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from support import query

from .conftest import Api, Server

PROBLEM = "application/problem+json"
PLANS = {"implementation_plan": {"steps": ["Snapshot", "Deploy"]}, "rollback_plan": {"steps": ["Revert"]}}


def problem(r: httpx.Response, status: int) -> dict[str, Any]:
    """Assert an RFC 9457 answer with `status`; returns its body."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body: dict[str, Any] = r.json()
    assert set(body) == {"type", "title", "status", "detail", "instance"}
    assert body["status"] == status
    assert body["instance"] == r.request.url.path
    return body


def cli_error(api: Api, *args: str) -> tuple[int, str]:
    """(exit code, the CLI's one-line message without its `cortex-change: ` prefix)."""
    res = api.cli(*args)
    assert res.code != 0, res.out
    lines = [x for x in res.err.splitlines() if x.startswith("cortex-change: ")]
    assert len(lines) == 1, res.err
    return res.code, lines[0].removeprefix("cortex-change: ")


def count(api: Api, sql: str, *params: Any) -> int:
    return int(query(api.store, sql, params)[0][0])


def written(api: Api, change_id: str) -> tuple[int, int]:
    """(stored version, audit events) of a change, read from the store directly."""
    version = count(api, "SELECT version FROM changes WHERE change_id=?", change_id)
    return version, count(api, "SELECT count(*) FROM audit_events WHERE change_id=?", change_id)


def assessed(api: Api, who: str = "alice", **fields: Any) -> str:
    change_id: str = api.create(who, **fields)["change_id"]
    r = api.as_("alice").post(f"/changes/{change_id}/assess")
    assert r.status_code == 200, r.text
    return change_id


# --- the lifecycle, and the document `show` prints ----------------------------------------------


def test_lifecycle_through_the_api_is_the_document_show_prints(shared_api: Api) -> None:
    api = shared_api
    doc = api.create(impact="critical", category="security", affected_services=["a", "b", "c"], **PLANS)
    cid = doc["change_id"]
    assert doc["requested_by"] == "alice"
    assert doc["state"] == "pending_assessment"
    steps: list[tuple[str, str, dict[str, Any] | None, str]] = [
        ("alice", "assess", None, "pending_cab"),
        ("ops-lead", "approve", {"reason": "capacity checked"}, "pending_cab"),
        ("security-lead", "approve", {"reason": "reviewed", "role": "cab"}, "pending_cab"),
        ("ciso", "approve", {"reason": "security ok"}, "pending_cab"),
        ("cto", "approve", {"reason": "go"}, "approved"),
        ("alice", "implement", None, "implemented"),
        ("alice", "close", {"status": "successful", "notes": "deployed"}, "closed"),
    ]
    for who, verb, body, state in steps:
        r = api.as_(who).post(f"/changes/{cid}/{verb}", json=body)
        assert r.status_code == 200, (verb, r.text)
        assert r.json()["state"] == state, verb
        assert r.headers["etag"] == f'"v{r.json()["version"]}"'
        got = api.as_(who).get(f"/changes/{cid}")
        assert got.json() == r.json()
    api_doc = api.as_("cto").get(f"/changes/{cid}").json()
    assert api_doc["approval_required"] == "cab+ciso+cto"
    assert api_doc == json.loads(api.cli("show", cid).out)  # the very same document, nothing left out
    assert [(a["approver"], a["decision"]) for a in api_doc["approvals"]] == [
        ("ops-lead", "approved"),
        ("security-lead", "approved"),
        ("ciso", "approved"),
        ("cto", "approved"),
    ]
    assert api_doc["closure_status"] == "successful"
    trail = api.as_("cto").get(f"/changes/{cid}/audit")
    assert trail.status_code == 200
    assert trail.json() == api_doc["audit_trail"]
    assert {"created", "assessed", "approved", "closed"} <= {e["action"] for e in trail.json()}


def test_reject_and_cancel_and_emergency_review(shared_api: Api) -> None:
    api = shared_api
    rejected = assessed(api)
    r = api.as_("tech-lead").post(f"/changes/{rejected}/reject", json={"reason": "not now"})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "rejected"
    assert r.json()["approvals"][0]["approver"] == "tech-lead"

    cancelled = api.create()["change_id"]
    r = api.as_("alice").post(f"/changes/{cancelled}/cancel", json={"reason": "superseded"})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "cancelled"

    emergency = assessed(api, type="emergency", category="security", title="Patch CVE")
    doc = api.as_("alice").get(f"/changes/{emergency}").json()
    assert doc["state"] == "approved"
    assert doc["review"]["due_at"] is not None
    r = api.as_("security-lead").post(
        f"/changes/{emergency}/review", json={"outcome": "accepted", "notes": "justified"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["review"]["reviewer"] == "security-lead"
    assert r.json()["review"]["outcome"] == "accepted"


# --- Idempotency-Key -------------------------------------------------------------------------------


def test_idempotency_key_replays_the_first_result_and_creates_nothing(shared_api: Api) -> None:
    api = shared_api
    body = {"type": "normal", "category": "deployment", "title": "Idempotent", "impact": "low"}
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = api.as_("alice").post("/changes", json=body, headers=key)
    assert first.status_code == 201, first.text
    before = count(api, "SELECT count(*) FROM changes"), count(api, "SELECT count(*) FROM audit_events")
    again = api.as_("alice").post("/changes", json=body, headers=key)
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]
    after = count(api, "SELECT count(*) FROM changes"), count(api, "SELECT count(*) FROM audit_events")
    assert after == before

    other = problem(api.as_("alice").post("/changes", json={**body, "title": "Other"}, headers=key), 422)
    assert other["detail"] == "Idempotency-Key: was already used for a different request"
    assert count(api, "SELECT count(*) FROM changes") == before[0]

    # keys belong to their caller: the same key from someone else is a new request
    theirs = api.as_("ops-lead").post("/changes", json=body, headers=key)
    assert theirs.status_code == 201
    assert theirs.json()["change_id"] != first.json()["change_id"]
    assert theirs.json()["requested_by"] == "ops-lead"


# --- authentication: 401 -----------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["missing", "basic", "malformed", "unknown", "revoked"])
def test_unauthenticated_calls_get_401_without_echoing_the_token(shared_api: Api, how: str) -> None:
    api = shared_api
    sent = {
        "missing": None,
        "basic": "Basic YWxpY2U6c2VjcmV0",
        "malformed": "Bearer not-a-token-secret-value",
        "unknown": "Bearer cc_0123456789ab_" + "A" * 43,
        "revoked": f"Bearer {api.revoked}",
    }[how]
    headers = {"Authorization": sent} if sent else {}
    before = count(api, "SELECT count(*) FROM changes")
    with api.anonymous() as client:
        for r in (
            client.get("/changes", headers=headers),
            client.post(
                "/changes", json={"type": "normal", "category": "deployment", "title": "x"}, headers=headers
            ),
            client.get("/audit/verify", headers=headers),
        ):
            body = problem(r, 401)
            assert r.headers["www-authenticate"] == "Bearer"
            assert body["detail"] in (
                "missing bearer token (Authorization: Bearer <token>)",
                "invalid or revoked token",
            )
            if sent:
                secret = sent.split(" ", 1)[1]
                assert secret not in r.text
                assert secret.split("_")[-1] not in r.text
    assert count(api, "SELECT count(*) FROM changes") == before


def test_tokens_are_stored_hashed_and_listed_without_secrets(shared_api: Api) -> None:
    api = shared_api
    listed = api.cli("token", "list", "--json")
    assert listed.code == 0, listed.err
    rows = json.loads(listed.out)
    assert {r["name"] for r in rows} >= {"alice", "tech-lead", "mallory"}
    assert [r["revoked_at"] is not None for r in rows if r["name"] == "mallory"] == [True]
    stored = " ".join(str(v) for row in query(api.store, "SELECT * FROM api_tokens") for v in row)
    for token in [*api.tokens.values(), api.revoked]:
        secret = token.split("_", 2)[2]
        assert secret not in listed.out
        assert secret not in stored


# --- roles, segregation of duties, identity ------------------------------------------------------


def test_approving_without_the_role_is_403_naming_the_role_and_holders(shared_api: Api) -> None:
    api = shared_api
    cid = assessed(api)
    assert api.as_("alice").get(f"/changes/{cid}").json()["approval_required"] == "technical-lead"
    before = written(api, cid)
    body = problem(api.as_("ops-lead").post(f"/changes/{cid}/approve", json={"reason": "ok"}), 403)
    assert body["detail"] == (
        f"ops-lead holds no role that {cid} needs (route technical-lead; "
        "technical-lead (TECH_LEADS): coordinator-master, tech-lead)"
    )
    version, events = written(api, cid)
    assert version == before[0]  # the record is untouched; the refusal itself is audited
    assert events == before[1] + 1
    # the same refusal through the CLI reads the same
    code, message = cli_error(api, "approve", cid, "ops-lead", "ok")
    assert (code, message) == (1, body["detail"])


def test_segregation_of_duties_holds_across_doors(shared_api: Api) -> None:
    api = shared_api
    cid = assessed(api, "alice")  # requested through the API by alice's token
    code, message = cli_error(api, "approve", cid, "alice", "looks fine")
    assert code == 1
    assert message == f"alice may not approve {cid}: they requested it (SEGREGATION_OF_DUTIES=true)"
    body = problem(api.as_("alice").post(f"/changes/{cid}/approve", json={"reason": "looks fine"}), 403)
    assert body["detail"] == message
    body = problem(api.as_("alice").post(f"/changes/{cid}/reject", json={"reason": "no"}), 403)
    assert "they requested it" in body["detail"]
    assert api.as_("alice").get(f"/changes/{cid}").json()["state"] == "pending_approval"


def test_a_body_cannot_name_another_identity(shared_api: Api) -> None:
    api = shared_api
    before = count(api, "SELECT count(*) FROM changes")
    body = {"type": "normal", "category": "deployment", "title": "x", "requested_by": "tech-lead"}
    assert "requested_by" in problem(api.as_("alice").post("/changes", json=body), 422)["detail"]
    assert count(api, "SELECT count(*) FROM changes") == before

    cid = assessed(api, "tech-lead")  # requested by tech-lead, so tech-lead may not approve it
    snapshot = written(api, cid)
    for verb, extra in [
        ("approve", {"reason": "ok", "approver": "tech-lead"}),
        ("reject", {"reason": "no", "rejector": "tech-lead"}),
        ("review", {"outcome": "accepted", "notes": "", "reviewer": "security-lead"}),
        ("close", {"status": "successful", "actor": "tech-lead"}),
    ]:
        detail = problem(api.as_("alice").post(f"/changes/{cid}/{verb}", json=extra), 422)["detail"]
        assert next(k for k in extra if k not in ("reason", "notes", "outcome", "status")) in detail
    assert written(api, cid) == snapshot  # nothing at all, not even a refusal
    # the identity is the token's: alice approving goes down as alice, though she is no tech lead
    assert (
        "alice holds no role"
        in problem(api.as_("alice").post(f"/changes/{cid}/approve", json={"reason": "ok"}), 403)["detail"]
    )


# --- ETag / If-Match, races ----------------------------------------------------------------------------


def test_etag_and_if_match(shared_api: Api) -> None:
    api = shared_api
    cid = api.create()["change_id"]
    first = api.as_("alice").get(f"/changes/{cid}")
    assert first.headers["etag"] == '"v1"'
    r = api.as_("alice").post(f"/changes/{cid}/assess", headers={"If-Match": '"v1"'})
    assert r.status_code == 200, r.text
    fresh = r.headers["etag"]
    assert fresh != '"v1"'
    assert api.as_("alice").get(f"/changes/{cid}").headers["etag"] == fresh

    before = written(api, cid)
    for stale in ('"v1"', "v1", '"v99"', "*junk*"):
        r = api.as_("tech-lead").post(
            f"/changes/{cid}/approve", json={"reason": "ok"}, headers={"If-Match": stale}
        )
        body = problem(r, 412)
        assert "If-Match" in body["detail"]
    assert written(api, cid) == before  # nothing written, not even an audit event

    r = api.as_("tech-lead").post(
        f"/changes/{cid}/approve", json={"reason": "ok"}, headers={"If-Match": fresh}
    )
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "approved"
    assert r.headers["etag"] == f'"v{r.json()["version"]}"'
    assert r.headers["etag"] != fresh
    # a weak tag is accepted too
    r = api.as_("alice").post(f"/changes/{cid}/implement", headers={"If-Match": f"W/{r.headers['etag']}"})
    assert r.status_code == 200, r.text


def test_a_transition_that_loses_a_race_is_409_with_nothing_written(shared_api: Api) -> None:
    api = shared_api
    cid = assessed(api, impact="low", title="Race")
    r = api.as_("tech-lead").post(f"/changes/{cid}/approve", json={"reason": "ok"})
    assert r.json()["state"] == "approved", r.text
    clients = [
        httpx.Client(
            base_url=f"{api.server.url}/api/v1", headers={"Authorization": f"Bearer {api.tokens['alice']}"}
        )
        for _ in range(8)
    ]
    try:
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda c: c.post(f"/changes/{cid}/implement"), clients))
    finally:
        for c in clients:
            c.close()
    codes = sorted(a.status_code for a in answers)
    assert codes == [200] + [409] * 7, [a.text for a in answers]
    for a in answers:
        if a.status_code == 409:
            assert problem(a, 409)["detail"]
    doc = api.as_("alice").get(f"/changes/{cid}").json()
    actions = [e["action"] for e in doc["audit_trail"]]
    assert actions.count("implementation_started") == 1, actions
    assert doc["state"] == "implemented"


def test_invalid_transition_is_409_naming_both_states_in_the_clis_words(shared_api: Api) -> None:
    api = shared_api
    cid = assessed(api)
    r = api.as_("alice").post(f"/changes/{cid}/close", json={"status": "successful"})
    body = problem(r, 409)
    assert body["detail"] == (
        f"cannot close {cid}: it is pending_approval "
        "(close needs implemented or implementing or rolling_back)"
    )
    assert body["type"].endswith("/invalid-transition")
    code, message = cli_error(api, "close", cid, "successful")
    assert (code, message) == (1, body["detail"])


@pytest.mark.parametrize(
    ("path", "body", "cli"),
    [
        (
            "/changes",
            {"type": "nope", "category": "deployment", "title": "x"},
            ["create", "nope", "deployment", "x"],
        ),
        (
            "/changes",
            {"type": "normal", "category": "deployment", "title": ""},
            ["create", "normal", "deployment", ""],
        ),
        ("/changes", {"type": "normal", "category": "nope", "title": "x"}, ["create", "normal", "nope", "x"]),
        ("/changes", {"type": "normal", "category": "deployment", "title": "x", "impact": "huge"}, None),
    ],
)
def test_bad_input_is_422_in_the_clis_words(
    shared_api: Api, path: str, body: dict[str, Any], cli: list[str] | None
) -> None:
    api = shared_api
    before = count(api, "SELECT count(*) FROM changes")
    detail = problem(api.as_("alice").post(path, json=body), 422)["detail"]
    assert count(api, "SELECT count(*) FROM changes") == before
    if cli:
        code, message = cli_error(api, *cli[:1], "--as", "alice", "--", *cli[1:])
        assert (code, message) == (2, detail)
    else:
        assert detail == "impact: 'huge' is not allowed; allowed: low, medium, high, critical"


def test_unknown_change_is_404_and_a_malformed_id_422(shared_api: Api) -> None:
    api = shared_api
    missing = "RFC-20200101000000-abcdef"
    body = problem(api.as_("alice").get(f"/changes/{missing}"), 404)
    code, message = cli_error(api, "show", missing)
    assert (code, message) == (3, body["detail"])
    problem(api.as_("alice").post(f"/changes/{missing}/assess"), 404)
    problem(api.as_("alice").get(f"/changes/{missing}/audit"), 404)
    assert "change_id" in problem(api.as_("alice").get("/changes/not-an-id"), 422)["detail"]
    problem(
        api.as_("alice").post("/changes", content=b"{not json", headers={"content-type": "application/json"}),
        422,
    )
    problem(api.as_("alice").get("/no/such/route"), 404)


# --- listing: filters and cursor pagination ---------------------------------------------------------


def test_list_filters_and_cursor_pagination(shared_api: Api) -> None:
    api = shared_api
    service = f"svc-{uuid.uuid4().hex[:8]}"
    made = [api.create(title=f"page {i}", affected_services=[service])["change_id"] for i in range(5)]
    made.append(api.create("tech-lead", affected_services=[service], category="patch")["change_id"])
    emergency = assessed(api, type="emergency", category="security", affected_services=[service])
    made.append(emergency)
    c = api.as_("alice")
    listed = c.get("/changes", params={"service": service}).json()["items"]
    newest_first = [i["change_id"] for i in listed]
    assert sorted(newest_first) == sorted(made)
    # newest first; within one second (ids carry whole seconds) by id, descending
    keys = [(i["created_at"], i["change_id"]) for i in listed]
    assert keys == sorted(keys, reverse=True)

    def ids(**params: Any) -> list[str]:
        r = c.get("/changes", params={"service": service, **params})
        assert r.status_code == 200, r.text
        return [i["change_id"] for i in r.json()["items"]]

    assert ids() == newest_first
    assert ids(type="emergency") == [emergency]
    assert ids(requested_by="tech-lead") == [made[5]]
    assert ids(category="patch") == [made[5]]
    assert ids(state="approved") == [emergency]
    assert ids(state="pending") == [i for i in newest_first if i != emergency]
    assert ids(risk_level=c.get(f"/changes/{emergency}").json()["risk_level"]) == [emergency]
    assert ids(created_from="2000-01-01") == newest_first
    assert ids(created_from="2999-01-01T00:00:00Z") == []
    assert ids(created_to="2000-01-01T00:00:00+00:00") == []
    assert ids(created_to="2999-01-01") == newest_first

    pages: list[list[str]] = []
    before = None
    while True:
        params: dict[str, Any] = {"service": service, "limit": 3}
        if before:
            params["before"] = before
        page = c.get("/changes", params=params).json()
        pages.append([i["change_id"] for i in page["items"]])
        before = page["next"]
        if before is None:
            break
        assert before == pages[-1][-1]
    assert pages == [newest_first[:3], newest_first[3:6], newest_first[6:]]
    summary = c.get("/changes", params={"service": service, "limit": 1}).json()["items"][0]
    assert set(summary) == {
        "change_id",
        "state",
        "type",
        "category",
        "risk_level",
        "risk_score",
        "title",
        "created_at",
    }

    assert (
        "type: 'bogus' is not allowed" in problem(c.get("/changes", params={"type": "bogus"}), 422)["detail"]
    )
    assert "state: unknown state" in problem(c.get("/changes", params={"state": "bogus"}), 422)["detail"]
    assert "created_from" in problem(c.get("/changes", params={"created_from": "yesterday"}), 422)["detail"]
    problem(c.get("/changes", params={"before": "RFC-20200101000000-abcdef"}), 404)


# --- the other endpoints ---------------------------------------------------------------------------------


def test_integrations_endpoint(shared_api: Api) -> None:
    api = shared_api
    r = api.as_("ops-lead").post("/integrations/kubernetes/restart_pod", json={"details": "worker-001"})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["type"] == "standard"
    assert doc["state"] == "approved"  # the worker implements it after IMPLEMENTATION_DELAY
    assert doc["requested_by"] == "ops-lead"
    steps = json.loads(r.headers["x-cortex-steps"])
    assert steps[0].startswith(f"created {doc['change_id']}: standard infrastructure")
    assert "implementation scheduled in 300s" in steps[-1]
    assert r.headers["etag"] == f'"v{doc["version"]}"'
    scaled = api.as_("ops-lead").post(
        "/integrations/kubernetes/scale", json={"details": {"deployment": "cortex-chat", "replicas": 12}}
    )
    assert scaled.status_code == 200, scaled.text
    assert scaled.json()["type"] == "normal"
    # the requester is the token's identity, so segregation of duties holds through this door too
    deploy = api.as_("alice").post(
        "/integrations/cicd-master/deploy", json={"details": {"environment": "staging", "service": "svc"}}
    )
    assert deploy.status_code == 200, deploy.text
    cid = deploy.json()["change_id"]
    assert deploy.json()["requested_by"] == "alice"
    if deploy.json()["state"] in ("pending_approval", "pending_cab"):
        refused = api.as_("alice").post(
            "/integrations/coordinator-master/approve", json={"args": [cid, "mine"]}
        )
        assert "they requested it" in problem(refused, 403)["detail"]
    # the seed's `worker NAME ACTION ID` order cannot name someone else as the actor
    snapshot = written(api, cid)
    for path, args in [
        ("/integrations/coordinator-master/tech-lead", ["approve", cid, "as someone else"]),
        ("/integrations/worker/worker-001", ["execute", cid]),
    ]:
        detail = problem(api.as_("alice").post(path, json={"args": args}), 403)["detail"]
        assert "the API acts as the token's identity" in detail
    assert written(api, cid) == snapshot
    body = problem(api.as_("ops-lead").post("/integrations/nope/restart", json={}), 422)
    res = api.cli("integrate", "nope", "restart", "x")
    assert res.code != 0
    assert body["detail"] in res.err


def test_models_metrics_verify_and_health(shared_api: Api) -> None:
    api = shared_api
    c = api.as_("alice")
    models = c.get("/models")
    assert models.status_code == 200
    assert {m["name"] for m in models.json()} >= {"worker-restart"} or len(models.json()) >= 4
    cli_models = api.cli("models", "list")
    assert cli_models.code == 0
    for m in models.json():
        assert m["name"] in cli_models.out

    report = c.get("/metrics/report", params={"period": "week"})
    assert report.status_code == 200, report.text
    assert report.json()["period"]["label"]
    assert report.json()["changes_created"] >= 0
    cli_report = json.loads(api.cli("metrics", "week", "--json").out)
    assert report.json()["kpis"][0]["key"] == cli_report["kpis"][0]["key"]
    body = problem(c.get("/metrics/report", params={"period": "fortnight"}), 422)
    code, message = cli_error(api, "metrics", "fortnight")
    assert (code, message) == (2, body["detail"])

    verify = c.get("/audit/verify")
    assert verify.status_code == 200
    assert verify.json()["ok"] is True
    assert verify.json()["checked"] > 0
    assert api.cli("audit", "verify").code == 0

    with httpx.Client(base_url=api.server.url) as anon:
        assert anon.get("/healthz").json() == {"status": "ok"}
        ready = anon.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["status"] == "ready"
        assert ready.json()["schema_version"] >= 1
        spec = anon.get("/openapi.json").json()
    assert all(
        p.startswith(("/api/v1/", "/healthz", "/readyz", "/metrics", "/k8s/", "/hooks/"))
        for p in spec["paths"]
    )
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if path == "/api/v1/calendar/{feed}.ics":  # a calendar client sends no header: the
                assert "security" not in op  # feed's secret is in its path (docs/schedule.md)
                continue
            if path.startswith("/api/v1/"):
                assert op["security"] == [{"HTTPBearer": []}], (method, path)
                assert "401" in op["responses"]
                assert PROBLEM in op["responses"]["401"]["content"]


# --- secrets stay out of logs ----------------------------------------------------------------------------


def test_tokens_never_appear_in_the_server_log(shared_api: Api) -> None:
    api = shared_api
    server = Server(api.store, api.server.cwd, access_log=True).start()
    try:
        base = f"{server.url}/api/v1"
        for token in [api.tokens["alice"], api.revoked, "cc_0123456789ab_" + "B" * 43]:
            with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as c:
                c.get("/changes")
                c.post("/changes", json={"type": "normal", "category": "deployment", "title": "logged"})
                c.post("/changes", json={"type": "normal"})
                c.get("/changes/RFC-20200101000000-abcdef")
    finally:
        server.stop()
    log = server.log()
    assert "GET /api/v1/changes" in log  # the access log was on
    for token in [*api.tokens.values(), api.revoked, "cc_0123456789ab_" + "B" * 43]:
        assert token not in log
        assert token.split("_", 2)[2] not in log


def test_patch_updates_descriptive_fields_and_refuses_nulls_for_required_ones(shared_api: Api) -> None:
    """PATCH /changes/{id}: given fields change (audited), null clears optional ones only."""
    alice = shared_api.as_("alice")
    change_id = shared_api.create(title="T")["change_id"]
    done = alice.patch(f"/changes/{change_id}", json={"title": "New", "environment": "staging"})
    assert done.status_code == 200, done.text
    assert (done.json()["title"], done.json()["environment"]) == ("New", "staging")
    assert any(e["action"] == "updated" for e in done.json()["audit_trail"])
    cleared = alice.patch(f"/changes/{change_id}", json={"environment": None})
    assert cleared.status_code == 200 and cleared.json()["environment"] is None
    for body in ({"title": None}, {"impact": None}, {"dependencies": None}, {"title": 5}):
        bad = alice.patch(f"/changes/{change_id}", json=body)
        assert bad.status_code == 422, (body, bad.text)
        assert bad.headers["content-type"].startswith("application/problem+json")
    assert alice.get("/whoami").json() == {
        "name": "alice",
        "agent": False,
        "scopes": {"read_only": False, "worker": False},
    }
