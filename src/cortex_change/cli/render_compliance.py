"""A compliance report as text for people or CSV for spreadsheets (JSON is the report itself)."""

from __future__ import annotations

import csv
import io
from typing import Any

from .render import escape

CSV_COLUMNS = (
    "framework",
    "control",
    "change_id",
    "status",
    "reason",
    "evidence_event_ids",
    "approvers",
    "last_hash",
    # The last witnessed checkpoint that vouches for all the change's events (empty: none yet).
    "checkpoint_length",
    "checkpoint_head",
    "checkpoint_at",
    "checkpoint_witnesses",
)
STATUS_COLUMNS = (("pass", "pass"), ("fail", "fail"), ("pending", "pending"), ("not_applicable", "n/a"))


def chain_line(report: dict[str, Any]) -> str:
    """The report's first line: the audit chain's verdict over the whole database."""
    chain = report["audit_chain"]
    if chain["ok"]:
        return f"audit chain intact: {chain['checked']} events verified; head {escape(chain['head_hash'])}"
    return f"AUDIT CHAIN BROKEN: {escape(chain['problem'])}; the audit_trail control fails for every change"


def checkpoint_line(report: dict[str, Any]) -> str:
    """The chain's last witnessed checkpoint, what the changes' lines cite (docs/checkpoints.md)."""
    c = report.get("checkpoint")
    if c is None:
        return "no witnessed checkpoint: no change's events are vouched for outside the database yet"
    held = ", ".join(w["witness"] + (f" ({w['detail']})" if w["detail"] else "") for w in c["witnesses"])
    stale = "" if c["matches_chain"] else "; THE CHAIN NO LONGER MATCHES IT"
    return escape(
        f"last witnessed checkpoint #{c['number']}: events #1..#{c['length']}, head {c['head']}, "
        f"signed {c['at']}; witnessed by {held}{stale}"
    )


def _cited(change: dict[str, Any]) -> str:
    c = change.get("checkpoint")
    if c is None:
        return "none witnessed covers its events yet"
    return (
        f"#{c['number']} (events to #{c['length']}, head {c['head'][:12]}, {c['at']}) "
        f"witnessed by {', '.join(c['witnesses'])}"
    )


def _approvers(change: dict[str, Any]) -> str:
    return "; ".join(
        f"{a['approver']} ({a['role']}) {a['decision']} at {a['at']}" for a in change["approvers"]
    )


def _evidence(finding: dict[str, Any]) -> str:
    """`seq:hash` of each event cited, separated by spaces."""
    return " ".join(f"{e['seq']}:{e['hash']}" for e in finding["evidence"])


def text(report: dict[str, Any]) -> str:
    p = report["period"]
    lines = [
        chain_line(report),
        escape(
            f"{report['framework_name']} compliance report: {p['label']} ({p['start']} .. {p['end']}), "
            f"{len(report['changes'])} change(s) created; generated {report['generated_at']}"
        ),
        checkpoint_line(report),
        *(f"note: {escape(n)}" for n in report["notes"]),
        "",
        f"{'control':<24}{'reference':<26}" + "".join(f"{label:>9}" for _, label in STATUS_COLUMNS),
    ]
    for c in report["controls"]:
        counts = "".join(f"{c[key]:>9}" for key, _ in STATUS_COLUMNS)
        lines.append(f"{escape(c['control']):<24}{escape(c['reference']):<26}{counts}")
    for u in report["not_assessed"]:
        lines.append(escape(f"not assessed: {u['control']} ({u['reference']}): {u['why']}"))
    for change in report["changes"]:
        lines += ["", _change_heading(change)]
        if change["approvers"]:
            lines.append(f"  approvers: {escape(_approvers(change))}")
        lines.append(f"  checkpoint: {escape(_cited(change))}")
        for f in change["controls"]:
            lines.append(
                f"  {escape(f['status']):<15}{escape(f['control'])}: {escape(f['reason'], backslashes=True)}"
            )
            if f["evidence"]:
                cited = escape(", ".join(f"#{e['seq']} {e['hash'][:12]}" for e in f["evidence"]))
                lines.append(f"  {'':<15}evidence: {cited}")
    return "\n".join(lines)


def _change_heading(change: dict[str, Any]) -> str:
    state = change["state"] + (f" {change['closure_status']}" if change["closure_status"] else "")
    risk = f", risk {change['risk_level']}" if change["risk_level"] else ""
    phi = f", PHI: {', '.join(change['phi'])}" if change["phi"] else ""
    title = escape(change["title"], backslashes=True)  # escaped again below: a no-op on it
    return escape(
        f"{change['change_id']} '{title}': {change['type']}, {state}{risk}{phi}; "
        f"requested by {change['requested_by']}; last audit hash {change['last_hash'] or '-'}"
    )


def as_csv(report: dict[str, Any]) -> str:
    """One row per change and control, evidence as `seq:hash` separated by spaces; each cell
    escaped as text is (one row per line, no control characters)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for change in report["changes"]:
        c = change.get("checkpoint") or {}
        cited = (c.get("length", ""), c.get("head", ""), c.get("at", ""), " ".join(c.get("witnesses", ())))
        for f in change["controls"]:
            row = (
                report["framework"],
                f["control"],
                change["change_id"],
                f["status"],
                f["reason"],
                _evidence(f),
                _approvers(change),
                change["last_hash"] or "",
                *cited,
            )
            writer.writerow([escape(cell) for cell in row])
    return out.getvalue()
