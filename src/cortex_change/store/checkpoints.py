"""Signed audit checkpoints, the public keys that verify them, and each witness's receipt
(docs/checkpoints.md); the rows only — what they mean is domain/checkpoints.py's."""

from __future__ import annotations

import json

from ..domain.checkpoints import Checkpoint, PublicKey
from .db import Tx

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any

    from .db import Row

PENDING, DELIVERED = "pending", "delivered"
_CHECKPOINT = "number, length, head, at, previous, key_id, signature"


def _checkpoint(row: Row) -> Checkpoint:
    number, length, head, at, previous, key_id, signature = row
    return Checkpoint(
        int(number), int(length), str(head), str(at), str(previous), str(key_id), str(signature)
    )


def last(tx: Tx) -> Checkpoint | None:
    row = tx.one(f"SELECT {_CHECKPOINT} FROM audit_checkpoints ORDER BY number DESC LIMIT 1")
    return None if row is None else _checkpoint(row)


def get(tx: Tx, number: int) -> Checkpoint | None:
    row = tx.one(f"SELECT {_CHECKPOINT} FROM audit_checkpoints WHERE number=?", (number,))
    return None if row is None else _checkpoint(row)


def every(tx: Tx) -> list[Checkpoint]:
    return [_checkpoint(r) for r in tx.all(f"SELECT {_CHECKPOINT} FROM audit_checkpoints ORDER BY number")]


def add(tx: Tx, c: Checkpoint) -> None:
    tx.run(
        f"INSERT INTO audit_checkpoints ({_CHECKPOINT}, digest) VALUES (?,?,?,?,?,?,?,?)",
        (c.number, c.length, c.head, c.at, c.previous, c.key_id, c.signature, c.digest()),
    )


def hash_at(tx: Tx, seq: int) -> str | None:
    row = tx.one("SELECT hash FROM audit_events WHERE seq=?", (seq,))
    return None if row is None else str(row[0])


def events_after(tx: Tx, seq: int, batch: int = 10_000) -> Any:
    """The chain's events after `seq`, in order (audit.EVENT_COLUMNS)."""
    from .audit import EVENT_COLUMNS

    return tx.stream(f"SELECT {EVENT_COLUMNS} FROM audit_events WHERE seq > {int(seq)} ORDER BY seq", batch)


# --- public keys -----------------------------------------------------------------------------


def keys(tx: Tx) -> list[PublicKey]:
    rows = tx.all(
        "SELECT key_id, public_key, valid_from, valid_to FROM audit_keys ORDER BY valid_from, key_id"
    )
    return [PublicKey(str(a), str(b), str(c), None if d is None else str(d)) for a, b, c, d in rows]


def add_key(tx: Tx, key: PublicKey, added_at: str) -> bool:
    """Register a key; False when its id is there already (nothing changed)."""
    if tx.one("SELECT 1 FROM audit_keys WHERE key_id=?", (key.key_id,)) is not None:
        return False
    tx.run(
        "INSERT INTO audit_keys (key_id, public_key, valid_from, valid_to, added_at) VALUES (?,?,?,?,?)",
        (key.key_id, key.public_key, key.valid_from, key.valid_to, added_at),
    )
    return True


def retire_key(tx: Tx, key_id: str, at: str) -> int:
    """End a key's validity at `at` (never later than an end it already has)."""
    return tx.run(
        "UPDATE audit_keys SET valid_to=? WHERE key_id=? AND (valid_to IS NULL OR valid_to > ?)",
        (at, key_id, at),
    )


# --- witness receipts ----------------------------------------------------------------------------


def receipt_id(number: int, witness: str) -> str:
    return f"{number:012d}/{witness}"


def queue(tx: Tx, number: int, witnesses: list[str], now: float) -> None:
    """A pending receipt per witness, due now."""
    tx.many(
        "INSERT INTO audit_witness_receipts (receipt_id, number, witness, state, attempts, next_attempt_at) "
        "VALUES (?, ?, ?, 'pending', 0, ?)",
        [(receipt_id(number, w), number, w, now) for w in witnesses],
    )


def claim_due(tx: Tx, now: float, holder: str, hold: float, limit: int = 20) -> list[Row]:
    """Claim due receipts: (receipt_id, number, witness, attempts, alerted)."""
    rows = tx.all(
        "SELECT receipt_id, number, witness, attempts, alerted FROM audit_witness_receipts "
        "WHERE state='pending' AND next_attempt_at <= ? AND (claimed_until IS NULL OR claimed_until < ?) "
        f"ORDER BY next_attempt_at, receipt_id LIMIT {int(limit)}{tx.skip_locked}",
        (now, now),
    )
    tx.many(
        "UPDATE audit_witness_receipts SET claimed_by=?, claimed_until=? WHERE receipt_id=?",
        [(holder, now + hold, r[0]) for r in rows],
    )
    return rows


def delivered(tx: Tx, rid: str, holder: str, receipt: dict[str, Any] | None, at: str) -> None:
    tx.run(
        "UPDATE audit_witness_receipts SET state='delivered', attempts=attempts+1, receipt=?, "
        "delivered_at=?, claimed_until=NULL, last_error=NULL WHERE receipt_id=? AND claimed_by=?",
        (json.dumps(receipt or {}, sort_keys=True), at, rid, holder),
    )


def failed(tx: Tx, rid: str, holder: str, error: str, next_at: float, alerted: bool) -> None:
    """A failed attempt: due again at `next_at` (a witness is never given up)."""
    tx.run(
        "UPDATE audit_witness_receipts SET attempts=attempts+1, last_error=?, next_attempt_at=?, "
        "claimed_until=NULL, alerted=? WHERE receipt_id=? AND claimed_by=?",
        (error[:1000], next_at, int(alerted), rid, holder),
    )


def receipts(tx: Tx, number: int | None = None) -> list[dict[str, Any]]:
    """Receipts (of one checkpoint, or all), in checkpoint then witness order."""
    where, params = ("WHERE number=? ", (number,)) if number is not None else ("", ())
    rows = tx.all(
        "SELECT number, witness, state, attempts, last_error, receipt, delivered_at "
        f"FROM audit_witness_receipts {where}ORDER BY number, witness",
        params,
    )
    keys_ = ("number", "witness", "state", "attempts", "last_error", "receipt", "delivered_at")
    out = []
    for row in rows:
        doc = dict(zip(keys_, row, strict=True))
        doc["receipt"] = None if doc["receipt"] is None else json.loads(doc["receipt"])
        out.append(doc)
    return out


def last_witnessed(tx: Tx) -> Checkpoint | None:
    """The newest checkpoint at least one witness took (the compliance report and the portal cite it)."""
    row = tx.one(
        f"SELECT {', '.join('c.' + f.strip() for f in _CHECKPOINT.split(','))} FROM audit_checkpoints c "
        "WHERE EXISTS (SELECT 1 FROM audit_witness_receipts r WHERE r.number = c.number "
        "AND r.state = 'delivered') ORDER BY c.number DESC LIMIT 1"
    )
    return None if row is None else _checkpoint(row)
