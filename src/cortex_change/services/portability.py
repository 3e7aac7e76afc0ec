"""Moving a store (docs/portability.md): `export --jsonl`, `import --jsonl` into an empty store, and
`migrate-store` to PostgreSQL. One table-by-table row stream (store/portability.py) feeds all
three; history is never re-hashed: events keep their sequence numbers and hashes, and the
target's chain is verified by `audit verify`'s own walk before anything is committed.
"""

from __future__ import annotations

import json
import json.encoder
import os
from collections.abc import Callable, Iterator
from hashlib import sha256
from itertools import islice
from pathlib import Path
from typing import IO, Any

from ..domain import portability as fmt
from ..domain.codec import fmt_time
from ..domain.errors import Refused, StoreError, ValidationError
from ..redaction import redact_url
from ..store import audit
from ..store import portability as tables
from ..store.db import Tx, current_version, open_store
from .context import Context

# Built once (json.dumps builds one a call); rows are scalars: no cycles to look for.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)
_FLUSH = 1_000  # lines a write
_TAIL = 1 << 16  # the trailer is a few hundred bytes: its line is within the file's last 64 KiB
Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


# ----------------------------------------------------------------------------- what travels


def _plan(tx: Tx, credentials: bool = True) -> list[tuple[fmt.Table, list[str], int]]:
    """Each table that travels, its columns and rows; a table this code does not know stops it."""
    strangers = tables.unknown(tx)
    if strangers:
        raise StoreError(
            f"the store holds tables this release does not know how to move ({', '.join(strangers)}): "
            "upgrade cortex-change; nothing was written"
        )
    chosen = [t for t in fmt.TABLES if credentials or not t.credentials]
    return [(t, tables.columns(tx, t.name), tables.count(tx, t.name)) for t in chosen]


def _require_empty(tx: Tx, shown: str, command: str) -> None:
    taken = tables.occupied(tx)
    if taken:
        raise Refused(
            f"{shown} is not empty ({', '.join(taken)} hold rows): {command} fills an empty store "
            "only; nothing was written"
        )


def _require_chain(tx: Tx, where: str) -> audit.Verdict:
    """`audit verify`'s walk over the chain as written, before commit."""
    verdict = audit.verify(tx)
    if not verdict.ok:
        raise ValidationError(
            where, f"the audit chain does not verify: {verdict.problem}; nothing was written"
        )
    return verdict


# ----------------------------------------------------------------------------- export


class _Writer:
    """Lines to a binary file, counted and hashed (the trailer's SHA-256). Hashing and writing run
    on a thread of their own: both release the GIL, so they overlap the reading and encoding of
    the next lines (a quarter of an export's time on a million changes)."""

    def __init__(self, out: IO[bytes]) -> None:
        import queue
        import threading

        self.out, self.digest, self.lines = out, sha256(), 0
        self.pending: queue.Queue[bytes | None] = queue.Queue(maxsize=4)  # a few MB at most
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._drain, name="export-writer", daemon=True)
        self.thread.start()

    def _drain(self) -> None:
        while (data := self.pending.get()) is not None:
            if self.failure is None:
                try:
                    self.digest.update(data)
                    self.out.write(data)
                except BaseException as exc:  # raised again by the next write or close
                    self.failure = exc

    def write(self, lines: list[str]) -> None:
        if self.failure is not None:
            raise self.failure
        self.pending.put(("\n".join(lines) + "\n").encode("utf-8"))
        self.lines += len(lines)

    def close(self) -> str:
        """Wait for every line to be written; their SHA-256."""
        if self.thread.is_alive():
            self.pending.put(None)
            self.thread.join()
        if self.failure is not None:
            raise self.failure
        return self.digest.hexdigest()

    def rows(self, kind: str, names: list[str], source: Iterator[tuple[Any, ...]]) -> int:
        prefix, encode, written = f'{{"kind":"{kind}","row":', _row_encoder(), 0
        while chunk := list(islice(source, _FLUSH)):
            self.write([f"{prefix}{encode(dict(zip(names, row, strict=True)))}}}" for row in chunk])
            written += len(chunk)
        return written


def _row_encoder() -> Callable[[dict[str, Any]], str]:
    """`_ENCODER.encode`, less the encoder it builds on every call (json's C encoder made once:
    a third of an export's time on a million changes went there)."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # no C accelerator (another Python): the same text, slower
        return _ENCODER.encode
    encoder = make(None, _ENCODER.default, json.encoder.encode_basestring, None, ":", ",", False, False, True)

    def encode(row: dict[str, Any]) -> str:
        return "".join(encoder(row, 0))

    return encode


def export_jsonl(ctx: Context, *, path: str, credentials: bool = True) -> dict[str, Any]:
    """Every table that travels, from one snapshot, to `path` (written beside it, then renamed:
    a failed export leaves no half file; readable by its owner only: it holds token hashes)."""
    target = Path(path)
    partial = target.with_name(f".{target.name}.partial")
    try:
        with ctx.db.read() as tx, _private(partial) as out:
            writer = _Writer(out)
            try:
                result = _export(ctx, tx, writer, credentials)
            finally:
                writer.close()
        os.replace(partial, target)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise ValidationError("--jsonl", f"cannot write {path!r}: {exc.strerror or exc}") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return {"file": str(target), **result}


def _private(path: Path) -> IO[bytes]:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    return os.fdopen(fd, "wb", buffering=1 << 20)


def _export(ctx: Context, tx: Tx, writer: _Writer, credentials: bool) -> dict[str, Any]:
    plan = _plan(tx, credentials)
    counts = {t.kind: n for t, _, n in plan}
    head = fmt.header(
        current_version(tx),
        tx.dialect if tx.dialect == "sqlite" else "postgresql",
        fmt_time(ctx.clock()) or "",
        counts,
        {t.kind: names for t, names, _ in plan},
        credentials,
    )
    writer.write([_ENCODER.encode(head)])
    for table, names, expected in plan:
        written = writer.rows(table.kind, names, tables.rows(tx, table, names))
        if written != expected:  # one snapshot: cannot happen unless the store misbehaves
            raise StoreError(f"{table.name}: counted {expected} rows but read {written}; nothing was kept")
    digest = writer.close()
    writer.out.write((_ENCODER.encode(fmt.trailer(writer.lines, counts, digest)) + "\n").encode("utf-8"))
    return {"lines": writer.lines + 1, "counts": counts, "sha256": digest, "credentials": credentials}


# ----------------------------------------------------------------------------- import


class _Reader:
    """Lines of an export in order, hashed as read (all but the trailer), one line of look-ahead."""

    def __init__(self, source: IO[bytes], name: str) -> None:
        self.source, self.name, self.number, self.digest = source, name, 0, sha256()
        self.ahead: dict[str, Any] | None = None
        self.done = False

    def peek(self) -> dict[str, Any] | None:
        if self.ahead is None and not self.done:
            raw = self.source.readline()
            if not raw:
                self.done = True
                return None
            self.number += 1
            self.ahead = fmt.decode(self.name, self.number, raw)
            if self.ahead["kind"] != "trailer":
                self.digest.update(raw)
        return self.ahead

    def take(self) -> dict[str, Any] | None:
        line, self.ahead = self.peek(), None
        return line

    def rows(self, kind: str, names: list[str]) -> Iterator[tuple[Any, ...]]:
        while (line := self.peek()) is not None and line["kind"] == kind:
            self.ahead = None
            yield fmt.values(self.name, self.number, line, names)


def _check_end(path: Path) -> None:
    """A cut file is refused before anything is read into the store: its last line must be a
    whole trailer."""
    try:
        with path.open("rb") as source:
            size = source.seek(0, os.SEEK_END)
            source.seek(max(0, size - _TAIL))
            tail = source.read()
    except OSError as exc:
        raise ValidationError("--jsonl", f"cannot read {str(path)!r}: {exc.strerror or exc}") from None
    last = tail.rstrip(b"\n").rsplit(b"\n", 1)[-1]
    try:
        whole = tail.endswith(b"\n") and json.loads(last).get("kind") == "trailer"
    except (ValueError, AttributeError):
        whole = False
    if not whole:
        raise ValidationError(
            str(path), "its last line is not the trailer: the file was cut short; nothing was written"
        )


def import_jsonl(ctx: Context, *, path: str) -> dict[str, Any]:
    """An export into this store, which must be empty: all of it in one transaction, the chain
    verified and the counts and digest checked before commit; any fault writes nothing."""
    source = Path(path)
    _check_end(source)
    with source.open("rb") as handle, ctx.db.transaction() as tx:
        reader = _Reader(handle, str(source))
        columns = fmt.read_header(reader.name, reader.take(), current_version(tx))
        _require_empty(tx, "this store", "import")
        indexes, counts = tables.drop_indexes(tx), {}
        for table in fmt.TABLES:
            names = columns.get(table.kind)
            if names is None:  # left out of the file (--without-credentials)
                continue
            if set(names) != set(tables.columns(tx, table.name)):
                raise ValidationError(
                    reader.name, f"the header's {table.kind} columns are not {table.name}'s"
                )
            counts[table.kind] = tables.load(tx, table.name, names, reader.rows(table.kind, names))
        tables.create_indexes(tx, indexes)
        trailer = reader.take()
        if trailer is not None and trailer["kind"] != "trailer":
            raise ValidationError(
                reader.name,
                f"line {reader.number}: a {trailer['kind']!r} line out of place (kinds come in the "
                "header's order, then the trailer); nothing was written",
            )
        lines = reader.number - (trailer is not None)
        verdict = _require_chain(tx, reader.name)  # names the first altered event
        fmt.check_trailer(reader.name, trailer, lines, counts, reader.digest.hexdigest())
        if reader.peek() is not None:
            raise ValidationError(reader.name, f"line {reader.number} follows the trailer")
    return {"file": str(source), "counts": counts, "events": verdict.checked, "head": verdict.head_hash}


# ----------------------------------------------------------------------------- migrate-store


def migrate_store(ctx: Context, *, to: str, progress: Progress = _quiet) -> dict[str, Any]:
    """Copy every table that travels from this store into the empty PostgreSQL database `to`, in
    one transaction there; counts and the chain verified before commit."""
    if not to.startswith(("postgresql://", "postgres://")):
        raise ValidationError("--to", "must be a postgresql:// URL (migrate-store moves to PostgreSQL)")
    shown = redact_url(to)
    target = open_store(to, create=True)  # an empty database gets the schema here
    try:
        with ctx.db.read() as src, target.transaction() as dst:
            counts, verdict = _copy_all(src, dst, shown, progress)
    finally:
        target.close()
    return {"target": shown, "counts": counts, "events": verdict.checked, "head": verdict.head_hash}


def _copy_all(src: Tx, dst: Tx, shown: str, progress: Progress) -> tuple[dict[str, int], audit.Verdict]:
    plan = _plan(src)
    _require_empty(dst, shown, "migrate-store")
    if current_version(src) != current_version(dst):
        raise StoreError(
            f"{shown} has schema version {current_version(dst)}, this store {current_version(src)}"
        )
    indexes, counts = tables.drop_indexes(dst), {}
    for table, names, expected in plan:
        if set(names) != set(tables.columns(dst, table.name)):
            raise StoreError(f"{shown}: {table.name} does not have this store's columns; nothing was written")
        tables.load(dst, table.name, names, tables.rows(src, table, names))
        copied = tables.count(dst, table.name)
        if copied != expected:
            raise StoreError(f"{table.name}: {expected} rows here, {copied} copied; nothing was written")
        counts[table.name] = copied
        progress(f"{table.name}: {copied} rows copied")
    progress("indexes: building")
    tables.create_indexes(dst, indexes)
    tables.reset_sequences(dst)
    progress("audit chain: verifying")
    verdict = _require_chain(dst, shown)
    if audit.head(dst) != audit.head(src):
        raise StoreError(
            f"{shown}: the audit head differs from this store's after the copy; nothing was written"
        )
    return counts, verdict
