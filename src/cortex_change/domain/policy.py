"""The configuration the rules depend on, as one immutable value (built by config.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .model import Level

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


@dataclass(frozen=True)
class Policy:
    risk_threshold_low: int = 30
    risk_threshold_medium: int = 60
    risk_threshold_high: int = 80
    auto_approve_low_risk: bool = True
    auto_approve_threshold: int = 25
    require_change_approval: bool = True
    tech_leads: frozenset[str] = frozenset({"tech-lead", "coordinator-master"})
    cab_members: frozenset[str] = frozenset({"tech-lead", "security-lead", "ops-lead", "product-lead"})
    cab_min_approvals: int = 2
    ecab_members: frozenset[str] = frozenset({"tech-lead-oncall", "security-oncall"})
    ciso_members: frozenset[str] = frozenset({"ciso"})
    cto_members: frozenset[str] = frozenset({"cto"})
    # SPEC §11: who may update, implement, close, cancel, lower a route; who manages tokens.
    change_managers: frozenset[str] = frozenset({"change-manager"})
    implementers: frozenset[str] = frozenset({"cortex-deployer"})
    admins: frozenset[str] = frozenset()
    segregation_of_duties: bool = True
    require_documentation: bool = True
    require_rollback_plan: bool = True
    emergency_enabled: bool = True
    emergency_auto_approve: bool = True
    emergency_review_sla_hours: int = 24
    frameworks: tuple[str, ...] = ("soc2",)
    history_window_days: int = 90
    history_min_samples: int = 5
    category_weights: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_CATEGORY_WEIGHTS))

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
