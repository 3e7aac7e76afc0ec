"""Factories for the domain unit tests: records built in memory, time fixed and injected.

Tests reach these through the session-scoped `kit` fixture (no `import conftest`), so they
work whatever import mode pytest runs in and can be used inside hypothesis tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cortex_change.domain import workflow
from cortex_change.domain.model import Change, ChangeType, ClosureStatus, Level, Timeline
from cortex_change.domain.policy import Policy
from cortex_change.domain.risk import PastChange
from cortex_change.domain.standard import StandardDecision


class Kit:
    """Builders for change records at a fixed UTC epoch."""

    # Whole seconds: the codec stores times to the second.
    T0 = datetime(2025, 3, 3, 9, 0, 0, tzinfo=UTC)
    REQUESTER = "requester-1"
    CHANGE_ID = "RFC-20250303090000-abcdef"
    PLANS: dict[str, Any] = {  # noqa: RUF012 - read-only by convention; copied on use
        "implementation_plan": {"steps": ["deploy the new build"], "estimated_duration": "15m"},
        "rollback_plan": {"steps": ["redeploy the previous build"], "automated": True},
    }
    # Fields that land on each risk level with the default policy and no history (which
    # scores a neutral 5): impact + 5 per service + category + 5.
    PROFILES: dict[str, dict[str, Any]] = {  # noqa: RUF012
        "low-auto": {"impact": Level.LOW, "category": "documentation"},  # 10+0+5+5 = 20
        "low-tl": {"impact": Level.LOW, "category": "documentation", "affected_services": ["a"]},  # 25
        "medium": {"impact": Level.MEDIUM, "category": "configuration"},  # 20+0+15+5 = 40
        "high": {"impact": Level.HIGH, "category": "security", "affected_services": ["a", "b"]},  # 65
        "critical": {
            "impact": Level.CRITICAL,
            "category": "security",
            "affected_services": ["a", "b", "c", "d"],
        },  # 40+20+20+5 = 85
    }

    def at(self, minutes: float) -> datetime:
        """The fixed epoch plus some minutes."""
        return self.T0 + timedelta(minutes=minutes)

    def plans(self) -> dict[str, Any]:
        """Fresh copies of a valid implementation and rollback plan."""
        return {k: {**v, "steps": list(v["steps"])} for k, v in self.PLANS.items()}

    def change(self, profile: str | None = None, *, with_plans: bool = False, **overrides: Any) -> Change:
        """A pending_assessment normal change; a risk profile, plans and any field may be given."""
        fields: dict[str, Any] = {
            "change_id": self.CHANGE_ID,
            "type": ChangeType.NORMAL,
            "category": "configuration",
            "title": "Raise the connection pool size",
            "description": "The pool saturates at peak load.",
            "requested_by": self.REQUESTER,
            "impact": Level.MEDIUM,
            "urgency": Level.MEDIUM,
            "timeline": Timeline(created_at=self.T0),
        }
        if profile is not None:
            profile_fields = self.PROFILES[profile]
            fields.update({k: list(v) if isinstance(v, list) else v for k, v in profile_fields.items()})
        if with_plans:
            fields.update(self.plans())
        fields.update(overrides)
        return Change(**fields)

    def assessed(
        self,
        profile: str | None = None,
        *,
        policy: Policy | None = None,
        history: Sequence[PastChange] = (),
        standard: StandardDecision | None = None,
        with_plans: bool = False,
        **overrides: Any,
    ) -> Change:
        """A new change, assessed and routed at T0."""
        change = self.change(profile, with_plans=with_plans, **overrides)
        workflow.assess(change, policy or Policy(), history, self.T0, standard=standard)
        return change

    @staticmethod
    def history(failures: int, successes: int, rolled_back: int = 0) -> list[PastChange]:
        """Comparable closed changes with the given outcomes."""
        statuses = (
            [ClosureStatus.FAILED] * failures
            + [ClosureStatus.ROLLED_BACK] * rolled_back
            + [ClosureStatus.SUCCESSFUL] * successes
        )
        return [PastChange(f"RFC-20250101000000-{i:06x}", s) for i, s in enumerate(statuses)]


@pytest.fixture(scope="session")
def kit() -> Kit:
    return Kit()
