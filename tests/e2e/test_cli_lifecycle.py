"""The seed's Quick Start and every approval route, through the real console script."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import Cli

PLANS = (
    "--implementation-plan",
    '{"steps": ["deploy", "smoke test"], "estimated_duration": "15m"}',
    "--rollback-plan",
    '{"steps": ["kubectl rollout undo"], "max_duration": "5m"}',
)
ID_LINE = re.compile(r"^RFC-\d{14}-[0-9a-f]{6}\n$")


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _state(stdout: str) -> str:
    match = re.search(r"state (\w+)\s*$", stdout)
    assert match, stdout
    return match.group(1)


def test_quick_start_lifecycle(cli: Cli) -> None:
    res = cli("create", "normal", "deployment", "Deploy new feature X", "Detailed description", user="dev")
    assert res.code == 0, res.err
    assert ID_LINE.match(res.out), repr(res.out)  # `ID=$(create ...)` captures exactly the id
    change_id = res.out.strip()

    cli.ok("assess", change_id)
    cli.ok("approve", change_id, "tech-lead", "Looks good")
    cli.ok("implement", change_id, user="dev")
    cli.ok("close", change_id, "successful", "Deployed without issues", user="dev")

    doc = cli.show(change_id)
    assert doc["change_id"] == change_id
    assert doc["state"] == "closed"
    assert doc["closure_status"] == "successful"
    assert doc["closure_notes"] == "Deployed without issues"
    assert doc["requested_by"] == "dev"
    assert doc["risk_score"] == 40  # medium 20 + no services 0 + deployment 15 + neutral history 5
    assert doc["risk_level"] == "medium"
    assert doc["approval_required"] == "technical-lead"
    assert [(a["approver"], a["role"], a["decision"]) for a in doc["approvals"]] == [
        ("tech-lead", "technical-lead", "approved")
    ]
    actions = [e["action"] for e in doc["audit_trail"]]
    assert actions == [
        "created",
        "assessed",
        "approval_requested",
        "approved",
        "implementation_started",
        "implemented",
        "closed",
    ]
    seqs = [e["seq"] for e in doc["audit_trail"]]
    assert seqs == sorted(seqs)
    assert set(doc["compliance"]) == {"soc2"}
    assert {c["control"] for c in doc["compliance"]["soc2"]} >= {"audit_trail", "segregation_of_duties"}
    m = doc["metrics"]
    assert all(m[k] for k in ("created_at", "assessed_at", "approved_at", "implemented_at", "closed_at"))
    assert m["mtta_seconds"] == (_time(m["approved_at"]) - _time(m["created_at"])).total_seconds()
    assert cli.ok("audit", "verify").startswith("audit chain intact: 7 events")


def test_cab_route_needs_two_distinct_members(cli: Cli) -> None:
    change_id = cli.create(
        "normal",
        "deployment",
        "Migrate DB",
        "--impact",
        "critical",
        "--service",
        "a",
        "--service",
        "b",
        *PLANS,
    )
    assert "route: cab" in cli.ok("assess", change_id)
    doc = cli.show(change_id)
    assert (doc["risk_score"], doc["risk_level"], doc["state"]) == (70, "high", "pending_cab")

    assert _state(cli.ok("approve", change_id, "tech-lead", "ok")) == "pending_cab"
    again = cli("approve", change_id, "tech-lead", "ok again")
    assert again.code == 1
    assert "counts once" in again.err
    outsider = cli("approve", change_id, "ciso", "ok")  # holds no role the CAB route needs
    assert outsider.code == 1
    assert cli.show(change_id)["state"] == "pending_cab"

    assert _state(cli.ok("approve", change_id, "security-lead", "ok")) == "approved"
    doc = cli.show(change_id)
    assert [(a["approver"], a["role"]) for a in doc["approvals"]] == [
        ("tech-lead", "cab"),
        ("security-lead", "cab"),
    ]


def test_critical_route_needs_cab_quorum_ciso_and_cto(cli: Cli) -> None:
    services = [arg for s in ("api", "db", "cache") for arg in ("--service", s)]
    change_id = cli.create("normal", "security", "Rotate all keys", "--impact", "critical", *services, *PLANS)
    cli.ok("assess", change_id)
    doc = cli.show(change_id)
    assert (doc["risk_score"], doc["risk_level"]) == (80, "critical")
    assert (doc["approval_required"], doc["state"]) == ("cab+ciso+cto", "pending_cab")

    steps = [("tech-lead", "cab"), ("ciso", "ciso"), ("security-lead", "cab"), ("cto", "cto")]
    for n, (person, role) in enumerate(steps, 1):
        out = cli.ok("approve", change_id, person, f"vote {n}")
        assert f"({role})" in out
        assert _state(out) == ("approved" if n == len(steps) else "pending_cab"), (n, out)
    doc = cli.show(change_id)
    assert doc["state"] == "approved"
    assert sorted(a["role"] for a in doc["approvals"]) == ["cab", "cab", "ciso", "cto"]


def test_emergency_auto_approved_then_reviewed(cli: Cli) -> None:
    change_id = cli.create("emergency", "security", "Patch CVE-2026-0001", requester="oncall")
    assert "route: emergency-cab" in cli.ok("assess", change_id)
    doc = cli.show(change_id)
    assert doc["state"] == "approved"
    assert doc["approval_required"] == "emergency-cab"
    assert [a["approver"] for a in doc["approvals"]] == ["emergency-cab"]
    review = doc["review"]
    assert _time(review["due_at"]) - _time(doc["metrics"]["approved_at"]) == timedelta(hours=24)
    assert review["reviewed_at"] is None

    own = cli("review", change_id, "oncall", "accepted", "I did it")
    assert own.code == 1
    assert "requested" in own.err
    cli.ok("review", change_id, "security-lead", "accepted", "Justified: active exploit")
    review = cli.show(change_id)["review"]
    assert (review["reviewer"], review["outcome"], review["notes"]) == (
        "security-lead",
        "accepted",
        "Justified: active exploit",
    )
    assert review["reviewed_at"] is not None


def test_emergency_without_auto_approve_needs_an_ecab_member(cli: Cli) -> None:
    cli.env["EMERGENCY_AUTO_APPROVE"] = "false"
    change_id = cli.create("emergency", "patch", "Hotfix")
    cli.ok("assess", change_id)
    assert cli.show(change_id)["state"] == "pending_approval"
    assert cli("approve", change_id, "ops-lead", "ok").code == 1
    assert _state(cli.ok("approve", change_id, "security-oncall", "go")) == "approved"


def test_emergency_disabled_refuses_and_writes_nothing(cli: Cli) -> None:
    res = cli("create", "emergency", "patch", "Hotfix", env={"EMERGENCY_CHANGE_ENABLED": "false"})
    assert res.code == 1
    assert "EMERGENCY_CHANGE_ENABLED" in res.err
    assert res.out == ""
    if isinstance(cli.db, Path):  # the store this refused write created is taken back
        assert not cli.db.exists()
    else:  # a PostgreSQL database is the administrator's: its schema stays, empty
        assert cli.ok("list").strip() == "no changes"
        assert cli.counts() == (0, 0)


def test_low_risk_is_auto_approved(cli: Cli) -> None:
    change_id = cli.create("normal", "documentation", "Fix typo", "--impact", "low")
    cli.ok("assess", change_id)
    doc = cli.show(change_id)
    assert (doc["risk_score"], doc["state"], doc["approval_required"]) == (20, "approved", "auto-approved")
    assert [a["approver"] for a in doc["approvals"]] == ["auto-approval-system"]


def test_identity_from_flag_environment_and_position(cli: Cli) -> None:
    by_flag = cli.create("normal", "deployment", "A", requester="flag-user")
    by_env = cli.ok("create", "normal", "deployment", "B", user="env-user").strip()
    assert cli.show(by_flag)["requested_by"] == "flag-user"
    assert cli.show(by_env)["requested_by"] == "env-user"
    for change_id in (by_flag, by_env):
        cli.ok("assess", change_id)

    cli.ok("approve", by_flag, "ok", "--as", "tech-lead")
    cli.ok("approve", by_env, "ok", user="coordinator-master")
    assert cli.show(by_flag)["approvals"][0]["approver"] == "tech-lead"
    assert cli.show(by_env)["approvals"][0]["approver"] == "coordinator-master"


def test_conflicting_identities_are_bad_input(cli: Cli) -> None:
    change_id = cli.create("normal", "deployment", "A")
    cli.ok("assess", change_id)
    before = cli.counts()
    res = cli("approve", change_id, "tech-lead", "ok", "--as", "ops-lead")
    assert res.code == 2
    assert "approver" in res.err
    assert len(res.err.splitlines()) == 1
    assert cli.counts() == before


def test_approver_must_be_named(cli: Cli) -> None:
    change_id = cli.create("normal", "deployment", "A")
    cli.ok("assess", change_id)
    before = cli.counts()
    res = cli("approve", change_id, "just a reason")
    assert res.code == 2
    assert "approver" in res.err
    assert cli.counts() == before


def test_reject_by_role_holder_rejects(cli: Cli) -> None:
    change_id = cli.create("normal", "deployment", "A")
    cli.ok("assess", change_id)
    cli.ok("reject", change_id, "tech-lead", "not now")
    doc = cli.show(change_id)
    assert doc["state"] == "rejected"
    assert doc["approvals"][-1]["decision"] == "rejected"
    assert json.loads(cli.ok("list", "rejected", "--json"))[0]["change_id"] == change_id
