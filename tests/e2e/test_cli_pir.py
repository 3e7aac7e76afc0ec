"""`cortex-change pir …` through the real console script, on SQLite and PostgreSQL: a failed close
opens the review; findings, action items, completion; refusals, bad input and unknown ids each
one line with their exit code, writing nothing but a refusal's audit event."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from support import query

if TYPE_CHECKING:
    from conftest import Cli

TEXT_PLANS = ("--implementation-plan", '{"steps": ["Deploy"]}', "--rollback-plan", '{"steps": ["Revert"]}')


def failed_change(cli: Cli) -> str:
    change_id = cli.create("normal", "deployment", "Deploy build 7", "d", *TEXT_PLANS)
    cli.ok("assess", change_id, "--as", "alice")
    cli.ok("approve", change_id, "tech-lead", "looks fine")
    cli.ok("implement", change_id, "--as", "ops")
    cli.ok("close", change_id, "failed", "errors after deploy", "--as", "alice")
    return change_id


def tomorrow() -> str:
    return (datetime.now(UTC).date() + timedelta(days=1)).isoformat()


def written(cli: Cli) -> tuple[int, ...]:
    return tuple(
        int(query(cli.db, f"SELECT count(*) FROM {t}")[0][0])
        for t in ("audit_events", "pirs", "pir_actions", "outbox", "timers")
    )


def test_a_review_from_failure_to_completion(cli: Cli) -> None:
    change_id = failed_change(cli)
    listed = cli.ok("pir", "list")
    assert listed.startswith(f"{change_id}  open  due ") and "closed failed  'Deploy build 7'" in listed
    doc = json.loads(cli.ok("pir", "show", change_id))
    assert (doc["status"], doc["owner"], doc["implementer"], doc["actions"]) == ("open", "alice", "ops", [])

    text = 'Root cause: "$(rm -rf /)" stayed text\nSecond line'
    assert (
        cli.ok("pir", "findings", change_id, text, "--as", "ops")
        == f"{change_id}: findings recorded by ops\n"
    )
    out = cli.ok(
        "pir",
        "action",
        "add",
        change_id,
        "Alert on drift",
        "--owner",
        "dana",
        "--due",
        tomorrow(),
        "--as",
        "alice",
    )
    assert out == f"{change_id}: action A1 for dana, due {tomorrow()}\n"
    out = cli.ok("pir", "complete", change_id, "--as", "change-manager")
    assert (
        out == f"{change_id}: post-implementation review completed by change-manager "
        "(1 action item(s) still open)\n"
    )
    assert (
        cli.ok("pir", "action", "done", change_id, "A1", "--as", "dana") == f"{change_id}: action A1 done\n"
    )

    doc = json.loads(cli.ok("pir", "show", change_id))
    assert doc["findings"] == text
    assert (doc["status"], doc["actions"][0]["status"], doc["actions"][0]["done_by"]) == (
        "completed",
        "done",
        "dana",
    )
    assert cli.ok("pir", "list") == ""  # nothing open
    (row,) = json.loads(cli.ok("pir", "list", "--all", "--json"))
    assert (row["change_id"], row["status"], row["actions_open"]) == (change_id, "completed", 0)
    assert json.loads(cli.ok("pir", "list", "--overdue", "--json")) == []
    trail = [e["action"] for e in cli.events(change_id) if e["action"].startswith("pir_")]
    assert trail == [
        "pir_opened",
        "pir_findings_recorded",
        "pir_action_added",
        "pir_completed",
        "pir_action_done",
    ]
    report = json.loads(cli.ok("metrics", "today", "--json"))["post_implementation_reviews"]
    assert report == {"opened": 1, "completed": 1, "overdue": 0, "actions_open": 0, "actions_overdue": 0}
    assert "Post-implementation reviews: 1 opened, 1 completed, 0 overdue" in cli.ok("metrics")


def test_refusals_bad_input_and_unknown_ids(cli: Cli) -> None:
    change_id = failed_change(cli)
    before = written(cli)
    cases: list[tuple[tuple[str, ...], int, str]] = [
        (("pir", "findings", change_id, "", "--as", "alice"), 2, "findings: must not be empty"),
        (("pir", "findings", change_id, "bell\x07", "--as", "alice"), 2, "findings: must not hold control"),
        (
            (
                "pir",
                "action",
                "add",
                change_id,
                "Fix",
                "--owner",
                "dana",
                "--due",
                "2001-01-01",
                "--as",
                "alice",
            ),
            2,
            "due: 2001-01-01 is in the past",
        ),
        (
            ("pir", "action", "add", change_id, "Fix", "--owner", "dana", "--due", "soon", "--as", "alice"),
            2,
            "due: 'soon' is not a date",
        ),
        (
            ("pir", "action", "add", change_id, "Fix", "--owner", " ", "--due", tomorrow(), "--as", "alice"),
            2,
            "owner: must not be empty",
        ),
        (("pir", "action", "add", change_id, "Fix", "--due", tomorrow()), 2, "--owner"),
        (
            ("pir", "action", "done", change_id, "B1", "--as", "alice"),
            2,
            "action_id: 'B1' is not an action item id",
        ),
        (("pir", "show", "RFC-20200101000000-abcdef"), 3, "RFC-20200101000000-abcdef"),
        (("pir", "show", "not-an-id"), 2, "change_id"),
        (("pir", "list", "--bogus"), 2, "unrecognized arguments"),
    ]
    for args, code, message in cases:
        res = cli(*args)
        assert (res.code, res.out) == (code, ""), (args, res)
        assert message in res.err and res.err.count("\n") == 1, (args, res.err)
        assert written(cli) == before, args
    # A rule's refusal is one line, exit 1, and its audit event only.
    res = cli("pir", "complete", change_id, "--as", "alice")
    assert res.code == 1 and "alice may not complete the post-implementation review" in res.err
    res = cli("pir", "complete", change_id, "--as", "change-manager")
    assert res.code == 1 and "it needs findings" in res.err
    after = written(cli)
    assert after[0] == before[0] + 2 and after[1:] == before[1:]
    assert [e["action"] for e in cli.events(change_id)][-2:] == ["refused", "refused"]


def test_no_review_for_a_successful_change(cli: Cli) -> None:
    change_id = cli.create("normal", "deployment", "Deploy build 8", "d", *TEXT_PLANS)
    cli.ok("assess", change_id, "--as", "alice")
    cli.ok("approve", change_id, "tech-lead", "fine")
    cli.ok("implement", change_id, "--as", "ops")
    cli.ok("close", change_id, "successful", "fine", "--as", "alice")
    res = cli("pir", "show", change_id)
    assert res.code == 3 and "has no post-implementation review" in res.err
    assert cli.ok("pir", "list", "--all") == ""
