"""The transactional outbox end to end: queued with the event, delivered by workers, retried, dead-lettered.

Each test runs on SQLite and on PostgreSQL (`store_url`). Receivers are real local servers
(tests/notify/notify_support.py). Service-level tests move a clock by hand instead of sleeping.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import json
import subprocess
from collections import Counter
from collections.abc import Callable
from typing import Any

from worker_support import (
    HeldRequests,
    actions,
    emergency,
    event_id,
    file_for_approval,
    outbox_rows,
    query_ddl,
    webhook_requests,
)

from cortex_change.notify.message import Message
from cortex_change.notify.webhook import verify_signature
from cortex_change.services import queries, worker
from cortex_change.services.context import Context
from cortex_change.store import outbox
from support import HttpReceiver, Received, SmtpServer, query

SECRET = "whsec-0123456789-do-not-leak"
DOCUMENTED_FIELDS = {
    "ask",
    "at",
    "change",
    "change_id",
    "event_id",
    "kind",
    "recipients",
    "subject",
    "text",
    "type",
    "version",
}
TECH_LEADS = ["coordinator-master", "tech-lead"]  # TECH_LEADS' default, sorted


def _signature(body: bytes) -> str:
    return "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


def _check_signed(request: Received, event: str) -> None:
    """The documented webhook headers: event id, HMAC signature of the raw body, no secret."""
    headers = request.headers
    assert headers["content-type"] == "application/json"
    assert headers["x-cortex-event-id"] == event
    assert headers["x-cortex-signature"] == _signature(request.body)
    assert verify_signature(request.body, headers["x-cortex-signature"], SECRET)
    assert not verify_signature(request.body + b" ", headers["x-cortex-signature"], SECRET)
    assert headers["user-agent"].startswith("cortex-change/")
    assert SECRET not in json.dumps(headers) and SECRET.encode() not in request.body


def _tick(ctx: Context, name: str = "w1") -> dict[str, Any]:
    return worker.tick(ctx, name).as_dict()


# ----------------------------------------------------------------------------- through the CLI


def test_approval_request_is_queued_with_its_event_and_delivered_signed(
    quiet_cli: Any, receiver: HttpReceiver, store_url: str
) -> None:
    cli = quiet_cli
    cli.env.update(WEBHOOK_URL=receiver.url("/hooks/cortex"), WEBHOOK_SECRET=SECRET)
    change_id = cli.create("normal", "deployment", "Deploy build 42", "Roll out build 42")
    assert outbox_rows(store_url) == []  # `created` notifies nobody

    cli.ok("assess", change_id)
    # Committed with the transition: the row is there before any worker ran.
    (row,) = outbox_rows(store_url)
    approval_event = event_id(store_url, change_id, "approval_requested")
    assert (row["event_id"], row["channel"], row["kind"], row["change_id"]) == (
        approval_event,
        "webhook",
        "approval_requested",
        change_id,
    )
    assert (row["state"], row["attempts"]) == ("pending", 0)
    listed = json.loads(cli.ok("outbox", "list", "--json"))
    assert int(query(store_url, "SELECT count(*) FROM outbox")[0][0]) == len(listed) == 1
    assert listed[0]["message_id"] == row["message_id"]
    assert (listed[0]["event_id"], listed[0]["state"]) == (approval_event, "pending")

    # Refused and bad-input commands queue nothing.
    assert cli("approve", change_id, "alice", "my own change").code == 1  # segregation of duties
    assert cli("approve", change_id, "ops-lead", "not a technical lead").code == 1
    assert cli("assess", change_id).code == 1  # already assessed
    assert cli("create", "normal", "deployment", "").code == 2
    assert cli("create", "sideways", "deployment", "Bad type").code == 2
    assert cli("approve", "RFC-20990101000000-abcdef", "tech-lead", "ok").code == 3
    assert [r["message_id"] for r in outbox_rows(store_url)] == [row["message_id"]]
    assert receiver.requests == []  # nothing is sent before a worker runs

    done = json.loads(cli.ok("worker", "run", "--once", "--name", "w1"))
    assert (done["delivered"], done["failed"], done["dead_lettered"]) == (1, 0, 0)
    (request,) = webhook_requests(receiver)
    assert request.path == "/hooks/cortex"
    body = request.json()
    assert set(body) >= DOCUMENTED_FIELDS
    assert (body["type"], body["version"]) == ("cortex-change.notification", 1)
    assert (body["kind"], body["change_id"], body["event_id"]) == (
        "approval_requested",
        change_id,
        approval_event,
    )
    assert body["recipients"] == TECH_LEADS
    assert body["ask"]
    assert change_id in body["subject"]
    assert body["subject"].startswith("[cortex-change] Approval requested")
    (at,) = query(store_url, "SELECT at FROM audit_events WHERE event_id=?", (approval_event,))[0]
    assert body["at"] == at
    change = body["change"]
    assert (change["title"], change["type"], change["state"]) == (
        "Deploy build 42",
        "normal",
        "pending_approval",
    )
    assert (change["risk_score"], change["risk_level"]) == (40, "medium")
    # The raw body is compact JSON with sorted keys (what the signature covers).
    compact = json.dumps(body, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    assert request.body == compact.encode()

    _check_signed(request, approval_event)

    (row,) = outbox_rows(store_url)
    assert (row["state"], row["attempts"], row["claimed_by"]) == ("delivered", 1, "w1")
    assert row["delivered_at"] is not None and row["last_error"] is None
    assert json.loads(cli.ok("outbox", "list", "--json"))[0]["state"] == "delivered"
    # A later pass does not send it again.
    assert json.loads(cli.ok("worker", "run", "--once"))["delivered"] == 0
    assert len(receiver.requests) == 1


def _refuse_outbox_inserts(store_url: str, refuse: bool) -> None:
    """A trigger that makes every INSERT into the outbox fail (or removes it)."""
    if store_url.startswith("postgresql://"):
        statements = (
            [
                "CREATE FUNCTION outbox_refuses() RETURNS trigger AS "
                "$$ BEGIN RAISE EXCEPTION 'outbox refuses'; END $$ LANGUAGE plpgsql",
                "CREATE TRIGGER outbox_refuses BEFORE INSERT ON outbox "
                "FOR EACH ROW EXECUTE FUNCTION outbox_refuses()",
            ]
            if refuse
            else ["DROP TRIGGER outbox_refuses ON outbox", "DROP FUNCTION outbox_refuses()"]
        )
    else:
        statements = (
            ["CREATE TRIGGER outbox_refuses BEFORE INSERT ON outbox BEGIN SELECT RAISE(ABORT, 'no'); END"]
            if refuse
            else ["DROP TRIGGER outbox_refuses"]
        )
    for sql in statements:
        query_ddl(store_url, sql)


def test_the_transition_and_its_outbox_row_commit_together(
    quiet_cli: Any, receiver: HttpReceiver, store_url: str
) -> None:
    """If the outbox row cannot be written, the transition that caused it is not written either."""
    cli = quiet_cli
    cli.env.update(WEBHOOK_URL=receiver.url())
    change_id = cli.create("normal", "deployment", "Deploy build 42")
    before = actions(store_url, change_id)
    _refuse_outbox_inserts(store_url, True)
    res = cli("assess", change_id)
    assert res.code != 0
    assert cli.show(change_id)["state"] == "pending_assessment"
    assert actions(store_url, change_id) == before  # no `assessed`, no `approval_requested`
    assert outbox_rows(store_url) == []

    _refuse_outbox_inserts(store_url, False)
    cli.ok("assess", change_id)
    (row,) = outbox_rows(store_url)
    assert row["event_id"] == event_id(store_url, change_id, "approval_requested")


def test_a_worker_started_after_the_committing_process_exited_delivers(
    quiet_cli: Any, receiver: HttpReceiver, store_url: str
) -> None:
    """Nothing is sent in the committing process: once `assess` has exited, the row is all there is."""
    cli = quiet_cli
    cli.env.update(WEBHOOK_URL=receiver.url("/hooks"))
    ids = [cli.create("normal", "deployment", f"Deploy build {n}") for n in range(3)]
    for change_id in ids:
        cli.ok("assess", change_id)
    assert receiver.requests == []
    assert [r["state"] for r in outbox_rows(store_url)] == ["pending"] * 3

    done = json.loads(cli.ok("worker", "run", "--once", "--name", "late-worker"))
    assert done["delivered"] == 3
    got = sorted(r.headers["x-cortex-event-id"] for r in webhook_requests(receiver))
    assert got == sorted(event_id(store_url, c, "approval_requested") for c in ids)
    assert {(r["state"], r["claimed_by"]) for r in outbox_rows(store_url)} == {("delivered", "late-worker")}


# ----------------------------------------------------------------------------- retries, at the service level


def test_a_failed_delivery_is_retried_after_the_backoff_with_the_same_event_id(
    make_ctx: Callable[..., Context], clock: Any, receiver: HttpReceiver, store_url: str
) -> None:
    ctx = make_ctx(WEBHOOK_URL=receiver.url(), WEBHOOK_SECRET=SECRET, OUTBOX_RETRY_BASE="30")
    change_id = file_for_approval(ctx)
    approval_event = event_id(store_url, change_id, "approval_requested")

    receiver.status, receiver.reply = 500, b"upstream down"
    assert _tick(ctx)["failed"] == 1
    (row,) = outbox_rows(store_url)
    assert (row["state"], row["attempts"]) == ("pending", 1)
    assert row["next_attempt_at"] == clock().timestamp() + 30  # OUTBOX_RETRY_BASE, in the future
    assert "HTTP 500" in row["last_error"] and "upstream down" in row["last_error"]

    receiver.status = 200
    clock.advance(seconds=29)
    done = _tick(ctx)
    assert (done["delivered"], done["failed"]) == (0, 0)  # not due yet: not tried
    assert len(receiver.requests) == 1

    clock.advance(seconds=2)
    assert _tick(ctx, "w2")["delivered"] == 1
    first, second = webhook_requests(receiver)
    assert first.headers["x-cortex-event-id"] == second.headers["x-cortex-event-id"] == approval_event
    assert first.body == second.body  # byte for byte, so the signature is the same too
    assert (
        first.headers["x-cortex-signature"] == second.headers["x-cortex-signature"] == _signature(first.body)
    )
    (row,) = outbox_rows(store_url)
    assert (row["state"], row["attempts"], row["claimed_by"]) == ("delivered", 2, "w2")


def test_backoff_doubles_per_attempt(
    make_ctx: Callable[..., Context], clock: Any, receiver: HttpReceiver, store_url: str
) -> None:
    ctx = make_ctx(WEBHOOK_URL=receiver.url(), OUTBOX_RETRY_BASE="10", OUTBOX_MAX_ATTEMPTS="4")
    file_for_approval(ctx)
    receiver.status = 503
    waits = []
    for _ in range(3):
        _tick(ctx)
        (row,) = outbox_rows(store_url)
        waits.append(row["next_attempt_at"] - clock().timestamp())
        clock.advance(seconds=waits[-1])
    assert waits == [10, 20, 40]
    assert _tick(ctx)["dead_lettered"] == 1
    (row,) = outbox_rows(store_url)
    assert (row["state"], row["attempts"]) == ("dead", 4)
    assert len(receiver.requests) == 4


def test_dead_letter_after_max_attempts_then_retry_by_hand(
    make_ctx: Callable[..., Context], clock: Any, receiver: HttpReceiver, store_url: str, quiet_cli: Any
) -> None:
    env = {"WEBHOOK_URL": receiver.url(), "OUTBOX_MAX_ATTEMPTS": "2", "OUTBOX_RETRY_BASE": "30"}
    ctx = make_ctx(**env)
    cli = quiet_cli
    cli.env.update(env)
    change_id = file_for_approval(ctx)
    receiver.status = 500

    done = _tick(ctx)
    assert (done["failed"], done["dead_lettered"]) == (1, 0)
    clock.advance(seconds=31)
    done = _tick(ctx)
    assert (done["failed"], done["dead_lettered"]) == (1, 1)
    (row,) = outbox_rows(store_url)
    assert (row["state"], row["attempts"]) == ("dead", 2)
    clock.advance(hours=1)
    assert _tick(ctx)["failed"] == 0  # a dead letter is not tried again
    assert len(receiver.requests) == 2

    (dead,) = json.loads(cli.ok("outbox", "list", "--failed", "--json"))
    assert (dead["message_id"], dead["state"], dead["attempts"]) == (row["message_id"], "dead", 2)
    assert (dead["kind"], dead["change_id"]) == ("approval_requested", change_id)
    assert "HTTP 500" in dead["last_error"]
    assert row["message_id"] in cli.ok("outbox", "list", "--failed")

    assert row["message_id"] in cli.ok("outbox", "retry", row["message_id"])
    (row,) = outbox_rows(store_url)
    assert (row["state"], row["attempts"]) == ("pending", 0)
    assert json.loads(cli.ok("outbox", "list", "--failed", "--json")) == []

    receiver.status = 200
    clock.advance(hours=1)  # the CLI queued it at the real time; the test clock is ahead of it
    assert _tick(ctx)["delivered"] == 1
    (row,) = outbox_rows(store_url)
    assert (row["state"], row["attempts"]) == ("delivered", 1)
    assert {r.headers["x-cortex-event-id"] for r in receiver.requests} == {row["event_id"]}
    assert len(receiver.requests) == 3

    assert cli("outbox", "retry", row["message_id"]).code == 3  # delivered: not a dead letter
    assert cli("outbox", "retry", "0123456789abcdef01234567").code == 3
    for malformed in ("not-an-id!", "x" * 65, "'; DROP TABLE outbox; --"):
        res = cli("outbox", "retry", malformed)
        assert res.code == 2, (malformed, res)
        assert len(res.err.splitlines()) == 1
    assert int(query(store_url, "SELECT count(*) FROM outbox")[0][0]) == 1


def test_last_error_is_the_channels_one_line_reason(
    make_ctx: Callable[..., Context], receiver: HttpReceiver, store_url: str
) -> None:
    ctx = make_ctx(WEBHOOK_URL=receiver.url())
    file_for_approval(ctx)
    receiver.status = 500
    _tick(ctx)
    (row,) = outbox_rows(store_url)
    origin = receiver.url().rstrip("/")
    assert row["last_error"].startswith(f"webhook: {origin} answered HTTP 500")


# ----------------------------------------------------------------------------- dead workers, several workers


def test_a_claim_by_a_worker_that_died_is_taken_over_after_the_hold(
    make_ctx: Callable[..., Context], clock: Any, receiver: HttpReceiver, store_url: str
) -> None:
    ctx = make_ctx(WEBHOOK_URL=receiver.url())
    file_for_approval(ctx)
    claimed_at = clock().timestamp()
    with ctx.db.transaction() as tx:
        claimed = outbox.claim_due(tx, claimed_at, "dead-worker", worker.MESSAGE_HOLD)
    assert len(claimed) == 1  # ... and the worker dies before sending or marking it
    message_id = claimed[0][0]

    other = make_ctx(WEBHOOK_URL=receiver.url())  # another worker process
    clock.advance(seconds=60)
    assert _tick(other, "w2")["delivered"] == 0  # the claim is still live
    assert receiver.requests == []

    clock.advance(seconds=61)  # 121 s: past MESSAGE_HOLD
    assert worker.MESSAGE_HOLD < 121
    assert _tick(other, "w2")["delivered"] == 1
    assert len(receiver.requests) == 1
    # The dead worker's late bookkeeping, were it to wake up, changes nothing.
    with ctx.db.transaction() as tx:
        outbox.delivered(tx, message_id, "dead-worker", clock().timestamp())
        outbox.failed(tx, message_id, "dead-worker", "late", clock().timestamp() + 30)
    (row,) = outbox_rows(store_url)
    assert (row["state"], row["attempts"], row["claimed_by"], row["last_error"]) == (
        "delivered",
        1,
        "w2",
        None,
    )


def _queue_messages(ctx: Context, n: int) -> list[str]:
    """`n` webhook rows in one transaction, each with its own event id; returns the event ids."""
    now = ctx.clock().timestamp()
    rows: list[outbox.NewMessage] = []
    for i in range(n):
        event = f"{i:032x}"
        message = Message(
            event_id=event,
            kind="approval_requested",
            change_id=f"RFC-20260101000000-{i:06x}",
            subject=f"[cortex-change] message {i}",
            text="load",
            ask="",
        )
        rows.append(
            (
                f"{i:024x}",
                event,
                "webhook",
                message.kind,
                message.change_id,
                json.dumps(message.to_json()),
                now,
            )
        )
    with ctx.db.transaction() as tx:
        outbox.enqueue(tx, rows)
    return [r[1] for r in rows]


def test_concurrent_workers_deliver_every_message_exactly_once(
    make_ctx: Callable[..., Context], receiver: HttpReceiver, store_url: str, quiet_cli: Any
) -> None:
    cli = quiet_cli
    cli.env.update(WEBHOOK_URL=receiver.url("/load"))
    ctx = make_ctx()
    events = _queue_messages(ctx, 200)
    receiver.delay = 0.005  # 5 ms a request: one worker alone would need a second
    # Hold the first deliveries until two workers hold claims at once, so they surely overlap
    # (well within the channel's 10 s timeout; after 5 s the receiver answers anyway).
    held = HeldRequests()
    receiver.requests = held
    claimers = "SELECT count(DISTINCT claimed_by) FROM outbox WHERE claimed_by IS NOT NULL"
    watcher = held.release_when(lambda: int(query(store_url, claimers)[0][0]) >= 2, within=5.0)

    names = ["w1", "w2", "w3"]
    procs = [
        subprocess.Popen(
            cli.command("worker", "run", "--once", "--name", name),
            env=cli.environment(),
            cwd=cli.cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for name in names
    ]
    reports = {}
    for name, proc in zip(names, procs, strict=True):
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
        reports[name] = json.loads(out)
    watcher.join()

    seen = Counter(r.headers["x-cortex-event-id"] for r in webhook_requests(receiver))
    assert [e for e, n in seen.items() if n > 1] == []  # no message delivered twice
    assert set(seen) == set(events)
    assert sum(r["delivered"] for r in reports.values()) == 200
    assert sum(r["failed"] for r in reports.values()) == 0
    rows = outbox_rows(store_url)
    assert {r["state"] for r in rows} == {"delivered"} and len(rows) == 200
    by_worker = Counter(r["claimed_by"] for r in rows)
    assert by_worker == Counter({n: r["delivered"] for n, r in reports.items() if r["delivered"]})
    assert len(by_worker) >= 2, f"the workers did not overlap: {by_worker}"


# ----------------------------------------------------------------------------- Slack, e-mail, PagerDuty


def test_slack_email_and_pagerduty_routing(
    make_ctx: Callable[..., Context],
    clock: Any,
    receiver: HttpReceiver,
    smtp_server: Callable[..., SmtpServer],
    store_url: str,
) -> None:
    smtp = smtp_server()
    ctx = make_ctx(
        SLACK_NOTIFICATIONS="true",
        SLACK_WEBHOOK_URL=receiver.url("/slack/T000/B000/XXXX"),
        EMAIL_NOTIFICATIONS="true",
        EMAIL_SMTP_SERVER=f"127.0.0.1:{smtp.port}",
        EMAIL_DOMAIN="example.test",
        PAGERDUTY_ENABLED="true",
        PAGERDUTY_API_KEY="pd-routing-key-123",
        PAGERDUTY_EVENTS_URL=receiver.url("/pagerduty/v2/enqueue"),
    )

    def paths(prefix: str) -> list[Any]:
        return [r for r in receiver.requests if r.path.startswith(prefix)]

    normal = file_for_approval(ctx)
    assert sorted(r["channel"] for r in outbox_rows(store_url)) == ["email", "slack"]  # never paged
    assert _tick(ctx)["delivered"] == 2
    approval_event = event_id(store_url, normal, "approval_requested")
    (slack,) = paths("/slack/")
    assert normal in slack.json()["text"] and "Approval requested" in slack.json()["text"]
    (mail,) = smtp.messages
    assert sorted(mail.rcpt_tos) == ["coordinator-master@example.test", "tech-lead@example.test"]
    parsed = email.message_from_bytes(mail.content, policy=email.policy.default)
    assert parsed["X-Cortex-Event-Id"] == approval_event
    assert parsed["Message-ID"] == f"<{approval_event}.approval_requested@cortex-change>"
    assert parsed["X-Cortex-Change-Id"] == normal
    assert paths("/pagerduty/") == []

    urgent = emergency(ctx)
    kinds = Counter((r["kind"], r["channel"]) for r in outbox_rows(store_url, change_id=urgent))
    assert kinds[("emergency", "pagerduty")] == 1
    assert sum(n for (_, channel), n in kinds.items() if channel == "pagerduty") == 1
    _tick(ctx)
    assert {r["state"] for r in outbox_rows(store_url)} == {"delivered"}
    (page,) = paths("/pagerduty/")
    trigger = page.json()
    assert (trigger["event_action"], trigger["dedup_key"]) == ("trigger", urgent)
    assert trigger["routing_key"] == "pd-routing-key-123"
    assert trigger["payload"]["custom_details"]["event_id"] == event_id(store_url, urgent, "assessed")
    assert trigger["payload"]["custom_details"]["kind"] == "emergency"
    ecab = [m for m in smtp.messages if urgent in m.content.decode("utf-8", "replace")]
    assert ["security-oncall@example.test", "tech-lead-oncall@example.test"] in [
        sorted(m.rcpt_tos) for m in ecab
    ]

    # AUTO_IMPLEMENT carries it out; its close resolves the same PagerDuty alert.
    clock.advance(seconds=301)
    _tick(ctx)
    assert queries.get_change(ctx, change_id=urgent)["state"] == "closed"
    _, resolve = paths("/pagerduty/")
    assert resolve.json() == {
        "routing_key": "pd-routing-key-123",
        "event_action": "resolve",
        "dedup_key": urgent,
    }
    assert {r["state"] for r in outbox_rows(store_url)} == {"delivered"}
    assert len(paths("/pagerduty/")) == 2
