"""Text and JSON output for people and tools."""

from __future__ import annotations

import json
from typing import Any

from ..domain.model import Change
from ..domain.policy import Policy
from ..domain.routing import outstanding


def as_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2)


def one_line(text: str) -> str:
    """Keep listings one change per line whatever the title holds."""
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")


def assessment(change: Change, policy: Policy) -> str:
    a = change.assessment
    assert a is not None
    lines = [
        f"{change.change_id} assessed: risk {a.score}/100 ({a.level.value}), "
        f"priority {a.priority}, testing: {a.testing_required}"
    ]
    lines += [f"  {name:<11}{c.points:>3}  {c.reason}" for name, c in a.components.items()]
    if change.reclassified_from:
        lines.append(f"reclassified: {change.reclassified_from.value} -> {change.type.value}")
    lines.append(f"route: {a.route.value} ({a.route_reason}) -> state {change.state.value}")
    needs = outstanding(a.route, change.active_approvals, policy)
    if needs and change.state.value.startswith("pending"):
        lines.append(f"needs: {', '.join(needs)}")
    lines.append(f"assigned to: {a.assigned_to}")
    return "\n".join(lines)


def vote(change: Change, person: str, policy: Policy) -> str:
    last = change.approvals[-1]
    head = f"{change.change_id} {last.decision.value} by {person} ({last.role})"
    a = change.assessment
    needs = outstanding(a.route, change.active_approvals, policy) if a else []
    if change.state.value in ("pending_approval", "pending_cab") and needs:
        return f"{head}; still needs {', '.join(needs)}; state {change.state.value}"
    return f"{head}; state {change.state.value}"


def table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no changes"
    header = ("CHANGE_ID", "STATE", "TYPE", "CATEGORY", "RISK", "TITLE")
    body = [
        (
            r["change_id"],
            r["state"],
            r["type"],
            r["category"],
            "-" if r["risk_score"] is None else f"{r['risk_score']} {r['risk_level']}",
            one_line(r["title"]),
        )
        for r in rows
    ]
    widths = [max(len(str(x[i])) for x in [header, *body]) for i in range(5)]
    return "\n".join(
        "  ".join(str(col).ljust(widths[i]) for i, col in enumerate(row[:5])) + "  " + row[5]
        for row in [header, *body]
    )


def _value(k: dict[str, Any]) -> str:
    if k["value"] is None:
        return "n/a"
    unit = k["unit"]
    value = k["value"]
    shown = f"{value:g}" if isinstance(value, float) else str(value)
    return f"{shown}{'' if unit in ('', '%') else ' '}{unit}"


def metrics(report: dict[str, Any]) -> str:
    p = report["period"]
    lines = [f"Change metrics: {p['label']} ({p['start']} .. {p['end']})", ""]
    lines.append(f"Changes created: {report['changes_created']}")
    for state, n in report["changes_by_state"].items():
        lines.append(f"  {state:<20}{n:>6}")
    lines += ["", f"{'KPI':<28}{'value':<12}{'target':<10}status"]
    for k in report["kpis"]:
        status = {True: "met", False: "MISSED", None: "-"}[k["met"]]
        note = f"  ({k['note']})" if k["note"] else ""
        lines.append(f"{k['name']:<28}{_value(k):<12}{k['target']:<10}{status}{note}")
    lines += ["", "DORA"]
    for k in report["dora"]:
        note = f"  ({k['note']})" if k["note"] else ""
        lines.append(f"{k['name']:<28}{_value(k)}{note}")
    return "\n".join(lines)


def config_rows(rows: list[dict[str, Any]]) -> str:
    width = max(len(r["key"]) for r in rows)
    out = []
    for r in rows:
        flag = "" if r["in_effect"] else "  [not yet in effect]"
        note = f"  ({r['note']})" if r["note"] and r["in_effect"] else ""
        value = str(r["value"]).lower() if isinstance(r["value"], bool) else str(r["value"])
        out.append(f"{r['key']:<{width}}  {one_line(value)}  <- {r['source']}{flag}{note}")
    return "\n".join(out)
