"""The RFC 3161 and S3 witnesses wired into signed checkpoints (issue 19), on both backends: the
worker publishes to a local TSA and a local S3 endpoint, the receipts are stored, `audit verify
--checkpoints` checks the stored tokens and reads the bucket back, and compliance reports cite the
last witnessed checkpoint covering each change."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cortex_change.services import checkpoints
from cortex_change.services.compliance import compliance_report
from cortex_change.services.context import Context
from cortex_change.signing import generate
from support import FakeClock, execute, file_change, query
from tsa_support import Pki, TsaServer

BUCKET = "cortex-witness"  # the bucket the `s3_endpoint` fixture creates
CHANGE = {
    "type": "normal",
    "category": "documentation",
    "title": "Fix a typo in the runbook",
    "impact": "low",
    "affected_services": ["docs"],
    "rollback_plan": {"steps": ["revert the commit"]},
    "implementation_plan": {"steps": ["edit the page"]},
    "requested_by": "alice",
}


def _settings(tmp_path: Path, tsa: TsaServer, pki: Pki, **more: str) -> dict[str, str]:
    key = str(tmp_path / "signing.pem")
    generate(key)
    ca = tmp_path / "tsa-ca.pem"
    ca.write_bytes(pki.ca_pem())
    return {"AUDIT_SIGNING_KEY": key, "AUDIT_TSA_URL": tsa.url("/tsa"), "AUDIT_TSA_CA": str(ca), **more}


def _receipts(ctx: Context) -> dict[str, dict[str, Any]]:
    return {r["witness"]: r for r in checkpoints.list_checkpoints(ctx)[-1]["receipts"]}


def test_tsa_and_s3_take_a_checkpoint_and_verify_reads_them_back(
    make_ctx: Callable[..., Context], tmp_path: Path, tsa_server: TsaServer, pki: Pki, s3_endpoint: str
) -> None:
    bucket = f"s3://{BUCKET}/audit"
    ctx = make_ctx(
        **_settings(tmp_path, tsa_server, pki, AUDIT_WITNESS_S3=bucket, AUDIT_WITNESS_S3_ENDPOINT=s3_endpoint)
    )
    covered = file_change(ctx, **CHANGE)
    signed = checkpoints.checkpoint(ctx)
    assert signed is not None
    assert checkpoints.publish_due(ctx, "worker-1") == 2
    receipts = _receipts(ctx)
    tsa, s3 = receipts["tsa"], receipts["s3"]
    assert tsa["state"] == "delivered" and s3["state"] == "delivered"
    assert tsa["receipt"]["token"] and tsa["receipt"]["gen_time"].endswith("Z")
    assert tsa["receipt"]["authority"] == tsa_server.origin  # never its path or credentials
    assert s3["receipt"]["key"] == f"audit/{signed.length}-{signed.head}.json" and s3["receipt"]["etag"]

    report = checkpoints.verify(ctx, sources=[bucket])
    assert report.ok, [f.message for f in report.findings]
    assert "1 RFC 3161 timestamp token(s) match their checkpoints and chain to AUDIT_TSA_CA" in report.notes
    assert [c.number for c in report.verified].count(1) >= 1

    later = file_change(ctx, **{**CHANGE, "title": "After the checkpoint"})
    doc = compliance_report(ctx, framework="soc2", period_text="2026-01-01 to 2026-02-01")
    cited = doc["checkpoint"]
    assert (cited["number"], cited["length"], cited["head"]) == (1, signed.length, signed.head)
    assert cited["matches_chain"] is True
    assert {w["witness"] for w in cited["witnesses"]} == {"tsa", "s3"}
    assert any(w["detail"].startswith("genTime ") for w in cited["witnesses"])
    entries = {c["change_id"]: c for c in doc["changes"]}
    assert entries[covered.change_id]["checkpoint"] == {
        "number": 1,
        "length": signed.length,
        "head": signed.head,
        "at": signed.at,
        "witnesses": ["s3", "tsa"],
    }
    assert entries[later.change_id]["checkpoint"] is None  # its events came after the checkpoint


def test_a_tampered_stored_token_is_a_finding(
    make_ctx: Callable[..., Context], store_url: str, tmp_path: Path, tsa_server: TsaServer, pki: Pki
) -> None:
    ctx = make_ctx(**_settings(tmp_path, tsa_server, pki))
    file_change(ctx, **CHANGE)
    first = checkpoints.checkpoint(ctx)
    checkpoints.publish_due(ctx, "worker-1")
    file_change(ctx, **{**CHANGE, "title": "Another"})
    second = checkpoints.checkpoint(ctx)
    checkpoints.publish_due(ctx, "worker-1")
    assert first is not None and second is not None
    assert checkpoints.verify(ctx, sources=[]).ok
    # The first checkpoint's token swapped in for the second's: a real token, of other bytes.
    stored = {
        r["number"]: r["receipt"]
        for r in (d for c in checkpoints.list_checkpoints(ctx) for d in c["receipts"])
    }
    swapped = json.dumps(stored[1], sort_keys=True)
    execute(
        store_url, "UPDATE audit_witness_receipts SET receipt=? WHERE number=2 AND witness='tsa'", (swapped,)
    )
    report = checkpoints.verify(ctx, sources=[])
    assert not report.ok
    [finding] = report.findings
    assert finding.kind == "timestamp" and finding.checkpoint.number == 2
    assert (
        "RFC 3161 timestamp token is rejected" in finding.message
        and "imprint does not match" in finding.message
    )


def test_an_unreachable_tsa_stays_pending_and_is_retried(
    make_ctx: Callable[..., Context], clock: FakeClock, tmp_path: Path, tsa_server: TsaServer, pki: Pki
) -> None:
    ctx = make_ctx(**_settings(tmp_path, tsa_server, pki))
    file_change(ctx, **CHANGE)
    tsa_server.mode = "http500"
    checkpoints.checkpoint(ctx)
    assert checkpoints.publish_due(ctx, "worker-1") == 0
    pending = _receipts(ctx)["tsa"]
    assert pending["state"] == "pending" and "answered HTTP 500" in pending["last_error"]
    tsa_server.mode = "granted"
    clock.advance(hours=1)
    assert checkpoints.publish_due(ctx, "worker-1") == 1
    assert _receipts(ctx)["tsa"]["state"] == "delivered"


def test_a_chain_cut_behind_a_witnessed_checkpoint_fails_the_report(
    make_ctx: Callable[..., Context], store_url: str, tmp_path: Path, tsa_server: TsaServer, pki: Pki
) -> None:
    """Events removed from the end, the head moved back: the bare chain re-walks intact, but the
    witnessed checkpoint vouches for more, so the report's audit trail control fails."""
    ctx = make_ctx(**_settings(tmp_path, tsa_server, pki))
    change = file_change(ctx, **CHANGE)
    file_change(ctx, **{**CHANGE, "title": "Its event is cut"})
    signed = checkpoints.checkpoint(ctx)
    checkpoints.publish_due(ctx, "worker-1")
    assert signed is not None and signed.length == 2
    postgres = store_url.startswith("postgresql://")
    for trigger in ("audit_events_no_delete", "audit_head_forward_only"):
        table = "audit_events" if "events" in trigger else "audit_head"
        execute(store_url, f"DROP TRIGGER {trigger} ON {table}" if postgres else f"DROP TRIGGER {trigger}")
    execute(store_url, "DELETE FROM audit_events WHERE seq=?", (signed.length,))
    before = query(store_url, "SELECT hash FROM audit_events WHERE seq=?", (signed.length - 1,))[0][0]
    execute(store_url, "UPDATE audit_head SET seq=?, hash=? WHERE id=1", (signed.length - 1, before))

    doc = compliance_report(ctx, framework="soc2", period_text="2026-01-01 to 2026-02-01")
    chain = doc["audit_chain"]
    assert chain["ok"] is False and chain["first_broken"] == signed.length
    assert f"checkpoint #1 (witnessed by tsa) vouches for event #{signed.length}" in chain["problem"]
    assert doc["checkpoint"]["matches_chain"] is False
    [entry] = [c for c in doc["changes"] if c["change_id"] == change.change_id]
    assert entry["checkpoint"] is None
    trail = next(f for f in entry["controls"] if f["control"] == "audit_trail")
    assert trail["status"] == "fail" and "checkpoint #1" in trail["reason"]
