"""SPEC §11 "Executable steps are privileged": ad-hoc `run` steps never reach a shell unless a
person holding the route's role approved the plan holding them.

Each attack files a request whose plan would create a marker file, tries to get it carried out
(implement, and a worker pass with AUTO_IMPLEMENT and IMPLEMENTATION_DELAY=0), and checks that
the marker never appears. Where a person may approve, a positive control shows the very same
step does run once they have — so an absent marker means something.
"""

from __future__ import annotations

import json
from pathlib import Path

from security_support import Door, World, run_plan

SEVEN_SERVICES = [f"svc-{i}" for i in range(7)]


def cannot_run(world: World, door: Door, change_id: str, requester: str) -> None:
    """The requester's implement is refused by the state, a worker pass does nothing, and the
    change never starts implementing."""
    world.refused(
        change_id,
        requester,
        lambda: door.implement(requester, change_id),
        door.WRONG_STATE,
        action="unauthorized_attempt",
    )
    before = world.record(change_id)
    world.worker_pass()
    assert world.record(change_id) == before
    assert "implementation_started" not in world.actions(change_id)


def test_standard_request_with_adhoc_steps_is_reclassified_and_routed_by_risk(
    world: World, door: Door
) -> None:
    marker = world.marker()
    change_id = door.create(
        "alice",
        "standard",
        "deployment",
        "Restart worker z",
        standard_model="worker-restart",
        parameters={"target": "z"},
        impact="critical",
        affected_services=SEVEN_SERVICES,
        implementation_plan=run_plan(marker),
    )
    door.ok(door.assess("alice", change_id))

    assert world.route(change_id) == ("normal", "cab+ciso+cto", "pending_cab")
    doc = world.doc(change_id)
    assert doc["reclassified_from"] == "standard"
    assert not [a for a in doc["approvals"] if a["approver"].startswith("standard-model:")]
    [reclassified] = [e for e in world.events(change_id) if e.action == "reclassified"]
    assert reclassified.details["to"] == "normal"
    assert "run/http" in reclassified.details["reason"]
    cannot_run(world, door, change_id, "alice")
    assert not marker.exists()


def test_emergency_with_adhoc_steps_waits_for_an_ecab_member(world: World, door: Door) -> None:
    marker = world.marker()
    change_id = door.create("alice", "emergency", "security", "Hotfix", implementation_plan=run_plan(marker))
    door.ok(door.assess("alice", change_id))  # EMERGENCY_AUTO_APPROVE is on

    assert world.route(change_id) == ("emergency", "emergency-cab", "pending_approval")
    [requested] = [e for e in world.events(change_id) if e.action == "approval_requested"]
    assert requested.details["needs"] == ["ecab 0/1"]
    assert world.doc(change_id)["approvals"] == []  # not `emergency-cab` auto-approval
    cannot_run(world, door, change_id, "alice")
    assert not marker.exists()

    # Positive control: once an ECAB member approved exactly this plan, it runs (AUTO_IMPLEMENT).
    door.ok(door.approve("tech-lead-oncall", change_id))
    world.worker_pass()
    assert marker.exists()


def test_low_risk_normal_change_with_adhoc_steps_goes_to_a_technical_lead(world: World, door: Door) -> None:
    marker = world.marker()
    change_id = door.create(
        "alice", "normal", "documentation", "Fix typo", impact="low", implementation_plan=run_plan(marker)
    )
    door.ok(door.assess("alice", change_id))

    doc = world.doc(change_id)
    assert doc["risk_level"] == "low"
    assert doc["risk_score"] < 25  # would be auto-approved without the step
    assert world.route(change_id) == ("normal", "technical-lead", "pending_approval")
    assert doc["approvals"] == []  # no auto-approval-system
    cannot_run(world, door, change_id, "alice")
    assert not marker.exists()

    door.ok(door.approve("tech-lead", change_id))
    door.implemented("alice", change_id)
    assert marker.exists()


def test_rollback_plan_steps_count_too(world: World, door: Door) -> None:
    marker = world.marker()
    change_id = door.create(
        "alice",
        "normal",
        "documentation",
        "Fix typo",
        impact="low",
        implementation_plan={"steps": ["edit the page"]},
        rollback_plan=run_plan(marker),
    )
    door.ok(door.assess("alice", change_id))
    assert world.route(change_id) == ("normal", "technical-lead", "pending_approval")
    cannot_run(world, door, change_id, "alice")
    assert not marker.exists()


def test_standard_integration_above_its_models_max_level_is_reclassified(world: World, door: Door) -> None:
    """`integrate security-master patch_cve` with a low severity but critical impact: the model
    would pre-approve the severity, but the assessed risk (high) is above its max_level."""
    change_id = door.integrate(
        "alice",
        "security-master",
        "patch_cve",
        {"cve_id": "CVE-1", "severity": "low", "impact": "critical"},
    )
    doc = world.doc(change_id)
    assert (doc["standard_model"], doc["reclassified_from"], doc["risk_level"]) == (
        "security-patch",
        "standard",
        "high",
    )
    assert world.route(change_id) == ("normal", "cab", "pending_cab")
    [reclassified] = [e for e in world.events(change_id) if e.action == "reclassified"]
    assert "max_level medium" in reclassified.details["reason"]
    requester = doc["requested_by"]
    cannot_run(world, door, change_id, requester)

    # The requester attaches a step afterwards: re-assessment keeps the change at CAB.
    marker = world.marker()
    door.ok(door.update(requester, change_id, implementation_plan=run_plan(marker)))
    assert world.route(change_id) == ("normal", "cab", "pending_cab")
    cannot_run(world, door, change_id, requester)
    assert not marker.exists()


def approved_without_a_person(world: World, door: Door) -> tuple[str, Path]:
    """A record routed under older rules, or written by hand: approved by the auto-approval
    system, with an ad-hoc step (creating the returned marker) in its plan."""
    change_id = door.create(
        "alice", "normal", "documentation", "Fix typo", impact="low", implementation_plan={"steps": ["edit"]}
    )
    door.ok(door.assess("alice", change_id))
    doc = world.doc(change_id)
    assert doc["state"] == "approved"
    assert [a["approver"] for a in doc["approvals"]] == ["auto-approval-system"]
    marker = world.marker()
    doc["implementation_plan"] = run_plan(marker)
    world.overwrite(change_id, json.dumps(doc))
    return change_id, marker


def test_adhoc_steps_nobody_approved_never_run(world: World, door: Door) -> None:
    change_id, marker = approved_without_a_person(world, door)
    door.implement("alice", change_id)  # refused here, or handed to a worker that refuses it
    world.worker_pass()
    assert world.record(change_id).state == "approved"
    assert "implementation_started" not in world.actions(change_id)
    assert not marker.exists()


def test_implement_refuses_adhoc_steps_nobody_approved(world: World, door: Door) -> None:
    """Implementing such a record is refused at the door, even for the requester."""
    change_id, marker = approved_without_a_person(world, door)
    message = world.refused(change_id, "alice", lambda: door.implement("alice", change_id), door.REFUSED)
    assert "no person approved" in message
    world.worker_pass()
    assert world.record(change_id).state == "approved"
    assert not marker.exists()
