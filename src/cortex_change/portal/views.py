"""What a change's page shows that is read off its audit trail: plan progress, verification rounds,
rollback. Pure: the trail's rows in, plain values out."""

from __future__ import annotations

import json
from typing import Any

STEP_STATES = {
    "step_started": "running",
    "step_succeeded": "succeeded",
    "step_failed": "failed",
    "step_manual": "for a person",
}
ROLLBACK = ("rollback_started", "rollback_skipped", "rolled_back", "rollback_failed", "incident_opened")
OUTPUT_TAIL_SHOWN = 2000


def progress(trail: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The latest run's steps (since the last `implementation_started`), in order, each with its
    latest status and output tail."""
    start = max((i for i, e in enumerate(trail) if e["action"] == "implementation_started"), default=-1)
    if start < 0:
        return []
    steps: dict[Any, dict[str, Any]] = {}
    for e in trail[start + 1 :]:
        status = STEP_STATES.get(e["action"])
        if status is None or e["action"] in ROLLBACK:
            continue
        d = e["details"]
        step = steps.setdefault(d.get("step"), {"step": d.get("step"), "of": d.get("of"), "what": ""})
        step["what"] = d.get("what") or d.get("text") or step["what"]
        step["status"] = status
        step["at"] = e["timestamp"]
        tail = d.get("output_tail") or d.get("error") or ""
        step["output"] = str(tail)[-OUTPUT_TAIL_SHOWN:]
    return list(steps.values())


def rounds(trail: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Post-change verification rounds, oldest first."""
    return [
        {"at": e["timestamp"], "details": compact(e["details"])}
        for e in trail
        if e["action"] == "validation_check"
    ]


def rollback(trail: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"at": e["timestamp"], "action": e["action"], "details": compact(e["details"])}
        for e in trail
        if e["action"] in ROLLBACK
    ]


def charts(data: dict[str, Any]) -> list[str]:
    """The dashboard's charts (services/dashboard.py's series) as SVG."""
    from . import charts as draw

    weeks = data["weeks"]
    return [
        draw.stacked_bars("Changes per week by outcome", weeks, data["outcomes"]),
        draw.lines("Time to approve (MTTA, hours)", weeks, {"MTTA": data["mtta_hours"]}, "h", ident="mtta"),
        draw.lines(
            "Time to implement (MTTI, minutes)", weeks, {"MTTI": data["mtti_minutes"]}, "min", ident="mtti"
        ),
        draw.bars("Risk-level mix", list(data["risk_mix"].items())),
        draw.lines("Emergency rate (% of changes)", weeks, {"emergency": data["emergency_rate"]}, "%"),
    ]


def compact(details: dict[str, Any]) -> str:
    return json.dumps(details, ensure_ascii=False, separators=(", ", ": "))
