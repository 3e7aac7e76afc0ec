"""The PostgreSQL store: the same repositories over psycopg 3, for many processes and hosts.

Coordination is the database's own: a version check on every record write (a concurrent
writer's UPDATE waits for the first to commit, then matches no row: Conflict), a row lock on
the audit head (appends are serialized), and an advisory lock around migrations.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache

import psycopg
from psycopg import errors as pg_errors
from psycopg.pq import TransactionStatus
from psycopg_pool import PoolTimeout

from ..domain.errors import Conflict, StoreError
from ..redaction import redact, redact_url
from .db import LATEST_VERSION, MISSING, Tx, migration_scripts

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any

    from .db import Row

MIGRATION_LOCK = 0x636F727465  # "corte": one migrator at a time, across hosts
PLACEHOLDER = re.compile(r"\?")
RETRYABLE = (
    pg_errors.SerializationFailure,
    pg_errors.DeadlockDetected,
    pg_errors.LockNotAvailable,
    pg_errors.UniqueViolation,  # a key another writer took first (idempotency keys: tokens.claim)
)


@lru_cache(maxsize=1024)  # the repositories' statements are a few dozen constant strings
def _placeholders(text: str) -> str:
    return PLACEHOLDER.sub("%s", text)


class PgTx(Tx):
    dialect = "postgres"
    for_update = " FOR UPDATE"
    ordered_join = "JOIN"
    skip_locked = " FOR UPDATE SKIP LOCKED"

    def sql(self, text: str) -> str:
        return _placeholders(text)

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            with self.conn.cursor() as cursor:
                cursor.executemany(self.sql(sql), rows)

    def stream(self, sql: str, batch: int = 10_000) -> Iterator[Row]:
        # A server-side cursor: a million events are not loaded at once.
        with self.conn.cursor(name="cortex_stream") as cursor:
            cursor.itersize = batch
            cursor.execute(self.sql(sql))
            yield from cursor


class PostgresDatabase:
    """One connection (a CLI run); transactions are explicit (autocommit outside them)."""

    thread_safe = False

    def __init__(self, url: str, create: bool = True) -> None:
        self.url, self.path = url, redact_url(url)
        try:
            self.conn = psycopg.connect(url, autocommit=True)
        except psycopg.Error as exc:
            raise StoreError(f"cannot open the database {self.path}: {_first_line(exc, url)}") from None
        try:
            _prepare(self.conn, self.path, create)
        except psycopg.Error as exc:
            self.conn.close()
            raise StoreError(f"cannot open the database {self.path}: {_first_line(exc, url)}") from None
        except StoreError:
            self.conn.close()
            raise

    @contextmanager
    def read(self) -> Iterator[Tx]:
        """A consistent snapshot for reading."""
        with _errors(self.url), _snapshot(self.conn) as tx:
            yield tx

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """Everything inside commits together or not at all."""
        with _errors(self.url), self.conn.transaction():
            yield PgTx(self.conn)

    def close(self) -> None:
        self.conn.close()

    def discard(self) -> bool:
        """A database is created by its administrator, never by a command: nothing to take back."""
        return False


class PooledPostgresDatabase:
    """A connection pool shared by a server's threads: each read or transaction borrows one."""

    thread_safe = True

    def __init__(self, url: str, max_size: int = 16, create: bool = True) -> None:
        from psycopg_pool import ConnectionPool

        self.url, self.path = url, redact_url(url)
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                _prepare(conn, self.path, create)
            self.pool = ConnectionPool(
                url, min_size=1, max_size=max_size, kwargs={"autocommit": True}, open=True, timeout=10
            )
        except psycopg.Error as exc:
            raise StoreError(f"cannot open the database {self.path}: {_first_line(exc, url)}") from None

    @contextmanager
    def read(self) -> Iterator[Tx]:
        with _errors(self.url), self.pool.connection() as conn, _snapshot(conn) as tx:
            yield tx

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        with _errors(self.url), self.pool.connection() as conn, conn.transaction():
            yield PgTx(conn)

    def close(self) -> None:
        self.pool.close()

    def discard(self) -> bool:
        return False


@contextmanager
def _snapshot(conn: psycopg.Connection[Any]) -> Iterator[Tx]:
    """A REPEATABLE READ, READ ONLY transaction, opened by one statement (`BEGIN ISOLATION LEVEL
    REPEATABLE READ READ ONLY`, psycopg builds it from these attributes) rather than `BEGIN`
    then `SET TRANSACTION`: a round trip fewer on every read, the token check's included. The
    attributes are put back at once: the connection's next (pooled) user writes at the default."""
    conn.isolation_level, conn.read_only = psycopg.IsolationLevel.REPEATABLE_READ, True
    try:
        with conn.transaction():
            yield PgTx(conn)
    finally:
        if conn.info.transaction_status == TransactionStatus.IDLE:  # else lost: the pool drops it
            conn.isolation_level, conn.read_only = None, None


def _first_line(exc: BaseException, url: str) -> str:
    """The driver's message, first line only, with the URL's credentials masked (libpq echoes
    a URL it cannot parse, or a piece of it)."""
    return redact((str(exc).strip().splitlines() or [type(exc).__name__])[0], url)


def _prepare(conn: psycopg.Connection[Any], shown: str, create: bool) -> None:
    """Bring the schema up to date; without `create`, a database with no store is refused."""
    if not create and _current(conn) == 0:
        raise StoreError(f"the database {shown} holds no cortex-change store ({MISSING})")
    migrate(conn)


@contextmanager
def _errors(url: str) -> Iterator[None]:
    """The driver's errors while in use: a lost race is a Conflict, anything else one line."""
    try:
        yield
    except RETRYABLE as exc:
        raise Conflict(
            f"another writer got there first; nothing was written ({_first_line(exc, url)})"
        ) from None
    except (psycopg.OperationalError, PoolTimeout) as exc:
        raise StoreError(f"the database is unavailable: {_first_line(exc, url)}") from None
    except psycopg.Error as exc:
        raise StoreError(f"the database cannot be used: {_first_line(exc, url)}") from None


def _current(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()
    if not row or not row[0]:
        return 0
    version = conn.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(version[0] or 0) if version else 0


def migrate(conn: psycopg.Connection[Any]) -> None:
    """Apply every migration newer than the schema version, under an advisory lock."""
    if _current(conn) == LATEST_VERSION:
        return
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version "
            "(version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
        current = _current(conn)
        if current > LATEST_VERSION:
            raise StoreError(
                f"the database schema is version {current}, newer than this program knows "
                f"({LATEST_VERSION}): upgrade cortex-change"
            )
        for version, sql in migration_scripts("postgres"):
            if version <= current:
                continue
            conn.execute(sql.encode("utf-8"))
            stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            conn.execute("INSERT INTO schema_version (version, applied_at) VALUES (%s, %s)", (version, stamp))
