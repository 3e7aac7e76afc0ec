"""SPEC §8 compliance reports: the added controls, evidence citation, the broken chain, tallies."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from cortex_change.domain import compliance, workflow
from cortex_change.domain import compliance_report as cr
from cortex_change.domain.compliance import FAIL, NA, PASS, PENDING
from cortex_change.domain.compliance_report import AuditRef, Chain, Facts
from cortex_change.domain.lifecycle import State
from cortex_change.domain.model import Change, ChangeType, ClosureStatus
from cortex_change.domain.policy import Policy

if TYPE_CHECKING:
    from conftest import Kit

POLICY = Policy()
INTACT = Chain(ok=True)


def _events(*actions: str, actor: str = "someone") -> tuple[AuditRef, ...]:
    return tuple(AuditRef(n, a, actor, f"{n:064x}") for n, a in enumerate(actions, 1))


def _approved(kit: Kit, **overrides: object) -> Change:
    change = kit.assessed("medium", with_plans=True, **overrides)
    workflow.approve(change, "tech-lead", "ok", POLICY, kit.at(1))
    return change


def _status(check: cr.Check, facts: Facts, kit: Kit) -> str:
    return check(facts, POLICY, kit.at(2)).status


# --- PHI ------------------------------------------------------------------------------


def test_phi_matches_services_then_cis(kit: Kit) -> None:
    change = kit.change(affected_services=["web", "patient-db"], affected_cis=["ehr-1", "lb-1"])
    assert cr.phi_matches(change, {"patient-db"}, {"ehr-1"}) == ("patient-db", "ehr-1")
    assert cr.phi_matches(change, (), ()) == ()


def test_phi_risk_assessment(kit: Kit) -> None:
    assert _status(cr.phi_risk_assessment, Facts(kit.assessed("medium")), kit) == NA
    assert _status(cr.phi_risk_assessment, Facts(kit.change(), phi=("patient-db",)), kit) == PENDING
    result = cr.phi_risk_assessment(Facts(kit.assessed("medium"), phi=("patient-db",)), POLICY, kit.T0)
    assert result.status == PASS
    assert "patient-db" in result.reason and "score 40" in result.reason


# --- access control -------------------------------------------------------------------


def test_access_control_passes_when_every_vote_has_its_event(kit: Kit) -> None:
    change = _approved(kit)
    events = (*_events("created", "assessed"), AuditRef(3, "approved", "tech-lead", "c" * 64))
    result = cr.access_control(Facts(change, events), POLICY, kit.T0)
    assert result.status == PASS
    assert "1 vote(s)" in result.reason


def test_access_control_fails_on_a_vote_without_its_event(kit: Kit) -> None:
    result = cr.access_control(Facts(_approved(kit), _events("created", "assessed")), POLICY, kit.T0)
    assert result.status == FAIL
    assert "tech-lead" in result.reason


def test_access_control_fails_on_an_event_without_an_actor(kit: Kit) -> None:
    result = cr.access_control(Facts(kit.change(), _events("created", actor=" ")), POLICY, kit.T0)
    assert result.status == FAIL
    assert "#1" in result.reason


def test_access_control_counts_refused_attempts_as_blocked(kit: Kit) -> None:
    facts = Facts(kit.change(), _events("created", "refused", "unauthorized_attempt"))
    result = cr.access_control(facts, POLICY, kit.T0)
    assert result.status == PASS
    assert "2 refused attempt(s) blocked" in result.reason


# --- incident response ----------------------------------------------------------------


def _closed(kit: Kit, status: ClosureStatus, notes: str) -> Change:
    change = _approved(kit)
    change.state, change.closure_status, change.closure_notes = State.CLOSED, status, notes
    return change


@pytest.mark.parametrize(
    ("status", "notes", "actions", "incidents", "expected"),
    [
        (ClosureStatus.SUCCESSFUL, "done", ("closed",), (), NA),
        (ClosureStatus.ROLLED_BACK, "reverted: error rate", ("rolled_back", "closed"), (), PASS),
        (ClosureStatus.ROLLED_BACK, "  ", ("rolled_back", "closed"), (), FAIL),
        (ClosureStatus.FAILED, "crashed", ("closed",), (), PASS),
        (ClosureStatus.FAILED, "crashed", ("rollback_failed", "closed"), (), FAIL),
        (ClosureStatus.FAILED, "crashed", ("rollback_failed", "closed", "incident_opened"), ("INC-1",), PASS),
    ],
)
def test_incident_response(
    kit: Kit,
    status: ClosureStatus,
    notes: str,
    actions: tuple[str, ...],
    incidents: tuple[str, ...],
    expected: str,
) -> None:
    facts = Facts(_closed(kit, status, notes), _events(*actions), incidents)
    assert _status(cr.incident_response, facts, kit) == expected


def test_incident_response_waits_while_rolling_back(kit: Kit) -> None:
    change = _approved(kit)
    change.state = State.ROLLING_BACK
    assert _status(cr.incident_response, Facts(change), kit) == PENDING


def test_a_linked_incident_is_named(kit: Kit) -> None:
    facts = Facts(_closed(kit, ClosureStatus.FAILED, "x"), _events("rollback_failed"), ("INC-7",))
    assert "INC-7" in cr.incident_response(facts, POLICY, kit.T0).reason


# --- ISO 27001 A.8.32: documented, tested ---------------------------------------------


@pytest.mark.parametrize(
    ("profile", "type_", "with_plans", "expected"),
    [
        ("medium", ChangeType.NORMAL, True, PASS),
        ("medium", ChangeType.NORMAL, False, FAIL),
        ("low-tl", ChangeType.NORMAL, False, NA),
        ("high", ChangeType.EMERGENCY, False, NA),
    ],
)
def test_change_documentation(
    kit: Kit, profile: str, type_: ChangeType, with_plans: bool, expected: str
) -> None:
    change = kit.assessed(profile, type=type_, with_plans=with_plans)
    assert _status(cr.change_documentation, Facts(change), kit) == expected


def test_change_documentation_waits_for_assessment(kit: Kit) -> None:
    assert _status(cr.change_documentation, Facts(kit.change()), kit) == PENDING


def test_testing_needs_a_test_plan_or_staging_evidence(kit: Kit) -> None:
    bare = kit.assessed("medium")
    result = cr.testing(Facts(bare), POLICY, kit.T0)
    assert result.status == FAIL
    assert "integration" in result.reason
    planned = kit.assessed("medium", test_plan={"steps": ["run the suite"]})
    assert _status(cr.testing, Facts(planned), kit) == PASS
    assert bare.assessment is not None
    bare.assessment.staging_evidence = "RFC-20250101000000-000001: staging ..."
    assert cr.testing(Facts(bare), POLICY, kit.T0).reason.startswith("tested in staging")
    assert _status(cr.testing, Facts(kit.assessed("low-auto")), kit) == NA


# --- evaluation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("framework", "controls"),
    [
        (
            "soc2",
            [
                "audit_trail",
                "segregation_of_duties",
                "approval_documentation",
                "rollback_plan",
                "access_control",
                "emergency_review",
            ],
        ),
        (
            "hipaa",
            [
                "phi_risk_assessment",
                "access_control",
                "incident_response",
                "risk_assessment",
                "audit_trail",
                "approval_documentation",
                "emergency_review",
            ],
        ),
        (
            "iso27001",
            [
                "change_documentation",
                "risk_assessment",
                "approval_documentation",
                "testing",
                "rollback_plan",
                "segregation_of_duties",
                "audit_trail",
                "emergency_review",
            ],
        ),
    ],
)
def test_report_frameworks_cover_the_per_change_controls(
    kit: Kit, framework: str, controls: list[str]
) -> None:
    keys = [c.key for c in cr.FRAMEWORKS[framework]]
    assert keys == controls
    shown = compliance.evaluate(kit.assessed("medium"), POLICY, [framework], [], kit.T0)[framework]
    assert {r.control for r in shown} <= set(keys)  # the report is a superset of what `show` says


def test_evaluate_cites_the_events_of_each_control(kit: Kit) -> None:
    change = _approved(kit)
    events = (
        *_events("created", "assessed", "approval_requested"),
        AuditRef(4, "approved", "tech-lead", "d" * 64),
    )
    findings = {f.control: f for f in cr.evaluate("soc2", Facts(change, events), POLICY, INTACT, kit.at(2))}
    assert [e.seq for e in findings["approval_documentation"].evidence] == [3, 4]
    assert [e.seq for e in findings["segregation_of_duties"].evidence] == [1, 4]
    assert findings["audit_trail"].status == PASS


def test_a_broken_chain_fails_the_audit_trail_whatever_the_events(kit: Kit) -> None:
    change = _approved(kit)
    events = _events("created", "assessed", "approved")
    broken = Chain(ok=False, problem="event #2 was altered", first_broken=2)
    for framework in cr.FRAMEWORKS:
        trail = next(
            f
            for f in cr.evaluate(framework, Facts(change, events), POLICY, broken, kit.T0)
            if f.control == "audit_trail"
        )
        assert trail.status == FAIL
        assert "event #2 was altered" in trail.reason


def test_tally_counts_each_status_per_control(kit: Kit) -> None:
    good = Facts(_approved(kit), _events("created", "assessed", "approved"))
    bare = Facts(kit.assessed("medium"), _events("created", "assessed"))
    findings = [cr.evaluate("soc2", f, POLICY, INTACT, kit.at(2)) for f in (good, bare)]
    counts = cr.tally("soc2", findings)
    assert list(counts) == [c.key for c in cr.FRAMEWORKS["soc2"]]
    assert counts["rollback_plan"] == {PASS: 1, FAIL: 1, PENDING: 0, NA: 0}
    assert counts["approval_documentation"] == {PASS: 1, FAIL: 0, PENDING: 1, NA: 0}
    assert all(sum(c.values()) == 2 for c in counts.values())


def test_facts_last_hash_is_the_latest_event(kit: Kit) -> None:
    events = _events("created", "assessed")
    assert Facts(kit.change(), events).last_hash == events[-1].hash
    assert Facts(kit.change()).last_hash is None
