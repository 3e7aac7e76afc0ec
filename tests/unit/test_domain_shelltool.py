"""Issue 18: the shell tool's files read into our records (domain/shelltool.py), as tables of cases:
which files are records, parsing and salvage, the newest of several copies, audit lines, and the
mapping of states, routes, approvals and closure (SPEC §1-§2)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from cortex_change.domain import shelltool as tool
from cortex_change.domain.events import EventKind
from cortex_change.domain.lifecycle import State
from cortex_change.domain.model import ChangeType, ClosureStatus, Decision, Level, Route
from cortex_change.domain.policy import Policy
from shelltool_data import new_record

CID = "RFC-20261129212853-140523"
T0 = "2026-11-29T21:28:53Z"
POLICY = Policy()


def record(**fields: Any) -> dict[str, Any]:
    """A record as the tool's create_rfc writes it, with `fields` over it."""
    doc = new_record(CID, T0, "dev-1", "deployment", "medium", "Deploy")
    doc["description"] = "d"
    doc.update(fields)
    return doc


def entry(action: str, actor: str, details: str = "", at: str = T0) -> dict[str, Any]:
    return {"timestamp": at, "action": action, "actor": actor, "details": details}


def assessed(score: int = 40, route: str = "technical-lead", **fields: Any) -> dict[str, Any]:
    trail = [
        entry("created", "dev-1", "RFC created"),
        entry("assessed", "ai-risk-engine", f"Risk score: {score}, Priority: P4, Approval: {route}"),
    ]
    base = record(risk_score=score, priority="P4", approval_required=route, assigned_to="development-master")
    base["audit_trail"] = trail
    base["metrics"] = {**base["metrics"], "assessed_at": T0}
    base.update(fields)
    return base


def mapped(
    doc: dict[str, Any], folder: str = "pending", lines: list[tool.Line] | None = None
) -> tool.Imported:
    parsed = tool.parse_record(f"changes/{folder}/{doc['change_id']}.json", json.dumps(doc).encode(), False)
    imported, skipped = tool.plan_change([parsed], lines or [], POLICY, "migrator")
    assert imported is not None, skipped
    return imported


def refused(doc: dict[str, Any], folder: str = "pending") -> str:
    parsed = tool.parse_record(f"changes/{folder}/{doc['change_id']}.json", json.dumps(doc).encode(), False)
    imported, skipped = tool.plan_change([parsed], [], POLICY, "migrator")
    assert imported is None
    return skipped[0].reason


# --------------------------------------------------------------------------- files


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        (f"changes/pending/{CID}.json", None),
        (f"changes/cab_queue/{CID}.json", None),
        ("audit/2026-11-29.log", None),
        (f"changes/pending/{CID}.json.tmp", "temporary file"),
        (f"changes/archive/{CID}.json", "unknown state folder 'archive'"),
        (f"changes/{CID}.json", "not in a state folder"),
        (f"changes/closed/old/{CID}.json", "not in a state folder"),
        ("changes/closed/notes.txt", "not a record"),
        ("audit/2026-11-29.log.gz", "not an audit log"),
        ("audit/old/2026-11-29.log", "not an audit log"),
        ("changes/closed/old/", "a folder the tool does not write"),
        ("audit/old/", "a folder the tool does not write"),
    ],
)
def test_which_files_are_records(path: str, reason: str | None) -> None:
    found = tool.skip_reason(path)
    assert found is None if reason is None else reason in (found or "")


# --------------------------------------------------------------------------- parsing and salvage

UNESCAPED = (
    b'{\n  "change_id": "%s",\n  "title": "Rotate "prod" TLS certificates",\n  "state": "x"\n}\n'
    % CID.encode()
)


def test_an_invalid_record_is_named_by_line_and_column_and_never_guessed() -> None:
    parsed = tool.parse_record("changes/approved/x.json", UNESCAPED, salvage=False)
    assert parsed.doc is None
    assert parsed.problem.startswith("invalid JSON at line 3 column 21 (Expecting ',' delimiter)")
    assert "--salvage" in parsed.problem


def test_salvage_repairs_only_the_unescaped_string_and_says_which() -> None:
    parsed = tool.parse_record("changes/approved/x.json", UNESCAPED, salvage=True)
    assert parsed.doc == {"change_id": CID, "title": 'Rotate "prod" TLS certificates', "state": "x"}
    assert parsed.salvaged == ["title"]


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b'{\n  "change_id": "x",\n  "audit_trail": [\n    {"a": 1}\n  \n}\n', "no line holds a repairable"),
        (b'{\n  "title": "a "b" c",\n  "x": [1, 2\n}\n', "still invalid after repairing title"),
        (b'{\n  "title": "a\nb",\n  "x": 1\n}\n', "no line holds a repairable"),  # a newline inside
    ],
)
def test_salvage_refuses_what_the_layout_cannot_prove(data: bytes, why: str) -> None:
    parsed = tool.parse_record("changes/pending/x.json", data, salvage=True)
    assert parsed.doc is None
    assert why in parsed.problem


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"\xff\xfe{}", "not UTF-8 text (byte 0)"),
        (b"[1, 2]", "not a change record (the JSON is not an object)"),
        (b"", "invalid JSON at line 1 column 1"),
    ],
)
def test_what_is_not_a_record(data: bytes, problem: str) -> None:
    assert tool.parse_record("changes/pending/x.json", data, salvage=True).problem.startswith(problem)


# --------------------------------------------------------------------------- copies of one change


def copy(folder: str, doc: dict[str, Any]) -> tool.Parsed:
    return tool.Parsed(f"changes/{folder}/{CID}.json", doc)


def test_the_newest_copy_wins_by_its_trail_and_the_stale_one_is_named() -> None:
    old = assessed(state="pending_approval")
    new = assessed(state="approved")
    new["audit_trail"] = [*old["audit_trail"], entry("approved", "tech-lead", "ok", "2026-11-29T21:29:00Z")]
    chosen = tool.choose([copy("approved", new), copy("pending", old)])
    assert chosen.kept.file == f"changes/approved/{CID}.json"
    assert [s.file for s in chosen.skipped] == [f"changes/pending/{CID}.json"]
    assert "stale duplicate, superseded by approved/" in chosen.skipped[0].reason
    assert "approved at 2026-11-29T21:29:00Z" in chosen.skipped[0].reason


def test_equal_trails_tie_break_on_the_lifecycle_and_keep_what_only_the_stale_copy_recorded() -> None:
    """The fixture's case: `implement` rewrote the CAB queue's copy, the approval lives in the other."""
    base = assessed(score=65, route="cab")["audit_trail"] + [entry("submitted_to_cab", "change-manager")]
    approved = assessed(score=65, route="cab", state="approved")
    approved["audit_trail"] = [*base, entry("approved", "emergency-cab", "ECAB")]
    implementing = assessed(score=65, route="cab", state="implementing")
    implementing["audit_trail"] = [*base, entry("implementation_started", "cortex-deployer")]
    chosen = tool.choose([copy("approved", approved), copy("implemented", implementing)])
    assert chosen.kept.file.startswith("changes/implemented/")
    assert [e["action"] for e in chosen.trail] == [
        "created",
        "assessed",
        "submitted_to_cab",
        "approved",
        "implementation_started",
    ]
    assert chosen.notes == [
        f"trail entry only in the superseded approved/{CID}.json kept: approved by emergency-cab at {T0}"
    ]


def test_an_identical_cab_queue_copy_is_a_duplicate() -> None:
    doc = assessed(score=65, route="cab", state="pending_cab")
    chosen = tool.choose([copy("cab_queue", doc), copy("pending", dict(doc))])
    assert chosen.kept.file.startswith("changes/pending/")
    assert chosen.skipped[0].reason == f"duplicate of pending/{CID}.json (same trail)"


def test_an_unreadable_copy_beside_a_readable_one_is_noted() -> None:
    good = tool.parse_record(f"changes/pending/{CID}.json", json.dumps(record()).encode(), False)
    bad = tool.parse_record(f"changes/approved/{CID}.json", UNESCAPED, False)
    imported, skipped = tool.plan_change([bad, good], [], POLICY, "migrator")
    assert imported is not None
    assert [s.file for s in skipped] == [bad.file]
    assert any("could not be read" in n for n in imported.notes)


# --------------------------------------------------------------------------- audit lines


def test_audit_lines_by_change_with_continuations_and_garbage() -> None:
    log = tool.Log()
    log.read(
        "audit/2026-11-29.log",
        [
            "garbage before any line\n",
            f"{T0} | {CID} | created | dev-1 | RFC created: two\n",
            "lines of title\n",
            "\n",
            f"not-a-time | {CID} | assessed | ai-risk-engine | Risk: 5\n",
            f"{T0} | RFC-20261129212853-aa72cc | created | ops | RFC created: x | y\n",
        ],
    )
    assert (log.lines, log.continued) == (5, 1)
    assert [s.file for s in log.skipped] == ["audit/2026-11-29.log:1"]
    lines, bad = log.lines_of(CID)
    assert [line.details for line in lines] == ["RFC created: two\nlines of title"]
    assert [s.file for s in bad] == ["audit/2026-11-29.log:5"]
    other, _ = log.lines_of("RFC-20261129212853-aa72cc")
    assert other[0].details == "RFC created: x | y"  # DETAILS is the rest of the line
    assert other[0].at == datetime(2026, 11, 29, 21, 28, 53, tzinfo=UTC)


def line(action: str, actor: str, details: str, at: str = T0, n: int = 1) -> tool.Line:
    parsed = tool.parse_line("audit/2026-11-29.log", n, f"{at} | {CID} | {action} | {actor} | {details}")
    assert parsed is not None
    return parsed


def test_history_is_the_audit_lines_marked_imported_and_the_trail_entries_no_line_holds() -> None:
    doc = assessed()
    lines = [
        line("created", "dev-1", "RFC created: Deploy"),
        # written a second after the record's entry: still the same event
        line("assessed", "ai-risk-engine", "Risk: 40, Priority: P4", "2026-11-29T21:28:54Z", 2),
    ]
    doc["audit_trail"].append(
        entry("submitted_to_cab", "change-manager", "Submitted", "2026-11-29T21:28:55Z")
    )
    events = mapped(doc, lines=lines).events
    assert [(e.action, e.actor) for e in events] == [
        (EventKind.CREATED, "dev-1"),
        (EventKind.ASSESSED, "ai-risk-engine"),
        (EventKind.APPROVAL_REQUESTED, "change-manager"),
    ]
    first, _, only_in_record = (e.details for e in events)
    assert first["imported"] is True
    assert first["original_timestamp"] == T0
    assert first["line"] == f"{T0} | {CID} | created | dev-1 | RFC created: Deploy"
    assert first["file"] == "audit/2026-11-29.log:1"
    assert first["record"]["file"] == f"changes/pending/{CID}.json"
    assert first["record"]["imported_by"] == "migrator"
    assert only_in_record["original_action"] == "submitted_to_cab"
    assert only_in_record["entry"]["details"] == "Submitted"


def test_an_action_we_have_no_kind_for_keeps_its_name() -> None:
    events = mapped(
        record(), lines=[line("created", "dev-1", "x"), line("escalated", "pager", "y", n=2)]
    ).events
    assert [e.action for e in events] == ["created", "escalated"]


# --------------------------------------------------------------------------- mapping

# The tool's `state` -> ours (SPEC §2), with a folder it is consistent with.
STATES = [
    ("pending_assessment", "pending", State.PENDING_ASSESSMENT),
    ("assessed", "pending", State.ASSESSED),
    ("pending_approval", "pending", State.PENDING_APPROVAL),
    ("pending_cab", "pending", State.PENDING_CAB),
    ("approved", "approved", State.APPROVED),
    ("rejected", "rejected", State.REJECTED),
    ("implementing", "implemented", State.IMPLEMENTING),
    ("implemented", "implemented", State.IMPLEMENTED),
    ("rolled_back", "implemented", State.ROLLING_BACK),  # trigger_rollback: the rollback RFC started
    ("closed", "closed", State.CLOSED),
]


@pytest.mark.parametrize(("theirs", "folder", "ours"), STATES)
def test_states(theirs: str, folder: str, ours: State) -> None:
    doc = record() if theirs == "pending_assessment" else assessed(state=theirs)
    imported = mapped(doc, folder)
    assert imported.change.state is ours
    assert imported.notes == []


@pytest.mark.parametrize(
    ("route", "score", "level"),
    [
        ("auto-approved", 20, Level.LOW),
        ("technical-lead", 40, Level.MEDIUM),
        ("cab", 65, Level.HIGH),
        ("pre-approved", 35, Level.MEDIUM),
        ("cab+ciso+cto", 85, Level.CRITICAL),
    ],
)
def test_routes_and_levels(route: str, score: int, level: Level) -> None:
    a = mapped(assessed(score=score, route=route, state="assessed")).change.assessment
    assert a is not None
    assert (a.route, a.score, a.level, a.priority) == (Route(route), score, level, "P4")
    assert a.assigned_to == "development-master"
    assert "Risk score" in a.components["shell_tool"].reason


def test_approvals_closure_and_timeline_of_a_closed_change() -> None:
    doc = assessed(state="closed", closure_status="rolled_back", closure_notes="Rolled back after errors")
    doc["audit_trail"] += [
        entry("approval_requested", "change-manager"),
        entry("approved", "tech-lead", "ok 5", "2026-11-29T21:29:00Z"),
        entry("implementation_started", "cortex-deployer", at="2026-11-29T21:29:10Z"),
        entry("closed", "change-manager", "Rolled back after errors", "2026-11-29T21:30:00Z"),
    ]
    doc["metrics"].update(
        approved_at="2026-11-29T21:29:00Z",
        implemented_at="2026-11-29T21:29:10Z",
        closed_at="2026-11-29T21:30:00Z",
    )
    change = mapped(doc, "closed").change
    assert (change.closure_status, change.closure_notes) == (
        ClosureStatus.ROLLED_BACK,
        "Rolled back after errors",
    )
    [approval] = change.approvals
    assert (approval.approver, approval.role, approval.decision, approval.reason) == (
        "tech-lead",
        "technical-lead",
        Decision.APPROVED,
        "ok 5",
    )
    t = change.timeline
    assert t.implementation_started_at == datetime(
        2026, 11, 29, 21, 29, 10, tzinfo=UTC
    )  # metrics.implemented_at
    assert t.implemented_at == t.closed_at == datetime(2026, 11, 29, 21, 30, tzinfo=UTC)
    assert t.mtta_seconds == 7.0


def test_a_rejection_and_the_policy_approvals() -> None:
    doc = assessed(state="rejected", rejected_by="tech-lead", rejection_reason="Not ready", rejected_at=T0)
    doc["audit_trail"].append(entry("rejected", "tech-lead", "Not ready"))
    [rejection] = mapped(doc, "rejected").change.approvals
    assert (rejection.decision, rejection.role, rejection.reason) == (
        Decision.REJECTED,
        "technical-lead",
        "Not ready",
    )
    auto = assessed(score=20, route="auto-approved", state="approved")
    auto["audit_trail"].append(entry("approved", "auto-approval-system", "Automatically approved (low risk)"))
    assert [a.role for a in mapped(auto, "approved").change.approvals] == ["auto-approved"]


def test_an_approval_only_the_record_names_is_taken_and_noted() -> None:
    doc = assessed(state="approved", approved_by="tech-lead", approved_at=T0)
    imported = mapped(doc, "approved")
    assert [a.approver for a in imported.change.approvals] == ["tech-lead"]
    assert imported.notes == [
        "approved_by tech-lead has no approved entry in the trail: taken from approved_by"
    ]


def test_an_approved_emergency_change_owes_its_review() -> None:
    doc = assessed(score=65, route="cab", state="approved", type="emergency")
    doc["audit_trail"].append(entry("approved", "emergency-cab", "ECAB"))
    change = mapped(doc, "approved").change
    assert change.type is ChangeType.EMERGENCY
    assert change.approvals[0].role == "emergency-cab"
    assert change.review is not None
    assert change.review.due_at == datetime(2026, 11, 30, 21, 28, 53, tzinfo=UTC)  # + 24 h


def test_a_folder_that_disagrees_and_an_unknown_category_are_noted_not_guessed() -> None:
    imported = mapped(record(category="database"), "approved")
    assert imported.change.state is State.PENDING_ASSESSMENT
    assert imported.change.category == "database"
    assert imported.notes == [
        "the record says pending_assessment but lies in approved/: its own state is kept",
        "category 'database' is not configured (kept; it scores 0 on a re-assessment)",
    ]


def test_fields_kept_as_the_tool_wrote_them() -> None:
    doc = record(
        title='Rotate "prod" $(rm -rf) \n certificates',
        affected_services=["cortex-chat"],
        implementation_plan={"steps": ["a"]},
        rollback_change_id="RFC-20261129212900-000001",
    )
    imported = mapped(doc)
    change = imported.change
    assert change.title == doc["title"]
    assert change.affected_services == ["cortex-chat"]
    assert change.implementation_plan == {"steps": ["a"]}
    assert change.rollback_plan is None  # the tool's {} is "none"
    record_info = imported.events[0].details["record"]
    assert record_info["fields_not_mapped"] == {"rollback_change_id": "RFC-20261129212900-000001"}


@pytest.mark.parametrize(
    ("fields", "folder", "why"),
    [
        ({"state": "archived"}, "pending", "state 'archived' is not one the tool writes"),
        ({"type": "urgent"}, "pending", "type 'urgent' is not one of standard, normal, emergency"),
        ({"impact": "huge"}, "pending", "impact 'huge' is not one of low, medium, high, critical"),
        ({"state": "pending_approval"}, "pending", "state pending_approval but no risk_score"),
        ({"requested_by": ""}, "pending", "requested_by is '': a record needs one"),
        ({"change_id": "CHG-1"}, "pending", "'CHG-1' is not a change id"),
        ({"metrics": {"created_at": "yesterday"}}, "pending", "created_at 'yesterday' is not an ISO 8601"),
        ({"closure_status": "done"}, "closed", "closure_status 'done' is not one of"),
        ({"audit_trail": "none"}, "pending", "audit_trail is not a list"),
    ],
)
def test_records_we_cannot_represent_are_skipped_with_why(
    fields: dict[str, Any], folder: str, why: str
) -> None:
    assert why in refused(record(**fields), folder)


def test_a_route_we_do_not_know_is_refused() -> None:
    assert "approval_required 'ciso-only' is not one of" in refused(
        assessed(route="ciso-only", state="assessed")
    )


def test_a_file_named_for_another_change_is_refused() -> None:
    doc = record()
    parsed = tool.parse_record(
        "changes/pending/RFC-20261129212853-ffffff.json", json.dumps(doc).encode(), False
    )
    imported, skipped = tool.plan_change([parsed], [], POLICY, "m")
    assert imported is None
    assert "does not match its change_id" in skipped[0].reason
