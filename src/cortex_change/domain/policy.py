"""The configuration the rules depend on, as one immutable value (built by config.py)."""

from __future__ import annotations

from .model import Level
from .values import Frozen

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Final

# CHANGE_MGMT_ENABLED=false, said the same way by every door (CLI, API, portal) and every route.
UNMANAGED = (
    "change management is DISABLED (CHANGE_MGMT_ENABLED=false): everything is recorded and audited, "
    "but nothing is approved automatically and no deploy is gated"
)

DEFAULT_CATEGORY_WEIGHTS: dict[str, int] = {
    "security": 20,
    "infrastructure": 20,
    "deployment": 15,
    "configuration": 15,
    "rollback": 15,
    "patch": 10,
    "update": 10,
    "cicd": 10,
    "inventory": 5,
    "documentation": 5,
}


class Policy(Frozen):
    __slots__ = (
        "admins",
        "agent_human_approval_level",
        "auto_approve_low_risk",
        "auto_approve_threshold",
        "cab_members",
        "cab_min_approvals",
        "category_weights",
        "change_management",
        "change_managers",
        "ciso_members",
        "cto_members",
        "ecab_members",
        "emergency_auto_approve",
        "emergency_enabled",
        "emergency_review_sla_hours",
        "frameworks",
        "history_min_samples",
        "history_window_days",
        "implementers",
        "require_change_approval",
        "require_documentation",
        "require_rollback_plan",
        "risk_threshold_high",
        "risk_threshold_low",
        "risk_threshold_medium",
        "segregation_of_duties",
        "tech_leads",
    )

    def __init__(
        self,
        risk_threshold_low: int = 30,
        risk_threshold_medium: int = 60,
        risk_threshold_high: int = 80,
        auto_approve_low_risk: bool = True,
        auto_approve_threshold: int = 25,
        require_change_approval: bool = True,
        tech_leads: frozenset[str] = frozenset({"tech-lead", "coordinator-master"}),
        cab_members: frozenset[str] = frozenset({"tech-lead", "security-lead", "ops-lead", "product-lead"}),
        cab_min_approvals: int = 2,
        ecab_members: frozenset[str] = frozenset({"tech-lead-oncall", "security-oncall"}),
        ciso_members: frozenset[str] = frozenset({"ciso"}),
        cto_members: frozenset[str] = frozenset({"cto"}),
        change_managers: frozenset[str] = frozenset({"change-manager"}),
        implementers: frozenset[str] = frozenset({"cortex-deployer"}),
        admins: frozenset[str] = frozenset(),
        segregation_of_duties: bool = True,
        require_documentation: bool = True,
        require_rollback_plan: bool = True,
        emergency_enabled: bool = True,
        emergency_auto_approve: bool = True,
        emergency_review_sla_hours: int = 24,
        frameworks: tuple[str, ...] = ("soc2",),
        history_window_days: int = 90,
        history_min_samples: int = 5,
        category_weights: dict[str, int] | None = None,
        agent_human_approval_level: str = "medium",
        change_management: bool = True,
    ) -> None:
        self.risk_threshold_low: Final = risk_threshold_low
        self.risk_threshold_medium: Final = risk_threshold_medium
        self.risk_threshold_high: Final = risk_threshold_high
        self.auto_approve_low_risk: Final = auto_approve_low_risk
        self.auto_approve_threshold: Final = auto_approve_threshold
        self.require_change_approval: Final = require_change_approval
        self.tech_leads: Final = tech_leads
        self.cab_members: Final = cab_members
        self.cab_min_approvals: Final = cab_min_approvals
        self.ecab_members: Final = ecab_members
        self.ciso_members: Final = ciso_members
        self.cto_members: Final = cto_members
        # SPEC §11: who may update, implement, close, cancel, lower a route; who manages tokens.
        self.change_managers: Final = change_managers
        self.implementers: Final = implementers
        self.admins: Final = admins
        self.segregation_of_duties: Final = segregation_of_duties
        self.require_documentation: Final = require_documentation
        self.require_rollback_plan: Final = require_rollback_plan
        self.emergency_enabled: Final = emergency_enabled
        self.emergency_auto_approve: Final = emergency_auto_approve
        self.emergency_review_sla_hours: Final = emergency_review_sla_hours
        self.frameworks: Final = frameworks
        self.history_window_days: Final = history_window_days
        self.history_min_samples: Final = history_min_samples
        self.category_weights: Final = (
            dict(DEFAULT_CATEGORY_WEIGHTS) if category_weights is None else category_weights
        )
        # An agent's change at or above this risk level needs a person's approval (docs/agents.md).
        self.agent_human_approval_level: Final = Level(agent_human_approval_level)
        # CHANGE_MGMT_ENABLED: false records everything, approves nothing by itself, gates nothing.
        self.change_management: Final = change_management

    @property
    def categories(self) -> list[str]:
        return list(self.category_weights)

    def level_for(self, score: int) -> Level:
        """Risk level for a score (SPEC §3 thresholds)."""
        if score < self.risk_threshold_low:
            return Level.LOW
        if score < self.risk_threshold_medium:
            return Level.MEDIUM
        if score < self.risk_threshold_high:
            return Level.HIGH
        return Level.CRITICAL
