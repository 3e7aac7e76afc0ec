"""`compliance report` (SPEC §8) through the real console script, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from conftest import Cli

PLANS = ("--implementation-plan", '{"steps": ["deploy"]}', "--rollback-plan", '{"steps": ["redeploy"]}')
CSV_COLUMNS = [
    "framework",
    "control",
    "change_id",
    "status",
    "reason",
    "evidence_event_ids",
    "approvers",
    "last_hash",
    "checkpoint_length",
    "checkpoint_head",
    "checkpoint_at",
    "checkpoint_witnesses",
]
SOC2 = [
    "audit_trail",
    "segregation_of_duties",
    "approval_documentation",
    "rollback_plan",
    "access_control",
    "emergency_review",
]


def _period() -> str:
    """Yesterday to tomorrow (UTC): the changes a test makes are in it even across midnight."""
    today = datetime.now(UTC).date()
    return f"{today - timedelta(days=1)} to {today + timedelta(days=1)}"


def _run(cli: Cli, framework: str, fmt: str, **kw: Any) -> str:
    args = ("compliance", "report", "--framework", framework, "--period", _period(), "--format", fmt)
    return cli.ok(*args, **kw)


def _report(cli: Cli, framework: str = "soc2", **kw: Any) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(_run(cli, framework, "json", **kw))
    return report


def _change(report: dict[str, Any], change_id: str) -> dict[str, Any]:
    found = [c for c in report["changes"] if c["change_id"] == change_id]
    assert len(found) == 1, change_id
    return found[0]


def _finding(report: dict[str, Any], change_id: str, control: str) -> dict[str, Any]:
    found = [f for f in _change(report, change_id)["controls"] if f["control"] == control]
    assert len(found) == 1, control
    return found[0]


def _compliant(cli: Cli, *extra: str) -> str:
    """A medium-risk normal change, documented, approved by a tech lead, implemented and closed."""
    change_id = cli.create("normal", "configuration", "Raise the pool size", *PLANS, *extra)
    cli.ok("assess", change_id)
    cli.ok("approve", change_id, "tech-lead", "looks right")
    cli.ok("implement", change_id, "--as", "ops")
    cli.ok("close", change_id, "successful", "done", "--as", "ops")
    return change_id


def _stored_events(cli: Cli, change_id: str) -> dict[int, tuple[str, str]]:
    """The change's audit events as `show` prints them: seq -> (action, hash)."""
    return {e["seq"]: (e["action"], e["hash"]) for e in cli.show(change_id)["audit_trail"]}


def test_a_compliant_change_passes_with_its_evidence(cli: Cli) -> None:
    change_id = _compliant(cli)
    report = _report(cli)
    assert report["audit_chain"]["ok"] is True
    assert report["audit_chain"]["first_broken"] is None
    assert [c["control"] for c in report["controls"]] == SOC2
    statuses = {f["control"]: f["status"] for f in _change(report, change_id)["controls"]}
    assert statuses == dict.fromkeys(SOC2, "pass") | {"emergency_review": "not_applicable"}
    counts = {
        c["control"]: (c["pass"], c["fail"], c["pending"], c["not_applicable"]) for c in report["controls"]
    }
    assert counts["segregation_of_duties"] == (1, 0, 0, 0)

    stored = _stored_events(cli, change_id)
    entry = _change(report, change_id)
    assert entry["last_hash"] == stored[max(stored)][1]
    assert [(a["approver"], a["role"], a["decision"]) for a in entry["approvers"]] == [
        ("tech-lead", "technical-lead", "approved")
    ]
    approval = _finding(report, change_id, "approval_documentation")
    assert "tech-lead (technical-lead)" in approval["reason"]
    cited = {e["seq"]: (e["action"], e["hash"]) for e in approval["evidence"]}
    assert cited, approval
    assert all(stored[seq] == event for seq, event in cited.items())  # seq and hash as stored
    assert "approved" in {action for action, _ in cited.values()}
    trail = _finding(report, change_id, "audit_trail")
    assert {e["action"] for e in trail["evidence"]} >= {"created", "assessed", "approved", "closed"}


def test_a_self_approved_change_fails_segregation_of_duties(cli: Cli) -> None:
    good = _compliant(cli)
    own = cli.create("normal", "configuration", "Mine", *PLANS, requester="tech-lead")
    cli.ok("assess", own)
    cli.ok("approve", own, "tech-lead", "mine", env={"SEGREGATION_OF_DUTIES": "false"})
    report = _report(cli)
    failed = _finding(report, own, "segregation_of_duties")
    assert failed["status"] == "fail"
    assert "tech-lead" in failed["reason"]
    assert "approved" in {e["action"] for e in failed["evidence"]}
    assert _finding(report, good, "segregation_of_duties")["status"] == "pass"
    sod = next(c for c in report["controls"] if c["control"] == "segregation_of_duties")
    assert (sod["pass"], sod["fail"]) == (1, 1)


def test_a_missing_rollback_plan_fails_rollback_procedures(cli: Cli) -> None:
    bare = cli.create("normal", "configuration", "No way back")
    cli.ok("assess", bare)
    cli.ok("approve", bare, "tech-lead", "ok")
    planned = _compliant(cli)
    report = _report(cli)
    missing = _finding(report, bare, "rollback_plan")
    assert (missing["status"], missing["reason"]) == ("fail", "medium risk without a rollback plan")
    assert _finding(report, planned, "rollback_plan")["status"] == "pass"


def test_hipaa_marks_phi_changes_by_service_and_ci(cli: Cli) -> None:
    by_service = cli.create("normal", "configuration", "Patient DB index", "--service", "patient-db")
    by_ci = cli.create("normal", "configuration", "EHR host", "--ci", "ehr-host-1")
    other = cli.create("normal", "configuration", "Web tweak", "--service", "web")
    cli.ok("assess", by_service)

    phi = {"PHI_SERVICES": "patient-db,billing", "PHI_CIS": "ehr-host-1"}
    report = _report(cli, "hipaa", env=phi)
    assert report["notes"] == []
    assert _change(report, by_service)["phi"] == ["patient-db"]
    assert _change(report, by_ci)["phi"] == ["ehr-host-1"]
    assert _change(report, other)["phi"] == []
    assert _finding(report, by_service, "phi_risk_assessment")["status"] == "pass"
    assert _finding(report, by_ci, "phi_risk_assessment")["status"] == "pending"  # not assessed yet
    assert _finding(report, other, "phi_risk_assessment")["status"] == "not_applicable"
    assert [u["control"] for u in report["not_assessed"]] == ["encryption_validation", "baa_compliance"]

    unconfigured = _report(cli, "hipaa")
    assert all(c["phi"] == [] for c in unconfigured["changes"])
    assert "PHI_SERVICES and PHI_CIS are empty" in unconfigured["notes"][0]


def test_hipaa_incident_response_needs_the_failure_recorded(cli: Cli) -> None:
    failed, silent = (cli.create("normal", "documentation", t, "--impact", "low") for t in ("A", "B"))
    for change_id, status, notes in ((failed, "failed", "the job crashed"), (silent, "rolled_back", "")):
        cli.ok("assess", change_id)  # low risk: auto-approved
        cli.ok("implement", change_id, "--as", "ops")
        cli.ok("close", change_id, status, notes, "--as", "ops")
    report = _report(cli, "hipaa")
    recorded = _finding(report, failed, "incident_response")
    assert recorded["status"] == "pass"
    assert "closed" in {e["action"] for e in recorded["evidence"]}
    unrecorded = _finding(report, silent, "incident_response")
    assert unrecorded["status"] == "fail"
    assert "without closure notes" in unrecorded["reason"]


def test_csv_and_text_formats(cli: Cli) -> None:
    first, second = _compliant(cli), _compliant(cli)
    out = _run(cli, "iso27001", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == CSV_COLUMNS
    report = _report(cli, "iso27001")
    assert len(rows) == 2 * len(report["controls"])
    assert {r["change_id"] for r in rows} == {first, second}
    assert {r["framework"] for r in rows} == {"iso27001"}
    stored = _stored_events(cli, first)
    for row in (r for r in rows if r["change_id"] == first):
        assert row["status"] in ("pass", "fail", "pending", "not_applicable")
        assert row["last_hash"] == stored[max(stored)][1]
        assert "tech-lead (technical-lead) approved at " in row["approvers"]
        for cited in row["evidence_event_ids"].split():
            seq, digest = cited.split(":")
            assert stored[int(seq)][1] == digest

    text = _run(cli, "soc2", "text").splitlines()
    assert text[0].startswith("audit chain intact: ")
    assert text[1].startswith("SOC 2 compliance report: ")
    assert any(line.startswith(first) for line in text)
    assert sum(line.strip().startswith("evidence: #") for line in text) >= 2 * len(SOC2) - 2


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("--framework", "pci", "--period", "today"), "soc2"),
        (("--framework", "soc2", "--period", "fortnight"), "today, week"),
        (("--framework", "soc2", "--period", "2026-02-30 to 2026-03-01"), "YYYY-MM-DD"),
        (("--framework", "soc2", "--period", "today", "--format", "xml"), "csv"),
        (("--period", "today"), "--framework"),
    ],
    ids=["framework", "period", "date", "format", "missing"],
)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(
    cli: Cli, tmp_path: Path, args: tuple[str, ...], named: str
) -> None:
    _compliant(cli)
    before = cli.counts()
    res = cli("compliance", "report", *args)
    assert res.code == 2, res
    assert res.out == ""
    assert len(res.err.splitlines()) == 1, res.err
    assert named in res.err
    assert cli.counts() == before
    fresh = tmp_path / "never" / "store.db"  # not even a store is created
    assert cli("compliance", "report", *args, env={"CORTEX_CHANGE_DB": str(fresh)}).code == 2
    assert not fresh.parent.exists()


def test_an_empty_period_is_a_report_with_no_changes(cli: Cli) -> None:
    _compliant(cli)
    res = cli("compliance", "report", "--framework", "soc2", "--period", "2001-01-01 to 2001-01-31")
    assert res.code == 0, res.err
    assert "0 change(s) created" in res.out.splitlines()[1]


# --- a tampered chain (the SQLite file is damaged by hand) -------------------------------------


@pytest.fixture
def sqlite_cli(tmp_path: Path, cli_factory: Callable[[Path], Cli]) -> Cli:
    return cli_factory(tmp_path)


def test_a_broken_chain_is_stated_first_and_fails_the_audit_trail(sqlite_cli: Cli) -> None:
    cli = sqlite_cli
    first, second = _compliant(cli), _compliant(cli)
    assert _report(cli)["audit_chain"]["ok"] is True
    conn = sqlite3.connect(cli.db, isolation_level=None)
    try:
        conn.execute("DROP TRIGGER audit_events_no_update")
        conn.execute("UPDATE audit_events SET actor='mallory' WHERE seq=3")
    finally:
        conn.close()

    res = cli("compliance", "report", "--framework", "soc2", "--period", _period())
    assert res.code == 0, res.err
    head = res.out.splitlines()[0]
    assert head.startswith("AUDIT CHAIN BROKEN: ")
    assert re.findall(r"#(\d+)", head)[0] == "3"

    report = _report(cli)
    assert report["audit_chain"]["ok"] is False
    assert report["audit_chain"]["first_broken"] == 3
    assert "altered" in report["audit_chain"]["problem"]
    for change_id in (first, second):
        trail = _finding(report, change_id, "audit_trail")
        assert trail["status"] == "fail"
        assert "audit chain is broken" in trail["reason"]
    counts = next(c for c in report["controls"] if c["control"] == "audit_trail")
    assert (counts["pass"], counts["fail"]) == (0, 2)

    res = cli("compliance", "report", "--framework", "iso27001", "--period", _period(), "--format", "csv")
    assert res.code == 0
    assert res.err.startswith("cortex-change: warning: AUDIT CHAIN BROKEN")
    trail_rows = [r for r in csv.DictReader(io.StringIO(res.out)) if r["control"] == "audit_trail"]
    assert [r["status"] for r in trail_rows] == ["fail", "fail"]
