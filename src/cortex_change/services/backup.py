"""Backups of the embedded store (docs/backup.md): `backup` copies it while writers run, `restore`
puts a checked copy where no store is yet. PostgreSQL has its own tools: pg_dump, pg_restore."""

from __future__ import annotations

import os

from ..domain.errors import Refused, StoreError
from ..domain.values import Frozen
from ..store import backup as files
from ..store.db import LATEST_VERSION, open_store

TYPE_CHECKING = False
if TYPE_CHECKING:
    import sqlite3
    from typing import Final

    from ..store.audit import Verdict

PG_BACKUP = (
    "backup copies the embedded SQLite store; this store is PostgreSQL: back it up with "
    "`pg_dump -Fc`, restore with `pg_restore` into an empty database, then run `audit verify` "
    "(docs/backup.md)"
)
PG_RESTORE = (
    "restore writes an embedded SQLite store; this store is PostgreSQL: restore a `pg_dump -Fc` "
    "file with `pg_restore` into an empty database, then run `audit verify` (docs/backup.md)"
)


class Report(Frozen):
    """What a backup or restore wrote, and what its copy holds."""

    __slots__ = ("changes", "events", "path", "size", "upgraded_from", "verdict")

    def __init__(
        self, path: str, size: int, changes: int, events: int, verdict: Verdict, upgraded_from: int | None
    ) -> None:
        self.path: Final = path
        self.size: Final = size
        self.changes: Final = changes
        self.events: Final = events
        self.verdict: Final = verdict
        self.upgraded_from: Final = upgraded_from  # a restored backup's older schema version


def postgres(location: str) -> bool:
    return location.startswith(("postgresql://", "postgres://"))


def backup(location: str, target: str) -> Report:
    """Copy the store at `location` into the new file `target`, then check the copy: a whole file
    and an intact audit chain. A copy whose chain is broken is kept (it is what the store holds)
    and its verdict says so."""
    if postgres(location):
        raise Refused(PG_BACKUP)
    _vacant(target, f"the backup file {target!r}", "a backup never replaces a file")
    store = open_store(location, create=False)  # an existing store, opened read-only
    try:
        with _writing(target), files.staged(target) as tmp:
            conn = files.snapshot(store, tmp)
            try:
                problems = files.integrity(conn)
                if problems:
                    found = f"failed its integrity check ({problems[0]})"
                    raise StoreError(f"the copy of {location!r} {found}; nothing was written")
                report = _contents(conn, target)
            finally:
                files.seal(conn, tmp, "DELETE", private=True)
            files.publish(tmp, target)
    finally:
        store.close()
    return report.copy_with(size=os.path.getsize(target))


def restore(location: str, source: str) -> Report:
    """Put the backup `source` where the store `location` would be, only if nothing is there:
    the file checked first (SQLite, whole, ours, a schema this program knows), copied, upgraded
    if older, and given its name only once its audit chain verifies."""
    if postgres(location):
        raise Refused(PG_RESTORE)
    _vacant(location, f"the store {location!r}", "restore writes only where no store is yet")
    conn = files.open_backup(source)
    try:
        version = files.check(conn, source)
        with _writing(location):
            os.makedirs(os.path.dirname(os.path.abspath(location)), exist_ok=True)
            with files.staged(location) as tmp:
                copy = files.restored(conn, tmp, version)
                try:
                    report = _contents(copy, location)
                finally:
                    files.seal(copy, tmp, "WAL", private=False)
                if not report.verdict.ok:
                    raise Refused(
                        f"the backup {source!r} has a broken audit chain ({report.verdict.problem}); "
                        "nothing was restored (check it with `audit verify`)"
                    )
                files.publish(tmp, location)
    finally:
        conn.close()
    upgraded = version if version < LATEST_VERSION else None
    return report.copy_with(size=os.path.getsize(location), upgraded_from=upgraded)


def _vacant(path: str, what: str, rule: str) -> None:
    found = files.occupied(path)
    if found == path:
        raise Refused(f"{what} already exists: {rule}; nothing was written")
    if found is not None:
        raise Refused(
            f"{found!r} lies where {what} would go (SQLite would replay it): {rule}; nothing was written"
        )


def _contents(conn: sqlite3.Connection, path: str) -> Report:
    """What a copy holds, its chain re-walked; the size once it has its name."""
    changes, events, verdict = files.survey(conn)
    return Report(path, 0, changes, events, verdict, None)


class _writing:
    """A file system's refusal while writing `path` (no folder, read-only, full) as one line."""

    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        self.path = path

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        if isinstance(exc, OSError):
            reason = exc.strerror or str(exc)
            raise StoreError(f"cannot write {self.path!r}: {reason}; nothing was written") from None
