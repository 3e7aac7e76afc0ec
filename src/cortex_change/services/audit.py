"""Audit use cases: verify the chain, print a day, export for offline verification."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, timedelta
from pathlib import Path
from typing import Any

from ..domain.codec import fmt_time
from ..domain.errors import StoreError, ValidationError
from ..store import audit
from ..store.audit import Verdict
from .context import Context

CHAIN_FILE = "audit-chain.jsonl"
HEAD_FILE = "audit-head.json"  # the chain's last event at export: deleting trailing lines shows


def verify(ctx: Context) -> Verdict:
    """Re-walk the whole chain in the database."""
    with ctx.db.read() as tx:
        return audit.verify(tx)


def line(event: dict[str, Any]) -> str:
    """The seed's `TIMESTAMP | CHANGE_ID | ACTION | ACTOR | DETAILS` (details as one-line JSON)."""
    details = audit.canonical(event["details"])
    fields = (event["timestamp"], event["change_id"] or "-", event["action"], event["actor"], details)
    return " | ".join(fields)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationError("date", f"{text!r} is not a date (YYYY-MM-DD)") from None


def _bounds(day: date) -> tuple[str, str]:
    return f"{day.isoformat()}T00:00:00Z", f"{(day + timedelta(days=1)).isoformat()}T00:00:00Z"


def log(ctx: Context, *, day: str) -> list[str]:
    start, end = _bounds(_day(day))
    with ctx.db.read() as tx:
        return [line(e) for e in audit.between(tx, start, end)]


def export(ctx: Context, *, directory: str, all_events: bool = False) -> dict[str, Any]:
    """Write audit/YYYY-MM-DD.log files plus the hash chain as JSON lines (verifiable offline)."""
    out = Path(directory)
    days = ctx.settings["AUDIT_RETENTION_DAYS"]
    since = "" if all_events else _bounds(ctx.clock().date() - timedelta(days=days - 1))[0]
    try:
        (out / "audit").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValidationError("--dir", f"cannot create {directory!r}: {exc}") from None
    files: dict[str, list[str]] = {}
    chain = []
    with ctx.db.read() as tx:
        head = audit.head(tx)
        if head is None:  # an export without it would verify offline as intact
            raise StoreError(f"{audit.HEAD_MISSING}: an export would hide it (run `audit verify`)")
        head_seq, head_hash = head
        from .checkpoints import exported  # signed checkpoints and their keys travel with the chain

        signed, keys = exported(tx)
        for row in audit.rows(tx):
            event = audit.as_dict(row)
            if event["timestamp"] < since:
                continue
            files.setdefault(event["timestamp"][:10], []).append(line(event))
            chain.append(
                json.dumps({**event, "details": audit.canonical(event["details"])}, ensure_ascii=False)
            )
    for day, lines in files.items():
        (out / "audit" / f"{day}.log").write_text("\n".join(lines) + "\n", "utf-8")
    (out / CHAIN_FILE).write_text("\n".join(chain) + ("\n" if chain else ""), "utf-8")
    at = fmt_time(ctx.clock())  # checkpoints dated after it are newer than the export, not a truncation
    head_doc = {"seq": head_seq, "hash": head_hash, "exported_at": at}
    (out / HEAD_FILE).write_text(json.dumps(head_doc) + "\n", "utf-8")
    from .checkpoints import CHECKPOINTS_FILE, KEYS_FILE

    (out / CHECKPOINTS_FILE).write_text("".join(line + "\n" for line in signed), "utf-8")
    (out / KEYS_FILE).write_text("".join(line + "\n" for line in keys), "utf-8")
    return {"directory": str(out), "events": len(chain), "days": sorted(files), "checkpoints": len(signed)}


def chain_rows(path: Path) -> Iterator[tuple[Any, ...]]:
    """An exported chain's events as stored rows (audit.EVENT_COLUMNS' order)."""
    return _chain_rows(path)


def _chain_rows(path: Path) -> Iterator[tuple[Any, ...]]:
    for n, text in enumerate(path.read_text("utf-8").splitlines(), 1):
        try:
            e = json.loads(text)
            yield (
                e["seq"],
                e["event_id"],
                e["timestamp"],
                e["change_id"],
                e["action"],
                e["actor"],
                e["details"],
                e["prev_hash"],
                e["hash"],
            )
        except (ValueError, KeyError, TypeError):
            raise ValidationError(str(path), f"line {n} is not an exported audit event") from None


def _export_head(directory: Path) -> tuple[int, str] | None:
    path = directory / HEAD_FILE
    if not path.is_file():
        return None
    try:
        head = json.loads(path.read_text("utf-8"))
        return int(head["seq"]), str(head["hash"])
    except (ValueError, KeyError, TypeError):
        raise ValidationError(str(path), "is not an exported audit head") from None


def verify_export(directory: str) -> Verdict:
    """Verify an exported chain without the database (it may start mid-chain)."""
    path = Path(directory) / CHAIN_FILE
    if not path.is_file():
        raise ValidationError("--export", f"{str(path)!r} not found (run audit export first)")
    rows = list(_chain_rows(path))
    head = _export_head(Path(directory))
    if not rows:
        if head is not None and head[0] != 0:
            return Verdict(
                False, 0, audit.GENESIS, f"the export is empty but its head records event #{head[0]}"
            )
        return Verdict(True, 0, audit.GENESIS)
    return audit.verify_rows(rows, head, start_prev=rows[0][7], start_seq=rows[0][0])


def today(ctx: Context) -> str:
    return ctx.clock().astimezone(UTC).date().isoformat()
