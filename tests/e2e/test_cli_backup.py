"""Issue 18, backups: `backup FILE` copies the embedded store while writers run (one consistent
snapshot through SQLite's online backup API), `restore FILE` puts a checked copy where no store is
yet; PostgreSQL is pg_dump's (docs/backup.md). Bad input is one line and writes nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from cortex_change.store.db import LATEST_VERSION, migration_scripts
from support import fresh_database, query

if TYPE_CHECKING:
    from conftest import Cli, Result

HEAD = "audit chain intact: "


def one_line(res: Result, code: int) -> str:
    """The error a failed run printed: exactly one line, no traceback."""
    assert res.code == code, (res.code, res.out, res.err)
    assert "Traceback" not in res.err
    assert len(res.err.splitlines()) == 1, res.err
    assert res.out == ""
    return res.err


def _head(verify_output: str) -> str:
    """The head hash `audit verify` (or backup / restore) printed."""
    assert HEAD in verify_output, verify_output
    return verify_output.rsplit("head ", 1)[1].split(maxsplit=1)[0]


def _listing(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file in a folder with its bytes and mtime: what "nothing written" compares."""
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir()) if p.is_file()}


def _populate(cli: Cli) -> list[str]:
    """Changes in several states, a refusal, a token: a store with something of everything."""
    done = cli.create("normal", "deployment", "Ship it")
    cli.ok("assess", done)
    cli.ok("approve", done, "tech-lead", "ok")
    cli.ok("implement", done, "--as", "ops")
    cli.ok("close", done, "successful", "done", "--as", "ops")
    waiting = cli.create("normal", "security", "Rotate keys", requester="bob")
    cli.ok("assess", waiting)
    assert cli("approve", waiting, "bob", "self").code == 1  # refused, audited
    fresh = cli.create("normal", "documentation", "Fix a typo", "--impact", "low")
    cli.ok("token", "create", "deployer")
    return [done, waiting, fresh]


@pytest.fixture(scope="module")
def template(
    tmp_path_factory: pytest.TempPathFactory, cli_factory: Callable[[Path], Cli]
) -> tuple[Cli, list[str]]:
    """A populated store and its backup, made once (the CLI costs seconds); tests take copies."""
    cli = cli_factory(tmp_path_factory.mktemp("template"))
    ids = _populate(cli)
    cli.ok("backup", str(Path(cli.db).parent / "template.backup"))
    return cli, ids


@pytest.fixture
def source(
    template: tuple[Cli, list[str]], tmp_path: Path, cli_factory: Callable[[Path], Cli]
) -> tuple[Cli, list[str]]:
    """A copy of the template's store of this test's own (no process has the template open: one file)."""
    made, ids = template
    cli = cli_factory(tmp_path / "source")
    Path(cli.db).parent.mkdir(parents=True)
    for suffix in ("", "-wal"):
        if Path(f"{made.db}{suffix}").exists():
            shutil.copy(f"{made.db}{suffix}", f"{cli.db}{suffix}")
    return cli, ids


@pytest.fixture
def backup_file(template: tuple[Cli, list[str]], tmp_path: Path) -> Path:
    """A copy of the template's backup, in a folder of its own."""
    made, _ = template
    target = tmp_path / "backups" / "cortex.backup"
    target.parent.mkdir()
    shutil.copy(Path(made.db).parent / "template.backup", target)
    os.chmod(target, 0o600)
    return target


# --- backup, then restore ---------------------------------------------------------------------


def test_backup_then_restore_gives_the_same_store(source: tuple[Cli, list[str]], tmp_path: Path) -> None:
    cli, ids = source
    head = _head(cli.ok("audit", "verify"))
    changes, events = cli.counts()
    (tmp_path / "backups").mkdir()
    target = tmp_path / "backups" / "cortex.backup"

    out = cli.ok("backup", str(target))

    assert out.count("\n") == 1, out
    assert (
        f"backed up to {target}: {target.stat().st_size} bytes, {changes} changes, {events} audit events"
        in out
    )
    assert _head(out) == head
    assert os.listdir(target.parent) == ["cortex.backup"]  # one self-contained file, no temp left
    assert target.stat().st_mode & 0o777 == 0o600  # token hashes inside: the owner's only
    assert query(target, "PRAGMA journal_mode")[0][0] == "delete"  # needs no -wal beside it

    restored = tmp_path / "restored" / "store.db"
    out = cli.ok("--db", str(restored), "restore", str(target))

    assert out.startswith(f"restored {target} to {restored}: "), out
    assert f"{changes} changes, {events} audit events" in out
    assert _head(out) == head
    other = cli.__class__(restored, cli.cwd)
    assert _head(other.ok("audit", "verify")) == head
    assert other.counts() == (changes, events)
    for change_id in ids:
        assert other.show(change_id) == cli.show(change_id)
    for state in ("pending", "approved", "closed"):
        assert other.ok("list", state) == cli.ok("list", state)
    assert other.ok("token", "list") == cli.ok("token", "list")
    assert query(restored, "PRAGMA journal_mode")[0][0] == "wal"  # a store as any other
    # The restored store is in use like any other: it takes writes and the chain goes on.
    other.ok("assess", ids[2])
    assert HEAD in other.ok("audit", "verify")


def test_restore_into_the_default_location(
    backup_file: Path, tmp_path: Path, source: tuple[Cli, list[str]]
) -> None:
    """No --db, no CORTEX_CHANGE_DB: the store goes where every command would look for it."""
    cli, ids = source
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in cli.environment().items() if k != "CORTEX_CHANGE_DB"}
    env["XDG_DATA_HOME"] = str(home / "xdg")
    run = subprocess.run(
        [cli.path, "restore", str(backup_file)],
        env=env,
        cwd=cli.cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    default = home / "xdg" / "cortex-change" / "cortex-change.db"
    assert f"to {default}:" in run.stdout
    shown = subprocess.run(
        [cli.path, "show", ids[0]], env=env, cwd=cli.cwd, capture_output=True, text=True, check=True
    )
    assert json.loads(shown.stdout) == cli.show(ids[0])


# --- backup while writers run -----------------------------------------------------------------

WRITER = r"""
import contextlib, io, os, sys
from cortex_change.cli.main import main

def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    if code != 0:
        sys.exit(f"{argv} exited {code}: {err.getvalue()}")
    return out.getvalue().strip()

stop, name = sys.argv[1], sys.argv[2]
n = 0
while not os.path.exists(stop):
    change_id = run("create", "normal", "documentation", f"{name}-{n}", "d", "--impact", "low", "--as", name)
    run("assess", change_id)  # auto-approved: `assessed` and `approved` in one transaction
    n += 1
print(n)
"""


@pytest.fixture
def writers(source: tuple[Cli, list[str]], tmp_path: Path) -> Iterator[Callable[[], list[int]]]:
    """Three processes filing and assessing changes in a loop on the source store until stopped."""
    cli, _ = source
    stop = tmp_path / "stop-writers"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(stop), f"writer{n}"],
            env=cli.environment(),
            cwd=cli.cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(3)
    ]

    def finish() -> list[int]:
        stop.touch()
        done = []
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
            done.append(int(out))
        return done

    try:
        yield finish
    finally:
        stop.touch()
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _wait_for_changes(cli: Cli, at_least: int) -> int:
    deadline = time.monotonic() + 60
    while (count := cli.counts()[0]) < at_least:
        assert time.monotonic() < deadline, f"the writers filed {count} changes in 60 s"
        time.sleep(0.05)
    return count


def _trails(db: Path) -> dict[str, list[tuple[int, str, str]]]:
    trails: dict[str, list[tuple[int, str, str]]] = {}
    for seq, change_id, action, digest in query(
        db, "SELECT seq, change_id, action, hash FROM audit_events WHERE change_id IS NOT NULL ORDER BY seq"
    ):
        trails.setdefault(change_id, []).append((seq, action, digest))
    return trails


def _records(db: Path) -> dict[str, tuple[int, str, str]]:
    return {
        r[0]: (int(r[1]), r[2], r[3]) for r in query(db, "SELECT change_id, version, state, doc FROM changes")
    }


def test_a_backup_under_concurrent_writers_restores_to_a_verifiable_prefix(
    source: tuple[Cli, list[str]], writers: Callable[[], list[int]], tmp_path: Path
) -> None:
    cli, _ = source
    (tmp_path / "backups").mkdir()
    before = _wait_for_changes(cli, 10)
    targets = []
    for n in range(4):
        target = tmp_path / "backups" / f"during-{n}.backup"
        out = cli.ok("backup", str(target))
        assert HEAD in out
        targets.append(target)
        _wait_for_changes(cli, cli.counts()[0] + 3)  # writes go on while and between backups
    filed = writers()
    assert sum(filed) > 0
    assert cli.counts()[0] > before
    original = Path(cli.db)
    final_trails, final_records = _trails(original), _records(original)
    final_chain = query(original, "SELECT seq, hash FROM audit_events ORDER BY seq")
    sizes = []

    for n, target in enumerate(targets):
        restored = tmp_path / f"restored-{n}" / "store.db"
        out = cli.ok("--db", str(restored), "restore", str(target))
        copy = cli.__class__(restored, cli.cwd)
        verified = copy.ok("audit", "verify")
        assert _head(verified) == _head(out)
        changes, events = copy.counts()
        sizes.append(changes)
        assert f"{changes} changes, {events} audit events" in out
        # The copy's chain is the start of the store's chain, the same events with the same hashes.
        chain = query(restored, "SELECT seq, hash FROM audit_events ORDER BY seq")
        assert chain == final_chain[: len(chain)]
        trails, records = _trails(restored), _records(restored)
        # Every change has its whole trail, and every trail its change: writes are all or nothing.
        assert set(trails) == set(records)
        for change_id, (version, state, doc) in records.items():
            trail = trails[change_id]
            assert trail == final_trails[change_id][: len(trail)]
            if len(trail) == len(final_trails[change_id]):
                assert (version, state, doc) == final_records[change_id]
            else:  # a writer's change caught between its two transactions
                assert [action for _, action, _ in trail] == ["created"], trail
                assert (version, state) == (1, "pending_assessment")
    assert sizes == sorted(sizes)  # later backups hold more
    assert sizes[0] >= before


# --- refusals: nothing written ----------------------------------------------------------------


def test_restore_over_an_existing_store_is_refused_and_changes_nothing(
    source: tuple[Cli, list[str]], backup_file: Path
) -> None:
    cli, _ = source
    folder = Path(cli.db).parent
    before = _listing(folder)

    err = one_line(cli("restore", str(backup_file)), 1)

    assert f"the store {str(cli.db)!r} already exists" in err
    assert "nothing was written" in err
    assert _listing(folder) == before  # the store, its -wal and -shm: same bytes, same mtimes
    assert HEAD in cli.ok("audit", "verify")


def test_restore_beside_a_stale_write_ahead_log_is_refused(
    backup_file: Path, tmp_path: Path, source: tuple[Cli, list[str]]
) -> None:
    """A -wal left where the store would go would be replayed into the restored file."""
    cli, _ = source
    folder = tmp_path / "stale"
    folder.mkdir()
    (folder / "store.db-wal").write_bytes(b"left over")
    before = _listing(folder)

    err = one_line(cli("--db", str(folder / "store.db"), "restore", str(backup_file)), 1)

    assert "store.db-wal" in err and "nothing was written" in err
    assert _listing(folder) == before


def test_a_backup_never_replaces_a_file(source: tuple[Cli, list[str]], backup_file: Path) -> None:
    cli, _ = source
    cli.create("normal", "deployment", "After the backup")
    before = _listing(backup_file.parent)

    err = one_line(cli("backup", str(backup_file)), 1)

    assert f"the backup file {str(backup_file)!r} already exists" in err
    assert _listing(backup_file.parent) == before


def test_a_backup_into_a_missing_folder_is_one_line(source: tuple[Cli, list[str]], tmp_path: Path) -> None:
    cli, _ = source
    target = tmp_path / "no-such-folder" / "x.backup"
    err = one_line(cli("backup", str(target)), 5)
    assert f"cannot write {str(target)!r}" in err and "nothing was written" in err
    assert not target.parent.exists()


def test_a_backup_of_no_store_creates_none(tmp_path: Path, cli_factory: Callable[[Path], Cli]) -> None:
    cli = cli_factory(tmp_path / "empty")
    err = one_line(cli("backup", str(tmp_path / "x.backup")), 5)
    assert "does not exist" in err
    assert not Path(cli.db).exists()
    assert not (tmp_path / "x.backup").exists()


def _not_sqlite(folder: Path, backup: Path) -> Path:
    path = folder / "notes.txt"
    path.write_text("these are not the droids you are looking for\n" * 100)
    return path


def _foreign_sqlite(folder: Path, backup: Path) -> Path:
    path = folder / "other.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE things (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO things (name) VALUES ('a')")
    conn.commit()
    conn.close()
    return path


def _truncated(folder: Path, backup: Path) -> Path:
    path = folder / "truncated.backup"
    data = backup.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    return path


def _scrambled(folder: Path, backup: Path) -> Path:
    """Pages overwritten in the middle, the header intact: only a check of the whole file sees it."""
    path = folder / "scrambled.backup"
    data = bytearray(backup.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    for n in range(2, len(data) // page, 3):
        data[n * page + 8 : n * page + 200] = os.urandom(192)
    path.write_bytes(bytes(data))
    return path


def _empty(folder: Path, backup: Path) -> Path:
    path = folder / "empty.backup"
    path.write_bytes(b"")
    return path


def _missing(folder: Path, backup: Path) -> Path:
    return folder / "no-such.backup"


def _folder(folder: Path, backup: Path) -> Path:
    path = folder / "a-folder"
    path.mkdir()
    return path


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (_missing, "does not exist"),
        (_folder, "is a folder"),
        (_empty, "is not an SQLite database"),
        (_not_sqlite, "is not an SQLite database"),
        (_foreign_sqlite, "is an SQLite database but not a cortex-change store"),
        (_truncated, "is damaged"),
        (_scrambled, "is damaged"),
    ],
)
def test_restore_of_what_is_not_a_good_backup_is_one_line_and_writes_nothing(
    backup_file: Path,
    tmp_path: Path,
    cli_factory: Callable[[Path], Cli],
    make: Callable[..., Path],
    says: str,
) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    path = make(bad, backup_file)
    before = _listing(bad)
    cli = cli_factory(tmp_path / "target")
    target = tmp_path / "target" / "new" / "store.db"

    err = one_line(cli("--db", str(target), "restore", str(path)), 2)

    assert err.startswith(f"cortex-change: FILE: {str(path)!r} {says}"), err
    assert not target.parent.exists()  # not even its folder
    assert _listing(bad) == before  # the file itself untouched, nothing beside it


def test_restore_of_a_newer_schema_is_refused(
    backup_file: Path, tmp_path: Path, cli_factory: Callable[[Path], Cli]
) -> None:
    newer = tmp_path / "newer.backup"
    shutil.copy(backup_file, newer)
    conn = sqlite3.connect(newer)
    conn.execute("INSERT INTO schema_version (version, applied_at) VALUES (?, 'x')", (LATEST_VERSION + 1,))
    conn.commit()
    conn.close()
    cli = cli_factory(tmp_path / "target")

    err = one_line(cli("restore", str(newer)), 5)

    assert f"schema version {LATEST_VERSION + 1}, newer than this program knows" in err
    assert not Path(cli.db).parent.exists()


def test_restore_of_an_older_schema_upgrades_it(tmp_path: Path, cli_factory: Callable[[Path], Cli]) -> None:
    older = tmp_path / "older.backup"
    conn = sqlite3.connect(older, isolation_level=None)
    conn.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
    for version, sql in migration_scripts("sqlite"):
        if version < LATEST_VERSION:
            conn.executescript(f"BEGIN;\n{sql}\nINSERT INTO schema_version VALUES ({version}, 'x');\nCOMMIT;")
    conn.close()
    cli = cli_factory(tmp_path / "target")

    out = cli.ok("restore", str(older))

    assert f"(schema upgraded from version {LATEST_VERSION - 1})" in out
    assert query(cli.db, "SELECT max(version) FROM schema_version")[0][0] == LATEST_VERSION
    change_id = cli.create("normal", "deployment", "On the upgraded store")
    cli.ok("assess", change_id)
    assert HEAD in cli.ok("audit", "verify")


def _break_chain(db: Path) -> None:
    conn = sqlite3.connect(db)
    conn.execute("DROP TRIGGER audit_events_no_update")
    conn.execute("UPDATE audit_events SET actor='mallory' WHERE seq=2")
    conn.commit()
    conn.close()


def test_a_backup_with_a_broken_chain_is_not_restored(
    backup_file: Path, tmp_path: Path, cli_factory: Callable[[Path], Cli]
) -> None:
    broken = tmp_path / "broken.backup"
    shutil.copy(backup_file, broken)
    _break_chain(broken)
    cli = cli_factory(tmp_path / "target")
    folder = Path(cli.db).parent
    folder.mkdir(parents=True, exist_ok=True)

    err = one_line(cli("restore", str(broken)), 1)

    assert "has a broken audit chain" in err and "event #2" in err and "nothing was restored" in err
    assert list(folder.iterdir()) == []  # no store, no temporary file


def test_a_store_with_a_broken_chain_is_backed_up_and_says_so(
    source: tuple[Cli, list[str]], tmp_path: Path
) -> None:
    cli, _ = source
    _break_chain(Path(cli.db))
    target = tmp_path / "evidence.backup"

    res = cli("backup", str(target))

    assert res.code == 1 and res.out == "" and len(res.err.splitlines()) == 1, res
    assert "audit chain BROKEN" in res.err and "the copy is kept" in res.err
    assert target.exists()  # a faithful copy is evidence


# --- PostgreSQL: pg_dump's ----------------------------------------------------------------------


@pytest.fixture
def pg_store(postgres_database: str) -> str:
    """A schema of its own in the run's PostgreSQL database (nothing created in it yet)."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_database, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return f"{postgres_database}?options=-csearch_path%3D{schema}"


def _tables(url: str) -> int:
    schema = url.rsplit("%3D", 1)[1]
    return int(
        query(url, "SELECT count(*) FROM information_schema.tables WHERE table_schema=?", (schema,))[0][0]
    )


def test_backup_and_restore_on_postgresql_point_at_pg_dump(
    pg_store: str, backup_file: Path, tmp_path: Path, cli_factory: Callable[[Path], Cli]
) -> None:
    cli = cli_factory(tmp_path / "pg")
    cli.db = pg_store
    cli.create("normal", "deployment", "On PostgreSQL")
    tables = _tables(pg_store)
    target = tmp_path / "pg.backup"

    err = one_line(cli("backup", str(target)), 1)
    assert "pg_dump -Fc" in err and "docs/backup.md" in err
    assert not target.exists()

    err = one_line(cli("restore", str(backup_file)), 1)
    assert "pg_restore" in err and "docs/backup.md" in err
    assert _tables(pg_store) == tables
    assert cli.counts()[0] == 1


@pytest.fixture
def pg_server() -> Iterator[Callable[[], str]]:
    """Makes empty databases on the test server (each dropped afterwards)."""
    with contextlib.ExitStack() as made:
        yield lambda: made.enter_context(fresh_database("cortex_backup"))


def test_the_documented_pg_dump_and_pg_restore_give_a_verifiable_store(
    pg_server: Callable[[], str], tmp_path: Path, cli_factory: Callable[[Path], Cli]
) -> None:
    dump_tool, restore_tool = shutil.which("pg_dump"), shutil.which("pg_restore")
    if dump_tool is None or restore_tool is None:
        pytest.skip("pg_dump / pg_restore are not installed here: the documented PostgreSQL way is not tried")
    cli = cli_factory(tmp_path / "pg")
    cli.db = pg_server()
    ids = _populate(cli)
    head = _head(cli.ok("audit", "verify"))
    dump = tmp_path / "cortex_change.dump"

    subprocess.run([dump_tool, "-Fc", "-f", str(dump), "-d", str(cli.db)], check=True, capture_output=True)
    empty = pg_server()
    subprocess.run([restore_tool, "--no-owner", "-d", empty, str(dump)], check=True, capture_output=True)

    copy = cli.__class__(empty, cli.cwd)
    assert _head(copy.ok("audit", "verify")) == head
    assert copy.counts() == cli.counts()
    for change_id in ids:
        assert copy.show(change_id) == cli.show(change_id)
    copy.ok("assess", ids[2])  # the restored database takes writes: triggers and head came along
    assert HEAD in copy.ok("audit", "verify")
