"""Stores in the seed's shell tool's exact format (change-manager.sh): tests, bench/shelltool_import.py.

Each change goes through the tool's own steps as its functions write them: `create_rfc` (a heredoc:
two-space JSON, one key per line), `assess_change` and `route_change` (jq: keys appended in order),
`approve_change`, `reject_change`, `implement_change` (each `mv`s the file to its folder),
`close_change`, `submit_to_cab` (which also `cp`s the file to `changes/cab_queue/`, a copy the tool
never removes), and `log_audit`'s `TIMESTAMP | CHANGE_ID | ACTION | ACTOR | DETAILS` lines in
`audit/YYYY-MM-DD.log`. Deterministic: change i is filed `base + 7 i` seconds, its steps a second apart.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

BASE = datetime(2026, 11, 29, 8, 0, 0, tzinfo=UTC)
CATEGORY_RISK = {
    "security": 20,
    "infrastructure": 20,
    "deployment": 15,
    "configuration": 15,
    "patch": 10,
    "update": 10,
    "documentation": 5,
}
IMPACT_SCORE = {"critical": 40, "high": 30, "medium": 20, "low": 10}
PRIORITY = {
    "critical-critical": "P1",
    "critical-high": "P1",
    "critical-medium": "P2",
    "high-critical": "P2",
    "high-high": "P2",
    "critical-low": "P3",
    "high-medium": "P3",
    "medium-critical": "P3",
    "medium-high": "P3",
    "high-low": "P4",
    "medium-medium": "P4",
    "low-critical": "P4",
    "low-high": "P4",
}
# One change in 20 of each path, by index: (category, impact, the steps after create).
PATHS: list[tuple[str, str, tuple[str, ...]]] = [
    ("deployment", "medium", ("assess", "approve", "implement", "close:successful")),
    ("deployment", "medium", ("assess", "approve", "implement", "close:successful")),
    ("configuration", "medium", ("assess", "approve", "implement", "close:successful")),
    ("deployment", "medium", ("assess", "approve", "implement", "close:successful")),
    ("patch", "medium", ("assess", "approve", "implement", "close:successful")),
    ("deployment", "medium", ("assess", "approve", "implement", "close:successful")),
    ("update", "medium", ("assess", "approve", "implement", "close:successful")),
    ("deployment", "medium", ("assess", "approve", "implement", "close:successful")),
    ("deployment", "medium", ("assess", "approve", "implement", "close:failed")),
    ("deployment", "medium", ("assess", "approve", "implement", "close:rolled_back")),
    ("documentation", "low", ("assess",)),  # 20: auto-approved
    ("documentation", "low", ("assess", "implement")),  # auto-approved, then implementing
    ("deployment", "medium", ("assess", "approve")),  # approved by a technical lead
    ("deployment", "medium", ("assess", "reject")),
    ("configuration", "medium", ("assess",)),  # pending_approval
    ("deployment", "low", ("assess",)),  # 30: pending_approval
    ("security", "high", ("assess",)),  # 55: pending_approval
    ("security", "critical", ("assess",)),  # 65: pending_cab, with its cab_queue copy
    ("infrastructure", "critical", ("assess", "approve")),  # via the CAB: a stale cab_queue copy
    ("documentation", "medium", ()),  # pending_assessment
]


def stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


class Tool:
    """A store being written as the tool writes it: files staged in memory, each written once at
    `flush` (the same bytes the tool's rewrites and `mv`s leave; 100 000 changes rewritten five
    times each would take minutes of file system time)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.where: dict[str, str] = {}  # change id -> folder of its live record
        self.files: dict[tuple[str, str], str] = {}  # (folder, change id) -> the record's text
        self.logs: dict[str, list[str]] = {}
        for folder in ("pending", "approved", "rejected", "implemented", "closed"):
            (root / "changes" / folder).mkdir(parents=True, exist_ok=True)
        (root / "audit").mkdir(parents=True, exist_ok=True)

    def log(self, at: datetime, change_id: str, action: str, actor: str, details: str) -> None:
        self.logs.setdefault(at.strftime("%Y-%m-%d"), []).append(
            f"{stamp(at)} | {change_id} | {action} | {actor} | {details}"
        )

    def write(self, doc: dict[str, Any], folder: str) -> None:
        """jq's rewrite of the record, then `mv` to `folder`."""
        change_id = doc["change_id"]
        old = self.where.get(change_id)
        if old is not None and old != folder:
            del self.files[(old, change_id)]
        self.where[change_id] = folder
        self.files[(folder, change_id)] = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"

    def copy(self, change_id: str, folder: str) -> None:
        """`cp` the live record into `folder`."""
        (self.root / "changes" / folder).mkdir(exist_ok=True)
        self.files[(folder, change_id)] = self.files[(self.where[change_id], change_id)]

    def flush(self) -> None:
        for (folder, change_id), text in self.files.items():
            (self.root / "changes" / folder / f"{change_id}.json").write_text(text, encoding="utf-8")
        self.files.clear()
        for day, lines in self.logs.items():
            with (self.root / "audit" / f"{day}.log").open("a", encoding="utf-8") as f:
                f.write("".join(f"{line}\n" for line in lines))
        self.logs.clear()


def new_record(
    change_id: str, at: str, requester: str, category: str, impact: str, title: str
) -> dict[str, Any]:
    """A record as the tool's create_rfc writes it (`at`: its timestamp text)."""
    return {
        "change_id": change_id,
        "type": "normal",
        "category": category,
        "title": title,
        "description": f"Generated change {change_id}",
        "requested_by": requester,
        "requested_at": at,
        "state": "pending_assessment",
        "impact": impact,
        "urgency": "medium",
        "priority": None,
        "risk_score": None,
        "approval_required": None,
        "assigned_to": None,
        "implementation_plan": {},
        "rollback_plan": {},
        "affected_services": [],
        "affected_cis": [],
        "dependencies": [],
        "test_plan": {},
        "audit_trail": [{"timestamp": at, "action": "created", "actor": requester, "details": "RFC created"}],
        "compliance": {"soc2": None, "hipaa": None, "iso27001": None},
        "metrics": {
            "created_at": at,
            "assessed_at": None,
            "approved_at": None,
            "implemented_at": None,
            "closed_at": None,
            "mtta": None,
            "mtti": None,
        },
    }


def create(
    tool: Tool, at: datetime, change_id: str, category: str, impact: str, title: str
) -> dict[str, Any]:
    requester = f"dev-{int(change_id[-6:], 16) % 5}"
    doc = new_record(change_id, stamp(at), requester, category, impact, title)
    tool.write(doc, "pending")
    tool.log(at, change_id, "created", requester, f"RFC created: {title}")
    return doc


def _trail(doc: dict[str, Any], at: datetime, action: str, actor: str, details: str) -> None:
    doc["audit_trail"].append({"timestamp": stamp(at), "action": action, "actor": actor, "details": details})


def assess(tool: Tool, doc: dict[str, Any], at: datetime) -> str:
    score = IMPACT_SCORE[doc["impact"]] + CATEGORY_RISK.get(doc["category"], 0) + 5
    priority = PRIORITY.get(f"{doc['impact']}-{doc['urgency']}", "P5")
    route = "auto-approved" if score < 30 else "technical-lead" if score < 60 else "cab"
    assessor = {
        "security": "security-master",
        "deployment": "development-master",
        "infrastructure": "cicd-master",
    }.get(doc["category"], "coordinator-master" if score >= 60 else "development-master")
    doc.update(priority=priority, risk_score=score, approval_required=route, assigned_to=assessor)
    doc["state"] = "assessed"
    doc["metrics"]["assessed_at"] = stamp(at)
    _trail(
        doc, at, "assessed", "ai-risk-engine", f"Risk score: {score}, Priority: {priority}, Approval: {route}"
    )
    tool.write(doc, tool.where[doc["change_id"]])
    tool.log(at, doc["change_id"], "assessed", "ai-risk-engine", f"Risk: {score}, Priority: {priority}")
    if route == "auto-approved":
        approve(tool, doc, at, "auto-approval-system", "Automatically approved (low risk)")
    elif route == "technical-lead":
        doc["state"] = "pending_approval"
        _trail(doc, at, "approval_requested", "change-manager", "Awaiting Technical Lead approval")
        tool.write(doc, tool.where[doc["change_id"]])
        tool.log(
            at, doc["change_id"], "approval_requested", "change-manager", "Technical Lead approval requested"
        )
    else:
        doc["state"] = "pending_cab"
        _trail(doc, at, "submitted_to_cab", "change-manager", "Submitted for CAB review")
        tool.write(doc, tool.where[doc["change_id"]])
        tool.copy(doc["change_id"], "cab_queue")  # never removed by the tool
        tool.log(at, doc["change_id"], "submitted_to_cab", "change-manager", "Awaiting CAB review")
    return route


def approve(tool: Tool, doc: dict[str, Any], at: datetime, approver: str, reason: str) -> None:
    doc["state"] = "approved"
    doc["approved_by"] = approver
    doc["approved_at"] = stamp(at)
    doc["metrics"]["approved_at"] = stamp(at)
    _trail(doc, at, "approved", approver, reason)
    tool.write(doc, "approved")
    tool.log(at, doc["change_id"], "approved", approver, reason)


def reject(tool: Tool, doc: dict[str, Any], at: datetime, rejector: str, reason: str) -> None:
    doc.update(state="rejected", rejected_by=rejector, rejected_at=stamp(at), rejection_reason=reason)
    _trail(doc, at, "rejected", rejector, reason)
    tool.write(doc, "rejected")
    tool.log(at, doc["change_id"], "rejected", rejector, reason)


def implement(tool: Tool, doc: dict[str, Any], at: datetime) -> None:
    doc["state"] = "implementing"
    doc["implementation_started_at"] = stamp(at)
    doc["metrics"]["implemented_at"] = stamp(at)
    _trail(doc, at, "implementation_started", "cortex-deployer", "Change implementation started")
    tool.write(doc, "implemented")
    tool.log(at, doc["change_id"], "implementation_started", "cortex-deployer", "Implementation started")


def close(tool: Tool, doc: dict[str, Any], at: datetime, status: str, notes: str) -> None:
    doc.update(state="closed", closure_status=status, closure_notes=notes)
    doc["metrics"]["closed_at"] = stamp(at)
    _trail(doc, at, "closed", "change-manager", notes)
    tool.write(doc, "closed")
    tool.log(at, doc["change_id"], "closed", "change-manager", f"Status: {status} - {notes}")


def generate(root: Path, count: int, start: int = 0) -> dict[str, dict[str, Any]]:
    """`count` changes (indices from `start`) into the store at `root`; what each became:
    {id: {state, folder, closure_status, approvers, rejected_by, route}}."""
    tool = Tool(root)
    expected: dict[str, dict[str, Any]] = {}
    for i in range(start, start + count):
        at = BASE + timedelta(seconds=7 * i)
        change_id = f"RFC-{at:%Y%m%d%H%M%S}-{i:06x}"
        category, impact, steps = PATHS[i % len(PATHS)]
        doc = create(tool, at, change_id, category, impact, f"Change {i}: {category}")
        want: dict[str, Any] = {"approvers": [], "rejected_by": None, "route": None, "closure_status": None}
        for step in steps:
            at += timedelta(seconds=1)
            if step == "assess":
                want["route"] = assess(tool, doc, at)
                if want["route"] == "auto-approved":
                    want["approvers"].append("auto-approval-system")
            elif step == "approve":
                approver = "cab-chair" if doc["state"] == "pending_cab" else "tech-lead"
                approve(tool, doc, at, approver, f"ok {i}")
                want["approvers"].append(approver)
            elif step == "reject":
                reject(tool, doc, at, "tech-lead", "Not ready")
                want["rejected_by"] = "tech-lead"
            elif step == "implement":
                implement(tool, doc, at)
            else:
                status = step.split(":", 1)[1]
                close(tool, doc, at, status, {"successful": "Deployed"}.get(status, f"{status} after errors"))
                want["closure_status"] = status
        want.update(state=doc["state"], folder=tool.where[change_id])
        expected[change_id] = want
        if i % 1000 == 999:  # a change's files are final once it is generated
            tool.flush()
    tool.flush()
    return expected
