"""GET /metrics on the live server (both backends): every figure equals what the store holds."""

from __future__ import annotations

import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from support import query

from .conftest import Api, Server

BOUNDS = (60.0, 300.0, 900.0, 3600.0, 14400.0, 86400.0, 604800.0)
STATES = {
    "pending_assessment",
    "assessed",
    "pending_approval",
    "pending_cab",
    "approved",
    "rejected",
    "implementing",
    "implemented",
    "rolling_back",
    "closed",
    "cancelled",
}


def execute(store: str, sql: str, params: tuple[Any, ...] = ()) -> None:
    """Write straight to the store (committed), bypassing the program."""
    if store.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(store, autocommit=True) as conn:
            conn.execute(sql.replace("?", "%s"), params)
        return
    conn = sqlite3.connect(store)
    try:
        with conn:
            conn.execute(sql, params)
    finally:
        conn.close()


def scrape(api: Api) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """/metrics without a token: {sample name: {sorted labels: value}}."""
    r = httpx.get(f"{api.server.url}/metrics", timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            samples.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return samples


def by(samples: dict[tuple[tuple[str, str], ...], float], label: str) -> dict[str, float]:
    return {dict(labels)[label]: value for labels, value in samples.items()}


def advance(api: Api, change_id: str, *steps: tuple[str, str, dict[str, Any] | None]) -> None:
    for who, verb, body in steps:
        r = api.as_(who).post(f"/changes/{change_id}/{verb}", json=body)
        assert r.status_code == 200, (verb, r.text)


def test_metrics_equal_the_store_after_changes_move(shared_api: Api) -> None:
    api = shared_api
    ok = {"reason": "ok"}
    approved = [api.create(impact="low")["change_id"] for _ in range(4)]
    for cid in approved:
        advance(api, cid, ("alice", "assess", None))
        if api.as_("alice").get(f"/changes/{cid}").json()["state"] != "approved":
            advance(api, cid, ("tech-lead", "approve", ok))
    advance(api, approved[0], ("alice", "implement", None), ("alice", "close", {"status": "successful"}))
    rejected = api.create()["change_id"]
    advance(api, rejected, ("alice", "assess", None), ("tech-lead", "reject", {"reason": "not now"}))
    cancelled = api.create()["change_id"]
    advance(api, cancelled, ("alice", "cancel", {"reason": "superseded"}))
    api.create()  # left pending
    # Latencies in different buckets (the API approves within the second): 1000 s, 2 days, 30 days.
    for cid, seconds in zip(approved[1:], (1000.0, 2 * 86400.0, 30 * 86400.0), strict=True):
        execute(
            api.store, "UPDATE changes SET approved_at = created_at + ? WHERE change_id = ?", (seconds, cid)
        )

    m = scrape(api)

    states = dict(query(api.store, "SELECT state, count(*) FROM changes GROUP BY state"))
    assert by(m["cortex_change_changes"], "state") == {s: float(states.get(s, 0)) for s in STATES}
    assert states["approved"] >= 3 and states["rejected"] >= 1 and states["closed"] >= 1

    actions = dict(query(api.store, "SELECT action, count(*) FROM audit_events GROUP BY action"))
    assert by(m["cortex_change_transitions_total"], "action") == {a: float(n) for a, n in actions.items()}
    assert {"created", "assessed", "approved", "rejected", "cancelled", "closed"} <= set(actions)

    latencies = [
        float(r[0])
        for r in query(
            api.store, "SELECT approved_at - created_at FROM changes WHERE approved_at IS NOT NULL"
        )
    ]
    buckets = {float(le): n for le, n in by(m["cortex_change_approval_latency_seconds_bucket"], "le").items()}
    expected = {b: float(sum(1 for x in latencies if x <= b)) for b in BOUNDS}
    assert buckets == {**expected, float("inf"): float(len(latencies))}
    assert m["cortex_change_approval_latency_seconds_count"][()] == len(latencies)
    assert m["cortex_change_approval_latency_seconds_sum"][()] == sum(latencies)
    assert buckets[3600.0] < buckets[604800.0] < buckets[float("inf")]  # the crafted latencies spread

    head = query(api.store, "SELECT seq FROM audit_head WHERE id = 1")[0][0]
    assert m["cortex_change_audit_chain_length"][()] == head == sum(actions.values())
    assert m["cortex_change_incidents_open"][()] == 0


def test_outbox_backlog_and_open_incidents_are_counted_by_state(shared_api: Api) -> None:
    api = shared_api
    cid = api.create()["change_id"]
    now = time.time()
    for state in ("pending", "pending", "dead", "delivered", "delivered", "delivered"):
        execute(
            api.store,
            "INSERT INTO outbox (message_id, event_id, channel, kind, change_id, payload, created_at, "
            "state, attempts, next_attempt_at) VALUES (?, ?, 'webhook', 'created', ?, '{}', ?, ?, 0, ?)",
            (uuid.uuid4().hex, uuid.uuid4().hex, cid, now, state, now),
        )
    for state in ("open", "open", "resolved"):
        execute(
            api.store,
            "INSERT INTO incidents (incident_id, change_id, opened_at, opened_by, title, details, state) "
            "VALUES (?, ?, ?, 'runner', 'rollback failed', '{}', ?)",
            (uuid.uuid4().hex, cid, now, state),
        )

    m = scrape(api)
    backlog = dict(query(api.store, "SELECT state, count(*) FROM outbox GROUP BY state"))
    assert by(m["cortex_change_outbox_backlog"], "state") == {s: float(n) for s, n in backlog.items()}
    assert backlog == {"pending": 2, "dead": 1, "delivered": 3}
    opened = query(api.store, "SELECT count(*) FROM incidents WHERE state = 'open'")[0][0]
    assert m["cortex_change_incidents_open"][()] == opened == 2


def test_metrics_need_no_token_and_are_in_the_openapi_document(shared_api: Api) -> None:
    r = httpx.get(f"{shared_api.server.url}/metrics", headers={"Authorization": "Bearer nonsense"})
    assert r.status_code == 200
    assert "# TYPE cortex_change_changes gauge" in r.text
    operation = httpx.get(f"{shared_api.server.url}/openapi.json").json()["paths"]["/metrics"]["get"]
    assert "text/plain" in operation["responses"]["200"]["content"]


def test_metrics_disabled_answers_404(shared_api: Api, tmp_path: Path) -> None:
    (tmp_path / "cortex-change.toml").write_text("METRICS_ENABLED = false\n")
    server = Server(shared_api.store, tmp_path).start()
    try:
        r = httpx.get(f"{server.url}/metrics", timeout=30)
        assert r.status_code == 404, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert "METRICS_ENABLED" in r.json()["detail"]
    finally:
        server.stop()
