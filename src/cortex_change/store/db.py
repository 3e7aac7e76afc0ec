"""Connections, the one way to open a transaction, and automatic migrations."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator, Sequence

from ..domain.errors import Conflict, StoreError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    import threading
    from contextlib import AbstractContextManager
    from types import TracebackType
    from typing import Any, Protocol

    Row = tuple[Any, ...]  # a row as the driver returns it

BUSY_TIMEOUT_MS = 10_000


class Tx:
    """A connection inside a transaction (or a read), with the few calls repositories need.

    SQL is written once with `?` placeholders; a dialect's Tx adapts it (see postgres.py).
    """

    dialect = "sqlite"
    for_update = ""  # row lock on a read-then-write row; SQLite's write lock already covers it
    ordered_join = "CROSS JOIN"  # SQLite keeps the written join order only for CROSS JOIN
    skip_locked = ""  # claim rows others are not claiming; SQLite has one writer at a time anyway

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def sql(self, text: str) -> str:
        return text

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        row: Row | None = self.conn.execute(self.sql(sql), params).fetchone()
        return row

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return list(self.conn.execute(self.sql(sql), params).fetchall())

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        count: int = self.conn.execute(self.sql(sql), params).rowcount
        return count

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self.conn.executemany(self.sql(sql), rows)

    def stream(self, sql: str, batch: int = 10_000) -> Iterator[Row]:
        """Rows of a large result, fetched in batches."""
        cursor = self.conn.execute(self.sql(sql))
        while chunk := cursor.fetchmany(batch):
            yield from chunk


if TYPE_CHECKING:  # used in annotations only: no typing.Protocol at run time

    class Store(Protocol):
        """What services need of a database, whichever engine holds it."""

        path: str
        thread_safe: bool  # may threads share it (a pool), or does each need its own

        def read(self) -> AbstractContextManager[Tx]: ...

        def transaction(self) -> AbstractContextManager[Tx]: ...

        def close(self) -> None: ...

        def discard(self) -> bool: ...


def current_version(tx: Tx) -> int:
    """The schema version a store has reached."""
    row = tx.one("SELECT max(version) FROM schema_version")
    return int(row[0]) if row and row[0] else 0


def open_store(location: str, pooled: bool = False, create: bool = True) -> Store:
    """A file path opens the embedded SQLite store; a postgresql:// URL opens PostgreSQL
    (`pooled`: a connection pool that threads may share, for the server). Without `create` (the
    read-only commands) the store must exist already: nothing is created, SQLite opens read-only."""
    if location.startswith(("postgresql://", "postgres://")):
        try:
            from .postgres import PooledPostgresDatabase, PostgresDatabase  # psycopg only when used
        except ImportError as exc:
            from ..domain.errors import MissingPackage

            raise MissingPackage("a PostgreSQL store", exc.name or "psycopg", "postgres") from None

        return (PooledPostgresDatabase if pooled else PostgresDatabase)(location, create=create)
    return Database(location, create=create)


MISSING = "commands that write create it; check CORTEX_CHANGE_DB or --db"
# What an SQLite error means for the person reading it, by its result code's name.
HINTS = {
    "SQLITE_READONLY": "the file or its folder is read-only for this user",
    "SQLITE_CANTOPEN": "the file or its folder is missing, or read-only for this user",
    "SQLITE_CORRUPT": "the file is damaged: restore it from a backup",
    "SQLITE_NOTADB": "the file is not an SQLite database",
    "SQLITE_FULL": "the disk is full",
}


def shown(location: str) -> str:
    """A store's location as messages name it: quoted, any credentials masked."""
    from ..redaction import redact_url  # messages only: urllib.parse stays off the start-up path

    return repr(redact_url(location))


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    name = getattr(exc, "sqlite_errorname", "")
    hint = next((h for prefix, h in HINTS.items() if name.startswith(prefix)), "")
    return f"{text} ({hint})" if hint and hint not in text else text


def _busy(exc: sqlite3.Error) -> bool:
    return exc.sqlite_errorname.startswith(("SQLITE_BUSY", "SQLITE_LOCKED"))


# The read side's context managers are classes rather than `@contextmanager` generators: `show` and
# `list` then never import contextlib (start-up time).
class _Failures:
    """SQLite's errors while in use, as one line naming the file (exit 5, HTTP 503)."""

    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        self.path = path

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if isinstance(exc, sqlite3.Error):
            raise self.error(exc) from None

    def error(self, exc: sqlite3.Error) -> StoreError:
        return StoreError(f"the database {shown(self.path)} cannot be used: {_reason(exc)}")


class _Snapshot:
    """`Database.read()`: BEGIN on entry, COMMIT however the block ends."""

    __slots__ = ("conn", "failures")

    def __init__(self, conn: sqlite3.Connection, failures: _Failures) -> None:
        self.conn, self.failures = conn, failures

    def __enter__(self) -> Tx:
        with self.failures:
            self.conn.execute("BEGIN")
        return Tx(self.conn)

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        with self.failures:
            if self.conn.in_transaction:  # SQLite ends it itself after some errors
                self.conn.execute("COMMIT")
        if isinstance(exc, sqlite3.Error):  # the block's own
            raise self.failures.error(exc) from None


class Database:
    """The embedded SQLite store (WAL): reads need no lock, writes take it for one transaction."""

    thread_safe = False

    def __init__(self, path: str, create: bool = True) -> None:
        self.path = path
        # What opening it creates — the file, then the folders it needed, innermost first — which
        # `discard` takes back when the command that created them fails.
        self.made = _missing(path) if create and path != ":memory:" else []
        try:
            self.conn = _existing(path) if not create and path != ":memory:" else _created(path)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the database {shown(path)}: {_reason(exc)}") from None

    def read(self) -> _Snapshot:
        """A consistent snapshot for reading."""
        return _Snapshot(self.conn, _Failures(self.path))

    def transaction(self) -> AbstractContextManager[Tx]:
        """Everything inside commits together or not at all."""
        from contextlib import contextmanager  # writes only: a read needs no contextlib (start-up time)

        return contextmanager(self._transaction)()

    def _transaction(self) -> Iterator[Tx]:
        # Writers of one process queue here rather than in SQLite's busy handler, which sleeps
        # up to 100 ms between retries (the server's tail latency); other processes still wait
        # on the file lock.
        with _writer_lock(self.path), _Failures(self.path):
            try:
                self.conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if not _busy(exc):
                    raise
                raise Conflict(f"the database is busy; nothing was written ({exc})") from None
            try:
                yield Tx(self.conn)
            except BaseException:
                self._rollback()
                raise
            try:
                self.conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                if not _busy(exc):
                    raise
                raise Conflict(f"commit failed; nothing was written ({exc})") from None

    def _rollback(self) -> None:
        if self.conn.in_transaction:  # SQLite ends it itself after some errors (a full disk, ...)
            self.conn.execute("ROLLBACK")

    def close(self) -> None:
        self.conn.close()

    def discard(self) -> bool:
        """Take back a store this process created when nothing was written to it (a command that
        fails on bad input leaves nothing behind, not even an empty store); True if it was."""
        if not self.made:
            return False
        try:
            row = self.conn.execute(
                "SELECT (SELECT count(*) FROM audit_events) + (SELECT count(*) FROM changes)"
            ).fetchone()
        except sqlite3.Error:
            return False
        if row is None or row[0]:
            return False
        self.conn.close()
        file, *folders = self.made
        for leftover in (file, f"{file}-wal", f"{file}-shm", f"{file}-journal"):
            if os.path.lexists(leftover):
                os.unlink(leftover)
        for folder in folders:
            try:
                os.rmdir(folder)
            except OSError:  # something else was put there meanwhile: it stays
                break
        self.made = []
        return True


def _missing(path: str) -> list[str]:
    """`path` and each of its folders that do not exist yet, innermost first (none if it exists)."""
    path = os.path.abspath(path)
    if os.path.lexists(path):
        return []
    made, folder = [path], os.path.dirname(path)
    while folder and not os.path.exists(folder):
        made.append(folder)
        folder = os.path.dirname(folder)
    return made


def _created(path: str) -> sqlite3.Connection:
    """Open the file, creating it and its folders if need be; its schema brought up to date."""
    if path != ":memory:":
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        _enable_wal(conn)
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        migrate(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def _existing(path: str) -> sqlite3.Connection:
    """Open a store that must exist, read-only: nothing is created or written (an auditor may
    have read access only). A schema behind this program's is upgraded as any first use would."""
    if not os.path.exists(path):
        raise StoreError(f"the database {shown(path)} does not exist ({MISSING})")
    if os.path.isdir(path):
        raise StoreError(f"the database {shown(path)} is a folder, not a database file")
    conn = _read_only(path)
    try:
        version = _current(conn)
        if version == 0:
            raise StoreError(f"the database {shown(path)} holds no cortex-change store ({MISSING})")
        if version >= LATEST_VERSION:
            migrate(conn)  # nothing to do, or refused: newer than this program
            return conn
    except BaseException:
        conn.close()
        raise
    conn.close()
    try:
        return _created(path)
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(
            f"the database {shown(path)} has schema version {version} and needs upgrading to "
            f"{LATEST_VERSION}, which failed: {_reason(exc)}"
        ) from None


def _uri_path(path: str) -> str:
    """A file path inside an SQLite URI: `%`, `?` and `#` escaped (SQLite's URI rules; urllib's
    `quote` would do, at the cost of importing urllib.parse on every read-only command)."""
    return path.replace("%", "%25").replace("?", "%3F").replace("#", "%23")


def _read_only(path: str) -> sqlite3.Connection:
    """The file opened read-only (`mode=ro`). A reader needs the WAL's -shm file: in a folder it
    cannot write, with none there, the file is opened `immutable` (no write-ahead log pending
    means its content is all in the file); with a log pending, that would miss it: refused."""
    uri = f"file:{_uri_path(os.path.abspath(path))}?mode=ro"
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.OperationalError as exc:
        conn.close()
        if exc.sqlite_errorname != "SQLITE_CANTOPEN":
            raise
    wal = f"{path}-wal"
    if os.path.exists(wal) and os.path.getsize(wal) > 0:
        raise StoreError(
            f"cannot read the database {shown(path)}: its write-ahead log ({os.path.basename(wal)}) "
            "holds changes and no -shm file can be made beside it (the folder is read-only)"
        )
    conn = sqlite3.connect(f"{uri}&immutable=1", uri=True, isolation_level=None)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except BaseException:
        conn.close()
        raise
    return conn


_WRITERS: dict[str, threading.Lock] = {}


def _writer_lock(path: str) -> threading.Lock:
    """One lock per database file in this process (threading is imported only when writing)."""
    import threading

    return _WRITERS.setdefault(os.path.abspath(path), threading.Lock())


def _enable_wal(conn: sqlite3.Connection) -> None:
    """Switch a new file to WAL. SQLite answers "locked" at once (no busy wait) while another
    process is creating the same file, so retry until the busy timeout."""
    if conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
        return
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.005)


def migration_scripts(dialect: str) -> list[tuple[int, str]]:
    """(version, SQL) in order: the dialect's own files plus those both engines share."""
    from importlib import resources  # only when the schema is behind: keeps start-up lean

    root = resources.files("cortex_change.store") / "migrations"
    found = [
        (int(entry.name.split("_", 1)[0]), entry.read_text("utf-8"))
        for folder in (root / dialect, root / "common")
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    ]
    return sorted(found)


def _migrations() -> list[tuple[int, str]]:
    return migration_scripts("sqlite")


LATEST_VERSION = 21  # kept in step with the newest file in migrations/ (checked by a test)


def _current(conn: sqlite3.Connection) -> int:
    try:
        row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
    except sqlite3.OperationalError:
        return 0
    return int(row[0] or 0)


def migrate(conn: sqlite3.Connection) -> None:
    """Apply every migration newer than the schema version, each in its own transaction."""
    current = _current(conn)
    if current > LATEST_VERSION:
        raise StoreError(
            f"the database schema is version {current}, newer than this program knows "
            f"({LATEST_VERSION}): upgrade cortex-change"
        )
    if current == LATEST_VERSION:
        return
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
    )
    for version, sql in _migrations():
        if _current(conn) >= version:
            continue
        script = (
            f"BEGIN IMMEDIATE;\n{sql}\nINSERT INTO schema_version (version, applied_at) "
            f"VALUES ({version}, strftime('%Y-%m-%dT%H:%M:%SZ','now'));\nCOMMIT;"
        )
        try:
            conn.executescript(script)
        except sqlite3.Error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if _current(conn) < version:  # not a concurrent first use: a real failure
                raise
