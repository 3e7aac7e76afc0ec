"""Every built-in catalog entry creates the change the seed describes (SPEC §10)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from cortex_change.domain.errors import NotFound, ValidationError
from cortex_change.services.context import Context
from cortex_change.services.integrations import integrate
from cortex_change.services.queries import get_change

CVE_CRITICAL = '{"cve_id":"CVE-2024-12345","severity":"critical","description":"Critical security patch"}'
CVE_HIGH = '{"cve_id":"CVE-2024-22222","severity":"high","description":"High security patch"}'
PROD_DEPLOY = '{"environment":"production","service":"cortex-chat","description":"Deploy v2.1.0"}'

# component, action, details -> type after assessment, category, impact, urgency, route, state
# fmt: off
CREATING = [
    ("development-master", "deploy", "New error recovery feature",
     "normal", "deployment", "medium", "medium", "technical-lead", "pending_approval"),
    ("development-master", "fix_bug", "Critical production bug in YouTube workflow",
     "emergency", "deployment", "high", "critical", "emergency-cab", "approved"),
    ("security-master", "patch_cve", CVE_CRITICAL,
     "emergency", "security", "critical", "critical", "emergency-cab", "approved"),
    ("security-master", "patch_cve", CVE_HIGH,
     "standard", "security", "high", "high", "pre-approved", "approved"),
    ("security-master", "scan_repository", "cortex-chat-backend",
     "normal", "inventory", "low", "low", "auto-approved", "approved"),
    ("cicd-master", "build", "cortex-chat-backend:v2.1.0",
     "normal", "cicd", "low", "low", "technical-lead", "pending_approval"),
    ("cicd-master", "deploy", PROD_DEPLOY,
     "normal", "deployment", "high", "medium", "technical-lead", "pending_approval"),
    ("cicd-master", "rollback", "Rollback cortex-chat to v2.0.9",
     "emergency", "rollback", "high", "high", "emergency-cab", "approved"),
    ("inventory-master", "catalog_repository", "new-microservice-repo",
     "normal", "inventory", "low", "low", "auto-approved", "approved"),
    ("inventory-master", "update_dependencies", "Update to Node.js 22 LTS",
     "normal", "update", "medium", "medium", "technical-lead", "pending_approval"),
    ("youtube-ingestion", "update_service", "Improve transcript extraction",
     "normal", "deployment", "medium", "medium", "technical-lead", "pending_approval"),
    ("youtube-ingestion", "emergency_fix", "Fix object serialization bug",
     "emergency", "deployment", "high", "critical", "emergency-cab", "approved"),
    ("cortex-chat", "deploy_feature", "Add file upload support",
     "normal", "deployment", "medium", "medium", "technical-lead", "pending_approval"),
    ("cortex-chat", "hotfix", "Fix message overflow bug",
     "emergency", "deployment", "high", "high", "emergency-cab", "approved"),
    ("kubernetes", "scale", '{"deployment":"cortex-chat","replicas":8}',
     "standard", "infrastructure", "low", "medium", "pre-approved", "approved"),
    ("kubernetes", "restart_pod", "cortex-chat-backend-abc123",
     "standard", "infrastructure", "low", "medium", "pre-approved", "approved"),
    ("kubernetes", "update_config", '{"deviation": 10, "description": "Raise pool size by 10%"}',
     "standard", "configuration", "low", "medium", "pre-approved", "approved"),
    ("kubernetes", "update_config", "Update environment variables for cortex-chat",
     "normal", "configuration", "low", "medium", "technical-lead", "pending_approval"),
]
# fmt: on


def _counts(ctx: Context) -> tuple[int, int]:
    with ctx.db.read() as tx:
        changes, events = (tx.one(f"SELECT count(*) FROM {t}") for t in ("changes", "audit_events"))
    assert changes is not None and events is not None
    return int(changes[0]), int(events[0])


@pytest.mark.parametrize(
    ("component", "action", "details", "type_", "category", "impact", "urgency", "route", "state"),
    CREATING,
    ids=[f"{c[0]}-{c[1]}-{i}" for i, c in enumerate(CREATING)],
)
def test_catalog_entry_creates_the_seeds_change(
    ctx: Context,
    component: str,
    action: str,
    details: str,
    type_: str,
    category: str,
    impact: str,
    urgency: str,
    route: str,
    state: str,
) -> None:
    outcome = integrate(ctx, component=component, action=action, args=[details])
    doc = get_change(ctx, change_id=outcome.change_id)
    got = (
        doc["type"],
        doc["category"],
        doc["impact"],
        doc["urgency"],
        doc["approval_required"],
        doc["state"],
    )
    assert got == (type_, category, impact, urgency, route, state)
    assert doc["requested_by"] == component
    if route == "pre-approved":
        assert [a["approver"] for a in doc["approvals"]] == [f"standard-model:{doc['standard_model']}"]


def test_every_builtin_component_and_action_is_covered(ctx: Context) -> None:
    from cortex_change.catalog.loader import load_catalog

    catalog = load_catalog(ctx.settings)
    creating = {(c[0], c[1]) for c in CREATING}
    operating = {(c, a) for c, acts in catalog.templates.items() for a, t in acts.items() if t.operation}
    assert {(c, a) for c, acts in catalog.templates.items() for a in acts} == creating | operating
    assert operating == {
        ("coordinator-master", "review"),
        ("coordinator-master", "approve"),
        ("coordinator-master", "reject"),
        ("coordinator-master", "route"),
        ("worker", "execute"),
        ("worker", "report_success"),
        ("worker", "report_failure"),
    }


def test_json_details_flow_into_the_change(ctx: Context) -> None:
    details = json.dumps(
        {
            "environment": "staging",
            "service": "my-service",
            "version": "2.1.0",
            "description": "Deploy v2.1.0",
        }
    )
    doc = get_change(
        ctx, change_id=integrate(ctx, component="cicd-master", action="deploy", args=[details]).change_id
    )
    assert doc["environment"] == "staging"
    assert doc["affected_services"] == ["my-service"]
    assert doc["parameters"] == {"version": "2.1.0"}
    assert doc["description"] == "Deploy v2.1.0"
    assert doc["title"] == "Deploy my-service to staging"


@pytest.mark.parametrize(
    ("component", "action", "args", "field"),
    [
        ("nope", "deploy", ["x"], "component: unknown component 'nope'; valid: cicd-master"),
        (
            "kubernetes",
            "explode",
            ["x"],
            "action: unknown action 'explode' for kubernetes; valid: restart_pod",
        ),
        ("kubernetes", "scale", ['{"replicas": 3'], "details: malformed JSON"),
        ("kubernetes", "scale", ['{"replicas": {"nested": 1}}'], "details.replicas: must be text"),
        ("kubernetes", "scale", [], "details: kubernetes scale needs DETAILS"),
        ("cicd-master", "deploy", ['{"impact": "enormous"}'], "impact: 'enormous' is not allowed"),
    ],
)
def test_bad_integration_input_writes_nothing(
    ctx: Context, component: str, action: str, args: list[str], field: str
) -> None:
    before = _counts(ctx)
    with pytest.raises(ValidationError, match="^" + re.escape(field)):
        integrate(ctx, component=component, action=action, args=args)
    assert _counts(ctx) == before


def test_coordinator_and_worker_operations(ctx: Context) -> None:
    change_id = integrate(
        ctx, component="cortex-chat", action="deploy_feature", args=["Add conversation export functionality"]
    ).change_id
    review = integrate(ctx, component="coordinator-master", action="review", args=[change_id])
    assert review.change_id == change_id and "pending_approval" in review.steps[0]
    integrate(
        ctx, component="coordinator-master", action="approve", args=[change_id, "Approved after team review"]
    )
    doc = get_change(ctx, change_id=change_id)
    assert doc["state"] == "approved"
    assert doc["approvals"][-1]["approver"] == "coordinator-master"
    assert doc["approvals"][-1]["reason"] == "Approved after team review"
    # The seed's worker order: worker WORKER_ID ACTION CHANGE_ID
    integrate(ctx, component="worker", action="worker-001", args=["execute", change_id])
    assert get_change(ctx, change_id=change_id)["state"] == "implementing"
    integrate(ctx, component="worker", action="worker-001", args=["report_success", change_id])
    doc = get_change(ctx, change_id=change_id)
    assert (doc["state"], doc["closure_status"]) == ("closed", "successful")
    assert {
        e["actor"] for e in doc["audit_trail"] if e["action"] in ("implementation_started", "closed")
    } == {"worker-001"}


def test_worker_failure_closes_failed_and_reject_by_coordinator(ctx: Context) -> None:
    first = integrate(ctx, component="youtube-ingestion", action="emergency_fix", args=["Fix it"]).change_id
    integrate(ctx, component="worker", action="worker-002", args=["execute", first])
    integrate(
        ctx,
        component="worker",
        action="worker-002",
        args=["report_failure", first, "Deployment failed health checks"],
    )
    doc = get_change(ctx, change_id=first)
    # Its rollback plan has no executable step: the automated rollback cannot run, so it fails.
    assert doc["closure_status"] == "failed"
    assert doc["closure_notes"].startswith("Deployment failed health checks; rollback failed")
    second = integrate(
        ctx, component="inventory-master", action="update_dependencies", args=["Update to Node.js 22 LTS"]
    ).change_id
    integrate(
        ctx, component="coordinator-master", action="reject", args=[second, "Insufficient testing coverage"]
    )
    assert get_change(ctx, change_id=second)["state"] == "rejected"


def test_operation_on_unknown_change_is_not_found(ctx: Context) -> None:
    with pytest.raises(NotFound):
        integrate(
            ctx, component="coordinator-master", action="approve", args=["RFC-20260101000000-abcdef", "ok"]
        )


def test_user_catalog_adds_components_and_models(make_ctx: Any, tmp_path: Path) -> None:
    (tmp_path / "cortex-change.toml").write_text(
        """
[models.db-failover]
description = "Fail over a database"
otherwise = "normal"
condition = { kind = "rate", field = "cluster", limit = 1, window = "1d" }

[integrations.postgres.failover]
summary = "Fail over the primary"
type = "standard"
category = "infrastructure"
model = "db-failover"
text_field = "cluster"
title = "Fail over {cluster}"
services = ["{cluster}"]
""",
        "utf-8",
    )
    ctx = make_ctx()
    first = get_change(
        ctx, change_id=integrate(ctx, component="postgres", action="failover", args=["main-db"]).change_id
    )
    assert (first["state"], first["title"], first["affected_services"]) == (
        "approved",
        "Fail over main-db",
        ["main-db"],
    )
    second = get_change(
        ctx, change_id=integrate(ctx, component="postgres", action="failover", args=["main-db"]).change_id
    )
    assert (second["type"], second["state"]) == ("normal", "pending_approval")


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[models.x]\ncondition = { kind = "sometimes", field = "a" }\n', "models.x: needs condition"),
        (
            '[integrations.a.b]\nsummary = "s"\nmodel = "ghost"\n',
            "integrations.a.b.model: unknown model 'ghost'",
        ),
        ('[integrations.a.b]\nsummary = "s"\ncolour = "red"\n', "integrations.a.b: unknown field(s) colour"),
        ('[integrations.a.b]\noperation = "launch"\n', "integrations.a.b.operation: 'launch' is not allowed"),
    ],
)
def test_bad_user_catalog_is_refused_naming_the_entry(
    make_ctx: Any, tmp_path: Path, toml: str, message: str
) -> None:
    (tmp_path / "cortex-change.toml").write_text(toml, "utf-8")
    ctx = make_ctx()
    with pytest.raises(ValidationError, match="^" + re.escape(message)):
        integrate(ctx, component="kubernetes", action="scale", args=['{"replicas": 2}'])
