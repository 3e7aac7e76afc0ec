"""Migrations: numbered files, recorded in schema_version, idempotent, safe on concurrent first use."""

from __future__ import annotations

import multiprocessing
import re
import sqlite3
import subprocess
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from cortex_change.store import db as store_db
from cortex_change.store.audit import GENESIS
from cortex_change.store.db import LATEST_VERSION, Database, migrate

if TYPE_CHECKING:
    from multiprocessing.synchronize import Barrier

    from conftest import Cli

# fork is quick (no re-import); each racer still opens its own database connection.
START_METHOD = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"

MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
TABLES = {"schema_version", "changes", "change_services", "audit_events", "audit_head"}
AUDIT_TRIGGERS = {"audit_events_no_update", "audit_events_no_delete", "audit_head_forward_only"}


def _migration_files(dialect: str = "sqlite") -> list[str]:
    root = resources.files("cortex_change.store") / "migrations"
    return sorted(
        e.name for d in (dialect, "common") for e in (root / d).iterdir() if e.name.endswith(".sql")
    )


def _schema(path: Path) -> list[tuple[str, str, str]]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY type, name").fetchall()
    finally:
        conn.close()
    return [(str(t), str(n), str(s)) for t, n, s in rows]


def _versions(path: Path) -> list[int]:
    conn = sqlite3.connect(path)
    try:
        return [int(r[0]) for r in conn.execute("SELECT version FROM schema_version ORDER BY version")]
    finally:
        conn.close()


@pytest.fixture
def cli(tmp_path: Path, cli_factory: Callable[[Path], Cli]) -> Cli:
    """Migrations of the SQLite file, created and damaged by hand: the embedded store only."""
    return cli_factory(tmp_path)


def test_latest_version_is_the_newest_migration_file() -> None:
    names = _migration_files()
    assert names, "no migration files found in the package"
    numbers = []
    for name in names:
        m = MIGRATION_NAME.match(name)
        assert m, f"{name} is not named NNNN_description.sql"
        numbers.append(int(m.group(1)))
    assert numbers == list(range(1, len(numbers) + 1)), "migrations are numbered 1, 2, 3, ... without gaps"
    assert max(numbers) == LATEST_VERSION


def test_postgres_numbering_matches_too() -> None:
    matches = [MIGRATION_NAME.match(n) for n in _migration_files("postgres")]
    assert all(matches)
    assert [int(m.group(1)) for m in matches if m] == list(range(1, LATEST_VERSION + 1))


def test_new_database_gets_every_migration(db_path: Path) -> None:
    Database(str(db_path)).close()
    assert _versions(db_path) == list(range(1, LATEST_VERSION + 1))
    names = {n for t, n, _ in _schema(db_path) if t == "table"}
    assert names >= TABLES
    triggers = {n for t, n, _ in _schema(db_path) if t == "trigger"}
    assert triggers >= AUDIT_TRIGGERS
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("SELECT id, seq, hash FROM audit_head").fetchall() == [(1, 0, GENESIS)]
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        conn.close()


def test_migrations_are_idempotent(db_path: Path) -> None:
    Database(str(db_path)).close()
    schema, versions = _schema(db_path), _versions(db_path)
    for _ in range(2):
        Database(str(db_path)).close()
    conn = sqlite3.connect(db_path, isolation_level=None)
    try:
        migrate(conn)
        migrate(conn)
    finally:
        conn.close()
    assert _schema(db_path) == schema
    assert _versions(db_path) == versions


def test_an_older_database_is_upgraded_keeping_its_data(db_path: Path) -> None:
    """A file made by the first release (migration 1 only) is brought up to date on open."""
    first = (
        resources.files("cortex_change.store") / "migrations" / "sqlite" / _migration_files()[0]
    ).read_text("utf-8")
    db_path.parent.mkdir(parents=True)
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.executescript(
        "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL);\n"
        f"{first}\nINSERT INTO schema_version VALUES (1, '2026-01-01T00:00:00Z');\n"
        "INSERT INTO changes (change_id, version, state, type, category, requested_by, created_at, "
        "title, doc) "
        "VALUES ('RFC-20260101000000-000001', 1, 'pending_assessment', 'normal', 'patch', 'a', 0, 't', '{}');"
    )
    conn.close()

    Database(str(db_path)).close()

    assert _versions(db_path) == list(range(1, LATEST_VERSION + 1))
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("SELECT change_id FROM changes").fetchall() == [("RFC-20260101000000-000001",)]
    finally:
        conn.close()


def test_a_failing_migration_is_rolled_back_and_reported(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A broken migration leaves the schema version where it was and raises."""
    good = store_db._migrations()
    broken = [*good, (LATEST_VERSION + 1, "CREATE TABLE extra (x INTEGER);\nTHIS IS NOT SQL;")]
    monkeypatch.setattr(store_db, "_migrations", lambda: broken)
    monkeypatch.setattr(store_db, "LATEST_VERSION", LATEST_VERSION + 1)
    with pytest.raises(store_db.StoreError, match='near "THIS": syntax error'):
        Database(str(db_path))
    assert _versions(db_path) == list(range(1, LATEST_VERSION + 1))
    assert "extra" not in {n for _, n, _ in _schema(db_path)}


def _open_at_once(barrier: Barrier, path: str) -> None:
    barrier.wait(timeout=60)
    database = Database(path)
    with database.read() as tx:
        assert tx.one("SELECT count(*) FROM changes") == (0,)
    database.close()


def test_concurrent_first_use_by_several_processes(db_path: Path) -> None:
    mp = multiprocessing.get_context(START_METHOD)
    n = 6
    barrier = mp.Barrier(n)
    procs = [mp.Process(target=_open_at_once, args=(barrier, str(db_path))) for _ in range(n)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=120)
    assert [p.exitcode for p in procs] == [0] * n
    assert _versions(db_path) == list(range(1, LATEST_VERSION + 1))


def test_concurrent_first_use_by_the_console_script(cli: Cli) -> None:
    assert not cli.db.exists()
    procs = [
        subprocess.Popen(
            cli.command("create", "normal", "deployment", f"First use {n}", "--as", "alice"),
            env=cli.environment(),
            cwd=cli.cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for n in range(6)
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
        assert out.decode().startswith("RFC-")
    assert len(cli.ok("list").splitlines()) == 6 + 1  # a header and the six
    assert _versions(cli.db) == list(range(1, LATEST_VERSION + 1))


def test_unusable_database_exits_5(cli: Cli, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not an sqlite file" * 100)
    for target in (str(garbage), str(tmp_path), "/proc/no-such-dir/x.db"):
        res = cli("list", env={"CORTEX_CHANGE_DB": target})
        assert res.code == 5, (target, res.err)
        assert len(res.err.splitlines()) == 1
        assert "Traceback" not in res.err
    assert garbage.read_bytes() == b"this is not an sqlite file" * 100


def test_a_database_newer_than_the_program_is_refused(cli: Cli, db_path: Path) -> None:
    Database(str(db_path)).close()
    conn = sqlite3.connect(db_path)
    conn.execute(
        "INSERT INTO schema_version (version, applied_at) VALUES (?, 'later')", (LATEST_VERSION + 1,)
    )
    conn.commit()
    conn.close()
    with pytest.raises(store_db.StoreError, match=f"version {LATEST_VERSION + 1}, newer than this program"):
        Database(str(db_path))
    res = cli("--db", str(db_path), "list")
    assert res.code == 5
    assert "upgrade cortex-change" in res.err
