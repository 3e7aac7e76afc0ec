"""Compliance reports (SPEC §8): every control of a framework with its evidence, per change."""

from __future__ import annotations

from typing import Any

from ..domain import compliance_report as cr
from ..domain import period
from ..domain.codec import fmt_time
from ..domain.errors import ValidationError
from ..domain.model import Change
from ..store import audit
from ..store import compliance as store
from ..store.db import Tx
from .context import Context


def _framework(name: str) -> str:
    if name not in cr.FRAMEWORKS:
        raise ValidationError(
            "framework", f"{name!r} is not a framework; allowed: {', '.join(cr.FRAMEWORKS)}"
        )
    return name


def compliance_report(ctx: Context, *, framework: str, period_text: str) -> dict[str, Any]:
    """The framework's controls over the changes created in the period, under the chain's verdict."""
    framework = _framework(framework)
    now = ctx.clock()
    p = period.parse(period_text, now)
    with ctx.db.read() as tx:  # one snapshot: the verdict covers the events the report cites
        verdict = audit.verify(tx)
        records = store.changes_created(tx, p)
        events = store.events_by_change(tx, p)
        incidents = store.incidents_by_change(tx, p)
        witnessed = last_witnessed_checkpoint(tx)
    chain = _chain(verdict, witnessed)
    phi_services, phi_cis = ctx.settings["PHI_SERVICES"], ctx.settings["PHI_CIS"]
    policy = ctx.policy
    rows = []
    for change in records:
        facts = cr.Facts(
            change,
            tuple(events.get(change.change_id, ())),
            tuple(incidents.get(change.change_id, ())),
            cr.phi_matches(change, phi_services, phi_cis),
        )
        rows.append((facts, cr.evaluate(framework, facts, policy, chain, now)))
    counts = cr.tally(framework, (findings for _, findings in rows))
    return {
        "framework": framework,
        "framework_name": cr.NAMES[framework],
        "period": {"label": p.label, "start": fmt_time(p.start), "end": fmt_time(p.end)},
        "generated_at": fmt_time(now),
        "audit_chain": {
            "ok": chain.ok,
            "checked": chain.checked,
            "head_hash": chain.head_hash,
            "first_broken": chain.first_broken,
            "problem": chain.problem or None,
        },
        "checkpoint": witnessed_entry(witnessed),
        "notes": _notes(framework, bool(phi_services or phi_cis)),
        "controls": [
            {"control": c.key, "title": c.title, "reference": c.reference, **counts[c.key]}
            for c in cr.FRAMEWORKS[framework]
        ],
        "not_assessed": [
            {"control": u.key, "title": u.title, "reference": u.reference, "why": u.why}
            for u in cr.NOT_ASSESSED[framework]
        ],
        "changes": [_change_entry(facts, findings, witnessed) for facts, findings in rows],
    }


def _chain(verdict: audit.Verdict, witnessed: cr.Witnessed | None) -> cr.Chain:
    """The chain's verdict; a chain that re-walks intact but no longer holds the head its last
    witnessed checkpoint vouches for was rewritten behind it, and is reported broken there."""
    if verdict.ok and witnessed is not None and not witnessed.matches:
        names = ", ".join(w for w, _, _ in witnessed.witnesses)
        problem = (
            f"checkpoint #{witnessed.number} (witnessed by {names}) vouches for event #{witnessed.length} "
            f"with head {witnessed.head}, which the chain no longer has: history was rewritten or "
            "removed behind it (run `audit verify --checkpoints`)"
        )
        return cr.Chain(False, verdict.checked, verdict.head_hash, problem, witnessed.length)
    return cr.Chain(verdict.ok, verdict.checked, verdict.head_hash, verdict.problem, verdict.first_bad_seq)


def _witness_detail(witness: str, receipt: dict[str, Any] | None) -> str:
    """What a witness's receipt shows a reader: the TSA's time, the S3 object; "" for the others."""
    r = receipt or {}
    if witness == "tsa" and r.get("gen_time"):
        return f"genTime {r['gen_time']}"
    if witness == "s3" and r.get("key"):
        return f"s3://{r.get('bucket', '')}/{r['key']}"
    return ""


def last_witnessed_checkpoint(tx: Tx) -> cr.Witnessed | None:
    """The newest checkpoint a witness took, its witnesses, and whether the chain still matches it."""
    from ..store import checkpoints

    c = checkpoints.last_witnessed(tx)
    if c is None:
        return None
    delivered = [r for r in checkpoints.receipts(tx, c.number) if r["state"] == "delivered"]
    witnesses = tuple(
        (str(r["witness"]), str(r["delivered_at"] or ""), _witness_detail(r["witness"], r["receipt"]))
        for r in delivered
    )
    matches = c.length == 0 or checkpoints.hash_at(tx, c.length) == c.head
    return cr.Witnessed(c.number, c.length, c.head, c.at, witnesses, matches)


def last_witnessed(ctx: Context) -> dict[str, Any] | None:
    """The chain's last witnessed checkpoint as `witnessed_entry` gives it (the portal's audit page)."""
    with ctx.db.read() as tx:
        return witnessed_entry(last_witnessed_checkpoint(tx))


def witnessed_entry(w: cr.Witnessed | None) -> dict[str, Any] | None:
    if w is None:
        return None
    return {
        "number": w.number,
        "length": w.length,
        "head": w.head,
        "at": w.at,
        "matches_chain": w.matches,
        "witnesses": [{"witness": n, "delivered_at": at, "detail": d} for n, at, d in w.witnesses],
    }


def _covering(facts: cr.Facts, w: cr.Witnessed | None) -> dict[str, Any] | None:
    """The checkpoint a change cites: the last witnessed one, if it vouches for all its events."""
    if w is None or not w.matches or not w.covers(facts.events):
        return None
    names = [n for n, _, _ in w.witnesses]
    return {"number": w.number, "length": w.length, "head": w.head, "at": w.at, "witnesses": names}


def _notes(framework: str, phi_configured: bool) -> list[str]:
    if framework == "hipaa" and not phi_configured:
        return ["PHI_SERVICES and PHI_CIS are empty: no change counts as PHI-affecting"]
    return []


def _change_entry(facts: cr.Facts, findings: list[cr.Finding], w: cr.Witnessed | None) -> dict[str, Any]:
    c: Change = facts.change
    return {
        "change_id": c.change_id,
        "title": c.title,
        "type": c.type.value,
        "state": c.state.value,
        "closure_status": c.closure_status.value if c.closure_status else None,
        "risk_level": c.assessment.level.value if c.assessment else None,
        "requested_by": c.requested_by,
        "created_at": fmt_time(c.timeline.created_at),
        "phi": list(facts.phi),
        "incidents": list(facts.incidents),
        "approvers": [
            {"approver": a.approver, "role": a.role, "decision": a.decision.value, "at": fmt_time(a.at)}
            for a in c.active_approvals
        ],
        "last_hash": facts.last_hash,
        "checkpoint": _covering(facts, w),
        "controls": [
            {
                "control": f.control,
                "status": f.status,
                "reason": f.reason,
                "evidence": [{"seq": e.seq, "action": e.action, "hash": e.hash} for e in f.evidence],
            }
            for f in findings
        ],
    }
