"""Issue 18: `import shell-tool DIR` in process on both backends (services/shelltool.py): the shared
fixture of the seed's tool imported and checked change by change, idempotence, dry runs, salvage, the
audit chain, a generated store's every lifecycle, and bad folders (one error, nothing written)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cortex_change.domain.errors import ValidationError
from cortex_change.services import audit as audit_service
from cortex_change.services.context import Context
from cortex_change.services.queries import get_change
from cortex_change.services.shelltool import import_shell_tool
from shelltool_data import generate
from support import query

# The shared sample of the tool's files (its README says what is in it); never edited.
FIXTURE = Path(os.environ.get("CORTEX_TEST_SHELLTOOL_DATA", "/work/shared/fixtures/reference-tool-data"))
pytestmark = pytest.mark.skipif(not FIXTURE.is_dir(), reason=f"no shell-tool fixture at {FIXTURE}")

CORRUPT = "RFC-20261129212853-140523"  # the quoted title written unescaped
TWICE = "RFC-20261129212854-1784c1"  # in approved/ and implemented/
APPROVED_BY_TECH_LEAD = {
    "RFC-20261129212848-5dddbf": ("successful", "Deployed", "ok 1"),
    "RFC-20261129212848-79fa2d": ("successful", "Deployed", "ok 2"),
    "RFC-20261129212849-9e0085": ("successful", "Deployed", "ok 3"),
    "RFC-20261129212850-738460": ("failed", "Smoke test failed", "ok 4"),
    "RFC-20261129212850-102b00": ("rolled_back", "Rolled back after errors", "ok 5"),
    "RFC-20261129212851-d1486a": ("successful", "Deployed", "ok 6"),
}
# id -> (state, risk score, route) of the changes still waiting
WAITING = {
    "RFC-20261129212852-8ded3c": ("pending_approval", 55, "technical-lead"),
    "RFC-20261129212852-b38d8b": ("pending_approval", 35, "technical-lead"),
    "RFC-20261129212853-678dea": ("pending_approval", 30, "technical-lead"),
    "RFC-20261129212853-aa72cc": ("pending_approval", 55, "technical-lead"),
    "RFC-20261129212855-9f6e93": ("pending_approval", 35, "technical-lead"),
    "RFC-20261129212855-fc1791": ("pending_approval", 35, "technical-lead"),
    "RFC-20261129212856-41da7e": ("pending_approval", 45, "technical-lead"),
    "RFC-20261129212856-915c40": ("pending_approval", 35, "technical-lead"),
    "RFC-20261129212855-5fc80a": ("pending_assessment", None, None),
}
REJECTED = "RFC-20261129212854-a5bc7d"
SKIPPED = {
    f"changes/approved/{CORRUPT}.json": "invalid JSON at line 5 column 21 (Expecting ',' delimiter)",
    f"changes/approved/{TWICE}.json": f"stale duplicate, superseded by implemented/{TWICE}.json",
    f"changes/pending/{CORRUPT}.json.tmp": "temporary file left by an interrupted update",
}


@pytest.fixture
def ctx(make_ctx: Callable[..., Context]) -> Context:
    return make_ctx()


def run(ctx: Context, path: Path = FIXTURE, **options: Any) -> dict[str, Any]:
    return import_shell_tool(ctx, path=str(path), actor="migrator", **options)


def counts(store_url: str) -> tuple[int, int]:
    return tuple(
        int(query(store_url, f"SELECT count(*) FROM {t}")[0][0]) for t in ("changes", "audit_events")
    )  # type: ignore[return-value]


def test_the_fixture_change_by_change(ctx: Context, store_url: str) -> None:
    report = run(ctx)
    assert report["imported"] == 17
    assert report["by_state"] == {
        "closed": 6,
        "implementing": 1,
        "pending_approval": 8,
        "pending_assessment": 1,
        "rejected": 1,
    }
    skipped = {s["file"]: s["reason"] for s in report["skipped"]}
    assert set(skipped) == set(SKIPPED)
    for file, reason in SKIPPED.items():
        assert skipped[file].startswith(reason), skipped[file]
    assert report["audit"]["not_imported"] == [
        {"change_id": CORRUPT, "lines": 3, "why": "its record was not imported"}
    ]
    assert report["audit"]["events"] == 70  # 73 lines, 3 of the corrupt record's

    for change_id, (status, notes, reason) in APPROVED_BY_TECH_LEAD.items():
        doc = get_change(ctx, change_id=change_id)
        assert (doc["state"], doc["closure_status"], doc["closure_notes"]) == ("closed", status, notes)
        assert [(a["approver"], a["role"], a["decision"], a["reason"]) for a in doc["approvals"]] == [
            ("tech-lead", "technical-lead", "approved", reason)
        ]
        assert (doc["risk_score"], doc["risk_level"], doc["approval_required"]) == (
            40,
            "medium",
            "technical-lead",
        )
        assert doc["metrics"]["closed_at"] is not None
        assert [e["action"] for e in doc["audit_trail"]] == [
            "created",
            "assessed",
            "approval_requested",
            "approved",
            "implementation_started",
            "closed",
        ]
        assert all(e["details"]["imported"] for e in doc["audit_trail"])
    for change_id, (state, score, route) in WAITING.items():
        doc = get_change(ctx, change_id=change_id)
        assert (doc["state"], doc["risk_score"], doc["approval_required"], doc["approvals"]) == (
            state,
            score,
            route,
            [],
        )
    rejected = get_change(ctx, change_id=REJECTED)
    assert rejected["state"] == "rejected"
    assert [(a["approver"], a["decision"], a["reason"]) for a in rejected["approvals"]] == [
        ("tech-lead", "rejected", "Not ready")
    ]
    emergency = get_change(
        ctx, change_id=TWICE
    )  # the implemented/ copy, with the approval only approved/ held
    assert (emergency["state"], emergency["type"]) == ("implementing", "emergency")
    assert [(a["approver"], a["role"]) for a in emergency["approvals"]] == [
        ("emergency-cab", "emergency-cab")
    ]
    assert emergency["metrics"]["approved_at"] == "2026-11-29T21:28:55Z"
    assert emergency["review"]["due_at"] == "2026-11-30T21:28:55Z"
    trail = emergency["audit_trail"]
    assert [e["action"] for e in trail] == [
        "created",
        "assessed",
        "approval_requested",
        "approved",
        "implementation_started",
    ]
    assert trail[2]["details"]["original_action"] == "submitted_to_cab"
    assert trail[0]["details"]["record"]["file"] == f"changes/implemented/{TWICE}.json"
    ids = {r[0] for r in query(store_url, "SELECT change_id FROM changes")}
    assert CORRUPT not in ids
    assert len(ids) == 17
    assert audit_service.verify(ctx).ok


def test_ids_and_times_are_kept(ctx: Context) -> None:
    run(ctx)
    doc = get_change(ctx, change_id="RFC-20261129212850-738460")
    assert doc["metrics"] == {
        "created_at": "2026-11-29T21:28:50Z",
        "assessed_at": "2026-11-29T21:28:50Z",
        "approved_at": "2026-11-29T21:28:50Z",
        "implementation_started_at": "2026-11-29T21:28:50Z",
        "implemented_at": "2026-11-29T21:28:50Z",
        "closed_at": "2026-11-29T21:28:50Z",
        "mtta_seconds": 0.0,
        "mtti_seconds": 0.0,
    }
    first = doc["audit_trail"][0]["details"]
    assert first["original_timestamp"] == "2026-11-29T21:28:50Z"
    assert first["line"].startswith("2026-11-29T21:28:50Z | RFC-20261129212850-738460 | created | dev-1 |")


def test_a_second_run_imports_nothing_new(ctx: Context, store_url: str) -> None:
    run(ctx)
    before = counts(store_url)
    again = run(ctx)
    assert (again["imported"], again["already_imported"], again["audit"]["events"]) == (0, 17, 0)
    assert counts(store_url) == before
    assert audit_service.verify(ctx).ok


def test_a_dry_run_reports_the_same_and_writes_nothing(ctx: Context, store_url: str) -> None:
    dry = run(ctx, dry_run=True)
    assert counts(store_url) == (0, 0)
    wet = run(ctx)
    assert {k: v for k, v in dry.items() if k != "dry_run"} == {
        k: v for k, v in wet.items() if k != "dry_run"
    }


def test_salvage_recovers_the_quoted_title_flagged(ctx: Context) -> None:
    run(ctx)
    report = run(ctx, salvage=True)
    assert (report["imported"], report["salvaged"]) == (1, [CORRUPT])
    [entry] = report["changes"]
    assert entry["salvaged"] == ["title"]
    assert entry["notes"] == [
        "the record says pending_assessment but lies in approved/: its own state is kept"
    ]
    doc = get_change(ctx, change_id=CORRUPT)
    assert doc["title"] == 'Rotate "prod" TLS certificates'
    assert doc["state"] == "pending_assessment"
    assert doc["approvals"] == []  # the audit log's auto-approval is history, not a decision on this record
    trail = doc["audit_trail"]
    assert [e["action"] for e in trail] == ["created", "assessed", "approved"]
    assert trail[0]["details"]["record"]["salvaged"] == ["title"]
    assert audit_service.verify(ctx).ok


def test_every_lifecycle_of_a_generated_store(ctx: Context, tmp_path: Path) -> None:
    expected = generate(tmp_path / "tool", 60)
    report = run(ctx, tmp_path / "tool")
    assert report["imported"] == 60
    assert len(report["skipped"]) == 6  # the CAB queue's copies: 3 identical, 3 stale
    for change_id, want in expected.items():
        doc = get_change(ctx, change_id=change_id)
        assert doc["state"] == want["state"], change_id
        assert doc["closure_status"] == want["closure_status"]
        assert doc["approval_required"] == want["route"]
        assert [a["approver"] for a in doc["approvals"] if a["decision"] == "approved"] == want["approvers"]
        assert [a["approver"] for a in doc["approvals"] if a["decision"] == "rejected"] == (
            [want["rejected_by"]] if want["rejected_by"] else []
        )
    assert audit_service.verify(ctx).ok


def test_a_folder_that_is_not_a_store_writes_nothing(ctx: Context, store_url: str, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    for path, message in (
        (tmp_path / "missing", "is not a folder"),
        (tmp_path / "empty", "is not a shell-tool store: it has no changes/ folder"),
    ):
        with pytest.raises(ValidationError, match=message):
            run(ctx, path)
    assert counts(store_url) == (0, 0)


def test_an_unreadable_file_stops_the_import_and_writes_nothing(
    ctx: Context, store_url: str, tmp_path: Path
) -> None:
    copied = tmp_path / "tool"
    shutil.copytree(FIXTURE, copied)
    os.chmod(copied / "changes" / "closed", 0o755)
    os.symlink(copied / "gone.json", copied / "changes" / "closed" / "RFC-20261129212859-000000.json")
    with pytest.raises(
        ValidationError, match=r"cannot read .*RFC-20261129212859-000000.json.*nothing was imported"
    ):
        run(ctx, copied)
    assert counts(store_url) == (0, 0)


def test_the_report_is_json(ctx: Context) -> None:
    report = run(ctx, dry_run=True, salvage=True)
    assert json.loads(json.dumps(report)) == report


def test_every_file_not_imported_is_named(ctx: Context, tmp_path: Path) -> None:
    copied = tmp_path / "tool"
    shutil.copytree(FIXTURE, copied)
    for folder in ("changes", "changes/closed", "audit"):
        os.chmod(copied / folder, 0o755)
    (copied / "changes" / "archive").mkdir()
    (copied / "changes" / "archive" / "RFC-20261129212859-000000.json").write_text("{}", encoding="utf-8")
    (copied / "changes" / "closed" / "old").mkdir()
    (copied / "changes" / "README").write_text("notes", encoding="utf-8")
    (copied / "audit" / "notes.txt").write_text("notes", encoding="utf-8")
    skipped = {s["file"]: s["reason"] for s in run(ctx, copied)["skipped"]}
    assert {k: v for k, v in skipped.items() if k not in SKIPPED} == {
        "changes/README": "not in a state folder (changes/FOLDER/ID.json)",
        "changes/archive/RFC-20261129212859-000000.json": (
            "unknown state folder 'archive' (the tool's: pending, approved, rejected, implemented, closed, "
            "cab_queue)"
        ),
        "changes/closed/old/": "a folder the tool does not write (not entered)",
        "audit/notes.txt": "not an audit log (the tool writes audit/YYYY-MM-DD.log)",
    }
