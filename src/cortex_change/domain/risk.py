"""Priority matrix and the four-part risk score of SPEC §3, each part with its reason."""

from __future__ import annotations

from collections.abc import Sequence

from .model import Change, ClosureStatus, Level, RiskComponent
from .policy import Policy
from .values import Frozen

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Final

    from .cmdb import Radius

IMPACT_POINTS: dict[Level, int] = {
    Level.CRITICAL: 40,
    Level.HIGH: 30,
    Level.MEDIUM: 20,
    Level.LOW: 10,
}
POINTS_PER_SERVICE = 5
MAX_COMPLEXITY = 30
MAX_HISTORY = 10
FAILURE_STATUSES = frozenset({ClosureStatus.FAILED, ClosureStatus.ROLLED_BACK})

# impact -> urgency -> priority
PRIORITY: dict[Level, dict[Level, str]] = {
    Level.CRITICAL: {Level.CRITICAL: "P1", Level.HIGH: "P1", Level.MEDIUM: "P2", Level.LOW: "P3"},
    Level.HIGH: {Level.CRITICAL: "P2", Level.HIGH: "P2", Level.MEDIUM: "P3", Level.LOW: "P4"},
    Level.MEDIUM: {Level.CRITICAL: "P3", Level.HIGH: "P3", Level.MEDIUM: "P4", Level.LOW: "P5"},
    Level.LOW: {Level.CRITICAL: "P4", Level.HIGH: "P4", Level.MEDIUM: "P5", Level.LOW: "P5"},
}


class PastChange(Frozen):
    """An earlier closed change that counts towards the history component."""

    __slots__ = ("change_id", "closure_status")

    def __init__(self, change_id: str, closure_status: ClosureStatus) -> None:
        self.change_id: Final = change_id
        self.closure_status: Final = closure_status


def priority(impact: Level, urgency: Level) -> str:
    """P1..P5 from the impact × urgency matrix."""
    return PRIORITY[impact][urgency]


def impact_component(change: Change, radius: Radius | None = None) -> RiskComponent:
    """The requester's impact, raised to what the most critical CI in the blast radius implies
    (tier 0 critical, 1 high, 2 medium), naming the path to it."""
    points = IMPACT_POINTS[change.impact]
    critical = None if radius is None else radius.most_critical()
    if critical is not None:
        from .cmdb import TIER_IMPACT

        reach, ci = critical
        floor = TIER_IMPACT.get(ci.tier)
        if floor is not None and IMPACT_POINTS[Level(floor)] > points:
            points = IMPACT_POINTS[Level(floor)]
            return RiskComponent(
                points,
                f"impact {change.impact.value} raised to {floor} by the CMDB: {reach.explain()} "
                f"(tier {ci.tier}): {points}",
            )
    return RiskComponent(points, f"impact {change.impact.value}: {points}")


def complexity_component(change: Change, radius: Radius | None = None) -> RiskComponent:
    """5 points per affected service, or, with a CMDB, per CI in the blast radius (and per affected
    service the CMDB does not know), at most 30."""
    if radius is not None and (radius.reaches or radius.unknown):
        touched = sum(1 for r, _ in radius.reaches if r.depth == 0)
        n = len(radius.reaches) + len(radius.unknown)
        what = f"{n} in the blast radius ({touched} touched, {len(radius.reaches) - touched} relying on them"
        what += f", {len(radius.unknown)} not in the CMDB)" if radius.unknown else ")"
    else:
        n = len(change.affected_services)
        what = f"{n} affected service(s)"
    points = min(MAX_COMPLEXITY, POINTS_PER_SERVICE * n)
    capped = " (capped)" if points == MAX_COMPLEXITY and n * POINTS_PER_SERVICE > points else ""
    return RiskComponent(points, f"{what} × {POINTS_PER_SERVICE}{capped}: {points}")


def category_component(change: Change, policy: Policy) -> RiskComponent:
    points = policy.category_weights.get(change.category, 0)
    return RiskComponent(points, f"category {change.category}: {points}")


def history_component(
    history: Sequence[PastChange], policy: Policy, record: Sequence[PastChange] | None = None, agent: str = ""
) -> RiskComponent:
    """Comparable changes' failure rate; for an agent's change also the agent's own track record
    (`record`, its closed changes in the window): the worse of the two counts."""
    own = _comparable(history, policy)
    if record is None:
        return own
    mine = _rate(record, policy, f"{agent}'s own record: ", "of its closed changes")
    points = max(own.points, mine.points)
    return RiskComponent(points, f"{own.reason}; {mine.reason} (the worse counts: {points})")


def _comparable(history: Sequence[PastChange], policy: Policy) -> RiskComponent:
    return _rate(history, policy, "", "comparable changes")


def _rate(history: Sequence[PastChange], policy: Policy, prefix: str, what: str) -> RiskComponent:
    n = len(history)
    if n < policy.history_min_samples:
        closed = "comparable closed change(s)" if not prefix else "closed change(s)"
        return RiskComponent(
            5,
            f"{prefix}{n} {closed} in {policy.history_window_days} days, "
            f"fewer than {policy.history_min_samples}: neutral 5",
        )
    failures = sum(1 for past in history if past.closure_status in FAILURE_STATUSES)
    # round half up (1 failure in 20 is 0.5 -> 1), in integers so no float error creeps in
    points = (2 * MAX_HISTORY * failures + n) // (2 * n)
    return RiskComponent(points, f"{prefix}{failures} of {n} {what} failed: {points}")


def score(
    change: Change,
    policy: Policy,
    history: Sequence[PastChange],
    radius: Radius | None = None,
    record: Sequence[PastChange] | None = None,
) -> dict[str, RiskComponent]:
    """The four components, in the order SPEC §3 adds them; `radius`: the CMDB's blast radius of
    the change's services and CIs (None without a CMDB); `record`: the filing agent's own closed
    changes (None for a person's change)."""
    return {
        "impact": impact_component(change, radius),
        "complexity": complexity_component(change, radius),
        "category": category_component(change, policy),
        "history": history_component(history, policy, record, change.requested_by),
    }


def total(components: dict[str, RiskComponent]) -> int:
    return min(100, sum(c.points for c in components.values()))
