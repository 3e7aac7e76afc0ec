"""SPEC §11 "Routes never fall by self-declaration": a requester who talks a CAB change down
(lower impact, fewer services) keeps it at CAB, loses the votes already cast, and only a
CHANGE_MANAGERS member's `assess --reassess --reason` lowers the route (audited with the reason).
"""

from __future__ import annotations

from functools import partial

from security_support import TEXT_PLANS, Door, World


def at_cab_with_one_vote(world: World, door: Door) -> str:
    change_id = door.create(
        "alice",
        "normal",
        "deployment",
        "Migrate the billing database",
        impact="critical",
        affected_services=["billing", "invoicing", "payments"],
        **TEXT_PLANS,  # documentation passes: the CAB vote is not refused for a missing plan
    )
    door.ok(door.assess("alice", change_id))
    assert world.route(change_id) == ("normal", "cab", "pending_cab")
    door.ok(door.approve("ops-lead", change_id))
    doc = world.doc(change_id)
    assert doc["state"] == "pending_cab"
    assert [(a["approver"], a["active"]) for a in doc["approvals"]] == [("ops-lead", True)]
    return change_id


def talked_down(world: World, door: Door) -> str:
    """The CAB change after its requester lowered impact and removed every service."""
    change_id = at_cab_with_one_vote(world, door)
    door.ok(door.update("alice", change_id, impact="low", affected_services=[]))
    return change_id


def test_lowering_impact_keeps_the_route_and_discards_the_vote(world: World, door: Door) -> None:
    change_id = talked_down(world, door)
    doc = world.doc(change_id)
    assert doc["risk_level"] == "medium"  # on its own score: a technical lead's
    assert (doc["approval_required"], doc["state"], doc["route_floor"]) == ("cab", "pending_cab", "cab")
    assert [(a["approver"], a["active"]) for a in doc["approvals"]] == [("ops-lead", False)]
    [discarded] = [e for e in world.events(change_id) if e.action == "approvals_discarded"]
    assert discarded.details["approvers"] == ["ops-lead"]

    # A plain re-assessment by the requester does not lower it either.
    door.ok(door.assess("alice", change_id, reassess=True))
    assert world.route(change_id) == ("normal", "cab", "pending_cab")

    # One more CAB vote is not enough: the discarded one does not count.
    door.ok(door.approve("security-lead", change_id))
    assert world.record(change_id).state == "pending_cab"


def test_only_a_change_manager_lowers_the_route(world: World, door: Door) -> None:
    change_id = talked_down(world, door)
    for attacker in ("alice", "tech-lead", "ops-lead"):
        message = world.refused(
            change_id,
            attacker,
            partial(door.assess, attacker, change_id, reassess=True, reason="it is small now"),
            door.REFUSED,
        )
        assert f"{attacker} may not lower the approval route of {change_id}" in message
        assert "CHANGE_MANAGERS (change-manager)" in message
    assert "route_floor_lowered" not in world.actions(change_id)

    door.ok(door.assess("change-manager", change_id, reassess=True, reason="one service left, low impact"))
    assert world.route(change_id) == ("normal", "technical-lead", "pending_approval")
    [lowered] = [e for e in world.events(change_id) if e.action == "route_floor_lowered"]
    assert lowered.actor == "change-manager"
    assert lowered.details == {"from": "cab", "reason": "one service left, low impact"}
    door.ok(door.approve("tech-lead", change_id))
    assert world.record(change_id).state == "approved"
