"""SQLite backups: a consistent copy through the online backup API, the checks a backup file must
pass before it is restored, and files that appear under their name only when whole."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from ..domain.errors import StoreError, ValidationError
from . import audit
from .db import LATEST_VERSION, Database, Tx, migrate

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .audit import Verdict
    from .db import Store

ARGUMENT = "FILE"  # bad input names the command line's FILE
HEADER = b"SQLite format 3\x00"  # the first 16 bytes of every SQLite database file
TABLES = ("schema_version", "changes", "audit_events", "audit_head")  # what makes it ours
# Files SQLite reads beside a database: a stale one next to a new file would be replayed into it.
SIDECARS = ("-wal", "-journal")


def occupied(path: str) -> str | None:
    """The file that stands where a new database would go (it, or a log SQLite would replay)."""
    for candidate in (path, *(path + suffix for suffix in SIDECARS)):
        if os.path.lexists(candidate):
            return candidate
    return None


def snapshot(store: Store, tmp: str) -> sqlite3.Connection:
    """Copy the open store into `tmp` in one step of the backup API: one read snapshot, so writers
    go on (WAL) and the copy holds exactly the transactions committed before it began. A copy
    made page by page would restart whenever another connection writes. The copy is a single
    file (rollback journal), fit to be moved and read anywhere."""
    if not isinstance(store, Database):  # pragma: no cover - services refuse PostgreSQL first
        raise StoreError("only the embedded SQLite store is copied with the backup API")
    try:
        return _copy(store.conn, tmp, "DELETE")
    except sqlite3.Error as exc:
        raise StoreError(f"the backup failed: {_said(exc)}; nothing was written") from None


def open_backup(path: str) -> sqlite3.Connection:
    """A backup file opened read-only, nothing created beside it; not SQLite → bad input."""
    if not os.path.lexists(path):
        raise ValidationError(ARGUMENT, f"{path!r} does not exist")
    if os.path.isdir(path):
        raise ValidationError(ARGUMENT, f"{path!r} is a folder, not a backup file")
    try:
        with open(path, "rb") as f:
            head = f.read(100)
    except OSError as exc:
        raise ValidationError(ARGUMENT, f"cannot read {path!r}: {exc.strerror or exc}") from None
    if not head.startswith(HEADER):
        raise ValidationError(ARGUMENT, f"{path!r} is not an SQLite database (not a cortex-change backup)")
    uri = f"file:{_uri_path(os.path.abspath(path))}?mode=ro"
    # A file in WAL mode (a store copied by hand) with no log beside it has all its content in
    # the file: read it immutable, or SQLite would leave -wal and -shm files next to it.
    if len(head) > 19 and head[18] == 2 and not _has_log(path):
        uri += "&immutable=1"
    try:
        conn = sqlite3.connect(uri, uri=True, isolation_level=None)
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error as exc:
        damaged = exc.sqlite_errorname.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB"))
        raise ValidationError(
            ARGUMENT, f"{path!r} {'is damaged' if damaged else 'cannot be read'}: {_said(exc)}"
        ) from None
    return conn


def check(conn: sqlite3.Connection, path: str) -> int:
    """A backup file's schema version, once it proved whole (integrity check), ours (its tables)
    and not newer than this program."""
    try:
        problems = integrity(conn)
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        missing = [t for t in TABLES if t not in tables]
        version = (
            0 if missing else int(conn.execute("SELECT max(version) FROM schema_version").fetchone()[0] or 0)
        )
    except sqlite3.Error as exc:
        raise ValidationError(ARGUMENT, f"{path!r} is damaged: {_said(exc)}") from None
    if problems:
        raise ValidationError(ARGUMENT, f"{path!r} is damaged: the integrity check says {problems[0]}")
    if missing or version == 0:
        what = f"no {', '.join(missing)} table" if missing else "no schema version"
        raise ValidationError(
            ARGUMENT, f"{path!r} is an SQLite database but not a cortex-change store ({what})"
        )
    if version > LATEST_VERSION:
        raise StoreError(
            f"the backup {path!r} has schema version {version}, newer than this program knows "
            f"({LATEST_VERSION}): upgrade cortex-change"
        )
    return version


def restored(source: sqlite3.Connection, tmp: str, version: int) -> sqlite3.Connection:
    """Copy a checked backup into `tmp` and bring its schema up to date, as opening a store does."""
    try:
        conn = _copy(source, tmp, "DELETE")
        if version < LATEST_VERSION:
            conn.execute("PRAGMA foreign_keys=ON")
            migrate(conn)
    except sqlite3.Error as exc:
        raise StoreError(f"the restore failed: {_said(exc)}; nothing was written") from None
    return conn


def integrity(conn: sqlite3.Connection) -> list[str]:
    """What `PRAGMA integrity_check` found wrong (nothing: the file is whole)."""
    try:
        found = [str(r[0]) for r in conn.execute("PRAGMA integrity_check")]
    except sqlite3.Error as exc:  # too damaged to be checked
        return [_said(exc)]
    return [] if found == ["ok"] else found


def survey(conn: sqlite3.Connection) -> tuple[int, int, Verdict]:
    """A copy's changes, its audit events and its chain re-walked against its head (the copy is
    this process's alone: no transaction needed)."""
    tx = Tx(conn)
    try:
        row = tx.one("SELECT (SELECT count(*) FROM changes), (SELECT count(*) FROM audit_events)")
        assert row is not None
        return int(row[0]), int(row[1]), audit.verify(tx)
    except sqlite3.Error as exc:
        raise StoreError(f"the copy cannot be read: {_said(exc)}; nothing was written") from None


def seal(conn: sqlite3.Connection, tmp: str, journal: str, private: bool) -> None:
    """Leave the copy in its journal mode (a store is WAL), close it and flush it to the disk. A
    `private` file stays readable by its owner only (a backup holds token hashes); else it gets
    the permissions SQLite would have given a new store (the umask's)."""
    try:
        conn.execute(f"PRAGMA journal_mode={journal}")
    except sqlite3.Error as exc:
        raise StoreError(f"the copy cannot be finished: {_said(exc)}; nothing was written") from None
    finally:
        conn.close()  # the last connection: a WAL is checkpointed into the file and removed
    if not private:
        umask = os.umask(0o022)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def staged(target: str) -> Iterator[str]:
    """A temporary file beside `target` (same file system: the final move is atomic), removed
    with SQLite's own files beside it unless `publish` moved it to `target`."""
    import tempfile

    folder = os.path.dirname(os.path.abspath(target))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.", suffix=".tmp", dir=folder)
    os.close(fd)  # empty (SQLite takes it as an empty database), mode 0600
    try:
        yield tmp
    finally:
        for leftover in (tmp, tmp + "-journal", tmp + "-wal", tmp + "-shm"):
            with suppress(FileNotFoundError):
                os.unlink(leftover)


def publish(tmp: str, target: str) -> None:
    """Give the finished file its name, never replacing a file that appeared meanwhile (a hard
    link fails if the name exists), and make the new name durable."""
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise StoreError(f"{target!r} appeared while it was being written; nothing was replaced") from None
    except OSError:  # a file system without hard links: the check just made, then a rename
        if os.path.lexists(target):
            raise StoreError(
                f"{target!r} appeared while it was being written; nothing was replaced"
            ) from None
        os.rename(tmp, target)
    fd = os.open(os.path.dirname(os.path.abspath(target)), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _copy(source: sqlite3.Connection, tmp: str, journal: str) -> sqlite3.Connection:
    conn = sqlite3.connect(tmp, isolation_level=None)
    try:
        source.backup(conn)  # pages=-1: everything in one step, one read snapshot of the source
        # The copy carries the source's header, WAL flag included: set the mode this copy keeps.
        conn.execute(f"PRAGMA journal_mode={journal}")
    except BaseException:
        conn.close()
        raise
    return conn


def _has_log(path: str) -> bool:
    wal = f"{path}-wal"
    return os.path.exists(wal) and os.path.getsize(wal) > 0


def _uri_path(path: str) -> str:
    """A file path inside an SQLite URI (`%`, `?` and `#` escaped)."""
    return path.replace("%", "%25").replace("?", "%3F").replace("#", "%23")


def _said(exc: sqlite3.Error) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
