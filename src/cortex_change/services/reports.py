"""Metrics over a period (SPEC §8)."""

from __future__ import annotations

from typing import Any

from ..domain import metrics, period
from ..store import reports
from .context import Context


def metrics_report(ctx: Context, *, period_text: str = "today") -> dict[str, Any]:
    """KPIs with targets, DORA figures and counts by state for the period."""
    p = period.parse(period_text, ctx.clock())
    with ctx.db.read() as tx:
        f = reports.figures(tx, p, ctx.clock().timestamp())
    return report(p, f)


def report(p: period.Period, f: metrics.Figures) -> dict[str, Any]:
    """The report of figures read for a period (the dashboard reads them in its own transaction)."""
    return {
        "period": {
            "label": p.label,
            "start": p.start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "end": p.end.strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        "changes_created": f.created,
        "changes_by_state": dict(sorted(f.by_state.items())),
        "changes_by_type": dict(sorted(f.by_type.items())),
        "closures": dict(sorted(f.closures.items())),
        "kpis": [k.as_dict() for k in metrics.kpis(f)],
        "dora": [k.as_dict() for k in metrics.dora(f)],
        "post_implementation_reviews": {k: f.pir.get(k, 0) for k in metrics.PIR_FIGURES},
    }
