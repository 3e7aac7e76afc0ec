"""SPEC §7 workers through the real console script: leases, heart-beats, reports, stuck changes,
automatic implementation, and several worker processes on one store.

Changes are set up (created, assessed) in-process; everything under test runs as subprocesses
in the test's working directory. Each test runs on SQLite and on PostgreSQL (`store_url`).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from cortex_change.services import changes, queries
from cortex_change.services.context import Context, open_context
from cortex_change.store import leases
from support import TEST_IMPLEMENTERS, file_change

if TYPE_CHECKING:
    from conftest import Cli

    Rows = Callable[[Path | str, str], int]

LEASE_TTL = "5"  # the smallest the configuration allows


@pytest.fixture
def svc(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Context]]:
    """In-process contexts on the test's store, with configuration overrides (closed afterwards)."""
    monkeypatch.chdir(cli.cwd)
    opened: list[Context] = []

    def open_with(**settings: str) -> Context:
        ctx = open_context(
            env={"CORTEX_CHANGE_DB": str(cli.db), "IMPLEMENTERS": TEST_IMPLEMENTERS, **settings}
        )
        opened.append(ctx)
        return ctx

    yield open_with
    for ctx in opened:
        ctx.close()


def _change(
    ctx: Context,
    steps: list[Any],
    rollback: list[Any] | None = None,
    *,
    type: str = "normal",
    title: str = "Roll out v2",
    approve: bool = True,
    **fields: Any,
) -> str:
    """Create, assess and approve a change: ad-hoc steps need a person (SPEC §11), so a technical
    lead (normal) or an ECAB member (emergency) approves what the assessment left pending."""
    if type == "normal":
        fields = {"category": "documentation", "impact": "low", **fields}
    elif type == "emergency":
        fields = {"category": "deployment", **fields}
    change = file_change(
        ctx,
        type=type,
        title=title,
        requested_by="alice",
        implementation_plan={"steps": steps},
        rollback_plan=None if rollback is None else {"steps": rollback},
        **fields,
    )
    assessed = changes.assess_change(ctx, change_id=change.change_id)
    if approve and assessed.state.value == "pending_approval":
        approver = "tech-lead-oncall" if type == "emergency" else "tech-lead"
        changes.approve_change(ctx, change_id=change.change_id, approver=approver, reason="steps read")
    return change.change_id


def _doc(ctx: Context, change_id: str) -> dict[str, Any]:
    return queries.get_change(ctx, change_id=change_id)


def _actions(doc: dict[str, Any]) -> list[str]:
    return [e["action"] for e in doc["audit_trail"]]


def _trail(doc: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [e for e in doc["audit_trail"] if e["action"] == action]


def _leases(cli: Cli) -> dict[str, dict[str, Any]]:
    return {row["change_id"]: row for row in json.loads(cli.ok("worker", "leases", "--json"))}


def _wait_for_expiry(ctx: Context, *change_ids: str) -> None:
    """Sleep until every lease has expired by the system clock, which counts whole seconds."""
    with ctx.db.read() as tx:
        ends = [float(lease.expires_at) for c in change_ids if (lease := leases.get(tx, c)) is not None]
    time.sleep(max(0.0, max(ends) + 1.05 - time.time()))


# --- execute, heartbeat, report -----------------------------------------------------------------


def test_execute_leases_the_change_to_one_worker(cli: Cli, svc: Callable[..., Context], rows: Rows) -> None:
    ctx = svc()
    plan_steps = [{"run": "touch by-worker"}]
    change_id = _change(ctx, plan_steps, [{"run": "touch rolled-back"}])

    res = cli("worker", "execute", "w1", change_id)
    assert res.code == 0, res.err
    handed = json.loads(res.out)
    assert handed["change_id"] == change_id
    assert (handed["worker"], handed["state"]) == ("w1", "implementing")
    assert handed["implementation_plan"] == {"steps": plan_steps}
    assert handed["rollback_plan"] == {"steps": [{"run": "touch rolled-back"}]}
    assert handed["validation"] is None
    assert handed["lease_ttl_seconds"] == 60
    assert handed["lease_expires_at"].endswith("Z")
    assert not (cli.cwd / "by-worker").exists()  # the worker carries the plan out, not execute
    assert _leases(cli)[change_id]["holder"] == "w1"
    assert _leases(cli)[change_id]["status"] == "live"

    # a second worker is refused while the lease lives: a conflict naming the holder, nothing written
    events_before = len(_doc(ctx, change_id)["audit_trail"])
    second = cli("worker", "execute", "w2", change_id)
    assert second.code == 4, (second.out, second.err)
    assert second.out == ""
    assert "leased to w1" in second.err and "nothing was written" in second.err
    assert _leases(cli)[change_id]["holder"] == "w1"
    assert len(_doc(ctx, change_id)["audit_trail"]) == events_before

    beat = cli("worker", "heartbeat", "w1", change_id)
    assert beat.code == 0, beat.err
    assert beat.out.startswith(f"{change_id}: lease of w1 renewed until ")
    other = cli("worker", "heartbeat", "w2", change_id)
    assert other.code == 1
    assert "leased to w1, not w2" in other.err

    # while w1's lease is live, neither an operator's resume nor rollback can take it over
    resumed = cli("implement", change_id, "--resume", "--as", "ops")
    assert resumed.code == 4
    assert "lease has not expired" in resumed.err
    rolled = cli("rollback", change_id, "impatient", "--as", "ops")
    assert rolled.code == 1
    assert "being carried out by w1" in rolled.err
    assert cli("worker", "report_success", "w2", change_id, "not mine").code == 1
    assert _doc(ctx, change_id)["state"] == "implementing"

    done = cli("worker", "report_success", "w1", change_id, "deployed by w1")
    assert done.code == 0, done.err
    assert done.out == f"{change_id}: closed successful: deployed by w1\n"
    doc = _doc(ctx, change_id)
    assert (doc["state"], doc["closure_status"], doc["closure_notes"]) == (
        "closed",
        "successful",
        "deployed by w1",
    )
    assert _actions(doc)[-2:] == ["implemented", "closed"]
    assert {e["actor"] for e in doc["audit_trail"][-2:]} == {"w1"}
    assert rows(cli.db, "leases") == 0
    assert not (cli.cwd / "rolled-back").exists()

    after = cli("worker", "heartbeat", "w1", change_id)  # nothing left to renew
    assert after.code == 1
    assert "holds no lease" in after.err


def test_execute_refuses_a_change_that_is_not_approved(
    cli: Cli, svc: Callable[..., Context], rows: Rows
) -> None:
    ctx = svc()
    change_id = _change(ctx, [{"run": "true"}], category="deployment", impact="medium", approve=False)
    assert _doc(ctx, change_id)["state"] == "pending_approval"
    res = cli("worker", "execute", "w1", change_id)
    assert res.code == 1
    assert "pending_approval" in res.err
    assert rows(cli.db, "leases") == 0
    missing = cli("worker", "execute", "w1", "RFC-20200101000000-abcdef")
    assert missing.code == 3


def test_report_failure_runs_the_rollback(cli: Cli, svc: Callable[..., Context], rows: Rows) -> None:
    ctx = svc()
    (cli.cwd / "version.txt").write_text("v1\n")
    change_id = _change(
        ctx,
        [{"run": "cp version.txt version.prev && echo v2 > version.txt", "shell": True}],
        [{"run": ["mv", "version.prev", "version.txt"]}],
    )
    cli.ok("worker", "execute", "w1", change_id)
    # the worker carries out the plan itself, then finds the smoke test failing
    (cli.cwd / "version.prev").write_text("v1\n")
    (cli.cwd / "version.txt").write_text("v2\n")
    res = cli("worker", "report_failure", "w1", change_id, "smoke test failed on canary")
    assert res.code == 0, res.err
    assert res.out.startswith(f"{change_id}: closed rolled_back: smoke test failed on canary; rolled back")
    assert (cli.cwd / "version.txt").read_text() == "v1\n"
    doc = _doc(ctx, change_id)
    assert (doc["state"], doc["closure_status"]) == ("closed", "rolled_back")
    (started,) = _trail(doc, "rollback_started")
    assert (started["actor"], started["details"]["reason"]) == ("w1", "smoke test failed on canary")
    assert _actions(doc)[-3:] == ["rolled_back", "closed", "pir_opened"]  # a review follows
    assert rows(cli.db, "leases") == 0


# --- stuck changes: expired leases --------------------------------------------------------------


class Reaper:
    """Processes a test started: killed at teardown whatever the test's outcome."""

    def __init__(self) -> None:
        self.groups: list[subprocess.Popen[bytes]] = []
        self.pids: list[int] = []

    def spawn(self, cli: Cli, *args: str, env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
        """Start the CLI in its own process group (so the test can kill it and its children)."""
        proc = subprocess.Popen(
            cli.command(*args),
            env=cli.environment(env),
            cwd=cli.cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self.groups.append(proc)
        return proc

    def close(self) -> None:
        for proc in self.groups:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate(timeout=10)
        for pid in self.pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def reaper() -> Iterator[Reaper]:
    r = Reaper()
    try:
        yield r
    finally:
        r.close()


def _wait_for_file(path: Path, proc: subprocess.Popen[bytes], limit: float = 20) -> None:
    deadline = time.monotonic() + limit
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)
    time.sleep(0.05)  # written, not only created


# The second step blocks the first time it runs (until killed) and passes when run again.
LONG_STEP = "echo two >> c.log; test -f resumed && exit 0; touch resumed; echo $$ > step.pid; exec sleep 30"


def _strand(cli: Cli, ctx: Context, reaper: Reaper) -> tuple[str, str, str]:
    """Three implementing changes nobody carries out any more: (abandoned, stuck, killed)."""
    abandoned = _change(ctx, [{"run": "sh -c 'echo a1 >> a.log'"}, {"run": "sh -c 'echo a2 >> a.log'"}])
    (cli.cwd / "version.txt").write_text("v1\n")
    stuck = _change(ctx, [{"run": "true"}], [{"run": "sh -c 'echo v1 > version.txt'"}])
    killed = _change(
        ctx,
        [
            {"run": "echo one >> c.log", "shell": True},
            {"run": LONG_STEP, "shell": True},
            {"run": "echo three >> c.log", "shell": True},
        ],
        [{"run": "touch c-rolled-back"}],
    )
    proc = reaper.spawn(cli, "implement", killed, "--as", "ops")
    _wait_for_file(cli.cwd / "step.pid", proc)
    # The step runs in its own session: killing the CLI's group leaves it running; reap it later.
    reaper.pids.append(int((cli.cwd / "step.pid").read_text()))
    os.killpg(proc.pid, signal.SIGKILL)  # the implementing process dies mid-step
    proc.communicate(timeout=10)
    cli.ok("worker", "execute", "w1", abandoned)
    (cli.cwd / "version.txt").write_text("v2\n")  # w1 got this far, then vanished
    cli.ok("worker", "execute", "w1", stuck)
    return abandoned, stuck, killed


def test_stuck_changes_are_flagged_then_resumed_or_rolled_back(
    cli: Cli, svc: Callable[..., Context], rows: Rows, reaper: Reaper
) -> None:
    """Two changes a worker took and abandoned, and one whose `implement` was SIGKILLed mid-step."""
    cli.env["LEASE_TTL"] = LEASE_TTL
    ctx = svc()
    # A fourth change is busy with a step longer than LEASE_TTL: its heart-beats keep the lease.
    busy = _change(ctx, [{"run": "sleep 12"}])
    busy_proc = reaper.spawn(cli, "implement", busy, "--as", "ops-busy")
    abandoned, stuck, killed = _strand(cli, ctx, reaper)
    everyone = (abandoned, stuck, killed)
    assert {c: r["status"] for c, r in _leases(cli).items()} == dict.fromkeys((busy, *everyone), "live")

    _wait_for_expiry(ctx, *everyone)
    assert busy_proc.poll() is None, "the busy step should still be running"
    statuses = {c: r["status"] for c, r in _leases(cli).items()}
    assert statuses == {busy: "live", **dict.fromkeys(everyone, "expired")}  # not yet flagged
    ticked = json.loads(cli.ok("worker", "run", "--once", "--name", "supervisor"))
    assert sorted(ticked["flagged_leases"]) == sorted(everyone)
    statuses = {c: r["status"] for c, r in _leases(cli).items()}
    assert statuses == {busy: "live", **dict.fromkeys(everyone, "flagged")}
    _, err = busy_proc.communicate(timeout=30)
    assert busy_proc.returncode == 0, err.decode()
    doc = _doc(ctx, busy)
    assert doc["closure_status"] == "successful"
    assert "lease_expired" not in _actions(doc)
    for change_id, holder in ((abandoned, "w1"), (stuck, "w1"), (killed, "cli:ops")):
        doc = _doc(ctx, change_id)
        assert doc["state"] == "implementing"
        (expired,) = _trail(doc, "lease_expired")
        assert (expired["details"]["holder"], expired["details"]["state"]) == (holder, "implementing")
        assert "--resume" in expired["details"]["next"] and "rollback" in expired["details"]["next"]
    again = json.loads(cli.ok("worker", "run", "--once", "--name", "supervisor"))
    assert again["flagged_leases"] == []  # flagged once
    refused = cli("worker", "heartbeat", "w1", abandoned)
    assert refused.code == 1
    assert "expired and was flagged" in refused.err

    # the killed one resumes after its last good step
    res = cli("implement", killed, "--resume", "--as", "ops2")
    assert res.code == 0, res.err
    assert (cli.cwd / "c.log").read_text() == "one\ntwo\ntwo\nthree\n"  # step 1 was not run again
    doc = _doc(ctx, killed)
    assert (doc["state"], doc["closure_status"]) == ("closed", "successful")
    (resumed,) = _trail(doc, "implementation_resumed")
    assert (resumed["actor"], resumed["details"]) == ("ops2", {"from_step": 2})
    assert _trail(doc, "lease_taken_over")[0]["details"] == {"from": "cli:ops", "to": "cli:ops2"}

    # the abandoned one: the worker recorded no step, so the whole plan runs
    cli.ok("implement", abandoned, "--resume", "--as", "ops")
    assert (cli.cwd / "a.log").read_text() == "a1\na2\n"
    assert _doc(ctx, abandoned)["closure_status"] == "successful"

    # the stuck one: the operator rolls it back
    res = cli("rollback", stuck, "stuck", "--as", "ops")
    assert res.code == 0, res.err
    assert (cli.cwd / "version.txt").read_text() == "v1\n"
    doc = _doc(ctx, stuck)
    assert (doc["state"], doc["closure_status"]) == ("closed", "rolled_back")
    assert "rolled back by ops: stuck" in doc["closure_notes"]
    assert rows(cli.db, "leases") == 0


def _sqlite_only(cli: Cli) -> None:
    """Bugs of the service layer, whatever the store: one backend is enough (each waits LEASE_TTL)."""
    if str(cli.db).startswith("postgresql://"):
        pytest.skip("the same on both backends; run on SQLite only to save a LEASE_TTL wait")


def test_a_worker_whose_lease_was_flagged_cannot_report(cli: Cli, svc: Callable[..., Context]) -> None:
    _sqlite_only(cli)
    cli.env["LEASE_TTL"] = LEASE_TTL
    ctx = svc()
    change_id = _change(ctx, [{"run": "true"}], [{"run": "true"}])
    cli.ok("worker", "execute", "w1", change_id)
    _wait_for_expiry(ctx, change_id)
    assert json.loads(cli.ok("worker", "run", "--once"))["flagged_leases"] == [change_id]
    assert cli("worker", "heartbeat", "w1", change_id).code == 1
    late = cli("worker", "report_success", "w1", change_id, "done, late")
    assert late.code == 1
    assert _doc(ctx, change_id)["state"] == "implementing"  # still the operator's decision


def test_a_rollback_interrupted_by_a_crash_can_be_finished(
    cli: Cli, svc: Callable[..., Context], reaper: Reaper
) -> None:
    _sqlite_only(cli)
    cli.env["LEASE_TTL"] = LEASE_TTL
    ctx = svc()
    blocking = "test -f rb.pid && exit 0; echo $$ > rb.pid; exec sleep 30"  # blocks the first time only
    change_id = _change(
        ctx, [{"run": "false"}], [{"run": blocking, "shell": True}, {"run": "touch restored"}]
    )
    proc = reaper.spawn(cli, "implement", change_id, "--as", "ops")
    _wait_for_file(cli.cwd / "rb.pid", proc)
    reaper.pids.append(int((cli.cwd / "rb.pid").read_text()))
    os.killpg(proc.pid, signal.SIGKILL)  # dies in the middle of the rollback
    proc.communicate(timeout=10)
    _wait_for_expiry(ctx, change_id)
    assert json.loads(cli.ok("worker", "run", "--once"))["flagged_leases"] == [change_id]
    (expired,) = _trail(_doc(ctx, change_id), "lease_expired")
    assert expired["details"]["state"] == "rolling_back"

    res = cli("rollback", change_id, "the rollback was interrupted", "--as", "ops")
    if res.code != 0:
        res = cli("implement", change_id, "--resume", "--as", "ops")
    assert res.code in (0, 1), res.err
    doc = _doc(ctx, change_id)
    assert doc["state"] == "closed"
    assert (cli.cwd / "restored").exists()


# --- AUTO_IMPLEMENT -----------------------------------------------------------------------------


def test_worker_implements_approved_standard_and_emergency_changes_when_due(
    cli: Cli, svc: Callable[..., Context]
) -> None:
    def plan(name: str) -> list[Any]:
        return [{"run": f"echo ran >> {name}.txt", "shell": True}]

    # A standard change runs runbooks only (SPEC §11): this one appends to NAME.txt.
    (cli.cwd / "cortex-change.toml").write_text(
        '[runbooks.echo-ran]\nversion = 1\nrun = ["sh", "-c", "echo ran >> $0.txt", "{name}"]\n'
        'params = { name = "[a-z]+" }\n'
    )
    now = svc(IMPLEMENTATION_DELAY="0")
    emergency = _change(now, plan("emergency"), type="emergency", title="Hotfix")
    standard = _change(
        now,
        [{"runbook": "echo-ran", "params": {"name": "standard"}}],
        type="standard",
        category="infrastructure",
        standard_model="autoscale",
        parameters={"replicas": 4},
    )
    normal = _change(now, plan("normal"))  # approved too, but normal changes wait for a person
    later = _change(svc(IMPLEMENTATION_DELAY="3600"), plan("later"), type="emergency", title="Hotfix later")
    manual = _change(
        svc(IMPLEMENTATION_DELAY="0", AUTO_IMPLEMENT="false"),
        plan("manual"),
        type="emergency",
        title="Hotfix by hand",
    )
    docs = {c: _doc(now, c) for c in (emergency, standard, normal, later, manual)}
    assert {c: d["state"] for c, d in docs.items()} == dict.fromkeys(docs, "approved")
    assert docs[emergency]["approval_required"] == "emergency-cab"
    assert docs[standard]["approval_required"] == "pre-approved"

    ticked = json.loads(cli.ok("worker", "run", "--once", "--name", "auto"))
    assert sorted(t.split(":")[1] for t in ticked["timers_fired"] if t.startswith("implement:")) == sorted(
        [emergency, standard]
    )
    for change_id, name in ((emergency, "emergency"), (standard, "standard")):
        doc = _doc(now, change_id)
        assert (doc["state"], doc["closure_status"]) == ("closed", "successful"), name
        assert _trail(doc, "implementation_started")[0]["actor"] == "worker:auto"
        assert (cli.cwd / f"{name}.txt").read_text() == "ran\n"
    for change_id, name in ((normal, "normal"), (later, "later"), (manual, "manual")):
        assert _doc(now, change_id)["state"] == "approved", name
        assert not (cli.cwd / f"{name}.txt").exists()

    again = json.loads(cli.ok("worker", "run", "--once", "--name", "auto"))
    assert not [t for t in again["timers_fired"] if t.startswith("implement:")]
    assert (cli.cwd / "emergency.txt").read_text() == "ran\n"


# --- several workers on one store ---------------------------------------------------------------

RACED = 25


def test_two_worker_processes_never_run_a_change_twice(
    cli: Cli, svc: Callable[..., Context], reaper: Reaper
) -> None:
    """Two `worker run` processes race over approved emergency changes that are all due at once."""
    ctx = svc(IMPLEMENTATION_DELAY="0")
    ids = [
        _change(
            ctx, [{"run": f"echo ran >> out-{n}.txt", "shell": True}], type="emergency", title=f"Hotfix {n}"
        )
        for n in range(RACED)
    ]
    env = {"WORKER_POLL_INTERVAL": "1"}
    workers = [reaper.spawn(cli, "worker", "run", "--name", name, env=env) for name in ("wA", "wB")]
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if all(_doc(ctx, c)["state"] == "closed" for c in ids):
                break
            assert all(w.poll() is None for w in workers), [w.communicate() for w in workers]
            time.sleep(0.25)
    finally:
        for w in workers:
            if w.poll() is None:
                w.send_signal(signal.SIGTERM)
        outcomes = [w.communicate(timeout=30) for w in workers]
    for w, (_, err) in zip(workers, outcomes, strict=True):
        assert w.returncode == 0, err.decode()
        assert "Traceback" not in err.decode()
        assert "stopped" in err.decode()

    implementers = Counter()
    for n, change_id in enumerate(ids):
        assert (cli.cwd / f"out-{n}.txt").read_text() == "ran\n", change_id
        doc = _doc(ctx, change_id)
        assert (doc["state"], doc["closure_status"]) == ("closed", "successful")
        counts = Counter(_actions(doc))
        assert counts["implementation_started"] == 1 and counts["closed"] == 1
        (started,) = _trail(doc, "implementation_started")
        implementers[started["actor"]] += 1
    assert set(implementers) <= {"worker:wA", "worker:wB"}
    assert sum(implementers.values()) == RACED
