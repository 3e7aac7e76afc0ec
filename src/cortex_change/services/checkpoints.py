"""Signed audit checkpoints (docs/checkpoints.md): sign the chain's head, publish it to witnesses
the database administrator does not control, and prove the chain still extends what they hold.

Witnesses are a table. `WITNESSES` maps a witness kind to its publishing function and
`ENABLED_BY` names the setting that switches it on (a kind is used when its setting is non-empty
and it is in `WITNESSES`). Every publishing function has one signature::

    def publish(ctx: Context, checkpoint: Checkpoint, signed_bytes: bytes) -> dict | None

`signed_bytes` is exactly what the key signed (`checkpoint.signed_bytes()`, canonical JSON: an
RFC 3161 imprint is taken over it); `checkpoint.line()` is the witness line with its signature.
It returns a receipt (JSON-able: a file's offset, an RFC 3161 token, an object's version), stored
with the checkpoint in `audit_witness_receipts` (one row per checkpoint and witness), or raises
(`CortexError` such as witness.WitnessError, notify's DeliveryError, or OSError) with a one-line
reason: the receipt stays pending and is tried again with backoff — never given up; after
OUTBOX_MAX_ATTEMPTS failures the change managers are alerted once (`witness_failed`). A new
witness is a row in each table, e.g. ``WITNESSES["tsa"] = _lazy("cortex_change.witness.tsa",
"publish")`` and ``ENABLED_BY["tsa"] = "AUDIT_TSA_URL"``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ..domain import checkpoints as rules
from ..domain.checkpoints import Checkpoint, Finding, PublicKey
from ..domain.codec import fmt_time, parse_time
from ..domain.errors import CortexError, NotFound, Refused, StoreError, ValidationError
from ..domain.events import Event, EventKind
from ..domain.values import Value
from ..store import audit
from ..store import checkpoints as store
from . import followups
from .audit import CHAIN_FILE, HEAD_FILE, chain_rows, verify_export
from .context import Context

log = logging.getLogger("cortex_change.checkpoints")
ACTOR = "audit-checkpointer"
HOLD = 120.0  # a claimed receipt is another worker's again after this long
MAX_BACKOFF = 3600.0  # a failing witness is still tried at least hourly, forever
CHECKPOINTS_FILE = "audit-checkpoints.jsonl"  # an export's checkpoints: a witness file's format
KEYS_FILE = "audit-keys.jsonl"

Witness = Callable[[Context, Checkpoint, bytes], "dict[str, Any] | None"]


def _lazy(module: str, name: str) -> Witness:
    """A witness whose module is imported when it publishes (start-up time, optional packages)."""

    def publish(ctx: Context, checkpoint: Checkpoint, signed_bytes: bytes) -> dict[str, Any] | None:
        from importlib import import_module

        result: dict[str, Any] | None = getattr(import_module(module), name)(ctx, checkpoint, signed_bytes)
        return result

    return publish


def publish_file(ctx: Context, checkpoint: Checkpoint, signed_bytes: bytes) -> dict[str, Any]:
    """Append the checkpoint's line to AUDIT_WITNESS_FILE (O_APPEND, fsynced); receipt: its offset."""
    path: str = ctx.settings["AUDIT_WITNESS_FILE"]
    data = (checkpoint.line() + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        offset = os.lseek(fd, 0, os.SEEK_END)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    return {"path": path, "offset": offset}


def publish_webhook(ctx: Context, checkpoint: Checkpoint, signed_bytes: bytes) -> dict[str, Any]:
    """POST the checkpoint's line to AUDIT_WITNESS_WEBHOOK: Ed25519-signed itself, and HMAC-signed
    in X-Cortex-Signature with WEBHOOK_SECRET as the notification webhook is."""
    from ..notify.http import origin, post
    from ..notify.webhook import SIGNATURE_HEADER, sign

    url: str = ctx.settings["AUDIT_WITNESS_WEBHOOK"]
    secret: str = ctx.settings["WEBHOOK_SECRET"]
    body = checkpoint.line().encode("utf-8")
    headers = {"Content-Type": "application/json", "X-Cortex-Checkpoint": str(checkpoint.number)}
    if secret:
        headers[SIGNATURE_HEADER] = sign(body, secret)
    status = post("audit witness webhook", url, body, headers, 10.0, secrets=(secret,))
    return {"origin": origin(url), "status": status}


WITNESSES: dict[str, Witness] = {
    "file": publish_file,
    "webhook": publish_webhook,
    "tsa": _lazy("cortex_change.witness.tsa", "publish"),  # RFC 3161: the token is the receipt
    "s3": _lazy("cortex_change.witness.s3", "publish"),  # an S3-compatible bucket, append-only
}
ENABLED_BY: dict[str, str] = {
    "file": "AUDIT_WITNESS_FILE",
    "webhook": "AUDIT_WITNESS_WEBHOOK",
    "tsa": "AUDIT_TSA_URL",
    "s3": "AUDIT_WITNESS_S3",
}


def witnesses(ctx: Context) -> list[str]:
    """The witness kinds switched on, in WITNESSES order."""
    return [w for w in WITNESSES if w in ENABLED_BY and ctx.settings[ENABLED_BY[w]]]


# --- signing ---------------------------------------------------------------------------------


def checkpoint(ctx: Context, *, unless_current: bool = False) -> Checkpoint | None:
    """Sign the chain's head now (AUDIT_SIGNING_KEY) and queue it for every witness; with
    `unless_current`, None when the newest checkpoint already covers the head. Refused, and nothing
    written, when the key is missing or exposed, unknown or outside its validity, the clock is
    behind the last checkpoint, or the chain no longer extends it."""
    from ..signing import load_signing_key

    key = load_signing_key(ctx.settings["AUDIT_SIGNING_KEY"])  # before the transaction: file I/O
    now = ctx.clock()
    stamp = fmt_time(now) or ""
    with ctx.db.transaction() as tx:
        head = tx.one(f"SELECT seq, hash FROM audit_head WHERE id=1{tx.for_update}")  # appends wait
        if head is None:
            raise StoreError(f"{audit.HEAD_MISSING}: refusing to sign (run `audit verify`)")
        length, head_hash = int(head[0]), str(head[1])
        last = store.last(tx)
        if unless_current and last is not None and last.length == length:
            return None
        unsigned = rules.following(last, length, head_hash, stamp, key.key_id)
        _check_key(tx, key.key_id, key.public_key, stamp)
        _check_extends(tx, last, length, head_hash)
        signed = unsigned.copy_with(signature=key.sign(unsigned.signed_bytes()))
        store.add(tx, signed)
        store.queue(tx, signed.number, witnesses(ctx), now.timestamp())
    return signed


def _check_key(tx: Any, key_id: str, public_key: str, stamp: str) -> None:
    known = {k.key_id: k for k in store.keys(tx)}
    if not known:  # the store's first key: registered on first use (pin it when verifying: --key)
        store.add_key(tx, PublicKey(key_id, public_key, stamp), stamp)
        return
    key = known.get(key_id)
    if key is None:
        raise Refused(
            f"refusing to sign: key {key_id} (AUDIT_SIGNING_KEY) is not registered: "
            "add its public key first (audit keys add FILE.pub)"
        )
    if key.public_key != public_key:
        raise Refused(f"refusing to sign: the registered key {key_id} is not AUDIT_SIGNING_KEY's public key")
    if not key.covers(stamp):
        raise Refused(f"refusing to sign: key {key_id} is not valid at {stamp} ({key.period()})")


def _check_extends(tx: Any, last: Checkpoint | None, length: int, head_hash: str) -> None:
    """Never sign a chain that does not verify from the last checkpoint on (the whole chain for the
    first one): a checkpoint vouches for what it signs."""
    if last is None:
        verdict = audit.verify_rows(audit.rows(tx), (length, head_hash))
    else:
        if last.length and store.hash_at(tx, last.length) != last.head:
            raise Refused(
                f"refusing to sign: the chain no longer extends {last.name()}: event #{last.length} "
                "was rewritten (run `audit verify --checkpoints`)"
            )
        start = last.head if last.length else audit.GENESIS
        verdict = audit.verify_rows(
            store.events_after(tx, last.length), (length, head_hash), start, last.length + 1
        )
    if not verdict.ok:
        raise Refused(f"refusing to sign: the audit chain is broken: {verdict.problem}")


# --- publishing ------------------------------------------------------------------------------


def publish_due(ctx: Context, holder: str) -> int:
    """Publish every due receipt this process claims; returns how many witnesses took theirs."""
    limit = int(ctx.settings["OUTBOX_MAX_ATTEMPTS"])
    base = float(ctx.settings["OUTBOX_RETRY_BASE"])
    now = ctx.clock().timestamp()  # fixed: a failure's retry waits for a later pass
    taken = 0
    while True:
        with ctx.db.transaction() as tx:
            claimed = store.claim_due(tx, now, holder, HOLD)
            signed = {n: store.get(tx, int(n)) for n in {r[1] for r in claimed}}
        if not claimed:
            return taken
        for rid, number, witness, attempts, alerted in claimed:
            c = signed[number]
            assert c is not None  # checkpoints are never removed (a trigger refuses)
            error, receipt = _publish(ctx, witness, c)
            with ctx.db.transaction() as tx:
                if not error:
                    store.delivered(tx, rid, holder, receipt, fmt_time(ctx.clock()) or "")
                    taken += 1
                    continue
                tries = int(attempts) + 1
                next_at = ctx.clock().timestamp() + min(base * 2 ** (tries - 1), MAX_BACKOFF)
                alert = tries >= limit and not alerted
                store.failed(tx, rid, holder, error, next_at, bool(alerted) or alert)
                if alert:
                    _witness_alert(tx, ctx, c, witness, tries, error)
            log.warning("audit witness %s, checkpoint #%s: %s", witness, number, error)


def _publish(ctx: Context, witness: str, c: Checkpoint) -> tuple[str, dict[str, Any] | None]:
    """(why it failed or "", the receipt)."""
    from ..notify.message import DeliveryError

    publish = WITNESSES.get(witness)
    if publish is None:
        return f"no witness {witness!r} in this version of cortex-change", None
    try:
        return "", publish(ctx, c, c.signed_bytes())
    except (CortexError, DeliveryError) as exc:
        return " ".join(str(exc).split()), None
    except OSError as exc:
        return f"{witness}: {type(exc).__name__}: {exc.strerror or exc}", None


def _witness_alert(tx: Any, ctx: Context, c: Checkpoint, witness: str, tries: int, error: str) -> None:
    details = {"checkpoint": c.number, "witness": witness, "attempts": tries, "error": error}
    followups.announce(
        tx,
        ctx,
        Event(EventKind.WITNESS_FAILED, ACTOR, details),
        ctx.clock(),
        subject=f"Audit witness {witness} failing: checkpoint #{c.number} not yet published",
        text=f"The {witness} witness failed {tries} times to take {c.name()}: {error}. "
        "It is still retried; nothing is lost, but until it succeeds that witness cannot vouch for it.",
        ask=f"fix the {witness} witness ({ENABLED_BY.get(witness, witness)})",
        recipients=ctx.policy.change_managers,
    )


# --- the worker's duty -------------------------------------------------------------------------


def duty(ctx: Context, name: str) -> Checkpoint | None:
    """One worker pass: publish due receipts; sign when AUDIT_SIGNING_KEY is set and the chain grew
    by AUDIT_CHECKPOINT_EVENTS or AUDIT_CHECKPOINT_INTERVAL passed. A failure to sign is logged and
    alerted once per run of failures, and tried again next pass: it never holds up other work."""
    publish_due(ctx, name)
    if not ctx.settings["AUDIT_SIGNING_KEY"]:
        return None
    with ctx.db.read() as tx:
        last, head = store.last(tx), audit.head(tx)
    length = head[0] if head is not None else 0
    now = ctx.clock()
    elapsed = float("inf") if last is None else now.timestamp() - _epoch(last.at)
    interval, events = ctx.settings["AUDIT_CHECKPOINT_INTERVAL"], ctx.settings["AUDIT_CHECKPOINT_EVENTS"]
    if head is not None and not rules.due(last, length, interval, events, elapsed):
        return None
    try:
        signed = checkpoint(ctx, unless_current=True)
    except CortexError as exc:  # MissingPackage, Refused (key, clock, chain), StoreError
        log.error("audit checkpoint: %s", exc)
        _failure_alert(ctx, str(exc), last)
        return None
    if signed is not None:
        publish_due(ctx, name)
    return signed


def _epoch(stamp: str) -> float:
    when = parse_time(stamp)
    assert when is not None
    return when.timestamp()


def _failure_alert(ctx: Context, problem: str, last: Checkpoint | None) -> None:
    """A `checkpoint_failed` event and notification, unless one was sent since the last checkpoint."""
    with ctx.db.transaction() as tx:
        if audit.count(tx, EventKind.CHECKPOINT_FAILED, start=last.at if last else "") > 0:
            return
        followups.announce(
            tx,
            ctx,
            Event(EventKind.CHECKPOINT_FAILED, ACTOR, {"problem": problem}),
            ctx.clock(),
            subject="Audit checkpoint not signed",
            text=f"The worker could not sign an audit checkpoint: {problem}. Change work goes on; "
            "it tries again on every pass.",
            ask="fix AUDIT_SIGNING_KEY, the clock or the chain (docs/checkpoints.md)",
            recipients=ctx.policy.change_managers,
        )


# --- keys ------------------------------------------------------------------------------------


def keygen(path: str) -> dict[str, str]:
    """A new signing key in `path` (0600) and its public half in `path`.pub."""
    from ..signing import generate

    key, public_path = generate(path)
    return {"key_id": key.key_id, "public_key": key.public_key, "file": path, "public_file": public_path}


def list_keys(ctx: Context) -> list[dict[str, Any]]:
    with ctx.db.read() as tx:
        return [k.to_json() for k in store.keys(tx)]


def add_key(ctx: Context, *, public_file: str, valid_from: str | None, valid_to: str | None) -> PublicKey:
    """Register a public key; checkpoints dated in [valid_from (default now), valid_to) may use it."""
    from ..signing import read_public

    key_id, public_key = read_public(public_file)
    now = fmt_time(ctx.clock()) or ""
    start = _time_arg("--from", valid_from) or now
    end = _time_arg("--to", valid_to)
    rules.check_period(start, end)
    key = PublicKey(key_id, public_key, start, end)
    with ctx.db.transaction() as tx:
        if not store.add_key(tx, key, now):
            raise ValidationError(public_file, f"key {key_id} is registered already")
    return key


def retire_key(ctx: Context, *, key_id: str, at: str | None = None) -> str:
    """End a key's validity (default now): checkpoints it signed before then still verify."""
    when = _time_arg("--at", at) or fmt_time(ctx.clock()) or ""
    with ctx.db.transaction() as tx:
        known = {k.key_id: k for k in store.keys(tx)}
        if key_id not in known:
            raise NotFound(f"no audit key {key_id!r} (audit keys list)")
        if when <= known[key_id].valid_from:
            raise ValidationError("--at", f"{when} is not after the key's start ({known[key_id].valid_from})")
        store.retire_key(tx, key_id, when)
    return when


def _time_arg(flag: str, text: str | None) -> str | None:
    if text is None:
        return None
    try:
        when = parse_time(text.replace(" ", "T"))
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise ValidationError(flag, f"{text!r} is not a time (ISO 8601, e.g. 2026-01-15T09:00:00Z)")
    return fmt_time(when)


# --- listing, for reports and the portal --------------------------------------------------------


def list_checkpoints(ctx: Context) -> list[dict[str, Any]]:
    """Every checkpoint with its receipts, oldest first."""
    with ctx.db.read() as tx:
        signed, receipts = store.every(tx), store.receipts(tx)
    by_number: dict[int, list[dict[str, Any]]] = {}
    for r in receipts:
        by_number.setdefault(int(r["number"]), []).append(r)
    return [{**c.to_json(), "receipts": by_number.get(c.number, [])} for c in signed]


def last_witnessed(ctx: Context) -> Checkpoint | None:
    """The newest checkpoint a witness took (what a compliance report or the portal cites)."""
    with ctx.db.read() as tx:
        return store.last_witnessed(tx)


def exported(tx: Any) -> tuple[list[str], list[str]]:
    """An export's checkpoint lines (a witness file's format) and public key lines."""
    return (
        [c.line() for c in store.every(tx)],
        [json.dumps(k.to_json(), sort_keys=True) for k in store.keys(tx)],
    )


# --- verification ----------------------------------------------------------------------------


class Report(Value):
    """What `audit verify --checkpoints` found."""

    __slots__ = ("chain", "findings", "keys_from", "latest", "notes", "verified")

    def __init__(
        self,
        chain: audit.Verdict,
        verified: list[Checkpoint],
        findings: list[Finding],
        keys_from: str,
        notes: list[str],
    ) -> None:
        self.chain = chain  # the plain hash-chain walk
        self.verified = verified  # checkpoints whose signature and key are good
        self.findings = findings  # rewritten, truncated, bad signature, bad key, out of order
        self.keys_from = keys_from
        self.notes = notes
        self.latest = max(verified, key=lambda c: c.length) if verified else None

    @property
    def ok(self) -> bool:
        return self.chain.ok and not self.findings


class Evidence(Value):
    """Checkpoints, keys and event hashes read from witness copies and exports."""

    __slots__ = ("checkpoints", "keys", "reference")

    def __init__(self) -> None:
        self.checkpoints: list[Checkpoint] = []
        self.keys: list[PublicKey] = []
        self.reference: dict[int, str] = {}  # seq -> hash, from exported chains


def read_evidence(sources: Sequence[str], s3_endpoint: str | None = None) -> Evidence:
    """Witness files (JSON lines), folders of them, or export folders (their checkpoints, keys and
    event hashes); `s3://bucket/prefix`: an S3 witness's objects (at `s3_endpoint` if given). A
    file that is not one is refused with one line naming it."""
    found = Evidence()
    for source in sources:
        if source.startswith("s3://"):
            from ..witness.s3 import read_back

            found.checkpoints += read_back(source, s3_endpoint)
            continue
        path = Path(source)
        if path.is_dir():
            if (path / CHAIN_FILE).is_file():
                _read_export(path, found)
                continue
            files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in (".jsonl", ".json"))
            if not files:
                raise ValidationError("--checkpoints", f"{source!r} holds no checkpoint files (*.jsonl)")
            for f in files:
                found.checkpoints += rules.parse_lines(_text(f), str(f))
        elif path.is_file():
            found.checkpoints += rules.parse_lines(_text(path), str(path))
        else:
            raise ValidationError("--checkpoints", f"{source!r} not found")
    return found


def _text(path: Path) -> str:
    try:
        return path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(str(path), f"cannot be read: {exc}") from None


def _read_export(folder: Path, found: Evidence) -> None:
    if (folder / CHECKPOINTS_FILE).is_file():
        found.checkpoints += rules.parse_lines(
            _text(folder / CHECKPOINTS_FILE), str(folder / CHECKPOINTS_FILE)
        )
    if (folder / KEYS_FILE).is_file():
        found.keys += _keys(folder / KEYS_FILE)
    for row in chain_rows(folder / CHAIN_FILE):
        found.reference[int(row[0])] = str(row[8])


def _keys(path: Path) -> list[PublicKey]:
    out = []
    for n, raw in enumerate(_text(path).splitlines(), 1):
        if raw.strip():
            try:
                obj = json.loads(raw)
            except ValueError:
                raise ValidationError(f"{path} line {n}", "is not JSON (a public key per line)") from None
            out.append(rules.parse_key(obj, f"{path} line {n}"))
    return out


def pinned_keys(files: Sequence[str], known: Iterable[PublicKey]) -> list[PublicKey]:
    """Public key files given on the command line: the only keys trusted then (each with the
    validity period a store or export records for it, else without one)."""
    from ..signing import read_public

    periods = {k.key_id: k for k in known}
    out = []
    for f in files:
        key_id, public_key = read_public(f)
        record = periods.get(key_id)
        if record is not None and record.public_key == public_key:
            out.append(record)
        else:
            out.append(PublicKey(key_id, public_key, "0000-01-01T00:00:00Z"))
    return out


def verify(ctx: Context, *, sources: Sequence[str], key_files: Sequence[str] = ()) -> Report:
    """Walk the stored chain, then prove it extends every checkpoint given (and every one the store
    holds): signatures and keys first, then consistency."""
    evidence = read_evidence(sources, s3_endpoint=ctx.settings["AUDIT_WITNESS_S3_ENDPOINT"] or None)
    with ctx.db.read() as tx:
        chain = audit.verify(tx)
        stored, stored_keys = store.every(tx), store.keys(tx)
        need = rules.needed([*evidence.checkpoints, *stored]) | set(evidence.reference)
        hashes, length = _hashes(tx.stream("SELECT seq, hash FROM audit_events ORDER BY seq"), need)
        receipts = store.receipts(tx)
    report = _judge(
        chain,
        [*evidence.checkpoints, *stored],
        [*evidence.keys, *stored_keys],
        key_files,
        hashes,
        1,
        length,
        evidence.reference,
        None,
    )
    _timestamps(ctx, report, stored, receipts)
    return report


def _timestamps(
    ctx: Context, report: Report, stored: list[Checkpoint], receipts: list[dict[str, Any]]
) -> None:
    """The stored RFC 3161 tokens (witness/tsa.py) checked offline against their checkpoints'
    signed bytes: imprint, signature, TSA certificate, and the chain to AUDIT_TSA_CA when set."""
    from ..domain.errors import MissingPackage

    held = [r for r in receipts if r["witness"] == "tsa" and r["state"] == store.DELIVERED]
    if not held:
        return
    try:
        from ..witness import tsa

        good, bad = tsa.check_stored(held, stored, tsa.trusted_from(ctx.settings["AUDIT_TSA_CA"]))
    except MissingPackage as exc:
        report.notes.append(f"{len(held)} RFC 3161 timestamp token(s) not checked: {exc}")
        return
    report.findings += [Finding("timestamp", c, message, None) for c, message in bad]
    chained = " and chain to AUDIT_TSA_CA" if ctx.settings["AUDIT_TSA_CA"] else ""
    report.notes.append(f"{good} RFC 3161 timestamp token(s) match their checkpoints{chained}")


def _hashes(rows: Iterator[Any], need: set[int]) -> tuple[dict[int, str], int]:
    hashes: dict[int, str] = {}
    last = 0
    for seq, digest in rows:
        last = int(seq)
        if last in need:
            hashes[last] = str(digest)
    return hashes, last


def verify_offline(directory: str, *, sources: Sequence[str], key_files: Sequence[str] = ()) -> Report:
    """The same proof over an export (`audit export`), without the database: its chain, its own
    checkpoints and keys, and the witness copies given."""
    chain = verify_export(directory)
    folder = Path(directory)
    own = Evidence()
    _read_export(folder, own)
    evidence = read_evidence(sources)
    rows = list(chain_rows(folder / CHAIN_FILE))
    start = int(rows[0][0]) if rows else 1
    length = int(rows[-1][0]) if rows else 0
    hashes = {int(r[0]): str(r[8]) for r in rows}
    exported_at = _exported_at(folder)
    return _judge(
        chain,
        [*evidence.checkpoints, *own.checkpoints],
        [*evidence.keys, *own.keys],
        key_files,
        hashes,
        start,
        length,
        evidence.reference,
        exported_at,
    )


def _exported_at(folder: Path) -> str | None:
    try:
        head = json.loads((folder / HEAD_FILE).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    at = head.get("exported_at") if isinstance(head, dict) else None
    return at if isinstance(at, str) else None


def _judge(
    chain: audit.Verdict,
    given: list[Checkpoint],
    known_keys: list[PublicKey],
    key_files: Sequence[str],
    hashes: dict[int, str],
    start: int,
    length: int,
    reference: dict[int, str],
    exported_at: str | None,
) -> Report:
    from ..signing import verify as good_signature

    unique = list({c.digest() + c.signature: c for c in given}.values())
    keys = pinned_keys(key_files, known_keys) if key_files else _merge(known_keys)
    keys_from = (
        "the keys given (--key)" if key_files else "keys recorded in the store or export (pin with --key)"
    )
    by_id = {k.key_id: k for k in keys}
    findings, verified, notes = [], [], []
    for c in sorted(unique, key=lambda c: c.number):
        problem = rules.key_problem(by_id, c)
        if problem:
            findings.append(Finding("key", c, f"{problem}: rejected", None))
        elif not good_signature(by_id[c.key_id].public_key, c.signature, c.signed_bytes()):
            message = f"{c.name()} has a bad signature: rejected (altered, or not signed by key {c.key_id})"
            findings.append(Finding("signature", c, message, None))
        else:
            verified.append(c)
    checked = verified
    if exported_at is not None:
        later = [c for c in verified if c.length > length and c.at > exported_at]
        checked = [c for c in verified if c not in later]
        notes += [f"{c.name()} is newer than the export: not checked against it" for c in later]
    skipped = [c for c in checked if 0 < c.length < start]
    if skipped:
        notes.append(
            f"{len(skipped)} checkpoint(s) cover events before this copy starts (#{start}): not checked"
        )
    findings += rules.order_problems(verified)
    findings += rules.consistency(checked, hashes, length, reference, start)
    return Report(chain, verified, findings, keys_from, notes)


def _merge(keys: list[PublicKey]) -> list[PublicKey]:
    """Keys from several places, one per id (the first seen; a witness's own copy comes first)."""
    out: dict[str, PublicKey] = {}
    for k in keys:
        out.setdefault(k.key_id, k)
    return list(out.values())
