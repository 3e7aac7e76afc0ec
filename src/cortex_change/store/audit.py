"""The audit trail: append-only rows, each chained to the one before by SHA-256."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime

from ..domain.codec import fmt_time
from ..domain.errors import StoreError
from ..domain.events import Event
from ..domain.values import Frozen
from .db import Tx

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any, Final

    from .db import Row

GENESIS = "0" * 64
EVENT_COLUMNS = "seq, event_id, at, change_id, action, actor, details, prev_hash, hash"


# Encoders built once: json.dumps would build one per call (a third of verify's time).
_CANONICAL = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"))
_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def canonical(details: dict[str, Any]) -> str:
    return _CANONICAL.encode(details)


def event_hash(
    prev_hash: str,
    seq: int,
    event_id: str,
    at: str,
    change_id: str | None,
    action: str,
    actor: str,
    details: str,
) -> str:
    """SHA-256 over a canonical JSON array of the event's fields and the previous hash."""
    from hashlib import sha256  # writes and verification hash; reads (`show`) never load OpenSSL

    body = _COMPACT.encode([prev_hash, seq, event_id, at, change_id, action, actor, details])
    return sha256(body.encode("utf-8")).hexdigest()


def append(tx: Tx, change_id: str | None, events: Iterable[Event], at: datetime) -> list[dict[str, Any]]:
    """Chain `events` onto the log inside the caller's transaction; returns them as `as_dict`
    gives stored rows."""
    return append_many(tx, [(change_id, events)], at)[0]


def append_many(
    tx: Tx, batches: Sequence[tuple[str | None, Iterable[Event]]], at: datetime
) -> list[list[dict[str, Any]]]:
    """Chain each change's events onto the log, in order, with one read of the head, one insert
    and one update (an import writes thousands of changes' histories at once)."""
    head = tx.one(f"SELECT seq, hash FROM audit_head WHERE id=1{tx.for_update}")  # serializes appends
    if head is None:  # removed by hand: recreating it would hide that; nothing is written
        raise StoreError(
            f"{HEAD_MISSING}: the trail cannot be extended; nothing was written (run `audit verify`)"
        )
    seq, prev = int(head[0]), str(head[1])
    stamp = fmt_time(at)
    rows, out = [], []
    for change_id, events in batches:
        written = []
        for event in events:
            seq += 1
            event_id = os.urandom(16).hex()
            details = canonical(event.details)
            digest = event_hash(
                prev, seq, event_id, stamp or "", change_id, event.action, event.actor, details
            )
            rows.append((seq, event_id, stamp, change_id, event.action, event.actor, details, prev, digest))
            written.append(
                {
                    "seq": seq,
                    "event_id": event_id,
                    "timestamp": stamp,
                    "change_id": change_id,
                    "action": event.action,
                    "actor": event.actor,
                    "details": event.details,
                    "prev_hash": prev,
                    "hash": digest,
                }
            )
            prev = digest
        out.append(written)
    if rows:
        tx.many(f"INSERT INTO audit_events ({EVENT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)", rows)
        tx.run("UPDATE audit_head SET seq=?, hash=? WHERE id=1", (seq, prev))
    return out


def as_dict(row: Row) -> dict[str, Any]:
    seq, event_id, at, change_id, action, actor, details, prev_hash, digest = row
    return {
        "seq": seq,
        "event_id": event_id,
        "timestamp": at,
        "change_id": change_id,
        "action": action,
        "actor": actor,
        "details": json.loads(details),
        "prev_hash": prev_hash,
        "hash": digest,
    }


def for_change(tx: Tx, change_id: str) -> list[dict[str, Any]]:
    rows = tx.all(f"SELECT {EVENT_COLUMNS} FROM audit_events WHERE change_id=? ORDER BY seq", (change_id,))
    return [as_dict(r) for r in rows]


def altered(events: list[dict[str, Any]]) -> list[int]:
    """The seqs of events (as `as_dict` gives them) whose hash does not match their contents: each
    event checked on its own (the whole chain's links are `verify`'s)."""
    return [
        e["seq"]
        for e in events
        if event_hash(
            e["prev_hash"],
            e["seq"],
            e["event_id"],
            e["timestamp"],
            e["change_id"],
            e["action"],
            e["actor"],
            canonical(e["details"]),
        )
        != e["hash"]
    ]


def actions_for(tx: Tx, change_id: str) -> list[str]:
    return [r[0] for r in tx.all("SELECT action FROM audit_events WHERE change_id=?", (change_id,))]


def between(tx: Tx, start: str, end: str) -> list[dict[str, Any]]:
    """Events with start <= timestamp < end (ISO strings compare in time order)."""
    rows = tx.all(
        f"SELECT {EVENT_COLUMNS} FROM audit_events WHERE at >= ? AND at < ? ORDER BY seq",
        (start, end),
    )
    return [as_dict(r) for r in rows]


def count(tx: Tx, action: str | None = None, start: str = "", end: str = "~") -> int:
    sql = "SELECT count(*) FROM audit_events WHERE at >= ? AND at < ?"
    params: list[Any] = [start, end]
    if action:
        sql += " AND action=?"
        params.append(action)
    row = tx.one(sql, params)
    return int(row[0]) if row else 0


def rows(tx: Tx, batch: int = 10_000) -> Iterator[Row]:
    """Every event in chain order, fetched in batches."""
    return tx.stream(f"SELECT {EVENT_COLUMNS} FROM audit_events ORDER BY seq", batch)


HEAD_MISSING = "the audit head is missing (its row was removed by hand)"


def head(tx: Tx) -> tuple[int, str] | None:
    """The chain's last event (seq, hash) as recorded; None if its row was removed."""
    row = tx.one("SELECT seq, hash FROM audit_head WHERE id=1")
    return None if row is None else (int(row[0]), str(row[1]))


def verify(tx: Tx) -> Verdict:
    """Re-walk the stored chain against its head; a missing head breaks it."""
    recorded = head(tx)
    verdict = verify_rows(rows(tx), recorded)
    if recorded is not None or not verdict.ok:
        return verdict
    problem = (
        f"{HEAD_MISSING}: the end of the chain, event #{verdict.checked}, cannot be vouched for "
        "(events may have been removed from the end)"
    )
    return Verdict(False, verdict.checked, verdict.head_hash, problem, verdict.checked + 1)


class Verdict(Frozen):
    """What re-walking the chain found."""

    __slots__ = ("checked", "first_bad_seq", "head_hash", "ok", "problem")

    def __init__(
        self, ok: bool, checked: int, head_hash: str, problem: str = "", first_bad_seq: int | None = None
    ) -> None:
        self.ok: Final = ok
        self.checked: Final = checked
        self.head_hash: Final = head_hash
        self.problem: Final = problem
        self.first_bad_seq: Final = first_bad_seq


def verify_rows(
    events: Iterable[Sequence[Any]],
    head: tuple[int, str] | None,
    start_prev: str = GENESIS,
    start_seq: int = 1,
) -> Verdict:
    """Re-walk the chain; name the first event that was altered, removed or inserted."""
    prev, expected, checked = start_prev, start_seq, 0
    for seq, event_id, at, change_id, action, actor, details, prev_hash, digest in events:
        where = f"event #{seq} ({event_id}, {change_id or '-'}, {action})"
        if seq != expected:
            return Verdict(
                False,
                checked,
                prev,
                f"event #{expected} is missing (removed); the chain jumps to {where}",
                expected,
            )
        if prev_hash != prev:
            return Verdict(
                False,
                checked,
                prev,
                f"{where} does not link to the event before it (an event was removed or inserted)",
                seq,
            )
        if event_hash(prev_hash, seq, event_id, at, change_id, action, actor, details) != digest:
            return Verdict(
                False, checked, prev, f"{where} was altered: its hash does not match its contents", seq
            )
        prev, expected, checked = digest, expected + 1, checked + 1
    if head is not None and (head[0] != expected - 1 or head[1] != prev):
        return _head_mismatch(head, expected - 1, checked, prev)
    return Verdict(True, checked, prev)


def _head_mismatch(head: tuple[int, str], last: int, checked: int, prev: str) -> Verdict:
    """The chain is self-consistent but disagrees with the head: name the first event at fault."""
    if head[0] > last:
        problem = (
            f"event #{last + 1} is missing: the chain ends at event #{last} but the "
            f"head records #{head[0]}: events were removed from the end"
        )
        return Verdict(False, checked, prev, problem, last + 1)
    if head[0] < last:
        problem = (
            f"event #{head[0] + 1} was inserted: the head records #{head[0]} but the chain "
            f"goes on to event #{last}"
        )
        return Verdict(False, min(checked, head[0]), prev, problem, head[0] + 1)
    problem = f"event #{last} was altered or replaced: its hash does not match the head's"
    return Verdict(False, max(checked - 1, 0), prev, problem, last)


def config_snapshot(tx: Tx) -> dict[str, Any] | None:
    text = config_snapshot_text(tx)
    return None if text is None else dict(json.loads(text))


def config_snapshot_text(tx: Tx) -> str | None:
    """The stored snapshot as written (`canonical` JSON), None before the first write."""
    row = tx.one("SELECT values_json FROM config_snapshot WHERE id=1")
    return None if row is None else str(row[0])


def save_config_snapshot(tx: Tx, values: dict[str, Any]) -> None:
    tx.run(
        "INSERT INTO config_snapshot (id, values_json) VALUES (1, ?) "
        "ON CONFLICT (id) DO UPDATE SET values_json = excluded.values_json",
        (canonical(values),),
    )


def judgements(
    tx: Tx, services: list[str], since: str, before: str, exclude: str, limit: int
) -> list[tuple[str, dict[str, Any]]]:
    """(change_id, details) of the statistical validation judgements (`canary_judged`) of changes
    touching any of `services`, written in [since, before) — never after the asking moment —,
    newest first, the last one per change (domain/canary.py `forecast` reads them)."""
    if not services:
        return []
    marks = ",".join("?" * len(services))
    # From the few rows of the named services to their events (audit_by_change), not from every
    # judgement ever written.
    rows = tx.all(
        f"SELECT e.change_id, e.details FROM change_services s {tx.ordered_join} audit_events e "
        f"ON e.change_id = s.change_id WHERE s.service IN ({marks}) AND e.action = ? "
        "AND e.at >= ? AND e.at < ? AND e.change_id <> ? ORDER BY e.seq DESC LIMIT ?",
        (*services, "canary_judged", since, before, exclude, limit * 3),
    )
    seen: dict[str, dict[str, Any]] = {}
    for change_id, details in rows:
        seen.setdefault(str(change_id), json.loads(details))
    return list(seen.items())[:limit]
