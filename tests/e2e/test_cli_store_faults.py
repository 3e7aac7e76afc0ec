"""Issue 11, the store's faults at the command line: each is one line and an exit code, never a
traceback, a store made by a read, or a password (SPEC §6, §9, §11 "Limits").

Read-only commands never create a store and work on an auditor's read-only copy; a read-only,
damaged or head-less store refuses writes in one line; client mode and bad store URLs name the
setting, never its secret.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from support import query

if TYPE_CHECKING:
    from conftest import Cli, Result

SECRET = "S3cretPW"
# Every read-only command, as a command line (audit export's --dir is filled in by the test).
READ_ONLY = [
    ("list",),
    ("show", "RFC-20260101000000-abcdef"),
    ("metrics",),
    ("audit", "verify"),
    ("audit", "log", "2026-01-01"),
    ("audit", "export", "--dir"),
    ("compliance", "report", "--framework", "soc2", "--period", "today"),
    ("cab", "agenda"),
    ("incidents", "list"),
    ("outbox", "list"),
    ("worker", "leases"),
    ("token", "list"),
    ("review", "overdue"),
]


def one_line(res: Result, code: int) -> str:
    """The error a failed run printed: exactly one line, no traceback."""
    assert res.code == code, (res.code, res.out, res.err)
    assert "Traceback" not in res.err
    assert len(res.err.splitlines()) == 1, res.err
    return res.err


def _execute(db: Path | str, *statements: str) -> None:
    """Statements run by hand on the store, as an operator with a SQL shell would."""
    if str(db).startswith("postgresql://"):
        import psycopg

        with psycopg.connect(str(db), autocommit=True) as conn:
            for sql in statements:
                conn.execute(sql)
        return
    embedded = sqlite3.connect(db, isolation_level=None)
    try:
        for sql in statements:
            embedded.execute(sql)
    finally:
        embedded.close()


@contextlib.contextmanager
def read_only(*paths: Path) -> Iterator[None]:
    """Make files and folders read-only for this process. Root ignores permissions, so as root
    `chattr +i` (immutable, even for root); the flags come off whatever happens."""
    done: list[Path] = []
    try:
        for path in paths:
            if os.geteuid() == 0:
                res = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True, check=False)
                if res.returncode != 0:
                    pytest.skip(f"chattr +i does not work on this filesystem ({res.stderr.strip()})")
            else:
                path.chmod(path.stat().st_mode & ~0o222)
            done.append(path)
        yield
    finally:
        for path in reversed(done):
            if os.geteuid() == 0:
                subprocess.run(["chattr", "-i", str(path)], check=False)
            else:
                path.chmod(path.stat().st_mode | 0o200)


@pytest.fixture
def plain(tmp_path: Path, cli_factory: Callable[[Path], Cli]) -> Cli:
    """The console script for tests where the store is beside the point (it is never reached)."""
    return cli_factory(tmp_path / "plain")


# --- read-only commands never create a store ---------------------------------------------------


@pytest.mark.parametrize("command", READ_ONLY, ids=" ".join)
def test_a_read_only_command_on_a_missing_store_says_so_and_creates_nothing(
    plain: Cli, tmp_path: Path, command: tuple[str, ...]
) -> None:
    typo = tmp_path / "typo" / "dir" / "db.sqlite"
    args = (*command, str(tmp_path / "export")) if command[-1] == "--dir" else command
    err = one_line(plain(*args, env={"CORTEX_CHANGE_DB": str(typo)}), 5)
    assert f"the database '{typo}' does not exist" in err
    assert not (tmp_path / "typo").exists()
    assert not (tmp_path / "export").exists()


def test_config_show_needs_no_store_and_a_write_creates_the_store_with_its_folders(
    plain: Cli, tmp_path: Path
) -> None:
    typo = tmp_path / "typo" / "dir" / "db.sqlite"
    env = {"CORTEX_CHANGE_DB": str(typo)}
    assert str(typo) in plain.ok("config", "show", env=env)
    assert not (tmp_path / "typo").exists()
    change_id = plain.create("normal", "deployment", "First", env=env)
    assert typo.is_file()
    assert change_id in plain.ok("list", env=env)


def test_a_read_only_command_on_a_store_never_written_creates_no_tables(cli: Cli) -> None:
    """SQLite: the file does not exist; PostgreSQL: the database exists but holds no store."""
    err = one_line(cli("list"), 5)
    if str(cli.db).startswith("postgresql://"):
        assert "holds no cortex-change store" in err
        assert query(cli.db, "SELECT to_regclass('schema_version') IS NULL") == [(True,)]
    else:
        assert "does not exist" in err
        assert not Path(cli.db).exists()
    assert "commands that write create it" in err
    cli.create("normal", "deployment", "First")
    assert len(cli.ok("list").splitlines()) == 2


def test_an_empty_store_location_is_an_error_naming_the_key(plain: Cli) -> None:
    err = one_line(plain("list", env={"CORTEX_CHANGE_DB": ""}), 2)
    assert err.startswith("cortex-change: CORTEX_CHANGE_DB: is set but empty")
    one_line(plain("create", "normal", "deployment", "x", "--as", "alice", env={"CORTEX_CHANGE_DB": " "}), 2)
    assert not (plain.cwd / "xdg").exists()  # not the default location either


# --- an auditor's read-only copy -----------------------------------------------------------------


@pytest.fixture
def sqlite_cli(tmp_path: Path, cli_factory: Callable[[Path], Cli]) -> Cli:
    """These tests copy and damage the SQLite file: the embedded store only."""
    cli = cli_factory(tmp_path / "main")
    first = cli.create("normal", "deployment", "Deploy")
    cli.ok("assess", first)
    cli.ok("approve", first, "tech-lead", "ok")
    return cli


def _events(cli: Cli, db: Path) -> int:
    out = cli.ok("audit", "verify", env={"CORTEX_CHANGE_DB": str(db)})
    return int(out.split(": ")[1].split()[0])  # "audit chain intact: N events verified; head …"


def test_audit_verify_reads_a_read_only_copy_in_a_read_only_folder(sqlite_cli: Cli, tmp_path: Path) -> None:
    """Closed cleanly, the store is one file: no -wal, no -shm, and none can be made beside it."""
    copy = tmp_path / "audit" / "cortex-change.db"
    copy.parent.mkdir()
    shutil.copy(sqlite_cli.db, copy)
    assert not Path(f"{sqlite_cli.db}-wal").exists()
    expected = len(sqlite_cli.events())
    env = {"CORTEX_CHANGE_DB": str(copy)}
    with read_only(copy, copy.parent):
        assert _events(sqlite_cli, copy) == expected
        assert "Deploy" in sqlite_cli.ok("list", env=env)
        assert (
            sqlite_cli.ok("audit", "log", sqlite_cli.events()[0]["at"][:10], env=env).count("\n") == expected
        )
        err = one_line(sqlite_cli("create", "normal", "deployment", "x", "--as", "alice", env=env), 5)
        assert f"cannot open the database '{copy}'" in err
        assert "read-only for this user" in err
    assert sorted(p.name for p in copy.parent.iterdir()) == ["cortex-change.db"]


def test_audit_verify_reads_the_write_ahead_log_of_a_read_only_copy(sqlite_cli: Cli, tmp_path: Path) -> None:
    """Copied while another process had it open, the store's latest events are in its -wal file
    only: read-only, they are read through the -shm file, not missed."""
    reader = sqlite3.connect(sqlite_cli.db, isolation_level=None)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM audit_events").fetchone()  # holds the log: no checkpoint
        late = sqlite_cli.create("normal", "deployment", "Written to the log only")
        copy = tmp_path / "audit" / "cortex-change.db"
        copy.parent.mkdir()
        for suffix in ("", "-wal", "-shm"):
            shutil.copy(f"{sqlite_cli.db}{suffix}", f"{copy}{suffix}")
    finally:
        reader.close()
    expected = len(sqlite_cli.events())
    main_file = sqlite3.connect(f"file:{copy}?immutable=1", uri=True)  # the main file alone
    assert main_file.execute("SELECT count(*) FROM audit_events").fetchone()[0] < expected
    main_file.close()
    files = [copy, Path(f"{copy}-wal"), Path(f"{copy}-shm")]
    with read_only(*files, copy.parent):
        assert _events(sqlite_cli, copy) == expected
        assert late in sqlite_cli.ok("list", env={"CORTEX_CHANGE_DB": str(copy)})
    # Without the -shm file, in a folder where none can be made, the log cannot be read: refused.
    Path(f"{copy}-shm").unlink()
    with read_only(copy, Path(f"{copy}-wal"), copy.parent):
        err = one_line(sqlite_cli("audit", "verify", env={"CORTEX_CHANGE_DB": str(copy)}), 5)
        assert "write-ahead log" in err


# --- faults that printed a traceback -------------------------------------------------------------


def test_a_read_only_database_file_refuses_a_write_in_one_line(sqlite_cli: Cli) -> None:
    before = sqlite_cli.counts()
    db = Path(sqlite_cli.db)
    with read_only(db):
        err = one_line(sqlite_cli("create", "normal", "deployment", "x", "--as", "alice"), 5)
        assert f"the database '{db}' cannot be used: attempt to write a readonly database" in err
        assert "Deploy" in sqlite_cli.ok("list")  # reading still works
    assert sqlite_cli.counts() == before


def test_a_damaged_database_is_one_line_on_every_command(sqlite_cli: Cli) -> None:
    for n in range(12):  # the changes table's root is then an interior page: every read crosses it
        sqlite_cli.create("normal", "deployment", f"Deploy {n}", "x" * 900)
    change_id = sqlite_cli.ok("list").splitlines()[1].split()[0]
    with open(sqlite_cli.db, "r+b") as fh:  # the header stays valid; page 3 does not
        fh.seek(8192)
        fh.write(b"\xde\xad\xbe\xef")
    for args in (
        ("list",),
        ("show", change_id),
        ("compliance", "report", "--framework", "soc2", "--period", "today"),
        ("create", "normal", "deployment", "x", "--as", "alice"),
        ("assess", change_id),
    ):
        err = one_line(sqlite_cli(*args), 5)
        assert "database disk image is malformed (the file is damaged" in err, (args, err)
        assert f"'{sqlite_cli.db}'" in err


def test_a_removed_audit_head_breaks_the_chain_and_refuses_every_write(cli: Cli) -> None:
    change_id = cli.create("normal", "deployment", "Deploy")
    cli.ok("assess", change_id)
    events = len(cli.events())
    if str(cli.db).startswith("postgresql://"):
        _execute(
            cli.db, "ALTER TABLE audit_head DISABLE TRIGGER audit_head_no_delete", "DELETE FROM audit_head"
        )
    else:
        _execute(cli.db, "DROP TRIGGER audit_head_no_delete", "DELETE FROM audit_head")
    verdict = one_line(cli("audit", "verify"), 1)
    assert f"audit chain BROKEN after {events} good events: the audit head is missing" in verdict
    for args in (
        ("create", "normal", "deployment", "x", "--as", "alice"),
        ("approve", change_id, "tech-lead", "ok"),
        ("cancel", change_id, "not now", "--as", "alice"),
    ):
        err = one_line(cli(*args), 5)
        assert "the audit head is missing" in err
        assert "run `audit verify`" in err
    assert cli.counts() == (1, events)
    assert query(cli.db, "SELECT count(*) FROM audit_head") == [(0,)]  # never silently recreated
    assert cli.show(change_id)["state"] == "pending_approval"
    report = cli.ok("compliance", "report", "--framework", "soc2", "--period", "today", "--format", "json")
    assert '"ok": false' in report


# --- secrets: the client's token, the store's URL ------------------------------------------------


@pytest.mark.parametrize("token", [f"cc_{SECRET}\nInjected: header", f"cc_{SECRET} x", f"cc_{SECRET}é"])
def test_a_token_that_cannot_be_a_header_is_named_never_shown(plain: Cli, token: str) -> None:
    env = {"CORTEX_CHANGE_URL": "http://127.0.0.1:1", "CORTEX_CHANGE_TOKEN": token}
    res = plain("list", env=env)
    err = one_line(res, 2)
    assert err.startswith("cortex-change: CORTEX_CHANGE_TOKEN: is not a token")
    assert SECRET not in res.out + res.err


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:1/\nx", "http://exa mple/", "http://[::1/", "http://h:port/"]
)
def test_a_server_url_that_does_not_parse_is_bad_input(plain: Cli, url: str) -> None:
    res = plain(
        "show", "RFC-20260101000000-abcdef", env={"CORTEX_CHANGE_URL": url, "CORTEX_CHANGE_TOKEN": "cc_x"}
    )
    assert one_line(res, 2).startswith("cortex-change: CORTEX_CHANGE_URL: ")


# Nothing listens on port 1: the connection is refused (exit 5) once the URL parses.
BAD_URLS = [
    (f"postgresql://postgres:{SECRET}@[::1", 2),
    (f"postgresql://postgres@127.0.0.1:1/x?password={SECRET}", 5),
    (f"postgresql://postgres@127.0.0.1:1/x?sslmode=disable&sslpassword={SECRET}", 5),
    (f"postgresql://postgres:{SECRET}@127.0.0.1:1/x", 5),
    (f"postgresql://postgres:{SECRET}%zz@127.0.0.1:1/x", 5),  # libpq echoes a token it cannot decode
    (f"postgresql://postgres:S3c@{SECRET}@127.0.0.1:1/x", 5),  # an unescaped @ in the password
    (f"mysql://root:{SECRET}@127.0.0.1/x", 2),
]


@pytest.mark.parametrize(("url", "code"), BAD_URLS)
def test_a_bad_store_url_never_prints_its_password(plain: Cli, url: str, code: int) -> None:
    env = {"CORTEX_CHANGE_DB": url}
    for args in (("list",), ("create", "normal", "deployment", "x", "--as", "alice"), ("audit", "verify")):
        res = plain(*args, env=env)
        one_line(res, code)
        assert SECRET not in res.out + res.err, (args, res.err)
        assert "CORTEX_CHANGE_DB" in res.err or "cannot open the database postgresql://" in res.err
    shown = plain("config", "show", "--json", env=env)
    assert SECRET not in shown.out + shown.err
    if code == 5:
        assert shown.code == 0, shown.err
        assert "***" in shown.out
