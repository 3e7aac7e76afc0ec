"""Each standard change model at its limit and one past it (SPEC §5)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from cortex_change.domain.errors import ValidationError
from cortex_change.services.context import Context
from cortex_change.services.integrations import integrate
from cortex_change.services.queries import get_change
from support import file_change


def _scale(ctx: Context, replicas: Any) -> dict[str, Any]:
    details = json.dumps({"deployment": "cortex-chat", "replicas": replicas})
    return get_change(
        ctx, change_id=integrate(ctx, component="kubernetes", action="scale", args=[details]).change_id
    )


def _reclassify_reason(doc: dict[str, Any]) -> str:
    events = [e for e in doc["audit_trail"] if e["action"] == "reclassified"]
    assert len(events) == 1
    reason: str = events[0]["details"]["reason"]
    return reason


@pytest.mark.parametrize(
    ("replicas", "standard"),
    [(0, False), (1, True), (8, True), (10, True), (11, False), (12, False)],
)
def test_autoscale_bounds(ctx: Context, replicas: Any, standard: bool) -> None:
    doc = _scale(ctx, replicas)
    assert doc["type"] == ("standard" if standard else "normal")
    assert doc["state"] == ("approved" if standard else "pending_approval")
    if not standard:
        assert doc["reclassified_from"] == "standard"
        assert "autoscale" in _reclassify_reason(doc)


def test_replicas_that_are_not_a_number_are_refused_by_the_runbook(ctx: Context) -> None:
    """The scale plan's runbook takes replicas matching [0-9]{1,5}: anything else files nothing."""
    with pytest.raises(
        ValidationError, match=re.escape("params.replicas: 'many' does not fully match [0-9]{1,5}")
    ):
        _scale(ctx, "many")
    with ctx.db.read() as tx:
        assert tx.one("SELECT count(*) FROM changes") == (0,)


def test_autoscale_bounds_follow_configuration(make_ctx: Any) -> None:
    ctx = make_ctx(STD_AUTOSCALE_MAX_REPLICAS="12")
    assert _scale(ctx, 12)["type"] == "standard"
    assert _scale(ctx, 13)["type"] == "normal"


def test_disabled_model_makes_a_normal_change(make_ctx: Any) -> None:
    ctx = make_ctx(STD_AUTOSCALE_ENABLED="false")
    doc = _scale(ctx, 2)
    assert doc["type"] == "normal"
    assert "disabled" in _reclassify_reason(doc)


def test_worker_restart_limit_per_worker_per_hour(ctx: Context, clock: Any) -> None:
    def restart(worker: str) -> dict[str, Any]:
        change_id = integrate(ctx, component="kubernetes", action="restart_pod", args=[worker]).change_id
        return get_change(ctx, change_id=change_id)

    for n in range(3):
        doc = restart("worker-001")
        assert (doc["type"], doc["state"]) == ("standard", "approved"), n
        clock.advance(minutes=10)
    fourth = restart("worker-001")
    assert (fourth["type"], fourth["state"], fourth["approval_required"]) == (
        "normal",
        "pending_approval",
        "technical-lead",
    )
    assert (
        "3 earlier request(s) for target worker-001 in the last 1h reach the limit of 3"
        in _reclassify_reason(fourth)
    )
    # Another worker has its own budget.
    assert restart("worker-002")["type"] == "standard"
    # An hour after the first restart, one slot is free again.
    clock.advance(minutes=31)
    assert restart("worker-001")["type"] == "standard"


@pytest.mark.parametrize(
    ("severity", "type_", "state"),
    [
        ("low", "standard", "approved"),
        ("medium", "standard", "approved"),
        ("high", "standard", "approved"),
        ("critical", "emergency", "approved"),
        ("apocalyptic", "normal", "pending_approval"),
    ],
)
def test_security_patch_severity(ctx: Context, severity: str, type_: str, state: str) -> None:
    details = json.dumps({"cve_id": "CVE-2024-1", "severity": severity, "description": "patch"})
    doc = get_change(
        ctx,
        change_id=integrate(ctx, component="security-master", action="patch_cve", args=[details]).change_id,
    )
    assert (doc["type"], doc["state"]) == (type_, state)


def test_security_patch_ceiling_follows_configuration(make_ctx: Any) -> None:
    ctx = make_ctx(STD_SECURITY_PATCH_MAX_SEVERITY="medium")
    details = json.dumps({"cve_id": "CVE-2024-1", "severity": "high", "description": "patch"})
    doc = get_change(
        ctx,
        change_id=integrate(ctx, component="security-master", action="patch_cve", args=[details]).change_id,
    )
    assert doc["type"] == "emergency"


@pytest.mark.parametrize(
    ("deviation", "standard"),
    [(0, True), (20, True), (-20, True), (20.5, False), (-21, False), (None, False)],
)
def test_config_update_tolerance(ctx: Context, deviation: float | None, standard: bool) -> None:
    details: dict[str, Any] = {"description": "Tune pool size"}
    if deviation is not None:
        details["deviation"] = deviation
    doc = get_change(
        ctx,
        change_id=integrate(
            ctx, component="kubernetes", action="update_config", args=[json.dumps(details)]
        ).change_id,
    )
    assert doc["type"] == ("standard" if standard else "normal")


def test_create_standard_with_model_from_the_cli_path(ctx: Context) -> None:
    from cortex_change.services.changes import assess_change

    change = file_change(
        ctx,
        type="standard",
        category="infrastructure",
        title="Scale",
        requested_by="ops",
        standard_model="autoscale",
        parameters={"replicas": 4},
    )
    assert assess_change(ctx, change_id=change.change_id).approvals[0].approver == "standard-model:autoscale"
    bare = file_change(ctx, type="standard", category="infrastructure", title="Scale", requested_by="ops")
    assert assess_change(ctx, change_id=bare.change_id).type.value == "normal"
