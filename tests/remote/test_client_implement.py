"""`implement` in client mode: the server queues executable plans; `--wait` follows the workers."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from remote_support import CLI

from cortex_change.cli.exits import for_error
from cortex_change.cli.gateway import POLL_SECONDS, Remote, settled, wait_bound
from cortex_change.cli.remote import WaitExpired
from cortex_change.config import load
from cortex_change.domain.codec import from_document

if TYPE_CHECKING:
    from remote_support import Server

APPROVERS = {
    "technical-lead": ("tech-lead",),
    "cab": ("ops-lead", "security-lead"),
    "cab+ciso+cto": ("ops-lead", "security-lead", "ciso", "cto"),
}


def approved(server: Server, plan: dict[str, Any], validation: dict[str, Any] | None = None) -> str:
    """A high-impact change filed by dev through the server, approved by its route's people."""
    args = ["create", "normal", "deployment", "Touch a file", "--impact", "high"]
    args += ["--implementation-plan", json.dumps(plan), "--rollback-plan", '{"steps": ["Revert by hand"]}']
    if validation is not None:
        args += ["--validation", json.dumps(validation)]
    res = server.client("dev", *args)
    assert res.code == 0, res.err
    change_id = res.out.strip()
    assert server.client("dev", "assess", change_id).code == 0
    for who in APPROVERS[show(server, change_id)["approval_required"]]:
        res = server.client(who, "approve", change_id, "reviewed the exact steps")
        assert res.code == 0, res.err
    assert show(server, change_id)["state"] == "approved"
    return change_id


def show(server: Server, change_id: str) -> dict[str, Any]:
    res = server.local("show", change_id)
    assert res.code == 0, res.err
    doc: dict[str, Any] = json.loads(res.out)
    return doc


def actions(server: Server, change_id: str) -> list[str]:
    return [e["action"] for e in show(server, change_id)["audit_trail"]]


def test_implement_is_queued_and_wait_follows_the_worker_to_the_close(server: Server, tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    queued = approved(server, {"steps": [{"run": ["touch", str(first)]}]})
    res = server.client("dev", "implement", queued)
    assert (res.code, res.out, res.err) == (
        0,
        f"{queued}: queued for the workers (worker run carries it out)\n",
        "",
    )
    assert not first.exists()
    assert actions(server, queued)[-1] == "implementation_queued"

    followed = approved(server, {"steps": [{"run": ["touch", str(second)], "timeout": "30s"}]})
    env = server.env(
        CORTEX_CHANGE_URL=server.url,
        CORTEX_CHANGE_TOKEN=server.token("dev"),
        CORTEX_CHANGE_DB=str(server.nowhere),
    )
    assert CLI is not None
    with subprocess.Popen(
        [CLI, "implement", followed, "--wait"],
        env=env,
        cwd=server.cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        deadline = time.monotonic() + 30
        while "implementation_queued" not in actions(server, followed):
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr
            time.sleep(0.1)
        assert proc.poll() is None  # waiting: no worker yet
        tick = server.local("worker", "run", "--once", "--name", "w1")
        assert tick.code == 0, tick.err
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert err == ""
    assert out.startswith(f"{followed}: closed successful: ") and out.count("\n") == 1, out
    assert first.exists() and second.exists()  # the worker carried out both
    assert show(server, queued)["closure_status"] == "successful"


def test_wait_on_a_text_plan_ends_at_once_waiting_for_people(server: Server) -> None:
    change_id = approved(server, {"steps": ["Deploy by hand"]})
    res = server.client("dev", "implement", change_id, "--wait")
    assert res.code == 1, res  # as locally: --wait exits 0 only for a change closed successful
    assert res.out == f"{change_id}: implemented; report the outcome with: close {change_id} STATUS NOTES\n"


class Polled:
    """A client whose change never moves: each read is the same document."""

    url = "http://127.0.0.1:9"

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.reads = 0

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        assert path.endswith("/implement")
        return self.doc

    def get(self, path: str, **query: Any) -> Any:
        self.reads += 1
        return self.doc


def test_wait_gives_up_after_its_bound_naming_what_to_watch(server: Server) -> None:
    plan = {"steps": [{"run": ["true"], "timeout": "30s"}, "Check the dashboard"]}
    change_id = approved(server, plan, validation={"period": "2m", "interval": "10s"})
    doc = show(server, change_id)
    settings = load({})  # defaults: WORKER_POLL_INTERVAL 5, ROLLBACK_TIMEOUT 300
    bound = wait_bound(from_document(doc), settings)
    assert bound == 5 + 30 + 30 + 120 + 10 + 300  # poll, pick-up slack, the step, period, interval, rollback
    client = Polled(doc)
    gw = Remote(client, {})  # type: ignore[arg-type]
    now = [0.0]
    gw.clock = lambda: now[0]
    gw.sleep = lambda seconds: now.__setitem__(0, now[0] + seconds)
    with pytest.raises(WaitExpired) as info:
        gw.implement(change_id, None, True, False, None)
    assert str(info.value) == (
        f"{change_id}: still approved after waiting {bound:.0f}s (worker pick-up, step timeouts, "
        f"validation period, ROLLBACK_TIMEOUT): is a worker running (worker run)? Follow it with: "
        f"show {change_id}"
    )
    assert for_error(info.value) == 1
    assert client.reads == pytest.approx(bound / POLL_SECONDS, abs=1)


def test_what_wait_stops_at(server: Server) -> None:
    doc = show(server, approved(server, {"steps": [{"run": ["true"]}]}))

    def change(state: str, steps: list[Any]) -> Any:
        return from_document({**doc, "state": state, "implementation_plan": {"steps": steps}})

    run = [{"run": ["true"]}]
    assert not settled(change("approved", run))  # queued
    assert not settled(change("implementing", run))
    assert not settled(change("implemented", run))  # validation runs in the worker
    assert not settled(change("rolling_back", run))
    assert settled(change("implemented", [*run, "Check by hand"]))  # waits for people
    assert settled(change("closed", run))
    assert settled(change("cancelled", run))
