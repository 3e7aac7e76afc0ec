"""CHANGE_MGMT_ENABLED=false on both backends (docs/devops.md): everything is still recorded and
assessed, nothing is approved automatically (auto-approval, standard pre-approval, emergency
auto-approval, REQUIRE_CHANGE_APPROVAL=false), and the deploy gate and the admission webhook
allow everything, saying why."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cortex_change.domain.errors import ConfigError, ValidationError
from cortex_change.domain.policy import UNMANAGED
from cortex_change.services.admission import review
from cortex_change.services.changes import assess_change
from cortex_change.services.context import Context
from cortex_change.services.gate import gate
from support import file_change, query

ADMISSION = Path(__file__).resolve().parent.parent / "fixtures" / "admission" / "deployment-create.json"
LOW_DOC = {
    "type": "normal",
    "category": "documentation",
    "title": "Fix a typo in the runbook",
    "impact": "low",
    "urgency": "low",
    "requested_by": "alice",
}
RESTART = {
    "type": "standard",
    "category": "infrastructure",
    "title": "Restart worker-7",
    "standard_model": "worker-restart",
    "parameters": {"target": "worker-7"},
    "requested_by": "alice",
}
HOTFIX = {"type": "emergency", "category": "deployment", "title": "Hotfix", "requested_by": "alice"}
OFF = {"CHANGE_MGMT_ENABLED": "false"}
DISABLED = "change management disabled (CHANGE_MGMT_ENABLED=false)"


@pytest.mark.parametrize(
    ("fields", "env", "auto_route", "human_route"),
    [
        (LOW_DOC, {}, "auto-approved", "technical-lead"),
        (RESTART, {}, "pre-approved", "technical-lead"),
        (HOTFIX, {}, "emergency-cab", "emergency-cab"),
        (LOW_DOC, {"REQUIRE_CHANGE_APPROVAL": "false"}, "auto-approved", "technical-lead"),
    ],
)
def test_nothing_is_approved_automatically(
    make_ctx: Callable[..., Context],
    fields: dict[str, Any],
    env: dict[str, str],
    auto_route: str,
    human_route: str,
) -> None:
    on = make_ctx(**env)
    first = assess_change(on, change_id=file_change(on, **fields).change_id)
    assert first.state.value == "approved" and first.assessment is not None
    assert first.assessment.route.value == auto_route  # the control: with it on, the system approves

    off = make_ctx(**env, **OFF)
    change = assess_change(off, change_id=file_change(off, **fields).change_id)
    assert change.assessment is not None and change.assessment.score == first.assessment.score
    assert change.assessment.route.value == human_route
    assert change.state.value == "pending_approval" and change.approvals == []
    assert DISABLED in change.assessment.route_reason
    rows = query(
        off.settings.database(), "SELECT action FROM audit_events WHERE change_id = ?", (change.change_id,)
    )
    assert [r[0] for r in rows][:2] == ["created", "assessed"]  # recorded and audited as ever


def test_the_gate_allows_everything_and_says_why(make_ctx: Callable[..., Context]) -> None:
    ctx = make_ctx(**OFF)
    verdict = gate(ctx, service="web", environment="production")
    assert verdict["allowed"] is True and verdict["change_id"] is None
    assert verdict["reasons"] == [
        "change management is DISABLED (CHANGE_MGMT_ENABLED=false): everything is recorded and "
        "audited, but nothing is approved automatically and no deploy is gated"
    ]
    pending = file_change(ctx, **{**LOW_DOC, "affected_services": ["web"]})
    asked = gate(ctx, service="web", change_id=pending.change_id)
    assert asked["allowed"] is True and asked["change_id"] == pending.change_id
    with pytest.raises(ValidationError):  # bad input is still bad input
        gate(ctx, service="web\nx")
    on = make_ctx()
    assert gate(on, service="web", environment="production")["allowed"] is False  # the control


def test_the_admission_webhook_allows_production_without_a_change(make_ctx: Callable[..., Context]) -> None:
    asked: dict[str, Any] = json.loads(ADMISSION.read_text("utf-8"))
    obj = copy.deepcopy(asked)
    obj["request"]["object"]["metadata"].setdefault("labels", {})["environment"] = "production"
    obj["request"]["object"]["metadata"].pop("annotations", None)
    on = review(make_ctx(), obj)["response"]
    assert on["allowed"] is False  # production without a change id: denied while managed
    off = review(make_ctx(**OFF), obj)["response"]
    assert off["allowed"] is True and "status" not in off
    assert off["warnings"] == [f"allowed: {UNMANAGED}"]


def test_the_git_keys_are_checked_at_start_up(make_ctx: Callable[..., Context]) -> None:
    with pytest.raises(ConfigError, match="GIT_FEATURE_CATEGORY: 'standard' is neither"):
        make_ctx(GIT_FEATURE_CATEGORY="standard")
    with pytest.raises(ConfigError, match="GIT_MAIN_CATEGORY"):
        make_ctx(GIT_MAIN_CATEGORY="Deploy ment")
    assert (
        make_ctx(GIT_MAIN_CATEGORY="cicd", GIT_FEATURE_CATEGORY="none").settings["GIT_MAIN_CATEGORY"]
        == "cicd"
    )
