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


def _last(trail: list[dict[str, Any]], action: str) -> int:
    return max((i for i, e in enumerate(trail) if e["action"] == action), default=-1)


def _steps(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Step events folded into one entry per step: its latest status and output tail."""
    steps: dict[Any, dict[str, Any]] = {}
    for e in events:
        status = STEP_STATES.get(e["action"])
        if status is None:
            continue
        d = e["details"]
        step = steps.setdefault(d.get("step"), {"step": d.get("step"), "of": d.get("of"), "what": ""})
        step["what"] = d.get("what") or d.get("text") or step["what"]
        step["status"] = status
        step["at"] = e["timestamp"]
        tail = d.get("output_tail") or d.get("error") or ""
        step["output"] = str(tail)[-OUTPUT_TAIL_SHOWN:]
    return list(steps.values())


def progress(trail: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The latest run's plan steps (since the last `implementation_started`) and, if it was rolled
    back, the rollback plan's steps (after `rollback_started`), each with its latest status."""
    start = _last(trail, "implementation_started")
    if start < 0:
        return [], []
    back = _last(trail, "rollback_started")
    if back < start:
        return _steps(trail[start + 1 :]), []
    return _steps(trail[start + 1 : back]), _steps(trail[back + 1 :])


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


def radius_graph(ci: dict[str, Any], radius: list[dict[str, Any]]) -> str:
    """A CI's blast radius as a layered SVG: the CI, then each depth of what relies on it; and,
    on its left, what the CI itself relies on."""
    from . import charts

    depths: dict[int, list[str]] = {}
    for r in radius:
        depths.setdefault(r["depth"], []).append(r["name"])
    columns = [depths[d][: charts.LAYER_MAX] for d in sorted(depths)]
    edges = sorted({edge for r in radius for edge in _path_edges(r["path"])})
    return charts.layers(f"Blast radius of {ci['name']}", columns, edges)


def _path_edges(path: str) -> list[tuple[str, str, str]]:
    """`a → depends on b → runs on c` as its edges (a, depends_on, b), (b, runs_on, c)."""
    words = path.split(" → ")
    out, source = [], words[0]
    for step in words[1:]:
        verb, _, target = step.rpartition(" ")
        out.append((source, verb.replace(" ", "_"), target))
        source = target
    return out


def compact(details: dict[str, Any]) -> str:
    return json.dumps(details, ensure_ascii=False, separators=(", ", ": "))
