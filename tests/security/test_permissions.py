"""SPEC §11 "Who may do what": carrying out, closing, cancelling and editing somebody else's
change is refused to anyone outside the permission table, at every door.

Attackers: `eve` (no role at all) and `tech-lead` (who approves changes but may not carry them
out). Positive controls: the requester, an IMPLEMENTERS member and a CHANGE_MANAGERS member.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from security_support import CliDoor, Door, World, run_plan

CARRY_OUT = ("the requester (alice)", "IMPLEMENTERS (cortex-deployer)", "CHANGE_MANAGERS (change-manager)")
OWN_OR_MANAGER = ("the requester (alice)", "CHANGE_MANAGERS (change-manager)")


def names(message: str, attacker: str, verb: str, change_id: str, holders: tuple[str, ...]) -> None:
    """The refusal names who asked, the action, the change, and who may do it."""
    assert f"{attacker} may not {verb} {change_id}" in message
    for holder in holders:
        assert holder in message


def approved(world: World, door: Door) -> tuple[str, Path]:
    """alice's change with an executable step, approved by a technical lead."""
    marker = world.marker()
    change_id = door.create(
        "alice", "normal", "documentation", "Fix typo", impact="low", implementation_plan=run_plan(marker)
    )
    door.ok(door.assess("alice", change_id))
    door.ok(door.approve("tech-lead", change_id))
    assert world.record(change_id).state == "approved"
    return change_id, marker


def implemented(world: World, door: Door) -> str:
    """alice's low-risk change (text steps, auto-approved), implemented by alice."""
    change_id = door.create(
        "alice", "normal", "documentation", "Fix typo", impact="low", implementation_plan={"steps": ["edit"]}
    )
    door.ok(door.assess("alice", change_id))
    door.ok(door.implement("alice", change_id))
    assert world.record(change_id).state == "implemented"
    return change_id


def pending(world: World, door: Door) -> str:
    """alice's change waiting for a technical lead."""
    change_id = door.create("alice", "normal", "configuration", "Raise the pool size")
    door.ok(door.assess("alice", change_id))
    assert world.record(change_id).state == "pending_approval"
    return change_id


@pytest.mark.parametrize("attacker", ["eve", "tech-lead"])
def test_others_cannot_implement(world: World, door: Door, attacker: str) -> None:
    change_id, marker = approved(world, door)
    message = world.refused(change_id, attacker, lambda: door.implement(attacker, change_id), door.REFUSED)
    names(message, attacker, "implement", change_id, CARRY_OUT)
    assert "the worker holding the lease" in message
    world.worker_pass()
    assert world.record(change_id).state == "approved"
    assert not marker.exists()


def test_others_cannot_close(world: World, door: Door) -> None:
    change_id = implemented(world, door)
    message = world.refused(change_id, "eve", lambda: door.close("eve", change_id), door.REFUSED)
    names(message, "eve", "close", change_id, CARRY_OUT)
    assert world.record(change_id).state == "implemented"


@pytest.mark.parametrize("attacker", ["eve", "cortex-deployer"])
def test_others_cannot_cancel(world: World, door: Door, attacker: str) -> None:
    """Cancelling is the requester's or a change manager's: not even an implementer's."""
    change_id = pending(world, door)
    message = world.refused(change_id, attacker, lambda: door.cancel(attacker, change_id), door.REFUSED)
    names(message, attacker, "cancel", change_id, OWN_OR_MANAGER)
    assert "IMPLEMENTERS" not in message


@pytest.mark.parametrize("attacker", ["eve", "cortex-deployer"])
def test_others_cannot_edit(world: World, door: Door, attacker: str) -> None:
    change_id = pending(world, door)
    marker = world.marker()
    message = world.refused(
        change_id,
        attacker,
        lambda: door.update(attacker, change_id, implementation_plan=run_plan(marker)),
        door.REFUSED,
    )
    names(message, attacker, "update", change_id, OWN_OR_MANAGER)
    assert world.doc(change_id)["authors"] == ["alice"]
    assert not marker.exists()


# --- positive controls -----------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["alice", "cortex-deployer", "change-manager"])
def test_requester_implementers_and_change_managers_carry_out(world: World, door: Door, who: str) -> None:
    change_id, marker = approved(world, door)
    door.implemented(who, change_id)
    assert marker.exists()
    assert world.record(change_id).state == "closed"  # no validation checks: closed successful
    assert [e.actor for e in world.events(change_id) if e.action == "implementation_started"]

    other = implemented(world, door)
    door.ok(door.close(who, other))
    assert world.record(other).state == "closed"
    assert [e.actor for e in world.events(other) if e.action == "closed"] == [who]


@pytest.mark.parametrize("who", ["alice", "change-manager"])
def test_requester_and_change_managers_cancel_and_edit(world: World, door: Door, who: str) -> None:
    edited = pending(world, door)
    door.ok(door.update(who, edited, description="with the new pool size"))
    assert [e.actor for e in world.events(edited) if e.action == "updated"] == [who]

    cancelled = pending(world, door)
    door.ok(door.cancel(who, cancelled))
    assert world.record(cancelled).state == "cancelled"


# --- the local CLI's other doors: rollback, and the seed's worker protocol --------------------------


def test_others_cannot_roll_back(world: World) -> None:
    door = CliDoor(world)
    change_id = implemented(world, door)
    message = world.refused(
        change_id, "eve", lambda: door.run("rollback", change_id, "I do not like it", "--as", "eve"), 1
    )
    names(message, "eve", "roll back", change_id, CARRY_OUT)
    assert world.record(change_id).state == "implemented"


def test_a_worker_outside_implementers_cannot_take_the_lease(world: World) -> None:
    """`worker execute WORKER ID` hands the plan to the worker: only to someone who may implement."""
    door = CliDoor(world)
    change_id, marker = approved(world, door)
    message = world.refused(change_id, "eve", lambda: door.run("worker", "execute", "eve", change_id), 1)
    names(message, "eve", "implement", change_id, CARRY_OUT)
    assert not marker.exists()

    # Positive control: an IMPLEMENTERS member's worker takes it, then reports as the lease holder.
    code, _, err = world.cli("worker", "execute", "cortex-deployer", change_id)
    assert code == 0, err
    assert world.record(change_id).state == "implementing"
    code, _, err = world.cli("worker", "report_success", "cortex-deployer", change_id, "ran it")
    assert code == 0, err
    assert world.record(change_id).state == "closed"
