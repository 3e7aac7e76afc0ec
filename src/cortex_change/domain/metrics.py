"""The KPIs of SPEC §8 with their targets, computed from aggregate figures."""

from __future__ import annotations

from collections.abc import Callable

from .values import Frozen

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any, Final

FAILURES = ("failed", "rolled_back")
# What `metrics` counts of post-implementation reviews (docs/metrics.md, docs/pir.md).
PIR_FIGURES = ("opened", "completed", "overdue", "actions_open", "actions_overdue")


class Figures(Frozen):
    """Aggregates over one period, as the store counts them."""

    __slots__ = (
        "by_state",
        "by_type",
        "closures",
        "compliant_closed",
        "created",
        "days",
        "incidents",
        "lead_time_seconds",
        "mtta_seconds",
        "mtti_seconds",
        "pir",
        "predictions",
        "restore_seconds",
        "unauthorized",
    )

    def __init__(
        self,
        days: float,
        created: int = 0,
        by_state: dict[str, int] | None = None,
        by_type: dict[str, int] | None = None,
        closures: dict[str, int] | None = None,
        compliant_closed: int = 0,
        mtta_seconds: float | None = None,
        mtti_seconds: float | None = None,
        lead_time_seconds: float | None = None,
        restore_seconds: float | None = None,
        unauthorized: int | None = 0,  # None: no observation source has reported (docs/schedule.md)
        incidents: int = 0,
        predictions: tuple[int, ...] | None = None,
        pir: dict[str, int] | None = None,
    ) -> None:
        self.days: Final = days
        self.created: Final = created
        self.by_state: Final = {} if by_state is None else by_state
        self.by_type: Final = {} if by_type is None else by_type
        self.closures: Final = {} if closures is None else closures  # closed in period, by status
        self.compliant_closed: Final = compliant_closed
        self.mtta_seconds: Final = mtta_seconds
        self.mtti_seconds: Final = mtti_seconds
        self.lead_time_seconds: Final = lead_time_seconds
        self.restore_seconds: Final = restore_seconds
        self.unauthorized: Final = unauthorized
        self.incidents: Final = incidents  # changes with an incident opened in the period (a failed rollback)
        # Of the changes closed in the period with a prediction recorded at assessment (P >= 0.5:
        # "will fail"): true positives, false positives, true negatives, false negatives.
        self.predictions: Final = predictions
        # Post-implementation reviews (docs/pir.md): PIR_FIGURES, as store/pir.py counts them.
        self.pir: Final = dict.fromkeys(PIR_FIGURES, 0) if pir is None else pir

    @property
    def finished(self) -> int:
        """Closed with an outcome (cancelled changes have none)."""
        return sum(n for s, n in self.closures.items() if s != "cancelled")


class Kpi(Frozen):
    __slots__ = ("key", "met", "name", "note", "target", "unit", "value")

    def __init__(
        self,
        key: str,
        name: str,
        value: float | None,
        unit: str,
        target: str,
        met: bool | None,
        note: str = "",
    ) -> None:
        self.key: Final = key
        self.name: Final = name
        self.value: Final = value
        self.unit: Final = unit
        self.target: Final = target
        self.met: Final = met
        self.note: Final = note

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "target": self.target,
            "met": self.met,
            "note": self.note,
        }


def _pct(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(100.0 * part / whole, 2)


def _kpi(
    key: str,
    name: str,
    value: float | None,
    unit: str,
    target: str,
    ok: Callable[[float], bool] | None,
    empty: str,
) -> Kpi:
    met = None if value is None or ok is None else ok(value)
    return Kpi(key, name, value, unit, target, met, empty if value is None else "")


def _hours(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 3600, 2)


def _minutes(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 60, 2)


def kpis(f: Figures) -> list[Kpi]:
    """Every KPI beside its target; a KPI without data says why instead of inventing a value."""
    closed = f.finished
    failures = sum(f.closures.get(s, 0) for s in FAILURES)
    no_closed = "no change closed in this period"
    return [
        _kpi(
            "change_success_rate",
            "Change success rate",
            _pct(f.closures.get("successful", 0), closed),
            "%",
            "> 95%",
            lambda v: v > 95,
            no_closed,
        ),
        _kpi(
            "mtta",
            "Mean time to approve",
            _hours(f.mtta_seconds),
            "h",
            "< 4 h",
            lambda v: v < 4,
            "no change approved in this period",
        ),
        _kpi(
            "mtti",
            "Mean time to implement",
            _minutes(f.mtti_seconds),
            "min",
            "< 30 min",
            lambda v: v < 30,
            "no change implemented in this period",
        ),
        _kpi(
            "rollback_rate",
            "Rollback rate",
            _pct(f.closures.get("rolled_back", 0), closed),
            "%",
            "< 5%",
            lambda v: v < 5,
            no_closed,
        ),
        _kpi(
            "emergency_change_rate",
            "Emergency change rate",
            _pct(f.by_type.get("emergency", 0), f.created),
            "%",
            "< 5%",
            lambda v: v < 5,
            "no change created in this period",
        ),
        _kpi(
            "change_induced_incidents",
            "Change-induced incidents",
            _pct(f.incidents, f.finished),
            "%",
            "< 2%",
            lambda v: v < 2,
            no_closed,
        ),
        _kpi(
            "unauthorized_changes",
            "Unauthorized changes",
            None if f.unauthorized is None else float(f.unauthorized),
            "",
            "= 0",
            lambda v: v == 0,
            "no observed changes yet: nothing to check (observe, POST /api/v1/observations)",
        ),
        _kpi(
            "audit_compliance",
            "Audit compliance",
            _pct(f.compliant_closed, f.closures.get("successful", 0) + failures),
            "%",
            "= 100%",
            lambda v: v == 100,
            no_closed,
        ),
        *_prediction_kpis(f),
    ]


MIN_PREDICTIONS = 20  # fewer judged predictions in a period: the KPIs read n/a


def _prediction_kpis(f: Figures) -> list[Kpi]:
    """Predictions recorded at assessment against the outcomes of the changes closed in the period
    (never training data; docs/risk-model.md), n/a below MIN_PREDICTIONS."""
    tp, fp, tn, fn = f.predictions or (0, 0, 0, 0)
    judged = tp + fp + tn + fn
    few = (
        f"{judged} closed change(s) with a recorded risk prediction in this period, fewer than "
        f"{MIN_PREDICTIONS} (risk train: docs/risk-model.md)"
    )
    enough = judged >= MIN_PREDICTIONS
    return [
        _kpi(
            "risk_prediction_accuracy",
            "Risk prediction accuracy",
            _pct(tp + tn, judged) if enough else None,
            "%",
            "> 90%",
            lambda v: v > 90,
            few,
        ),
        _kpi(
            "false_positive_rate",
            "False positive rate",
            _pct(fp, fp + tn) if enough else None,
            "%",
            "< 10%",
            lambda v: v < 10,
            few if not enough else "no successful change to judge",
        ),
    ]


def dora(f: Figures) -> list[Kpi]:
    """The four DORA figures (reported without targets)."""
    closed = f.finished
    failures = sum(f.closures.get(s, 0) for s in FAILURES)
    deploys = f.closures.get("successful", 0)
    return [
        _kpi(
            "deployment_frequency",
            "Deployment frequency",
            round(deploys / f.days, 3) if f.days else None,
            "/day",
            "",
            None,
            "",
        ),
        _kpi(
            "lead_time",
            "Lead time for changes",
            _hours(f.lead_time_seconds),
            "h",
            "",
            None,
            "no change implemented in this period",
        ),
        _kpi(
            "change_failure_rate",
            "Change failure rate",
            _pct(failures, closed),
            "%",
            "",
            None,
            "no change closed in this period",
        ),
        _kpi(
            "time_to_restore",
            "Time to restore",
            _minutes(f.restore_seconds),
            "min",
            "",
            None,
            "no failed change in this period",
        ),
    ]
