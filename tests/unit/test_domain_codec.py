"""SPEC §1: the record's JSON document round-trips, in every state, through JSON text."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cortex_change.domain import codec, workflow
from cortex_change.domain.lifecycle import State
from cortex_change.domain.model import Change, ChangeType, ClosureStatus, Level, ReviewOutcome
from cortex_change.domain.policy import Policy
from cortex_change.domain.standard import StandardDecision

if TYPE_CHECKING:
    from conftest import Kit

POLICY = Policy()


def _pending_assessment(kit: Kit) -> Change:
    return kit.change("high", with_plans=True, environment="production", dependencies=["db"])


def _assessed(kit: Kit) -> Change:
    change = kit.assessed("medium")
    change.state = State.ASSESSED  # the instant between scoring and routing
    return change


def _pending_approval(kit: Kit) -> Change:
    return kit.assessed("medium", history=kit.history(failures=1, successes=5, rolled_back=1))


def _pending_cab(kit: Kit) -> Change:
    change = kit.assessed("critical", with_plans=True)
    workflow.approve(change, "ciso", "ok", POLICY, kit.at(1))
    return change


def _approved(kit: Kit) -> Change:
    change = kit.assessed("high", with_plans=True)
    workflow.approve(change, "ops-lead", "ok", POLICY, kit.at(1))
    workflow.approve(change, "tech-lead", "ok too", POLICY, kit.at(2))
    return change


def _rejected(kit: Kit) -> Change:
    change = kit.assessed("high", with_plans=True)
    workflow.approve(change, "ops-lead", "ok", POLICY, kit.at(1))
    workflow.reject(change, "tech-lead", "no", POLICY, kit.at(2))
    return change


def _implementing(kit: Kit) -> Change:
    change = kit.assessed("low-auto")
    workflow.start_implementation(change, "worker-1", kit.at(5))
    return change


def _implemented(kit: Kit) -> Change:
    change = _implementing(kit)
    workflow.finish_implementation(change, "worker-1", kit.at(6), "ok")
    return change


def _rolling_back(kit: Kit) -> Change:
    change = _implemented(kit)
    change.state = State.ROLLING_BACK
    return change


def _closed_emergency(kit: Kit) -> Change:
    change = kit.assessed("critical", type=ChangeType.EMERGENCY)
    workflow.start_implementation(change, "worker-1", kit.at(5))
    workflow.finish_implementation(change, "worker-1", kit.at(6), "ok")
    workflow.close(change, ClosureStatus.ROLLED_BACK, "health check failed", "worker-1", kit.at(7))
    workflow.review(change, "ops-lead", ReviewOutcome.CONCERNS, "late rollback", POLICY, kit.at(600))
    return change


def _cancelled(kit: Kit) -> Change:
    change = _pending_cab(kit)
    workflow.cancel(change, kit.REQUESTER, "superseded", kit.at(9))
    return change


def _reclassified_and_updated(kit: Kit) -> Change:
    change = kit.change("high", type=ChangeType.STANDARD, with_plans=True)
    workflow.assess(change, POLICY, [], kit.T0)
    workflow.approve(change, "ops-lead", "ok", POLICY, kit.at(1))
    workflow.update(change, "editor", {"urgency": Level.CRITICAL}, POLICY, [], kit.at(2))
    return change


def _pre_approved_standard(kit: Kit) -> Change:
    decision = StandardDecision("autoscale", True, ChangeType.STANDARD, "replicas 4 within 1..10")
    change = kit.change("low-tl", type=ChangeType.STANDARD, standard_model="autoscale")
    change.parameters = {"replicas": 4, "service": "cortex-chat", "flags": ["a", True, 1.5, None]}
    workflow.assess(change, POLICY, [], kit.T0, standard=decision)
    return change


BUILDERS: dict[str, Callable[[Kit], Change]] = {
    "pending_assessment": _pending_assessment,
    "assessed": _assessed,
    "pending_approval": _pending_approval,
    "pending_cab": _pending_cab,
    "approved": _approved,
    "rejected": _rejected,
    "implementing": _implementing,
    "implemented": _implemented,
    "rolling_back": _rolling_back,
    "closed": _closed_emergency,
    "cancelled": _cancelled,
    "reclassified-updated": _reclassified_and_updated,
    "pre-approved-standard": _pre_approved_standard,
}


def test_builders_cover_every_state(kit: Kit) -> None:
    assert {build(kit).state for build in BUILDERS.values()} == set(State)


@pytest.mark.parametrize("name", list(BUILDERS))
def test_round_trip(kit: Kit, name: str) -> None:
    change = BUILDERS[name](kit)
    assert codec.from_document(codec.to_document(change)) == change


@pytest.mark.parametrize("name", list(BUILDERS))
def test_round_trip_through_json_text(kit: Kit, name: str) -> None:
    change = BUILDERS[name](kit)
    text = json.dumps(codec.to_document(change), ensure_ascii=False)
    assert codec.from_document(json.loads(text)) == change


def test_document_fields_for_show(kit: Kit) -> None:
    doc = codec.to_document(_approved(kit))
    assert doc["risk_score"] == 65
    assert doc["risk_level"] == "high"
    assert doc["priority"] == "P3"
    assert doc["approval_required"] == "cab"
    assert doc["assigned_to"] == "security-master"
    assert doc["state"] == "approved"
    assert doc["metrics"]["created_at"] == "2025-03-03T09:00:00Z"
    assert doc["metrics"]["approved_at"] == "2025-03-03T09:02:00Z"
    assert doc["metrics"]["mtta_seconds"] == 120
    assert doc["metrics"]["mtti_seconds"] is None
    assert [a["approver"] for a in doc["approvals"]] == ["ops-lead", "tech-lead"]
    assert doc["approvals"][0] == {
        "approver": "ops-lead",
        "role": "cab",
        "decision": "approved",
        "reason": "ok",
        "at": "2025-03-03T09:01:00Z",
        "active": True,
    }


def test_unassessed_document_has_null_assessment_fields(kit: Kit) -> None:
    doc = codec.to_document(kit.change())
    assert [doc[k] for k in ("priority", "risk_score", "risk_level", "approval_required")] == [None] * 4


def test_times_are_written_in_utc(kit: Kit) -> None:
    plus_two = timezone(timedelta(hours=2))
    assert codec.fmt_time(datetime(2025, 3, 3, 11, 0, tzinfo=plus_two)) == "2025-03-03T09:00:00Z"
    assert codec.parse_time("2025-03-03T09:00:00Z") == datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
    assert codec.fmt_time(None) is None
    assert codec.parse_time(None) is None


@settings(max_examples=200, deadline=None)
@given(
    title=st.text(min_size=1, max_size=200),
    description=st.text(max_size=500),
    services=st.lists(st.text(min_size=1, max_size=20), max_size=8),
    impact=st.sampled_from(list(Level)),
    urgency=st.sampled_from(list(Level)),
    seconds=st.integers(min_value=0, max_value=10**8),
)
def test_round_trip_any_text(
    kit: Kit,
    title: str,
    description: str,
    services: list[str],
    impact: Level,
    urgency: Level,
    seconds: int,
) -> None:
    change = kit.change(title=title, description=description, affected_services=services)
    change.impact, change.urgency = impact, urgency
    workflow.assess(change, POLICY, [], kit.T0 + timedelta(seconds=seconds))
    text = json.dumps(codec.to_document(change), ensure_ascii=False)
    back = codec.from_document(json.loads(text))
    assert back == change
    assert back.title == title  # stored exactly as given
