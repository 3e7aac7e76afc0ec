"""The tamper-evident audit trail: verify, tampering by hand, the seed's log lines, export."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from cortex_change.store.audit import canonical, event_hash

if TYPE_CHECKING:
    from conftest import Cli

# TIMESTAMP | CHANGE_ID | ACTION | ACTOR | DETAILS
LOG_LINE = re.compile(
    r"^(\d{4}-\d{2}-\d{2})T\d{2}:\d{2}:\d{2}Z"
    r" \| (RFC-\d{14}-[0-9a-f]{6}|-) \| ([a-z_]+) \| ([^|]+) \| (\{.*\})$"
)
COLUMNS = "seq, event_id, at, change_id, action, actor, details, prev_hash, hash"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, cli_factory: Callable[[Path], Cli]) -> Cli:
    """A database with two changes' worth of events (one closed, one refused attempt)."""
    cli = cli_factory(tmp_path_factory.mktemp("audit-template"))
    first = cli.create("normal", "deployment", "Deploy | with pipes\nand a newline")
    cli.ok("assess", first)
    cli.ok("approve", first, "tech-lead", "ok")
    cli.ok("implement", first, "--as", "ops")
    cli.ok("close", first, "successful", "done", "--as", "ops")
    second = cli.create("normal", "security", "Rotate keys", requester="bob")
    cli.ok("assess", second)
    assert cli("approve", second, "bob", "self").code == 1
    assert len(cli.events()) == 11
    return cli


@pytest.fixture
def cli(tmp_path: Path, cli_factory: Callable[[Path], Cli]) -> Cli:
    """These tests damage the SQLite file by hand: the embedded store only."""
    return cli_factory(tmp_path)


@pytest.fixture
def audited(template: Cli, cli: Cli) -> Cli:
    """A private copy of the template database for a test to damage."""
    cli.db.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        source = Path(f"{template.db}{suffix}")
        if source.exists():
            shutil.copy(source, f"{cli.db}{suffix}")
    return cli


def _connect(db: Path) -> sqlite3.Connection:
    return sqlite3.connect(db, isolation_level=None)


def _row(conn: sqlite3.Connection, seq: int) -> tuple[object, ...]:
    row: tuple[object, ...] = conn.execute(
        f"SELECT {COLUMNS} FROM audit_events WHERE seq=?", (seq,)
    ).fetchone()
    return row


def _forge(conn: sqlite3.Connection, seq: int, prev_hash: str, *, rehash: bool) -> None:
    """Insert an event at `seq` linked to `prev_hash`; with `rehash` its own hash is valid too."""
    event_id, at, change_id = "f" * 32, "2026-01-01T00:00:00Z", None
    action, actor, details = "approved", "mallory", canonical({"reason": "forged"})
    digest = (
        event_hash(prev_hash, seq, event_id, at, change_id, action, actor, details) if rehash else "0" * 64
    )
    conn.execute(
        f"INSERT INTO audit_events ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)",
        (seq, event_id, at, change_id, action, actor, details, prev_hash, digest),
    )


def _drop_triggers(conn: sqlite3.Connection) -> None:
    conn.execute("DROP TRIGGER audit_events_no_update")
    conn.execute("DROP TRIGGER audit_events_no_delete")


def test_verify_intact_chain(audited: Cli) -> None:
    res = audited("audit", "verify")
    assert res.code == 0, res.err
    assert res.out.startswith("audit chain intact: 11 events verified")


def test_database_refuses_update_and_delete_of_audit_rows(audited: Cli) -> None:
    conn = _connect(audited.db)
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("UPDATE audit_events SET actor='mallory' WHERE seq=4")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("DELETE FROM audit_events WHERE seq=11")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("DELETE FROM audit_events")
        assert conn.execute("SELECT actor FROM audit_events WHERE seq=4").fetchone() == ("tech-lead",)
        assert conn.execute("SELECT count(*) FROM audit_events").fetchone() == (11,)
    finally:
        conn.close()
    assert audited("audit", "verify").code == 0


def _alter_details(conn: sqlite3.Connection) -> None:
    before = conn.execute("SELECT details FROM audit_events WHERE seq=2").fetchone()[0]
    conn.execute("UPDATE audit_events SET details=json_set(details, '$.risk_score', 5) WHERE seq=2")
    after = conn.execute("SELECT details FROM audit_events WHERE seq=2").fetchone()[0]
    assert json.loads(before)["risk_score"] == 40
    assert json.loads(after)["risk_score"] == 5


def _alter_actor(conn: sqlite3.Connection) -> None:
    conn.execute("UPDATE audit_events SET actor='someone-else' WHERE seq=4")


def _delete_middle(conn: sqlite3.Connection) -> None:
    conn.execute("DELETE FROM audit_events WHERE seq=5")


def _delete_last(conn: sqlite3.Connection) -> None:
    conn.execute("DELETE FROM audit_events WHERE seq=11")


def _forge_bad_hash(conn: sqlite3.Connection) -> None:
    _forge(conn, 12, str(_row(conn, 11)[8]), rehash=False)


def _forge_rehashed_append(conn: sqlite3.Connection) -> None:
    """A forger who knows the hash function but cannot move the head without it showing."""
    _forge(conn, 12, str(_row(conn, 11)[8]), rehash=True)


def _forge_rehashed_replacement(conn: sqlite3.Connection) -> None:
    """Replace event 3 with a self-consistent forgery: event 4 no longer links to it."""
    prev = str(_row(conn, 2)[8])
    conn.execute("DELETE FROM audit_events WHERE seq=3")
    _forge(conn, 3, prev, rehash=True)


def _replace_last_rehashed(conn: sqlite3.Connection) -> None:
    prev = str(_row(conn, 10)[8])
    conn.execute("DELETE FROM audit_events WHERE seq=11")
    _forge(conn, 11, prev, rehash=True)


@pytest.mark.parametrize(
    ("tamper", "first_bad", "word"),
    [
        (_alter_details, 2, "altered"),
        (_alter_actor, 4, "altered"),
        (_delete_middle, 5, "missing"),
        (_delete_last, 11, "missing"),
        (_forge_bad_hash, 12, "altered"),
        (_forge_rehashed_append, 12, "inserted"),
        (_forge_rehashed_replacement, 4, "inserted"),
        (_replace_last_rehashed, 11, "replaced"),
    ],
    ids=lambda v: getattr(v, "__name__", str(v)).strip("_"),
)
def test_tampering_is_detected_and_named(
    audited: Cli, tamper: Callable[[sqlite3.Connection], None], first_bad: int, word: str
) -> None:
    conn = _connect(audited.db)
    try:
        _drop_triggers(conn)
        tamper(conn)
    finally:
        conn.close()

    res = audited("audit", "verify")
    assert res.code == 1, res.out
    assert res.out == ""
    assert len(res.err.splitlines()) == 1
    named = [int(n) for n in re.findall(r"#(\d+)", res.err)]
    assert named, res.err
    assert named[0] == first_bad, res.err
    assert word in res.err


def test_audit_log_prints_the_seed_line_format(audited: Cli) -> None:
    events = audited.events()
    days = sorted({e["at"][:10] for e in events})
    lines = [line for day in days for line in audited.ok("audit", "log", day).splitlines()]
    assert len(lines) == len(events)
    for line, event in zip(lines, events, strict=True):
        m = LOG_LINE.match(line)
        assert m, line
        assert m.group(1) == event["at"][:10]
        assert m.group(2) == event["change_id"]
        assert (m.group(3), m.group(4)) == (event["action"], event["actor"])
        assert json.loads(m.group(5)) == event["details"]
    assert audited.ok("audit", "log", "1999-01-01") == ""


def test_export_writes_day_logs_and_a_chain_verifiable_offline(audited: Cli, tmp_path: Path) -> None:
    out = tmp_path / "export"
    audited.ok("audit", "export", "--dir", str(out), "--all")
    events = audited.events()
    days = sorted({e["at"][:10] for e in events})
    assert sorted(p.name for p in (out / "audit").iterdir()) == [f"{d}.log" for d in days]
    for day in days:
        assert (out / "audit" / f"{day}.log").read_text("utf-8") == audited.ok("audit", "log", day)
    chain = (out / "audit-chain.jsonl").read_text("utf-8").splitlines()
    assert [json.loads(line)["seq"] for line in chain] == [e["seq"] for e in events]

    # Offline: the database is unreachable and the check still works.
    offline = {"CORTEX_CHANGE_DB": "/proc/no-such-dir/cortex.db"}
    res = audited("audit", "verify", "--export", str(out), env=offline)
    assert res.code == 0, res.err
    assert "11 events" in res.out

    edited = json.loads(chain[5])
    edited["actor"] = "mallory"
    chain[5] = json.dumps(edited)
    (out / "audit-chain.jsonl").write_text("\n".join(chain) + "\n", "utf-8")
    res = audited("audit", "verify", "--export", str(out), env=offline)
    assert res.code == 1
    assert re.findall(r"#(\d+)", res.err)[0] == "6"


def test_export_missing_a_middle_line_fails_offline(audited: Cli, tmp_path: Path) -> None:
    out = tmp_path / "export"
    audited.ok("audit", "export", "--dir", str(out))
    path = out / "audit-chain.jsonl"
    lines = path.read_text("utf-8").splitlines()
    del lines[2]
    path.write_text("\n".join(lines) + "\n", "utf-8")
    res = audited("audit", "verify", "--export", str(out))
    assert res.code == 1
    assert re.findall(r"#(\d+)", res.err)[0] == "3"


def test_export_missing_its_last_lines_fails_offline_against_its_head(audited: Cli, tmp_path: Path) -> None:
    out = tmp_path / "export"
    audited.ok("audit", "export", "--dir", str(out))
    path = out / "audit-chain.jsonl"
    lines = path.read_text("utf-8").splitlines()
    path.write_text("\n".join(lines[:-2]) + "\n", "utf-8")
    res = audited("audit", "verify", "--export", str(out))
    assert res.code == 1
    assert "removed from the end" in res.err
    assert re.findall(r"#(\d+)", res.err)[0] == str(len(lines) - 1)


def test_verify_export_of_a_missing_directory_is_bad_input(audited: Cli, tmp_path: Path) -> None:
    res = audited("audit", "verify", "--export", str(tmp_path / "nowhere"))
    assert res.code == 2
    assert "audit-chain.jsonl" in res.err
