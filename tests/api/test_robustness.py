"""Issue 11, the API's robustness: no input answers a 5xx, a traceback or a write (SPEC §11), on
the real server (a subprocess) over SQLite and PostgreSQL.

Periods out of range, If-Match in every shape, documents stored with NaN before the door refused
it, parallel first requests with one Idempotency-Key, unknown query parameters, methods a path
does not take, and secrets in query strings kept out of the access log.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from support import query

from .conftest import Api, Server
from .test_api import cli_error, count, problem, written

# --- periods: years 1970–9999 -------------------------------------------------------------------

OUT_OF_RANGE = "period: '{}' is out of range; allowed: dates within years 1970–9999"


@pytest.mark.parametrize("text", ["0001-01-01 to 9999-12-31", "1969-12-31 to 1970-01-02"])
def test_a_period_outside_1970_to_9999_is_422_naming_the_range(shared_api: Api, text: str) -> None:
    c = shared_api.as_("alice")
    metrics = problem(c.get("/metrics/report", params={"period": text}), 422)
    compliance = problem(c.get("/compliance/report", params={"framework": "soc2", "period": text}), 422)
    assert metrics["detail"] == compliance["detail"] == OUT_OF_RANGE.format(text)
    assert cli_error(shared_api, "metrics", text) == (2, OUT_OF_RANGE.format(text))
    res = shared_api.cli("compliance", "report", "--framework", "soc2", "--period", text)
    assert res.code == 2, res.err
    assert len(res.err.strip().splitlines()) == 1, res.err
    assert "is out of range; allowed: dates within years 1970–9999" in res.err
    assert "Traceback" not in res.err


def test_the_widest_period_1970_to_9999_is_answered(shared_api: Api) -> None:
    c = shared_api.as_("alice")
    text = "1970-01-01 to 9999-12-31"
    report = c.get("/metrics/report", params={"period": text})
    assert report.status_code == 200, report.text
    assert report.json()["period"]["start"] == "1970-01-01T00:00:00Z"
    assert report.json()["period"]["end"] == "9999-12-31T23:59:59Z"
    assert report.json()["changes_created"] == count(shared_api, "SELECT count(*) FROM changes")
    r = c.get("/compliance/report", params={"framework": "soc2", "period": text})
    assert r.status_code == 200, r.text
    assert shared_api.cli("metrics", text).code == 0


# --- If-Match -------------------------------------------------------------------------------------


def test_if_match_with_a_huge_or_foreign_version_is_412_in_one_short_line(shared_api: Api) -> None:
    api = shared_api
    cid = api.create()["change_id"]
    before = written(api, cid)
    huge = '"v' + "9" * 5000 + '"'
    for tag in (huge, '"v-1"', '"v1.0"', '"v"', '"x1"', "W/", '""'):
        body = problem(api.as_("alice").post(f"/changes/{cid}/assess", headers={"If-Match": tag}), 412)
        assert body["detail"].startswith("If-Match: ")
        assert body["detail"].endswith(' is not an ETag of this API ("v<version>")')
        assert "\n" not in body["detail"]
        assert len(body["detail"]) < 120, body["detail"]
    # digits other than ASCII's (a header is Latin-1): '²'.isdigit(), but int('²') fails
    r = api.as_("alice").post(f"/changes/{cid}/assess", headers={b"If-Match": b'"v\xb2"'})
    problem(r, 412)
    assert written(api, cid) == before  # nothing written, not even an audit event


def test_if_match_star_matches_any_current_version_of_an_existing_change(shared_api: Api) -> None:
    api = shared_api
    cid = api.create()["change_id"]
    r = api.as_("alice").post(f"/changes/{cid}/assess", headers={"If-Match": "*"})
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2
    r = api.as_("alice").patch(f"/changes/{cid}", json={"title": "Starred"}, headers={"If-Match": "*"})
    assert r.status_code == 200, r.text
    missing = "RFC-20200101000000-abcdef"
    problem(api.as_("alice").post(f"/changes/{missing}/assess", headers={"If-Match": "*"}), 404)


def test_if_match_lists_are_422_and_nothing_is_written(shared_api: Api) -> None:
    api = shared_api
    cid = api.create()["change_id"]
    before = written(api, cid)
    lists: list[list[tuple[str, str]]] = [
        [("If-Match", '"v1", "v2"')],
        [("If-Match", '"v1",*')],
        [("If-Match", '"v1"'), ("If-Match", '"v2"')],  # two lines are one list (RFC 9110 §5.3)
    ]
    for headers in lists:
        r = api.as_("alice").post(f"/changes/{cid}/assess", headers=headers)
        assert problem(r, 422)["detail"] == (
            'If-Match: send one ETag ("v<version>", W/ allowed) or *; lists of ETags are not supported'
        )
    assert written(api, cid) == before
    # a weak tag is the same version: accepted (a compressing proxy weakens the ETags it passes on)
    r = api.as_("alice").post(f"/changes/{cid}/assess", headers={"If-Match": 'W/"v1"'})
    assert r.status_code == 200, r.text


# --- documents stored with NaN before the door refused it -----------------------------------------


def execute(store: str, sql: str, *params: Any) -> int:
    """Write straight into the store (autocommit), bypassing the program; the rows changed."""
    if store.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(store, autocommit=True) as pg:
            return pg.execute(sql.replace("?", "%s"), params).rowcount
    lite = sqlite3.connect(store, isolation_level=None, timeout=10)
    try:
        return lite.execute(sql, params).rowcount
    finally:
        lite.close()


NON_FINITE = '"load":NaN,"peak":Infinity,"floor":-Infinity'


def poison(api: Api, change_id: str) -> None:
    """Put NaN and ±Infinity into a stored document's parameters, as json.dumps wrote them before
    the door refused them (a document no JSON parser but Python's reads)."""
    doc = stored_doc(api, change_id)
    empty = '"parameters":{}'
    if empty in doc:
        doc = doc.replace(empty, '"parameters":{' + NON_FINITE + "}", 1)
    else:
        doc = doc.replace('"parameters":{', '"parameters":{' + NON_FINITE + ",", 1)
    assert execute(api.store, "UPDATE changes SET doc=? WHERE change_id=?", doc, change_id) == 1
    assert NON_FINITE in stored_doc(api, change_id)


def stored_doc(api: Api, change_id: str) -> str:
    return str(query(api.store, "SELECT doc FROM changes WHERE change_id=?", (change_id,))[0][0])


def test_a_stored_document_with_nan_reads_as_null_and_moves_on(shared_api: Api) -> None:
    api = shared_api
    pending = api.create(title="Poisoned")["change_id"]
    poison(api, pending)
    r = api.as_("alice").get(f"/changes/{pending}")
    assert r.status_code == 200, r.text
    assert "NaN" not in r.text and "Infinity" not in r.text
    assert r.json()["parameters"] == {"load": None, "peak": None, "floor": None}
    assert api.cli("show", pending).code == 0
    listed = api.as_("alice").get("/changes", params={"limit": 5})
    assert listed.status_code == 200, listed.text
    r = api.as_("alice").post(f"/changes/{pending}/assess")
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "pending_approval"

    other = api.create(title="Poisoned, then cancelled")["change_id"]
    poison(api, other)
    r = api.as_("alice").post(f"/changes/{other}/cancel", json={"reason": "poisoned"})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "cancelled"
    assert "NaN" not in stored_doc(api, other)  # the write stored JSON any parser reads
    for path in ("/metrics/report", "/compliance/report"):
        params = {"period": "today", "framework": "soc2"}
        r = api.as_("alice").get(path, params=params if "compliance" in path else {"period": "today"})
        assert r.status_code == 200, (path, r.text)


def test_the_rate_count_reads_past_a_stored_nan(shared_api: Api) -> None:
    """worker-restart counts earlier requests per target (the limit is 3 an hour): by their rate
    key, or for a request filed before keys were stored, by a JSON query over its document. One
    that holds NaN still counts, either way."""
    api = shared_api
    target = f"worker-{uuid.uuid4().hex[:8]}"

    def restart() -> dict[str, Any]:
        r = api.as_("ops-lead").post("/integrations/kubernetes/restart_pod", json={"details": target})
        assert r.status_code == 200, r.text
        doc: dict[str, Any] = r.json()
        return doc

    first = restart()
    assert first["type"] == "standard"
    poison(api, first["change_id"])  # and filed before rate keys: only its document says its target
    assert execute(api.store, "UPDATE changes SET rate_key=NULL WHERE change_id=?", first["change_id"]) == 1
    second = restart()
    assert second["type"] == "standard"
    poison(api, second["change_id"])  # its rate key counts it
    assert restart()["type"] == "standard"
    fourth = restart()  # three earlier requests, the poisoned ones among them: the limit is reached
    assert fourth["type"] == "normal", fourth
    res = api.cli("integrate", "kubernetes", "restart_pod", target, "--as", "ops-lead")
    assert res.code == 0, res.err


# --- Idempotency-Key: parallel first requests ------------------------------------------------------


def fire_together(api: Api, body: dict[str, Any], headers: dict[str, str]) -> list[httpx.Response]:
    """POST /changes eight times at once, from eight connections opened beforehand."""
    clients = [
        httpx.Client(
            base_url=f"{api.server.url}/api/v1",
            headers={"Authorization": f"Bearer {api.tokens['alice']}"},
            timeout=30,
        )
        for _ in range(8)
    ]
    start = threading.Barrier(8)

    def fire(c: httpx.Client) -> httpx.Response:
        start.wait()
        return c.post("/changes", json=body, headers=headers)

    try:
        for c in clients:  # connected before the start, so that the requests really overlap
            assert c.get("/whoami").status_code == 200
        with ThreadPoolExecutor(8) as pool:
            return list(pool.map(fire, clients))
    finally:
        for c in clients:
            c.close()


def test_parallel_first_requests_with_one_key_all_replay_the_first(shared_api: Api) -> None:
    api = shared_api
    for _ in range(3):  # each round a fresh key
        title = f"Idempotent race {uuid.uuid4().hex[:8]}"
        body = {"type": "normal", "category": "deployment", "title": title}
        answers = fire_together(api, body, {"Idempotency-Key": uuid.uuid4().hex})
        assert sorted(a.status_code for a in answers) == [200] * 7 + [201], [a.text for a in answers]
        assert len({a.json()["change_id"] for a in answers}) == 1
        assert count(api, "SELECT count(*) FROM changes WHERE title=?", title) == 1


# --- unknown query parameters ------------------------------------------------------------------------

LIST_PARAMETERS = (
    "before, category, created_from, created_to, limit, requested_by, risk_level, service, state, type"
)


def test_an_unknown_query_parameter_is_422_listing_the_allowed_ones(shared_api: Api) -> None:
    api = shared_api
    c = api.as_("alice")
    body = problem(c.get("/changes", params={"stat": "approved"}), 422)
    assert (
        body["detail"] == f"stat: is not a query parameter of GET /api/v1/changes; allowed: {LIST_PARAMETERS}"
    )
    body = problem(c.get("/metrics/report", params={"period": "week", "perod": "month"}), 422)
    assert body["detail"] == "perod: is not a query parameter of GET /api/v1/metrics/report; allowed: period"
    body = problem(c.get("/compliance/report", params={"framework": "soc2", "period": "week", "x": "1"}), 422)
    assert body["detail"].endswith("; allowed: framework, period")
    cid = api.create()["change_id"]
    for path in (f"/changes/{cid}", f"/changes/{cid}/audit", "/models", "/audit/verify", "/whoami"):
        body = problem(c.get(path, params={"verbose": "1"}), 422)
        assert body["detail"] == f"verbose: is not a query parameter of GET /api/v1{path}; it takes none"
    # a write with a parameter it does not know (a dry run it does not do) writes nothing
    before = written(api, cid)
    problem(c.post(f"/changes/{cid}/assess", params={"dry_run": "1"}), 422)
    assert written(api, cid) == before
    # one value each: a repeated parameter is not silently the last
    body = problem(c.get("/changes", params=[("state", "approved"), ("state", "pending")]), 422)
    assert body["detail"] == "state: is given more than once; give it once"
    # the known ones still work, and an unauthenticated caller learns no more than with them
    assert c.get("/changes", params={"state": "approved", "limit": 1}).status_code == 200
    with api.anonymous() as anon:
        problem(anon.get("/changes", params={"state": "approved"}), 401)


# --- methods: 405 with Allow, OPTIONS ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/api/v1/changes", "GET, OPTIONS, POST"),
        ("DELETE", "/api/v1/changes/RFC-20200101000000-abcdef", "GET, OPTIONS, PATCH"),
        ("GET", "/api/v1/changes/RFC-20200101000000-abcdef/assess", "OPTIONS, POST"),
        ("POST", "/healthz", "GET, OPTIONS"),
        ("PATCH", "/api/v1/metrics/report", "GET, OPTIONS"),
        ("POST", "/openapi.json", "GET, HEAD, OPTIONS"),  # Starlette's own routes take HEAD
    ],
)
def test_405_names_every_method_of_the_path_and_options_answers_them(
    shared_api: Api, method: str, path: str, allow: str
) -> None:
    with httpx.Client(base_url=shared_api.server.url) as anon:
        r = anon.request(method, path, headers={"Authorization": f"Bearer {shared_api.tokens['alice']}"})
        body = problem(r, 405)
        assert r.headers["allow"] == allow
        assert body["detail"] == f"{method} is not allowed on {path}; allowed: {allow}"
        options = anon.options(path)
        assert options.status_code == 204, options.text
        assert options.headers["allow"] == allow
        assert options.content == b""
        problem(anon.options("/api/v1/no/such/route"), 404)


# --- the access log --------------------------------------------------------------------------------

SECRET_NAMES = ("access_token", "Token", "PASSWORD", "api_key", "key", "secret", "Auth", "client_secret")


def test_the_access_log_redacts_token_like_query_parameters(shared_api: Api) -> None:
    api = shared_api
    secrets = {name: f"s3cr3t-{name.lower()}-{uuid.uuid4().hex[:10]}" for name in SECRET_NAMES}
    server = Server(api.store, api.server.cwd, access_log=True).start()
    try:
        with httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {api.tokens['alice']}"}
        ) as c:
            c.get("/api/v1/changes", params={"mark": "1", "state": "approved", **secrets})
            c.get("/healthz", params={"mark": "2", "access_token": secrets["access_token"], "probe": "k8s"})
            c.get(f"/api/v1/changes?mark=3&%61ccess_token={secrets['access_token']}")  # 'a' escaped
            c.get(f"/api/v1/whoami?mark=4&token={secrets['Token']}&password")
    finally:
        server.stop()
    log = server.log()
    for value in secrets.values():
        assert value not in log
    assert "Traceback" not in log
    lines = {n: [x for x in log.splitlines() if f"mark={n}" in x] for n in "1234"}
    assert all(len(found) == 1 for found in lines.values()), log
    first, second, third, fourth = (found[0] for found in lines.values())
    assert "GET /api/v1/changes?mark=1&state=approved&access_token=***&Token=***&PASSWORD=***" in first
    assert "&api_key=***&key=***&secret=***&Auth=***&client_secret=*** HTTP/1.1" in first
    assert "GET /healthz?mark=2&access_token=***&probe=k8s HTTP/1.1" in second
    assert "mark=3&%61ccess_token=*** HTTP/1.1" in third
    assert "mark=4&token=***&password HTTP/1.1" in fourth


def test_the_access_log_masks_a_calendar_feeds_secret(shared_api: Api) -> None:
    api = shared_api
    made = api.cli("calendar", "feed", "create", "team-calendar", "--as", "change-manager")
    assert made.code == 0, made.err
    path = next(word for word in made.out.split() if word.startswith("/api/v1/calendar/"))
    secret = path.removeprefix("/api/v1/calendar/").removesuffix(".ics")
    server = Server(api.store, api.server.cwd, access_log=True).start()
    try:
        with httpx.Client(base_url=server.url) as c:
            assert c.get(path).status_code == 200
            assert c.get(f"{path}?mark=5").status_code in (200, 422)
    finally:
        server.stop()
    log = server.log()
    assert secret not in log
    assert "GET /api/v1/calendar/***.ics HTTP/1.1" in log
