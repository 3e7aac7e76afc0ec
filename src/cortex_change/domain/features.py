"""What a learned risk model may know of a change (docs/risk-model.md): the features, computed at
assessment from the record and what the store knew then — never from the future — and recorded on
the assessment, so training reads exactly what each prediction saw."""

from __future__ import annotations

from datetime import timedelta

from .model import Change, ChangeType, Level
from .values import Frozen

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime
    from typing import Any, Final

    from .windows import Window

ORDINAL = {Level.LOW: 0.0, Level.MEDIUM: 1.0, Level.HIGH: 2.0, Level.CRITICAL: 3.0}
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
FREEZE_HORIZON_DAYS = 30  # a freeze further away than this counts as none


class Facts(Frozen):
    """What the store knew at assessment: the requester's closed changes and failures in the
    history window, those of the change's services (any category, any requester), and the freeze
    windows defined then that were not yet over."""

    __slots__ = ("freezes", "requester_closed", "requester_failed", "services_closed", "services_failed")

    def __init__(
        self,
        requester_closed: int = 0,
        requester_failed: int = 0,
        services_closed: int = 0,
        services_failed: int = 0,
        freezes: Sequence[Window] = (),
    ) -> None:
        self.requester_closed: Final = requester_closed
        self.requester_failed: Final = requester_failed
        self.services_closed: Final = services_closed
        self.services_failed: Final = services_failed
        self.freezes: Final = tuple(freezes)


def _rate(failed: int, closed: int) -> float:
    """A failure rate shrunk towards 10 % with few samples (Laplace-style: 1 failure in 10 prior)."""
    return (failed + 1.0) / (closed + 10.0)


def _steps(plan: dict[str, object] | None) -> tuple[int, int]:
    steps = (plan or {}).get("steps")
    if not isinstance(steps, list):
        return 0, 0
    executable = sum(1 for s in steps if isinstance(s, dict) and ({"run", "http", "runbook"} & set(s)))
    return len(steps), executable


def _freeze(
    change: Change, freezes: Sequence[Window], now: datetime, radius: dict[str, Any] | None
) -> tuple[float, float]:
    """(in a freeze that applies to the change now, the next one's proximity): proximity is
    1 - days until it starts / FREEZE_HORIZON_DAYS — 1 in one, 0 with none within the horizon, so
    a record from before this feature (no value, read as 0) reads as "no freeze near"."""
    horizon = now + timedelta(days=FREEZE_HORIZON_DAYS)
    starts = [
        start
        for w in freezes
        if w.kind == "freeze" and w.applies_to(change, radius)
        for start, _ in w.occurrences(now, horizon)
    ]
    if not starts:
        return 0.0, 0.0
    first = max(min(starts), now)
    days = (first - now).total_seconds() / 86400
    return float(first == now), 1.0 - min(days, FREEZE_HORIZON_DAYS) / FREEZE_HORIZON_DAYS


def extract(
    change: Change,
    facts: Facts,
    score: int,
    now: datetime,
    categories: list[str],
    radius: dict[str, Any] | None = None,
) -> dict[str, float]:
    """The change's features at `now` (its assessment; `radius`: the CMDB's blast radius document
    it is scored on), by name; every value a finite number."""
    steps, executable = _steps(change.implementation_plan)
    in_freeze, freeze_proximity = _freeze(change, facts.freezes, now, radius)
    radius = radius or {}
    cis = [ci for ci in radius.get("cis", []) if isinstance(ci, dict)]
    tiers = [ci.get("tier") for ci in cis]
    databases = any(ci.get("type") == "database" for ci in cis) or any(
        s.endswith(("-db", "-database")) for s in change.affected_services
    )
    out: dict[str, float] = {
        "rules_score": float(score),
        "impact": ORDINAL[change.impact],
        "urgency": ORDINAL[change.urgency],
        "emergency": float(change.type is ChangeType.EMERGENCY),
        "standard": float(change.type is ChangeType.STANDARD),
        "services": float(len(change.affected_services)),
        "cis": float(len(change.affected_cis)),
        "radius": float(radius.get("size", 0) or 0),
        "tier0_reached": float(0 in tiers),
        "database": float(databases),  # a database CI in the radius, or a service named *-db
        "plan_steps": float(steps),
        "executable_share": executable / steps if steps else 0.0,
        "rollback_plan": float(bool(change.rollback_plan and change.rollback_plan.get("steps"))),
        "staging_evidence": float(bool(change.tested_in_staging)),
        "requester_failure_rate": _rate(facts.requester_failed, facts.requester_closed),
        "services_failure_rate": _rate(facts.services_failed, facts.services_closed),
        "agent": float(change.origin == "agent"),
        "weekend": float(now.weekday() >= 5),
        "business_hours": float(9 <= now.hour < 17),
        "in_freeze": in_freeze,  # a freeze that applies to the change is in force at assessment
        "freeze_proximity": freeze_proximity,  # how near the next one is (1: in one; 0: none in 30 days)
    }
    for i, day in enumerate(DAYS):
        out[f"day_{day}"] = float(now.weekday() == i)
    for category in categories:
        out[f"category_{category}"] = float(change.category == category)
    return out
