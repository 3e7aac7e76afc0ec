"""Post-change verification (SPEC §7): after the plan ran, rounds of checks until the period ends.

The verdict of a round is a rule on what the rounds so far carried (`state`, kept in the worker's
timer between rounds), the round's check results and the change's verification settings: the
checks failed `failures_to_trip` rounds in a row → trip (the rollback path); else the period is
over (at or after its end) → pass (the change closes successful); else → continue. Pure: the
caller runs the checks, reads the clock and acts on the verdict. (Input checking is `validation`.)

The change's record keeps the SPEC's field name `validation` for these settings, and the audit
action of a round stays `validation_check`.
"""

from __future__ import annotations

from enum import StrEnum

from .values import Frozen

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from datetime import datetime
    from typing import Any, Final, Protocol

    from .plan import ValidationSpec

    class CheckResult(Protocol):
        """One check's outcome (runner/checks.py's `CheckResult`)."""

        @property
        def name(self) -> str: ...
        @property
        def ok(self) -> bool: ...
        @property
        def detail(self) -> str: ...
        def as_dict(self) -> dict[str, Any]: ...

    class Judged(Protocol):
        """The statistical decision's judgement (domain/canary.py's `Judgement`)."""

        @property
        def call(self) -> str: ...
        @property
        def summary(self) -> str: ...
        def document(self) -> dict[str, Any]: ...


class Outcome(StrEnum):
    CONTINUE = "continue"  # another round after the interval
    TRIP = "trip"  # too many failed rounds in a row: roll back
    PASS = "pass"  # the period is over without tripping: close successful
    ASK = "ask"  # the statistics stayed inconclusive after one extension: a person decides


class Verdict(Frozen):
    """A round's verdict: what to do, why (the audit text), the state for the next round and the
    round's audit details."""

    __slots__ = ("details", "outcome", "reason", "state")

    def __init__(self, outcome: Outcome, reason: str, state: dict[str, Any], details: dict[str, Any]) -> None:
        self.outcome: Final = outcome
        self.reason: Final = reason  # the rollback's reason (trip), the closure notes (pass), or ""
        self.state: Final = state
        self.details: Final = details

    @property
    def done(self) -> bool:
        """No round follows."""
        return self.outcome is not Outcome.CONTINUE


def start(spec: ValidationSpec, baseline: Mapping[str, float] | None, now: datetime) -> dict[str, Any]:
    """The state a verification carries from round to round, before its first round."""
    return {
        "round": 0,
        "ends_at": now.timestamp() + spec.period,
        "consecutive": 0,
        "failed_checks": 0,
        "baseline": dict(baseline or {}),
    }


def baseline(state: Mapping[str, Any]) -> dict[str, float]:
    """The figures measured before the change (the Prometheus checks compare with them); none
    when nothing was measured."""
    return dict(state.get("baseline") or {})


def next_round(
    state: Mapping[str, Any], results: Sequence[CheckResult], spec: ValidationSpec, now: datetime
) -> Verdict:
    """The verdict on one round of checks (`results`) run at `now`."""
    failed = [r for r in results if not r.ok]
    after = {
        **state,
        "round": state["round"] + 1,
        "consecutive": state["consecutive"] + 1 if failed else 0,
        "failed_checks": state["failed_checks"] + len(failed),
        "baseline": baseline(state),
    }
    details = {
        "round": after["round"],
        "results": [r.as_dict() for r in results],
        "consecutive_failures": after["consecutive"],
        "failures_to_trip": spec.failures_to_trip,
    }
    if after["consecutive"] >= spec.failures_to_trip:
        why = "; ".join(f"{r.name}: {r.detail}" for r in failed)
        reason = f"validation failed {after['consecutive']} times in a row ({why})"
        return Verdict(Outcome.TRIP, reason, after, details)
    if now.timestamp() >= after["ends_at"]:
        notes = (
            f"validation passed: {after['round']} round(s) over {spec.period:g}s, {after['failed_checks']} "
            f"failed check(s), never {spec.failures_to_trip} in a row"
        )
        return Verdict(Outcome.PASS, notes, after, details)
    return Verdict(Outcome.CONTINUE, "", after, details)


def settle(verdict: Verdict, judged: Judged, spec: ValidationSpec) -> Verdict:
    """The statistical decision (AUTO_ROLLBACK_DECISION; docs/canary.md) on a verdict that passed on
    the fixed thresholds: fail → trip; pass → pass; inconclusive → one more period, once, then ask
    a person (keep or roll back). The details are the judgement's figures and what follows."""
    state, figures, said = verdict.state, judged.document(), judged.summary
    if judged.call == "fail":
        reason = f"statistical validation failed: {said}"
        return Verdict(Outcome.TRIP, reason, state, {**figures, "then": "roll back"})
    if judged.call == "pass":
        notes = f"{verdict.reason}; statistical validation passed: {said}"
        return Verdict(Outcome.PASS, notes, state, {**figures, "then": "close"})
    if not state.get("extended"):
        after = {**state, "extended": True, "ends_at": state["ends_at"] + spec.period}
        reason = f"statistical validation inconclusive, period extended once by {spec.period:g}s: {said}"
        return Verdict(Outcome.CONTINUE, reason, after, {**figures, "then": "extend"})
    reason = (
        f"statistical validation inconclusive after the extension: keep it (close ID successful) "
        f"or roll it back (rollback ID REASON)? {said}"
    )
    return Verdict(Outcome.ASK, reason, state, {**figures, "then": "ask a person"})
