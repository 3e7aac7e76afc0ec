"""The API never runs plan steps inside a request (SPEC §11): it queues them for `worker run`.

Each test has a fresh server and store (each backend in turn): `worker run --once` fires every
due timer of its store, so no other test's queued changes may be there.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from support import query

from .conftest import Api, serving

# Who approves each route in the default configuration (the requester is alice).
APPROVERS = {
    "technical-lead": ("tech-lead",),
    "cab": ("ops-lead", "security-lead"),
    "cab+ciso+cto": ("ops-lead", "security-lead", "ciso", "cto"),
}


def approved(api: Api, steps: list[Any], title: str = "Run a step") -> str:
    """A normal change with these implementation steps, approved by the people of its route."""
    doc = api.create(
        impact="high",
        title=title,
        implementation_plan={"steps": steps},
        rollback_plan={"steps": ["Revert by hand"]},
    )
    cid: str = doc["change_id"]
    r = api.as_("alice").post(f"/changes/{cid}/assess")
    assert r.status_code == 200, r.text
    for who in APPROVERS[r.json()["approval_required"]]:
        r = api.as_(who).post(f"/changes/{cid}/approve", json={"reason": "reviewed the exact steps"})
        assert r.status_code == 200, r.text
    assert r.json()["state"] == "approved", r.text
    return cid


def trail(api: Api, cid: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = api.as_("alice").get(f"/changes/{cid}/audit").json()
    return events


def pending_implement_timers(api: Api, cid: str) -> int:
    sql = "SELECT count(*) FROM timers WHERE change_id=? AND kind='implement' AND state='pending'"
    return int(query(api.store, sql, (cid,))[0][0])


def worker_once(api: Api, name: str = "w1") -> dict[str, Any]:
    res = api.cli("worker", "run", "--once", "--name", name)
    assert res.code == 0, res.err
    tick: dict[str, Any] = json.loads(res.out)
    return tick


def test_implement_queues_for_the_workers_and_worker_run_carries_it_out(api: Api, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    cid = approved(api, [{"run": ["touch", str(marker)], "timeout": "30s"}])

    r = api.as_("alice").post(f"/changes/{cid}/implement")
    assert r.status_code == 202, r.text
    assert r.json()["state"] == "approved"
    assert r.headers["etag"] == f'"v{r.json()["version"]}"'
    assert not marker.exists()  # nothing ran in the request
    queued = [e for e in trail(api, cid) if e["action"] == "implementation_queued"]
    assert [e["actor"] for e in queued] == ["alice"]
    assert api.as_("alice").get(f"/changes/{cid}").json()["state"] == "approved"
    assert pending_implement_timers(api, cid) == 1

    tick = worker_once(api)
    assert any(t.startswith(f"implement:{cid}:") for t in tick["timers_fired"]), tick
    assert marker.exists()
    doc = api.as_("alice").get(f"/changes/{cid}").json()
    assert (doc["state"], doc["closure_status"]) == ("closed", "successful"), doc["closure_notes"]
    actors = {e["action"]: e["actor"] for e in doc["audit_trail"]}
    assert actors["implementation_started"] == "worker:w1"  # the lease holder acts
    assert actors["step_succeeded"] == "worker:w1"
    assert actors["closed"] == "worker:w1"
    assert pending_implement_timers(api, cid) == 0
    assert worker_once(api)["timers_fired"] == []  # carried out once


def test_a_queued_change_is_refused_a_second_queue_and_a_caller_without_the_right(
    api: Api, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    cid = approved(api, [{"run": ["touch", str(marker)]}])

    r = api.as_("ops-lead").post(f"/changes/{cid}/implement")  # neither requester nor implementer
    assert r.status_code == 403, r.text
    assert "ops-lead may not implement" in r.json()["detail"]
    assert pending_implement_timers(api, cid) == 0
    assert [e["action"] for e in trail(api, cid)][-1] == "refused"  # the refusal is audited

    stale = api.as_("alice").get(f"/changes/{cid}").headers["etag"]
    assert api.as_("alice").post(f"/changes/{cid}/implement", headers={"If-Match": stale}).status_code == 202
    before = trail(api, cid)
    again = api.as_("alice").post(f"/changes/{cid}/implement")
    assert again.status_code == 409, again.text
    assert f"{cid} is already queued for the workers (by alice, due " in again.json()["detail"]
    assert trail(api, cid) == before  # nothing written
    r = api.as_("alice").post(f"/changes/{cid}/implement", headers={"If-Match": stale})
    assert r.status_code == 412, r.text
    assert pending_implement_timers(api, cid) == 1
    assert not marker.exists()


def test_a_queued_change_cancelled_meanwhile_is_skipped_by_the_worker(api: Api, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    cid = approved(api, [{"run": ["touch", str(marker)]}])
    assert api.as_("alice").post(f"/changes/{cid}/implement").status_code == 202
    r = api.as_("alice").post(f"/changes/{cid}/cancel", json={"reason": "not today"})
    assert r.status_code == 200, r.text

    worker_once(api)
    assert not marker.exists()
    doc = api.as_("alice").get(f"/changes/{cid}").json()
    assert doc["state"] == "cancelled"
    assert "implementation_started" not in [e["action"] for e in doc["audit_trail"]]


def test_a_plan_of_text_steps_is_still_implemented_in_the_request(api: Api) -> None:
    cid = approved(api, ["Announce in #deploys", "Deploy by hand"])
    r = api.as_("alice").post(f"/changes/{cid}/implement")
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "implemented"
    assert pending_implement_timers(api, cid) == 0


def test_healthz_answers_while_forty_sleeping_implementations_are_queued(api: Api) -> None:
    ids = [approved(api, [{"run": ["sleep", "10"], "timeout": "30s"}], f"Sleep {n}") for n in range(40)]
    token = api.tokens["alice"]
    health = httpx.Client(base_url=api.server.url, timeout=30)

    def implement(cid: str) -> tuple[int, float]:
        with httpx.Client(
            base_url=f"{api.server.url}/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=60
        ) as c:
            began = time.monotonic()
            status = c.post(f"/changes/{cid}/implement").status_code
            return status, time.monotonic() - began

    def probe() -> float:
        began = time.monotonic()
        assert health.get("/healthz").status_code == 200
        return time.monotonic() - began

    try:
        with ThreadPoolExecutor(40) as pool:
            answers = pool.map(implement, ids)
            during = probe()
            results = list(answers)
        after = probe()
    finally:
        health.close()
    slowest = max(seconds for _, seconds in results)
    print(f"/healthz: {during:.3f}s during, {after:.3f}s after 40 queued; slowest POST {slowest:.2f}s")
    assert [status for status, _ in results] == [202] * 40
    assert slowest < 9.0  # a request that ran its `sleep 10` would take 10 s
    assert during < 5.0 and after < 5.0  # 1 s is the aim; shared machines get slack
    states = {api.as_("alice").get(f"/changes/{cid}").json()["state"] for cid in ids}
    assert states == {"approved"}


# No delay, and `restart_pod`'s runbook replaced by one that leaves a file in the worker's directory.
RESTART_TOUCHES = """
IMPLEMENTATION_DELAY = 0

[runbooks.kubectl-rollout-restart]
version = 1
description = "leave a file named after the deployment"
run = ["touch", "{deployment}.{namespace}"]
params.deployment = '[a-z0-9-]{1,63}'
params.namespace = '[a-z0-9-]{1,63}'
defaults = { namespace = "default" }
timeout = "30s"
"""


@pytest.fixture
def api_without_delay(store_url: str, tmp_path: Path) -> Iterator[Api]:
    """A server whose AUTO_IMPLEMENT has no IMPLEMENTATION_DELAY."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    with serving(store_url, cwd, RESTART_TOUCHES) as running:  # stopped afterwards, as every server
        yield running
        running.server.stop()


def test_an_integration_with_no_delay_is_queued_and_a_worker_runs_its_runbook(api_without_delay: Api) -> None:
    api = api_without_delay
    r = api.as_("ops-lead").post("/integrations/kubernetes/restart_pod", json={"details": "worker-001"})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["state"] == "approved"
    steps = json.loads(r.headers["x-cortex-steps"])
    assert "queued for the workers (IMPLEMENTATION_DELAY=0)" in steps[-1], steps
    assert "implementation_started" not in [e["action"] for e in doc["audit_trail"]]
    assert pending_implement_timers(api, doc["change_id"]) == 1
    assert not (api.server.cwd / "worker-001.default").exists()

    worker_once(api)
    assert (api.server.cwd / "worker-001.default").exists()
    done = api.as_("ops-lead").get(f"/changes/{doc['change_id']}").json()
    assert (done["state"], done["closure_status"]) == ("closed", "successful"), done["closure_notes"]
