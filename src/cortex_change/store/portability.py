"""Whole tables as row streams, and rows written back as they came out (ids, hashes, sequence
numbers unchanged): what `export --jsonl`, `import --jsonl` and `migrate-store` share.

Table and column names come from domain/portability.py's TABLES and the store's own catalogue,
never from input, so they are written into the SQL. Reads go through `Tx.stream` (SQLite's
fetchmany, a PostgreSQL server-side cursor): a million changes are never in memory at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from ..domain.errors import ValidationError
from ..domain.portability import EXCLUDED, TABLES, Table
from .db import Tx

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any

    from .db import Row

BATCH = 2_000  # rows a batch: a changes batch holds documents of a few KB each
PRESET = "audit_head"  # its one row is created by the migrations: a copy updates it


def _quoted(names: Iterable[str]) -> str:
    return ", ".join(f'"{n}"' for n in names)


def tables(tx: Tx) -> set[str]:
    """The tables the store holds."""
    if tx.dialect == "postgres":
        sql = "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
    else:
        sql = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    return {str(r[0]) for r in tx.all(sql)}


def unknown(tx: Tx) -> list[str]:
    """Tables neither moved nor excluded by name: a newer migration's, which would be lost."""
    known = {t.name for t in TABLES} | set(EXCLUDED)
    return sorted(tables(tx) - known)


def columns(tx: Tx, table: str) -> list[str]:
    """A table's columns in their order."""
    if tx.dialect == "postgres":
        rows = tx.all(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position",
            (table,),
        )
        return [str(r[0]) for r in rows]
    return [str(r[1]) for r in tx.all(f'PRAGMA table_info("{table}")')]


def count(tx: Tx, table: str) -> int:
    row = tx.one(f'SELECT count(*) FROM "{table}"')
    return int(row[0]) if row else 0


def rows(tx: Tx, table: Table, names: Sequence[str]) -> Iterator[Row]:
    """Every row, in key order: text keys bytewise on both engines (PostgreSQL's "C" collation is
    SQLite's BINARY for UTF-8), so both write the same lines in the same order."""
    collate = ' COLLATE "C"' if tx.dialect == "postgres" and not table.numeric_key else ""
    order = ", ".join(f'"{k}"{collate}' for k in table.key)
    return tx.stream(f'SELECT {_quoted(names)} FROM "{table.name}" ORDER BY {order}', BATCH)


def occupied(tx: Tx) -> list[str]:
    """The tables that hold rows, and the audit head if it has moved: empty means a new store."""
    found = [
        name
        for name in [t.name for t in TABLES if t.name != PRESET] + ["portal_sessions"]
        if tx.one(f'SELECT 1 FROM "{name}" LIMIT 1') is not None
    ]
    head = tx.one("SELECT seq FROM audit_head WHERE id=1")
    if head is None or int(head[0]) != 0:
        found.append(PRESET)
    return found


def load(tx: Tx, table: str, names: Sequence[str], source: Iterable[Sequence[Any]]) -> int:
    """Write rows as they are (PostgreSQL: COPY; SQLite: batched inserts); how many were written.
    Two rows with one key are bad input, not a lost race."""
    if table == PRESET:
        return _head(tx, names, source)
    try:
        if tx.dialect == "postgres":
            return _copy(tx, table, names, source)
        return _insert(tx, table, names, source)
    except _integrity(tx) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ValidationError(table, f"rows do not fit the table ({reason})") from None


def _integrity(tx: Tx) -> type[Exception]:
    if tx.dialect == "postgres":
        import psycopg

        return psycopg.IntegrityError
    import sqlite3

    return sqlite3.IntegrityError


def _copy(tx: Tx, table: str, names: Sequence[str], source: Iterable[Sequence[Any]]) -> int:
    written = 0
    with tx.conn.cursor() as cursor, cursor.copy(f'COPY "{table}" ({_quoted(names)}) FROM STDIN') as copy:
        for row in source:
            copy.write_row(row)
            written += 1
    return written


def _insert(tx: Tx, table: str, names: Sequence[str], source: Iterable[Sequence[Any]]) -> int:
    sql = f'INSERT INTO "{table}" ({_quoted(names)}) VALUES ({", ".join("?" * len(names))})'
    written, batch = 0, []
    for row in source:
        batch.append(row)
        if len(batch) >= BATCH:
            tx.many(sql, batch)
            written, batch = written + len(batch), []
    tx.many(sql, batch)
    return written + len(batch)


def _head(tx: Tx, names: Sequence[str], source: Iterable[Sequence[Any]]) -> int:
    """The chain's head as recorded (a store with no events keeps the one its migration made)."""
    written = 0
    for row in source:
        head = dict(zip(names, row, strict=True))
        if head.get("id") != 1:
            raise ValidationError(PRESET, f"the head's id is {head.get('id')!r}, not 1")
        if head.get("seq"):
            tx.run("UPDATE audit_head SET seq=?, hash=? WHERE id=1", (head["seq"], head["hash"]))
        written += 1
    return written


def reset_sequences(tx: Tx) -> None:
    """PostgreSQL sequences and identity columns past the ids copied in (none today: every id is
    made by the program; this keeps a future serial column right)."""
    if tx.dialect != "postgres":
        return
    found = tx.all(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = "
        "current_schema() AND (left(column_default, 8) = 'nextval(' OR is_identity = 'YES')"
    )
    for table, column in found:
        tx.one(
            f'SELECT setval(pg_get_serial_sequence(?, ?), coalesce(max("{column}"), 0) + 1, false) '
            f'FROM "{table}"',
            (table, column),
        )


def drop_indexes(tx: Tx) -> list[str]:
    """Drop the secondary indexes of an empty store, returning the statements that make them again:
    built once after a bulk copy rather than maintained row by row (several times faster; keys
    and unique constraints stay, so duplicate rows are still refused)."""
    if tx.dialect == "postgres":
        found = tx.all(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
            "AND indexname NOT IN (SELECT conname FROM pg_constraint)"
        )
    else:
        found = tx.all("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
    for name, _ in found:
        tx.run(f'DROP INDEX "{name}"')
    return [str(sql) for _, sql in found]


def create_indexes(tx: Tx, statements: Sequence[str]) -> None:
    if tx.dialect == "postgres":
        tx.run("SET LOCAL maintenance_work_mem = '256MB'")
    for sql in statements:
        tx.run(sql)
