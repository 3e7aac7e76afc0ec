"""Signed audit checkpoints (docs/checkpoints.md), pure: what is signed, which key may sign when,
and whether a chain still extends the checkpoints it is given. No clock, no I/O, no cryptography
(signing and checking signatures is `signing.py`'s).

A checkpoint vouches for the chain's head at a moment: `{type, number, length, head, at,
previous, key_id}` as canonical JSON (sorted keys, no spaces, UTF-8) is what the key signs;
`previous` is the SHA-256 of the checkpoint before it (its signed bytes), so checkpoints form a
chain of their own. A witness holds a copy as one JSON line: those fields plus `signature`
(base64 of the Ed25519 signature).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence

from .errors import Refused, ValidationError
from .values import Frozen

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any, Final

TYPE = "cortex-change.audit-checkpoint/1"  # signed with the rest: a signature means this, nothing else
GENESIS = "0" * 64  # the `previous` of the first checkpoint
SIGNED_FIELDS = ("type", "number", "length", "head", "at", "previous", "key_id")
HEX64 = frozenset("0123456789abcdef")
_CANONICAL = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _sha256(data: bytes) -> str:
    from hashlib import sha256  # only where checkpoints are made or checked

    return sha256(data).hexdigest()


class Checkpoint(Frozen):
    """One signed statement: the chain had `length` events, the last one hashing to `head`, at `at`."""

    __slots__ = ("at", "head", "key_id", "length", "number", "previous", "signature")

    def __init__(
        self,
        number: int,
        length: int,
        head: str,
        at: str,
        previous: str,
        key_id: str,
        signature: str = "",
    ) -> None:
        self.number: Final = number  # 1, 2, … in the order they were signed
        self.length: Final = length  # the chain's last event's seq (0: an empty chain)
        self.head: Final = head  # that event's hash (GENESIS for an empty chain)
        self.at: Final = at  # when it was signed, ISO 8601 UTC (YYYY-MM-DDTHH:MM:SSZ)
        self.previous: Final = previous  # digest() of checkpoint number - 1, GENESIS for the first
        self.key_id: Final = key_id  # which public key verifies it (signing.key_id_of)
        self.signature: Final = signature  # base64 Ed25519 over signed_bytes(); "" before signing

    def signed_bytes(self) -> bytes:
        """Exactly what the key signs: the canonical JSON of SIGNED_FIELDS."""
        body = {
            "type": TYPE,
            "number": self.number,
            "length": self.length,
            "head": self.head,
            "at": self.at,
            "previous": self.previous,
            "key_id": self.key_id,
        }
        return _CANONICAL.encode(body).encode("utf-8")

    def digest(self) -> str:
        """SHA-256 of the signed bytes: the next checkpoint's `previous`."""
        return _sha256(self.signed_bytes())

    def to_json(self) -> dict[str, Any]:
        """The witness line's object: the signed fields and the signature."""
        doc: dict[str, Any] = json.loads(self.signed_bytes())
        doc["signature"] = self.signature
        return doc

    def line(self) -> str:
        """One JSON line (no newline), as a witness file holds it."""
        return _CANONICAL.encode(self.to_json())

    def name(self) -> str:
        """How messages name it."""
        return f"checkpoint #{self.number} ({self.at}, event #{self.length}, key {self.key_id})"


def following(last: Checkpoint | None, length: int, head: str, at: str, key_id: str) -> Checkpoint:
    """The unsigned checkpoint that follows `last` (None: the first), or a refusal: a clock that went
    backwards, or a chain that no longer reaches `last` (never sign over a shrunken chain)."""
    if last is None:
        return Checkpoint(1, length, head, at, GENESIS, key_id)
    if at < last.at:
        raise ClockBackwards(
            f"the clock went backwards: it says {at} but {last.name()} was signed at {last.at}; "
            "refusing to sign a checkpoint dated before it (fix the clock; nothing was signed)"
        )
    if length < last.length:
        raise ChainShrunk(
            f"the chain ends at event #{length} but {last.name()} vouches for event #{last.length}: "
            "events were removed; refusing to sign (run `audit verify --checkpoints`)"
        )
    return Checkpoint(last.number + 1, length, head, at, last.digest(), key_id)


class ClockBackwards(Refused):
    """Signing now would date a checkpoint before the last one."""


class ChainShrunk(Refused):
    """The chain no longer reaches the last checkpoint."""


def due(last: Checkpoint | None, length: int, interval: int, events: int, elapsed: float) -> bool:
    """Whether the worker signs now: the chain grew, and either `events` more events were appended
    or `interval` seconds (`elapsed`, since `last`) passed. An unchanged chain is not re-signed."""
    if last is None:
        return length > 0
    grown = length - last.length
    return grown > 0 and (grown >= events or elapsed >= interval)


# --- public keys and their validity -------------------------------------------------------------


class PublicKey(Frozen):
    """A verifying key: its id, the raw Ed25519 key (base64), and when checkpoints may carry it."""

    __slots__ = ("key_id", "public_key", "valid_from", "valid_to")

    def __init__(self, key_id: str, public_key: str, valid_from: str, valid_to: str | None = None) -> None:
        self.key_id: Final = key_id
        self.public_key: Final = public_key
        self.valid_from: Final = valid_from  # ISO 8601 UTC; checkpoints signed from then on
        self.valid_to: Final = valid_to  # retired then: a checkpoint dated at or after it is refused

    def covers(self, at: str) -> bool:
        return self.valid_from <= at and (self.valid_to is None or at < self.valid_to)

    def period(self) -> str:
        return f"valid from {self.valid_from} to {self.valid_to or 'now (not retired)'}"

    def to_json(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "public_key": self.public_key,
            "valid_from": self.valid_from,
            "valid_to": self.valid_to,
        }


def key_problem(keys: Mapping[str, PublicKey], checkpoint: Checkpoint) -> str:
    """Why `checkpoint`'s key may not vouch for it ("" when it may)."""
    key = keys.get(checkpoint.key_id)
    if key is None:
        return f"{checkpoint.name()} is signed by key {checkpoint.key_id}, which is not a known key"
    if not key.covers(checkpoint.at):
        return f"{checkpoint.name()} is dated outside its key's validity ({key.period()})"
    return ""


def check_period(valid_from: str, valid_to: str | None) -> None:
    if valid_to is not None and valid_to <= valid_from:
        raise ValidationError("--to", f"{valid_to} is not after the key's start ({valid_from})")


# --- consistency: does the chain extend the checkpoints? ---------------------------------------


class Finding(Frozen):
    """One checkpoint the chain no longer honours, or one that cannot be trusted."""

    __slots__ = ("checkpoint", "first_bad_seq", "kind", "message")

    def __init__(self, kind: str, checkpoint: Checkpoint, message: str, first_bad_seq: int | None) -> None:
        self.kind: Final = kind  # rewritten | truncated | signature | key | order
        self.checkpoint: Final = checkpoint
        self.message: Final = message
        self.first_bad_seq: Final = first_bad_seq


def needed(checkpoints: Iterable[Checkpoint]) -> set[int]:
    """The chain positions whose hashes consistency() needs."""
    return {c.length for c in checkpoints if c.length > 0}


def consistency(
    checkpoints: Sequence[Checkpoint],
    hashes: Mapping[int, str],
    chain_length: int,
    reference: Mapping[int, str] | None = None,
    chain_start: int = 1,
) -> list[Finding]:
    """Each checkpoint the chain (its `hashes` by seq, at least at needed(); it runs from
    `chain_start` to `chain_length`) no longer extends: truncated (it ends before the checkpoint's
    event) or rewritten (that event's hash differs), naming the first event that no longer matches:
    exactly when `reference` (seq → hash from an earlier copy, e.g. an export) says, else the first
    one after the latest checkpoint that still matches."""
    ordered = sorted(checkpoints, key=lambda c: (c.length, c.number))
    findings: list[Finding] = []
    vouched = 0  # the last event a matching checkpoint vouches for
    for c in ordered:
        if c.length == 0 or c.length < chain_start:
            continue  # an empty chain's checkpoint, or one before the copy starts: nothing to compare
        if c.length > chain_length:
            start = max(chain_length + 1, vouched + 1)
            message = (
                f"{c.name()} vouches for event #{c.length}, but the chain ends at event #{chain_length}: "
                f"events #{start}–#{c.length} were removed (truncated)"
            )
            findings.append(Finding("truncated", c, message, start))
            continue
        if hashes.get(c.length) == c.head:
            vouched = max(vouched, c.length)
            continue
        bad = _first_mismatch(hashes, reference, vouched, c.length)
        if bad is not None:
            where = f"the first event that no longer matches is #{bad}"
        elif vouched + 1 == c.length:
            bad = c.length
            where = f"the first event that no longer matches is #{bad}"
        else:
            bad = vouched + 1
            after = f"#{vouched} still matches an earlier checkpoint" if vouched else "none is vouched for"
            where = (
                f"the first event that no longer matches is among #{vouched + 1}–#{c.length} "
                f"({after}; a witness copy of the events, e.g. an export, names it exactly)"
            )
        message = f"{c.name()} no longer matches: history was rewritten behind it; {where}"
        findings.append(Finding("rewritten", c, message, bad))
    return findings


def _first_mismatch(
    hashes: Mapping[int, str], reference: Mapping[int, str] | None, after: int, upto: int
) -> int | None:
    if not reference:
        return None
    for seq in range(after + 1, upto + 1):
        if seq in reference and seq in hashes and reference[seq] != hashes[seq]:
            return seq
    return None


def order_problems(checkpoints: Sequence[Checkpoint]) -> list[Finding]:
    """Checkpoints that do not follow the one they name as `previous` (number, length, time), and
    two different checkpoints under one number (a fork: the signer was misled, or history restored)."""
    by_digest = {c.digest(): c for c in checkpoints}
    by_number: dict[int, Checkpoint] = {}
    findings = []
    for c in sorted(checkpoints, key=lambda c: c.number):
        other = by_number.setdefault(c.number, c)
        if other != c:
            message = f"{c.name()} and {other.name()} share a number: the checkpoint chain forked"
            findings.append(Finding("order", c, message, None))
        before = by_digest.get(c.previous)
        if before is None:
            continue
        if c.number != before.number + 1 or c.length < before.length or c.at < before.at:
            message = f"{c.name()} does not follow {before.name()}, which it names as previous"
            findings.append(Finding("order", c, message, None))
    return findings


# --- reading witness copies --------------------------------------------------------------------


def parse(obj: Any, where: str) -> Checkpoint:
    """A checkpoint from a witness line's object; one-line errors naming `where`."""
    if not isinstance(obj, dict):
        raise ValidationError(where, "is not a checkpoint (a JSON object expected)")
    missing = [f for f in (*SIGNED_FIELDS, "signature") if f not in obj]
    if missing:
        raise ValidationError(where, f"is not a checkpoint (missing {', '.join(missing)})")
    if obj["type"] != TYPE:
        raise ValidationError(where, f"is not a checkpoint of this kind ({str(obj['type'])[:60]!r})")
    ints = ("number", "length")
    if not all(isinstance(obj[f], int) and not isinstance(obj[f], bool) and obj[f] >= 0 for f in ints):
        raise ValidationError(where, "number and length must be whole numbers ≥ 0")
    texts = ("head", "at", "previous", "key_id", "signature")
    if not all(isinstance(obj[f], str) for f in texts):
        raise ValidationError(where, f"{', '.join(texts)} must be text")
    for f in ("head", "previous"):
        if len(obj[f]) != 64 or not set(obj[f]) <= HEX64:
            raise ValidationError(where, f"{f} is not a SHA-256 hex digest")
    if not _is_time(obj["at"]):
        raise ValidationError(where, "at is not a UTC time (YYYY-MM-DDTHH:MM:SSZ)")
    return Checkpoint(
        obj["number"], obj["length"], obj["head"], obj["at"], obj["previous"], obj["key_id"], obj["signature"]
    )


def _is_time(text: str) -> bool:
    from datetime import datetime

    if len(text) != 20 or not text.endswith("Z"):
        return False
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def parse_lines(text: str, where: str) -> list[Checkpoint]:
    """A witness file: one checkpoint per line (blank lines skipped)."""
    found = []
    for n, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except ValueError:
            raise ValidationError(
                f"{where} line {n}", "is not JSON (a checkpoint per line expected)"
            ) from None
        found.append(parse(obj, f"{where} line {n}"))
    return found


def parse_key(obj: Any, where: str) -> PublicKey:
    """A public key line (`audit keys list --json`, an export's audit-keys.jsonl)."""
    if not isinstance(obj, dict) or not all(isinstance(obj.get(f), str) for f in ("key_id", "public_key")):
        raise ValidationError(where, "is not a public key (key_id and public_key expected)")
    start, end = obj.get("valid_from") or "", obj.get("valid_to")
    if not isinstance(start, str) or not (end is None or isinstance(end, str)):
        raise ValidationError(where, "valid_from and valid_to must be times or null")
    return PublicKey(obj["key_id"], obj["public_key"], start, end)
