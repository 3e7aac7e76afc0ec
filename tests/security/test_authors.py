"""SPEC §11 authors: nobody rewrites a plan and then approves, rejects or reviews it.

The world's configuration makes `change-manager` a technical lead and an ECAB member too, and
the requester `coordinator-master` is a technical lead: each holds the role that would let them
decide, so only segregation of duties over authors stands between them and their own plan.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from security_support import TEXT_PLANS, Door, World, run_plan

REQUESTER = "coordinator-master"  # a TECH_LEADS member
# Every field whose edit makes the editor an author, with a value that differs from the record's.
AUTHORING: dict[str, Any] = {
    "description": "now with a migration",
    "impact": "high",
    "urgency": "high",
    "affected_services": ["billing"],
    "affected_cis": ["db-1"],
    "dependencies": ["RFC-20250101000000-000000"],
    "implementation_plan": {"steps": ["migrate", "deploy"]},
    "rollback_plan": {"steps": ["restore the snapshot"]},
    "test_plan": {"steps": ["run the suite"]},
    "validation": {"failures_to_trip": 2},
}


def waiting_for_a_tech_lead(world: World, door: Door) -> str:
    change_id = door.create(REQUESTER, "normal", "configuration", "Raise the pool size", **TEXT_PLANS)
    door.ok(door.assess(REQUESTER, change_id))
    assert world.route(change_id) == ("normal", "technical-lead", "pending_approval")
    return change_id


def test_a_tech_lead_may_not_rewrite_the_plan(world: World, door: Door) -> None:
    change_id = waiting_for_a_tech_lead(world, door)
    marker = world.marker()
    message = world.refused(
        change_id,
        "tech-lead",
        lambda: door.update("tech-lead", change_id, implementation_plan=run_plan(marker)),
        door.REFUSED,
    )
    assert f"tech-lead may not update {change_id}" in message
    assert f"the requester ({REQUESTER})" in message
    assert "CHANGE_MANAGERS (change-manager)" in message
    assert world.doc(change_id)["authors"] == [REQUESTER]
    assert not marker.exists()


def test_a_change_manager_who_edited_the_plan_may_not_approve_it(world: World, door: Door) -> None:
    change_id = waiting_for_a_tech_lead(world, door)
    plan = {"steps": ["deploy", "purge caches"]}
    door.ok(door.update("change-manager", change_id, implementation_plan=plan))
    assert world.doc(change_id)["authors"] == [REQUESTER, "change-manager"]
    assert world.record(change_id).state == "pending_approval"

    message = world.refused(
        change_id, "change-manager", lambda: door.approve("change-manager", change_id), door.REFUSED
    )
    assert f"change-manager may not approve {change_id}" in message
    assert "edited" in message
    assert "SEGREGATION_OF_DUTIES" in message

    # The requester edits too, and may not approve either (although a TECH_LEADS member).
    door.ok(door.update(REQUESTER, change_id, description="purge caches after deploying"))
    assert world.doc(change_id)["authors"] == [REQUESTER, "change-manager"]
    message = world.refused(change_id, REQUESTER, lambda: door.approve(REQUESTER, change_id), door.REFUSED)
    assert f"{REQUESTER} may not approve {change_id}" in message
    assert "SEGREGATION_OF_DUTIES" in message

    # Positive control: a technical lead who wrote none of it approves.
    door.ok(door.approve("tech-lead", change_id))
    assert world.record(change_id).state == "approved"


def test_every_substantive_field_makes_an_author(world: World, door: Door) -> None:
    for field, value in AUTHORING.items():
        change_id = waiting_for_a_tech_lead(world, door)
        door.ok(door.update("change-manager", change_id, **{field: value}))
        assert world.doc(change_id)["authors"] == [REQUESTER, "change-manager"], field
        assert world.record(change_id).state == "pending_approval", field  # still a tech lead's call
        message = world.refused(
            change_id, "change-manager", partial(door.approve, "change-manager", change_id), door.REFUSED
        )
        assert "SEGREGATION_OF_DUTIES" in message, field


def test_renaming_a_change_does_not_make_an_author(world: World, door: Door) -> None:
    change_id = waiting_for_a_tech_lead(world, door)
    door.ok(door.update("change-manager", change_id, title="Raise the connection pool size"))
    assert world.doc(change_id)["authors"] == [REQUESTER]
    door.ok(door.approve("change-manager", change_id))
    assert world.record(change_id).state == "approved"


def test_an_author_of_an_emergency_may_not_review_it(world: World, door: Door) -> None:
    change_id = door.create("alice", "emergency", "security", "Block the exploited endpoint")
    door.ok(door.update("change-manager", change_id, description="and rotate the keys"))  # before approval
    door.ok(door.assess("alice", change_id))  # EMERGENCY_AUTO_APPROVE
    doc = world.doc(change_id)
    assert (doc["state"], doc["authors"]) == ("approved", ["alice", "change-manager"])

    message = world.refused(
        change_id, "change-manager", lambda: door.review("change-manager", change_id), door.REFUSED
    )
    assert f"change-manager may not review {change_id}" in message
    assert "edited" in message
    assert world.doc(change_id)["review"]["reviewed_at"] is None

    # Positive control: an ECAB member who did not write it reviews it.
    door.ok(door.review("security-oncall", change_id))
    assert world.doc(change_id)["review"]["reviewer"] == "security-oncall"
