"""Post-change verification's verdict (domain/verification.py): continue, trip or pass, pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from cortex_change.domain import verification
from cortex_change.domain.plan import ValidationSpec
from cortex_change.domain.verification import Outcome, next_round
from cortex_change.runner.checks import CheckResult

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
SPEC = ValidationSpec(period=300.0, interval=60.0, failures_to_trip=3)
OK = CheckResult("GET http://svc/health", True, "status 200")
DOWN = CheckResult("GET http://svc/health", False, "status 503, expected 200")
SLOW = CheckResult("latency", False, "p95 250ms > 200% of baseline 100ms")


def _state(**over: Any) -> dict[str, Any]:
    return {**verification.start(SPEC, {"latency": 100.0}, T0), **over}


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_start_ends_one_period_later_with_the_baseline() -> None:
    state = verification.start(SPEC, {"latency": 100.0}, T0)
    assert state == {
        "round": 0,
        "ends_at": T0.timestamp() + 300.0,
        "consecutive": 0,
        "failed_checks": 0,
        "baseline": {"latency": 100.0},
    }


def test_a_good_round_within_the_period_continues() -> None:
    v = next_round(_state(), [OK], SPEC, _at(60))
    assert v.outcome is Outcome.CONTINUE and not v.done
    assert v.reason == ""
    assert v.state["round"] == 1 and v.state["consecutive"] == 0 and v.state["failed_checks"] == 0
    assert v.state["ends_at"] == T0.timestamp() + 300.0  # carried, not moved
    assert v.details == {
        "round": 1,
        "results": [OK.as_dict()],
        "consecutive_failures": 0,
        "failures_to_trip": 3,
    }


def test_failures_below_the_threshold_continue_and_count() -> None:
    v = next_round(_state(consecutive=1, failed_checks=1, round=1), [DOWN, SLOW], SPEC, _at(120))
    assert v.outcome is Outcome.CONTINUE
    assert v.state["consecutive"] == 2  # one more failed round
    assert v.state["failed_checks"] == 3  # two more failed checks
    assert v.details["consecutive_failures"] == 2


def test_a_good_round_resets_the_run_of_failures_but_not_the_tally() -> None:
    v = next_round(_state(consecutive=2, failed_checks=4, round=2), [OK], SPEC, _at(180))
    assert v.outcome is Outcome.CONTINUE
    assert v.state["consecutive"] == 0
    assert v.state["failed_checks"] == 4


def test_failures_at_the_threshold_trip_with_the_failed_checks_as_reason() -> None:
    v = next_round(_state(consecutive=2, failed_checks=2, round=2), [OK, DOWN, SLOW], SPEC, _at(180))
    assert v.outcome is Outcome.TRIP and v.done
    assert v.reason == (
        "validation failed 3 times in a row (GET http://svc/health: status 503, expected 200; "
        "latency: p95 250ms > 200% of baseline 100ms)"
    )
    assert v.state["consecutive"] == 3
    assert v.details["consecutive_failures"] == 3
    assert len(v.details["results"]) == 3


def test_trip_wins_over_the_period_ending_in_the_same_round() -> None:
    v = next_round(_state(consecutive=2, round=4), [DOWN], SPEC, _at(300))
    assert v.outcome is Outcome.TRIP


def test_a_failed_round_at_the_period_end_below_the_threshold_passes() -> None:
    v = next_round(_state(consecutive=1, failed_checks=1, round=4), [DOWN], SPEC, _at(300))
    assert v.outcome is Outcome.PASS
    assert v.reason == "validation passed: 5 round(s) over 300s, 2 failed check(s), never 3 in a row"


def test_exactly_at_the_period_end_passes() -> None:
    v = next_round(_state(round=4), [OK], SPEC, _at(300))
    assert v.outcome is Outcome.PASS and v.done
    assert v.reason == "validation passed: 5 round(s) over 300s, 0 failed check(s), never 3 in a row"


def test_just_before_the_period_end_continues() -> None:
    v = next_round(_state(round=4), [OK], SPEC, _at(299.999))
    assert v.outcome is Outcome.CONTINUE


def test_a_threshold_of_one_trips_on_the_first_failure() -> None:
    spec = ValidationSpec(period=300.0, failures_to_trip=1)
    v = next_round(verification.start(spec, None, T0), [DOWN], spec, _at(60))
    assert v.outcome is Outcome.TRIP
    assert v.reason.startswith("validation failed 1 times in a row (GET http://svc/health: status 503")


def test_missing_baseline_is_none_measured() -> None:
    assert verification.start(SPEC, None, T0)["baseline"] == {}
    state = _state()
    del state["baseline"]  # a timer written before the baseline was measured or stored
    assert verification.baseline(state) == {}
    v = next_round(state, [OK], SPEC, _at(60))
    assert v.outcome is Outcome.CONTINUE
    assert v.state["baseline"] == {}


def test_the_baseline_is_carried_from_round_to_round() -> None:
    v = next_round(_state(), [OK], SPEC, _at(60))
    assert verification.baseline(v.state) == {"latency": 100.0}
    v2 = next_round(v.state, [OK], SPEC, _at(120))
    assert v2.state["baseline"] == {"latency": 100.0}
    assert v2.state["round"] == 2


def test_next_round_leaves_the_given_state_alone() -> None:
    state = _state()
    before = dict(state)
    next_round(state, [DOWN], SPEC, _at(60))
    assert state == before


def test_the_period_comes_from_the_spec_in_the_pass_notes() -> None:
    spec = ValidationSpec(period=90.5, failures_to_trip=2)
    v = next_round(verification.start(spec, {}, T0), [OK], spec, _at(90.5))
    assert v.outcome is Outcome.PASS
    assert "over 90.5s" in v.reason and "never 2 in a row" in v.reason
