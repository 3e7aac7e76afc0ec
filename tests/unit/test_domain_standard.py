"""SPEC §5: standard change models judge a request; outside their limits it changes type."""

from __future__ import annotations

from typing import Any

import pytest

from cortex_change.domain.model import ChangeType
from cortex_change.domain.standard import Condition, StandardModel

NORMAL, EMERGENCY, STANDARD = ChangeType.NORMAL, ChangeType.EMERGENCY, ChangeType.STANDARD

# The four built-in models with the SPEC §9 defaults, built by hand.
WORKER_RESTART = StandardModel(
    "worker-restart", "", True, Condition("rate", "target", limit=3, window_seconds=3600), NORMAL
)
AUTOSCALE = StandardModel(
    "autoscale", "", True, Condition("range", "replicas", minimum=1, maximum=10), NORMAL
)
SECURITY_PATCH = StandardModel(
    "security-patch",
    "",
    True,
    Condition("max_rank", "severity", maximum="high", scale=("low", "medium", "high", "critical")),
    EMERGENCY,
)
CONFIG_UPDATE = StandardModel(
    "config-update",
    "",
    True,
    Condition("range", "deviation", minimum=0, maximum=20, absolute=True),
    NORMAL,
)


@pytest.mark.parametrize(("recent", "pre_approved"), [(0, True), (2, True), (3, False), (10, False)])
def test_worker_restart_below_the_hourly_limit(recent: int, pre_approved: bool) -> None:
    decision = WORKER_RESTART.decide({"target": "worker-7"}, recent)
    assert decision.pre_approved is pre_approved
    assert decision.becomes is (STANDARD if pre_approved else NORMAL)
    assert decision.model == "worker-restart"
    assert "1h" in decision.reason


@pytest.mark.parametrize(
    ("replicas", "pre_approved"),
    [(1, True), (5, True), (10, True), ("4", True), (0, False), (11, False), (-3, False), (10.5, False)],
)
def test_autoscale_within_the_replica_bounds(replicas: Any, pre_approved: bool) -> None:
    decision = AUTOSCALE.decide({"replicas": replicas})
    assert decision.pre_approved is pre_approved
    assert decision.becomes is (STANDARD if pre_approved else NORMAL)


@pytest.mark.parametrize(
    ("severity", "pre_approved", "becomes"),
    [
        ("low", True, STANDARD),
        ("medium", True, STANDARD),
        ("high", True, STANDARD),
        ("HIGH", True, STANDARD),
        ("critical", False, EMERGENCY),  # a critical CVE is an emergency
        ("Critical", False, EMERGENCY),
        ("severe", False, NORMAL),  # not on the scale: no verdict, a normal change
    ],
)
def test_security_patch_up_to_the_maximum_severity(
    severity: str, pre_approved: bool, becomes: ChangeType
) -> None:
    decision = SECURITY_PATCH.decide({"severity": severity})
    assert (decision.pre_approved, decision.becomes) == (pre_approved, becomes)


@pytest.mark.parametrize(
    ("deviation", "pre_approved"),
    [(0, True), (20, True), (-20, True), ("15.5", True), (20.01, False), (-25, False), (100, False)],
)
def test_config_update_within_the_tolerance(deviation: Any, pre_approved: bool) -> None:
    decision = CONFIG_UPDATE.decide({"deviation": deviation})
    assert decision.pre_approved is pre_approved


@pytest.mark.parametrize(
    "model", [WORKER_RESTART, AUTOSCALE, SECURITY_PATCH, CONFIG_UPDATE], ids=lambda m: m.name
)
@pytest.mark.parametrize("params", [{}, {"other": 1}], ids=["none", "other"])
def test_a_missing_parameter_makes_a_normal_change(model: StandardModel, params: dict[str, Any]) -> None:
    decision = model.decide(params)
    assert (decision.pre_approved, decision.becomes) == (False, NORMAL)
    assert "missing" in decision.reason


@pytest.mark.parametrize("value", ["many", True, [3]])
def test_a_non_number_is_not_within_a_range(value: Any) -> None:
    decision = AUTOSCALE.decide({"replicas": value})
    assert (decision.pre_approved, decision.becomes) == (False, NORMAL)
    assert "not a number" in decision.reason


def test_a_disabled_model_approves_nothing() -> None:
    disabled = StandardModel("autoscale", "", False, AUTOSCALE.condition, NORMAL)
    decision = disabled.decide({"replicas": 3})
    assert (decision.pre_approved, decision.becomes) == (False, NORMAL)
    assert "disabled" in decision.reason


def test_every_reason_names_the_model() -> None:
    for model, params in [
        (WORKER_RESTART, {"target": "w"}),
        (AUTOSCALE, {"replicas": 40}),
        (SECURITY_PATCH, {"severity": "critical"}),
        (CONFIG_UPDATE, {"deviation": 5}),
    ]:
        assert model.name in model.decide(params).reason
