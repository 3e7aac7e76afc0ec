"""Text and JSON output for people and tools."""

from __future__ import annotations

import json
import re

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:  # the renderers of a change import the domain only when they run
    from typing import Any

    from ..domain.model import Change
    from ..domain.policy import Policy


def as_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2)


_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # C0, DEL, C1
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape(text: object, *, backslashes: bool = False) -> str:
    r"""Text fit for a terminal: C0 and C1 controls and DEL become JSON's escapes (\n, \r, \t,
    \u00XX), so escaped JSON stays JSON; `backslashes` doubles \ first (listings read back exactly)."""
    out = str(text)
    if backslashes:
        out = out.replace("\\", "\\\\")
    return _CONTROLS.sub(lambda m: _SHORT.get(m.group(), f"\\u{ord(m.group()):04x}"), out)


_UNMANAGED_SAID: list[bool] = []


def unmanaged() -> None:
    """CHANGE_MGMT_ENABLED=false (this store's, or the server's answer says so): one warning line
    on stderr, once per command, whatever it prints on stdout (docs/devops.md)."""
    if _UNMANAGED_SAID:
        return
    _UNMANAGED_SAID.append(True)
    import sys

    from ..domain.policy import UNMANAGED

    print(f"cortex-change: WARNING: {UNMANAGED}", file=sys.stderr)


def blast_radius(radius: dict[str, Any]) -> str:
    """One line: the radius's size, its most critical CI, PHI/PCI in it, names the CMDB lacks."""
    parts = [f"blast radius: {radius['size']} CI(s)"]
    if radius["most_critical"]:
        parts.append(f"most critical {radius['most_critical']}")
    parts += [f"{s['data'].upper()} in {s['path']}" for s in radius["sensitive"]]
    if radius["unknown"]:
        parts.append(f"not in the CMDB (warning): {', '.join(radius['unknown'])}")
    return "; ".join(parts)


def assessment(change: Change, policy: Policy) -> str:
    from ..domain.routing import outstanding

    a = change.assessment
    assert a is not None
    lines = [
        f"{change.change_id} assessed: risk {a.score}/100 ({a.level.value}), "
        f"priority {a.priority}, testing: {a.testing_required}"
    ]
    lines += [f"  {name:<11}{c.points:>3}  {escape(c.reason)}" for name, c in a.components.items()]
    if a.forecast and a.forecast.get("summary"):  # docs/canary.md
        lines.append(f"expected impact: {escape(a.forecast['summary'])}")
    if a.blast_radius:
        lines.append(escape(blast_radius(a.blast_radius)))
    if change.reclassified_from:
        lines.append(f"reclassified: {change.reclassified_from.value} -> {change.type.value}")
    lines.append(f"route: {a.route.value} ({escape(a.route_reason)}) -> state {change.state.value}")
    needs = outstanding(a.route, change.active_approvals, policy, a.ciso)
    if needs and change.state.value.startswith("pending"):
        lines.append(f"needs: {escape(', '.join(needs))}")
    lines.append(f"assigned to: {escape(a.assigned_to)}")
    return "\n".join(lines)


def vote(change: Change, person: str, policy: Policy) -> str:
    from ..domain.routing import outstanding

    last = change.approvals[-1]
    head = f"{change.change_id} {last.decision.value} by {escape(person)} ({escape(last.role)})"
    a = change.assessment
    needs = outstanding(a.route, change.active_approvals, policy, a.ciso) if a else []
    if change.state.value in ("pending_approval", "pending_cab") and needs:
        return f"{head}; still needs {escape(', '.join(needs))}; state {change.state.value}"
    return f"{head}; state {change.state.value}"


def table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no changes"
    header = ("CHANGE_ID", "STATE", "TYPE", "CATEGORY", "RISK", "TITLE")
    body = [
        (
            escape(r["change_id"]),
            escape(r["state"]),
            escape(r["type"]),
            escape(r["category"]),
            "-" if r["risk_score"] is None else escape(f"{r['risk_score']} {r['risk_level']}"),
            escape(r["title"], backslashes=True),
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
    return escape(f"{shown}{'' if unit in ('', '%') else ' '}{unit}")


def metrics(report: dict[str, Any]) -> str:
    p = report["period"]
    lines = [escape(f"Change metrics: {p['label']} ({p['start']} .. {p['end']})"), ""]
    lines.append(f"Changes created: {report['changes_created']}")
    for state, n in report["changes_by_state"].items():
        lines.append(f"  {escape(state):<20}{n:>6}")
    lines += ["", f"{'KPI':<28}{'value':<12}{'target':<10}status"]
    for k in report["kpis"]:
        status = {True: "met", False: "MISSED", None: "-"}[k["met"]]
        note = f"  ({escape(k['note'])})" if k["note"] else ""
        lines.append(f"{escape(k['name']):<28}{_value(k):<12}{escape(k['target']):<10}{status}{note}")
    lines += ["", "DORA"]
    for k in report["dora"]:
        note = f"  ({escape(k['note'])})" if k["note"] else ""
        lines.append(f"{escape(k['name']):<28}{_value(k)}{note}")
    pir = report.get("post_implementation_reviews")  # a server of an older release has none
    if pir:
        lines += [
            "",
            f"Post-implementation reviews: {pir['opened']} opened, {pir['completed']} completed, "
            f"{pir['overdue']} overdue; action items: {pir['actions_open']} open, "
            f"{pir['actions_overdue']} overdue",
        ]
    return "\n".join(lines)


def config_rows(rows: list[dict[str, Any]]) -> str:
    width = max(len(r["key"]) for r in rows)
    out = []
    for r in rows:
        flag = "" if r["in_effect"] else "  [not yet in effect]"
        note = f"  ({escape(r['note'])})" if r["note"] and r["in_effect"] else ""
        value = str(r["value"]).lower() if isinstance(r["value"], bool) else str(r["value"])
        source = escape(r["source"])
        out.append(f"{r['key']:<{width}}  {escape(value, backslashes=True)}  <- {source}{flag}{note}")
    return "\n".join(out)


def _span(seconds: float) -> str:
    """A duration as people read it: 2d 3h, 5h 10m, 12m."""
    minutes = int(seconds // 60)
    days, hours, mins = minutes // 1440, minutes // 60 % 24, minutes % 60
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {mins}m" if hours else f"{mins}m"


def overdue_reviews(rows: list[dict[str, Any]]) -> str:
    """`review overdue`: one emergency change a line, the longest overdue first."""
    if not rows:
        return "no review is overdue"
    header = ("CHANGE_ID", "DUE_AT", "OVERDUE", "STATE", "REQUESTED_BY")
    body = [
        (
            escape(r["change_id"]),
            escape(r["due_at"]),
            _span(r["overdue_seconds"]),
            escape(r["state"]),
            escape(r["requested_by"], backslashes=True),
            escape(r["title"], backslashes=True),
        )
        for r in rows
    ]
    widths = [max(len(x[i]) for x in [header, *body]) for i in range(len(header))]
    return "\n".join(
        "  ".join(col.ljust(widths[i]) for i, col in enumerate(row[:-1])) + "  " + row[-1]
        for row in [(*header, "TITLE"), *body]
    )
