"""Shared fixtures: the real console script as a subprocess, an in-process context, row counts,
local servers (tests/support.py)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from cortex_change.config import KEYS_BY_NAME
from cortex_change.services.context import Context, open_context
from support import (
    TEST_IMPLEMENTERS,
    FakeClock,
    Garbage,
    HttpReceiver,
    SmtpServer,
    backend_store,
    fresh_database,
    query,
)

_BIN_DIR = str(Path(sys.executable).parent)
CLI_PATH = shutil.which("cortex-change", path=_BIN_DIR)
# Variables that would leak the developer's configuration into a test.
_SCRUBBED = {*KEYS_BY_NAME, "CORTEX_CHANGE_USER", "CORTEX_CHANGE_CONFIG"}


class Result(NamedTuple):
    """What one CLI run produced; unpacks as (returncode, stdout, stderr)."""

    code: int
    out: str
    err: str


def clean_env(
    db: Path | str, extra: Mapping[str, str] | None = None, home: Path | None = None
) -> dict[str, str]:
    """os.environ without any cortex-change setting, pointed at `db` (a file or a URL)."""
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    env["CORTEX_CHANGE_DB"] = str(db)
    env["XDG_DATA_HOME"] = str((home or Path(db).parent) / "xdg")
    env["IMPLEMENTERS"] = TEST_IMPLEMENTERS
    env.update(extra or {})
    return env


def count_rows(db: Path | str, table: str) -> int:
    """Rows in `table` (0 if the store or the table does not exist yet)."""
    if not str(db).startswith("postgresql://") and not Path(db).exists():
        return 0
    try:
        return int(query(db, f"SELECT count(*) FROM {table}")[0][0])
    except Exception as exc:  # sqlite3.OperationalError / psycopg UndefinedTable: not created yet
        if "no such table" in str(exc) or "does not exist" in str(exc):
            return 0
        raise


class Cli:
    """Runs `cortex-change` against one database file, from a directory without a TOML file."""

    def __init__(self, db: Path | str, cwd: Path) -> None:
        assert CLI_PATH is not None, f"cortex-change is not installed next to {sys.executable}"
        self.path = CLI_PATH
        self.db = db
        self.cwd = cwd
        self.env: dict[str, str] = {}

    def command(self, *args: str | bytes) -> list[str | bytes]:
        return [self.path, *args]

    def environment(self, env: Mapping[str, str] | None = None, user: str | None = None) -> dict[str, str]:
        full = clean_env(self.db, {**self.env, **(env or {})}, home=self.cwd)
        if user is not None:
            full["CORTEX_CHANGE_USER"] = user
        return full

    def __call__(
        self,
        *args: str | bytes,
        env: Mapping[str, str] | None = None,
        user: str | None = None,
        cwd: Path | None = None,
    ) -> Result:
        """Run one command; output is decoded exactly (no newline translation)."""
        proc = subprocess.run(
            self.command(*args),
            env=self.environment(env, user),
            cwd=cwd or self.cwd,
            capture_output=True,
            timeout=60,
            check=False,
        )
        return Result(proc.returncode, proc.stdout.decode("utf-8"), proc.stderr.decode("utf-8"))

    def ok(self, *args: str | bytes, **kw: Any) -> str:
        """Run a command that must succeed; returns stdout."""
        res = self(*args, **kw)
        assert res.code == 0, f"{args!r} exited {res.code}: {res.err}"
        return res.out

    def create(self, *args: str, requester: str = "alice", **kw: Any) -> str:
        """`create ARGS --as REQUESTER`; returns the new change id."""
        out = self.ok("create", *args, "--as", requester, **kw)
        lines = out.splitlines()
        assert len(lines) == 1, out
        return lines[0]

    def show(self, change_id: str) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self.ok("show", change_id))
        return doc

    def counts(self) -> tuple[int, int]:
        """(changes, audit events) in the database file."""
        return count_rows(self.db, "changes"), count_rows(self.db, "audit_events")

    def record(self, change_id: str) -> tuple[int, str]:
        """The stored (version, document) of a change, read directly."""
        rows = query(self.db, "SELECT version, doc FROM changes WHERE change_id=?", (change_id,))
        assert rows, change_id
        return int(rows[0][0]), str(rows[0][1])

    def events(self, change_id: str | None = None) -> list[dict[str, Any]]:
        """Audit rows (seq, action, actor, details) in chain order, read directly."""
        sql = "SELECT seq, change_id, action, actor, details, at FROM audit_events"
        params: tuple[str, ...] = ()
        if change_id is not None:
            sql += " WHERE change_id=?"
            params = (change_id,)
        rows = query(self.db, sql + " ORDER BY seq", params)
        return [
            {
                "seq": r[0],
                "change_id": r[1],
                "action": r[2],
                "actor": r[3],
                "details": json.loads(r[4]),
                "at": r[5],
            }
            for r in rows
        ]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "db" / "cortex-change.db"


@pytest.fixture
def cli(tmp_path: Path, store_url: str) -> Cli:
    """The real console script on a fresh store (SQLite, then PostgreSQL), from an empty directory."""
    work = tmp_path / "cwd"
    work.mkdir()
    return Cli(store_url if store_url.startswith("postgresql://") else Path(store_url), work)


@pytest.fixture(scope="session")
def cli_factory() -> Callable[[Path], Cli]:
    """Make a Cli for a directory (for module-scoped databases)."""

    def make(directory: Path) -> Cli:
        (directory / "cwd").mkdir(parents=True, exist_ok=True)
        return Cli(directory / "db" / "cortex-change.db", directory / "cwd")

    return make


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 1, 15, 9, 0, 0, tzinfo=UTC))


@pytest.fixture
def ctx(
    db_path: Path, clock: FakeClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Context]:
    """An in-process service context on `db_path`, driven by `clock`."""
    monkeypatch.chdir(tmp_path)  # no stray cortex-change.toml
    context = open_context(env={"CORTEX_CHANGE_DB": str(db_path)}, clock=clock)
    yield context
    context.close()


@pytest.fixture
def make_ctx(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: Callable[[], datetime], store_url: str
) -> Iterator[Callable[..., Context]]:
    """Contexts on one store (each backend in turn), driven by `clock`, with these settings; all
    closed at teardown."""
    monkeypatch.chdir(tmp_path)  # no stray cortex-change.toml
    opened: list[Context] = []

    def make(**env: str) -> Context:
        ctx = open_context(
            env={"CORTEX_CHANGE_DB": store_url, "IMPLEMENTERS": TEST_IMPLEMENTERS, **env}, clock=clock
        )
        opened.append(ctx)
        return ctx

    yield make
    for ctx in opened:
        ctx.close()


@pytest.fixture
def rows() -> Callable[[Path | str, str], int]:
    """count_rows(db, table) as a fixture."""
    return count_rows


# --- both backends ---------------------------------------------------------------------------
# Tests that take `store_url` run once on the embedded SQLite file and once on PostgreSQL
# (CORTEX_TEST_POSTGRES_URL, a server URL; each run creates its own database and drops it, each
# test gets its own schema). Without the variable the PostgreSQL runs skip, except under CI=true,
# where a missing server is a failure.


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    with fresh_database("cortex_test") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a test's store lives, on each backend in turn."""
    return backend_store(request, tmp_path)


# --- local servers ---------------------------------------------------------------------------

PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


@pytest.fixture
def direct(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy between the test and 127.0.0.1: urllib honours proxy variables, here and in the CLI
    subprocesses (which copy os.environ). Folders that need it use it from an autouse fixture."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    """An HTTP server that records every request and answers as the test sets it (200 "ok")."""
    with HttpReceiver() as srv:
        yield srv


@pytest.fixture
def smtp_server() -> Iterator[Callable[..., SmtpServer]]:
    """Starts SMTP servers (keyword arguments: aiosmtpd's Controller options); all stop at teardown."""
    with contextlib.ExitStack() as started:

        def start(**options: Any) -> SmtpServer:
            return started.enter_context(SmtpServer(**options))

        yield start


@pytest.fixture
def garbage() -> Iterator[Garbage]:
    """A TCP server that answers every request with something that is not HTTP."""
    with Garbage() as srv:
        yield srv
