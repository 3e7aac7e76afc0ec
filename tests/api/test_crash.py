"""SIGKILL the server in the middle of a stream of transitions, restart it, and check the store.

Every change must be in a state it legally reached, every acknowledged (2xx) transition must be
there, no change may be half-written (record and audit events agree), and the audit chain verifies.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx

from support import query

from .conftest import Api, Server

# The stream each change goes through: (who, step, body, state after it, milestone audit events).
STEPS: list[tuple[str, str, dict[str, Any] | None, str, tuple[str, ...]]] = [
    ("alice", "create", None, "pending_assessment", ("created",)),
    ("alice", "assess", None, "pending_approval", ("assessed",)),
    ("tech-lead", "approve", {"reason": "ok"}, "approved", ("approved",)),
    ("alice", "implement", None, "implemented", ("implementation_started", "implemented")),
    ("alice", "close", {"status": "successful", "notes": "done"}, "closed", ("closed",)),
]
ORDER = [s[3] for s in STEPS]
MILESTONES = {a for s in STEPS for a in s[4]}
# A state the stream can be left in -> (the step that leads there, saves so far, milestone events).
# `implement` saves twice (implementing, then implemented): a kill between leaves it implementing.
REACHABLE: dict[str, tuple[int, int, list[str]]] = {
    "pending_assessment": (0, 1, ["created"]),
    "pending_approval": (1, 2, ["created", "assessed"]),
    "approved": (2, 3, ["created", "assessed", "approved"]),
    "implementing": (3, 4, ["created", "assessed", "approved", "implementation_started"]),
    "implemented": (3, 5, ["created", "assessed", "approved", "implementation_started", "implemented"]),
    "closed": (4, 6, ["created", "assessed", "approved", "implementation_started", "implemented", "closed"]),
}
WRITERS = 3
KILL_AFTER = 45  # acknowledged transitions before the kill


class Stream(threading.Thread):
    """Drives changes through STEPS until the server goes away; records what was acknowledged."""

    def __init__(self, api: Api, acked: list[tuple[str, int, int]], lock: threading.Lock) -> None:
        super().__init__(daemon=True)
        self.api = api
        self.acked = acked  # (change id, index of the step, version the answer carried)
        self.lock = lock
        self.unexpected: list[str] = []

    def run(self) -> None:
        clients = {
            who: httpx.Client(
                base_url=f"{self.api.server.url}/api/v1",
                headers={"Authorization": f"Bearer {self.api.tokens[who]}"},
                timeout=10,
            )
            for who in ("alice", "tech-lead")
        }
        try:
            while True:
                cid = None
                for i, (who, step, body, _, _) in enumerate(STEPS):
                    if step == "create":
                        r = clients[who].post(
                            "/changes", json={"type": "normal", "category": "deployment", "title": "stream"}
                        )
                        cid = r.json()["change_id"] if r.status_code == 201 else None
                    else:
                        r = clients[who].post(f"/changes/{cid}/{step}", json=body)
                    if not r.is_success or cid is None:
                        self.unexpected.append(f"{step}: {r.status_code} {r.text}")
                        return
                    with self.lock:
                        self.acked.append((cid, i, int(r.json()["version"])))
        except httpx.TransportError:
            return  # the server was killed: the request in flight may or may not have happened
        finally:
            for c in clients.values():
                c.close()


def test_sigkill_mid_stream_leaves_only_whole_acknowledged_transitions(api: Api) -> None:
    acked: list[tuple[str, int, int]] = []
    lock = threading.Lock()
    writers = [Stream(api, acked, lock) for _ in range(WRITERS)]
    for w in writers:
        w.start()
    deadline = time.monotonic() + 60
    while len(acked) < KILL_AFTER and time.monotonic() < deadline:
        time.sleep(0.005)
    assert all(w.is_alive() for w in writers), [w.unexpected for w in writers]
    api.server.kill()  # SIGKILL while the writers are mid-request
    for w in writers:
        w.join(timeout=30)
        assert not w.is_alive()
        assert w.unexpected == [], w.unexpected
    assert len(acked) >= KILL_AFTER

    restarted = Server(api.store, api.server.cwd).start()
    try:
        with httpx.Client(
            base_url=f"{restarted.url}/api/v1", headers={"Authorization": f"Bearer {api.tokens['cto']}"}
        ) as c:
            listed = c.get("/changes", params={"limit": 1000}).json()["items"]
            docs = {i["change_id"]: c.get(f"/changes/{i['change_id']}").json() for i in listed}
            rows = query(api.store, "SELECT change_id, state, version FROM changes")
            stored = {cid: (state, version) for cid, state, version in rows}
            assert c.get("/audit/verify").json()["ok"] is True
            carry_on(api, c, docs)
    finally:
        restarted.stop()

    assert set(stored) == set(docs)
    highest: dict[str, tuple[int, int]] = {}
    for cid, step, version in acked:
        highest[cid] = max(highest.get(cid, (-1, 0)), (step, version))
    assert set(highest) <= set(stored), "an acknowledged create is missing"

    for cid, doc in docs.items():
        state = doc["state"]
        assert state in REACHABLE, f"{cid} is {state}, a state this stream cannot reach"
        reached, saves, milestones = REACHABLE[state]
        if cid in highest:
            step, version = highest[cid]
            assert reached >= step, f"{cid} acknowledged {STEPS[step][1]} but is {state}"
            assert doc["version"] >= version
        # whole: the saves and the audit events of exactly the steps taken
        assert stored[cid] == (state, saves), (cid, stored[cid])
        assert doc["version"] == saves
        actions = [e["action"] for e in doc["audit_trail"] if e["action"] in MILESTONES]
        assert actions == milestones, (cid, actions)

    assert len(docs) >= KILL_AFTER // len(STEPS)
    verify = api.cli("audit", "verify")
    assert verify.code == 0, verify.err


def carry_on(api: Api, c: httpx.Client, docs: dict[str, dict[str, Any]]) -> None:
    # the restarted server carries on: the least advanced change moves on
    movable = {k: d for k, d in docs.items() if d["state"] != "implementing"}  # its lease waits to expire
    cid, doc = min(movable.items(), key=lambda kv: ORDER.index(kv[1]["state"]))
    if doc["state"] == "closed":  # the kill fell between two changes: start a new one
        fresh = c.post("/changes", json={"type": "normal", "category": "deployment", "title": "after"})
        assert fresh.status_code == 201, fresh.text
    else:
        who, step, body, after, _ = STEPS[ORDER.index(doc["state"]) + 1]
        headers = {"Authorization": f"Bearer {api.tokens[who]}", "If-Match": f'"v{doc["version"]}"'}
        moved = c.post(f"/changes/{cid}/{step}", json=body, headers=headers)
        assert moved.status_code == 200, moved.text
        assert moved.json()["state"] == after
