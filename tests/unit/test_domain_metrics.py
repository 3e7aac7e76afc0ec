"""SPEC §8: each KPI beside its target, computed from hand-made aggregate figures."""

from __future__ import annotations

import pytest

from cortex_change.domain.metrics import Figures, Kpi, dora, kpis

KEYS = [
    "change_success_rate",
    "mtta",
    "mtti",
    "rollback_rate",
    "emergency_change_rate",
    "change_induced_incidents",
    "unauthorized_changes",
    "audit_compliance",
    "risk_prediction_accuracy",
    "false_positive_rate",
]
TARGETS = {
    "change_success_rate": "> 95%",
    "mtta": "< 4 h",
    "mtti": "< 30 min",
    "rollback_rate": "< 5%",
    "emergency_change_rate": "< 5%",
    "change_induced_incidents": "< 2%",
    "unauthorized_changes": "= 0",
    "audit_compliance": "= 100%",
    "risk_prediction_accuracy": "> 90%",
    "false_positive_rate": "< 10%",
}


def _by_key(figures: Figures) -> dict[str, Kpi]:
    return {k.key: k for k in kpis(figures)}


def test_every_kpi_is_reported_with_its_target() -> None:
    result = kpis(Figures(days=1))
    assert [k.key for k in result] == KEYS
    assert {k.key: k.target for k in result} == TARGETS


GOOD = Figures(
    days=7,
    created=40,
    by_type={"normal": 39, "emergency": 1},
    closures={"successful": 39, "rolled_back": 1, "cancelled": 5},
    compliant_closed=40,
    mtta_seconds=3 * 3600,
    mtti_seconds=20 * 60,
    unauthorized=0,
)
# Every ratio sits exactly on its target's boundary, where a strict target is not met.
EDGE = Figures(
    days=7,
    created=20,
    by_type={"emergency": 1},
    closures={"successful": 19, "failed": 0, "rolled_back": 1},
    compliant_closed=19,
    mtta_seconds=4 * 3600,
    mtti_seconds=30 * 60,
    unauthorized=1,
)
BAD = Figures(
    days=30,
    created=10,
    by_type={"emergency": 3},
    closures={"successful": 6, "failed": 2, "rolled_back": 2},
    compliant_closed=7,
    mtta_seconds=10 * 3600,
    mtti_seconds=90 * 60,
    unauthorized=3,
)


@pytest.mark.parametrize(
    ("figures", "expected"),
    [
        (
            GOOD,
            {
                "change_success_rate": (97.5, True),
                "mtta": (3.0, True),
                "mtti": (20.0, True),
                "rollback_rate": (2.5, True),
                "emergency_change_rate": (2.5, True),
                "unauthorized_changes": (0.0, True),
                "audit_compliance": (100.0, True),
            },
        ),
        (
            EDGE,
            {
                "change_success_rate": (95.0, False),
                "mtta": (4.0, False),
                "mtti": (30.0, False),
                "rollback_rate": (5.0, False),
                "emergency_change_rate": (5.0, False),
                "unauthorized_changes": (1.0, False),
                "audit_compliance": (95.0, False),
            },
        ),
        (
            BAD,
            {
                "change_success_rate": (60.0, False),
                "mtta": (10.0, False),
                "mtti": (90.0, False),
                "rollback_rate": (20.0, False),
                "emergency_change_rate": (30.0, False),
                "unauthorized_changes": (3.0, False),
                "audit_compliance": (70.0, False),
            },
        ),
    ],
    ids=["good", "edge", "bad"],
)
def test_kpi_values_and_met_flags(figures: Figures, expected: dict[str, tuple[float, bool]]) -> None:
    result = _by_key(figures)
    assert {k: (result[k].value, result[k].met) for k in expected} == expected


def test_cancelled_changes_are_not_finished_outcomes() -> None:
    assert GOOD.finished == 40
    assert _by_key(Figures(days=1, closures={"cancelled": 3}))["change_success_rate"].value is None


def test_rates_are_rounded_to_two_places() -> None:
    figures = Figures(days=1, created=3, closures={"successful": 2, "failed": 1}, compliant_closed=2)
    result = _by_key(figures)
    assert result["change_success_rate"].value == 66.67
    assert result["audit_compliance"].value == 66.67


EMPTY_NOTES = {
    "change_success_rate": "no change closed",
    "mtta": "no change approved",
    "mtti": "no change implemented",
    "rollback_rate": "no change closed",
    "emergency_change_rate": "no change created",
    "change_induced_incidents": "no change closed",
    "audit_compliance": "no change closed",
    "risk_prediction_accuracy": "0 closed change(s) with a recorded risk prediction",
    "false_positive_rate": "0 closed change(s) with a recorded risk prediction",
}


@pytest.mark.parametrize(("key", "note"), list(EMPTY_NOTES.items()))
def test_without_data_a_kpi_is_none_and_says_why(key: str, note: str) -> None:
    kpi = _by_key(Figures(days=1))[key]
    assert kpi.value is None
    assert kpi.met is None
    assert note in kpi.note


@pytest.mark.parametrize(("incidents", "value", "met"), [(0, 0.0, True), (1, 1.0, True), (2, 2.0, False)])
def test_change_induced_incidents_per_finished_change(incidents: int, value: float, met: bool) -> None:
    figures = Figures(days=1, closures={"successful": 95, "failed": 5, "cancelled": 7}, incidents=incidents)
    kpi = _by_key(figures)["change_induced_incidents"]
    assert (kpi.value, kpi.met) == (value, met)  # out of 100 finished changes (cancelled ones are not)


def test_unauthorized_changes_are_always_counted() -> None:
    kpi = _by_key(Figures(days=1))["unauthorized_changes"]
    assert (kpi.value, kpi.met, kpi.note) == (0.0, True, "")


def test_kpi_with_data_has_no_note() -> None:
    assert all(k.note == "" for k in kpis(GOOD) if k.value is not None)


def test_as_dict() -> None:
    kpi = _by_key(GOOD)["mtta"]
    assert kpi.as_dict() == {
        "key": "mtta",
        "name": "Mean time to approve",
        "value": 3.0,
        "unit": "h",
        "target": "< 4 h",
        "met": True,
        "note": "",
    }


def test_dora_figures() -> None:
    figures = Figures(
        days=10,
        closures={"successful": 15, "failed": 3, "rolled_back": 2, "cancelled": 4},
        lead_time_seconds=2 * 3600,
        restore_seconds=45 * 60,
    )
    result = {k.key: k.value for k in dora(figures)}
    assert result == {
        "deployment_frequency": 1.5,
        "lead_time": 2.0,
        "change_failure_rate": 25.0,
        "time_to_restore": 45.0,
    }
    assert all(k.met is None for k in dora(figures))


def test_dora_without_data() -> None:
    result = {k.key: k for k in dora(Figures(days=0))}
    assert all(k.value is None for k in result.values())
    assert "no failed change" in result["time_to_restore"].note


@pytest.mark.parametrize(
    ("predictions", "accuracy", "fpr", "met"),
    [
        # (true positives, false positives, true negatives, false negatives) of closed changes
        ((2, 1, 10, 6), None, None, (None, None)),  # 19 judged: n/a
        ((4, 1, 14, 1), 90.0, 6.67, (False, True)),
        ((5, 0, 15, 0), 100.0, 0.0, (True, True)),
        ((5, 0, 0, 15), 25.0, None, (False, None)),  # no successful change: FPR n/a
    ],
)
def test_prediction_kpis_judge_recorded_predictions_against_outcomes(
    predictions: tuple[int, int, int, int],
    accuracy: float | None,
    fpr: float | None,
    met: tuple[bool | None, bool | None],
) -> None:
    got = _by_key(Figures(days=30, predictions=predictions))
    acc, rate = got["risk_prediction_accuracy"], got["false_positive_rate"]
    assert (acc.value, rate.value) == (accuracy, fpr)
    assert (acc.met, rate.met) == met
    if accuracy is None:
        assert "fewer than 20" in acc.note
