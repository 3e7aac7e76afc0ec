"""Rule refusals exit 1, leave the record unchanged and write exactly one audit event."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import Cli


def _refused(cli: Cli, change_id: str, *args: str, action: str = "refused") -> str:
    """Run a command that a rule must refuse; check what was (not) written; return stderr."""
    record = cli.record(change_id)
    changes, events = cli.counts()
    res = cli(*args)
    assert res.code == 1, (res.code, res.err)
    assert res.out == ""
    assert len(res.err.splitlines()) == 1, res.err
    assert cli.record(change_id) == record  # same version, same document
    assert cli.counts() == (changes, events + 1)
    last = cli.events()[-1]
    assert (last["change_id"], last["action"]) == (change_id, action)
    assert last["details"]["error"] in res.err
    return res.err


def test_segregation_of_duties_self_approval(cli: Cli) -> None:
    change_id = cli.create("normal", "deployment", "Mine", requester="tech-lead")
    cli.ok("assess", change_id)
    err = _refused(cli, change_id, "approve", change_id, "tech-lead", "trust me")
    assert "SEGREGATION_OF_DUTIES" in err
    assert cli.events()[-1]["actor"] == "tech-lead"
    err = _refused(cli, change_id, "reject", change_id, "tech-lead", "changed my mind")
    assert "SEGREGATION_OF_DUTIES" in err


def test_segregation_of_duties_can_be_switched_off(cli: Cli) -> None:
    cli.env["SEGREGATION_OF_DUTIES"] = "false"
    change_id = cli.create("normal", "deployment", "Mine", requester="tech-lead")
    cli.ok("assess", change_id)
    cli.ok("approve", change_id, "tech-lead", "allowed now")
    assert cli.show(change_id)["state"] == "approved"


def test_approving_without_the_role_names_role_and_holders(cli: Cli) -> None:
    change_id = cli.create("normal", "deployment", "Needs a tech lead")
    cli.ok("assess", change_id)
    err = _refused(cli, change_id, "approve", change_id, "ops-lead", "ok")
    assert "ops-lead" in err
    assert "technical-lead" in err
    assert "TECH_LEADS" in err
    assert "tech-lead" in err
    assert "coordinator-master" in err


def test_implementing_a_pending_cab_change_is_an_unauthorized_attempt(cli: Cli) -> None:
    change_id = cli.create("normal", "deployment", "Big one", "--impact", "critical", "--service", "a")
    cli.ok("assess", change_id)
    assert cli.show(change_id)["state"] == "pending_cab"
    err = _refused(cli, change_id, "implement", change_id, "--as", "cowboy", action="unauthorized_attempt")
    assert "pending_cab" in err
    assert "approved" in err
    assert cli.events()[-1]["actor"] == "cowboy"

    # A refused attempt changed nothing: the KPI counts observed changes no change covered
    # (issue 15), and with no observation source yet it has no value rather than a made-up 0.
    report = json.loads(cli.ok("metrics", "today", "--json"))
    kpi = {k["key"]: k for k in report["kpis"]}["unauthorized_changes"]
    assert (kpi["value"], kpi["met"]) == (None, None)
    assert "no observed changes yet" in kpi["note"]


def test_high_risk_approval_without_rollback_plan(cli: Cli) -> None:
    change_id = cli.create(
        "normal",
        "deployment",
        "No way back",
        "--impact",
        "critical",
        "--service",
        "a",
        "--implementation-plan",
        '{"steps": ["deploy"]}',
    )
    cli.ok("assess", change_id)
    assert cli.show(change_id)["risk_level"] == "high"
    err = _refused(cli, change_id, "approve", change_id, "tech-lead", "ok")
    assert "REQUIRE_ROLLBACK_PLAN" in err
    assert "rollback plan" in err
    assert "REQUIRE_DOCUMENTATION" not in err  # the implementation plan is there

    cli.ok("update", change_id, "--rollback-plan", '{"steps": ["undo"]}', "--as", "alice")
    cli.ok("approve", change_id, "tech-lead", "ok now")
    assert cli.show(change_id)["approvals"][0]["approver"] == "tech-lead"


def test_closing_before_implementation_and_double_close(cli: Cli) -> None:
    change_id = cli.create("normal", "documentation", "Docs", "--impact", "low")
    cli.ok("assess", change_id)  # auto-approved
    err = _refused(
        cli, change_id, "close", change_id, "successful", "--as", "ops", action="unauthorized_attempt"
    )
    assert "approved" in err
    cli.ok("implement", change_id, "--as", "ops")
    cli.ok("close", change_id, "successful", "--as", "ops")
    err = _refused(cli, change_id, "close", change_id, "failed", "--as", "ops", action="unauthorized_attempt")
    assert "closed" in err


def test_assess_twice_needs_reassess(cli: Cli) -> None:
    change_id = cli.create("normal", "deployment", "Twice")
    cli.ok("assess", change_id)
    _refused(cli, change_id, "assess", change_id, action="unauthorized_attempt")
    cli.ok("assess", change_id, "--reassess")
    actions = [e["action"] for e in cli.events(change_id)]
    assert actions.count("assessed") == 1
    assert actions.count("reassessed") == 1
