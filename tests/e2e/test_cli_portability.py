"""Moving a store through the real console script: `export --jsonl`, `import --jsonl` into an empty
store, `migrate-store --to` a fresh PostgreSQL database and the printed line that switches to it;
a cut file and a non-empty target are one line each and write nothing."""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from support import fresh_database

if TYPE_CHECKING:
    from conftest import Cli


@pytest.fixture
def source(tmp_path: Path, cli_factory: Callable[[Path], Cli]) -> Cli:
    """An embedded store with a closed change, a pending one, a token and a CMDB."""
    cli = cli_factory(tmp_path / "source")
    first = cli.create("normal", "deployment", 'Deploy ☃ "api"')
    cli.ok("assess", first)
    cli.ok("approve", first, "tech-lead", "ok")
    cli.ok("implement", first, "--as", "ops")
    cli.ok("close", first, "successful", "done", "--as", "ops")
    second = cli.create("normal", "security", "Rotate keys", requester="bob")
    cli.ok("assess", second)
    cli.ok("token", "create", "bot")
    cmdb = Path(__file__).resolve().parents[2] / "examples" / "cortex-platform-cmdb.json"
    cli.ok("cmdb", "import", str(cmdb), "--as", "change-manager")
    return cli


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A PostgreSQL database of its own, created for the test and dropped after it."""
    with fresh_database("cortex_move") as url:
        yield url


def changes(cli: Cli) -> list[str]:
    return sorted(c["change_id"] for c in json.loads(cli.ok("list", "--json")))


def test_export_then_import_into_an_empty_store(source: Cli, tmp_path: Path) -> None:
    path = tmp_path / "store.jsonl"
    out = source.ok("export", "--jsonl", str(path))
    assert out.startswith("exported change 2, ") and "token 1" in out
    first = json.loads(path.read_text("utf-8").splitlines()[0])
    assert first["kind"] == "header" and first["format"] == "cortex-change-jsonl"
    target = tmp_path / "target" / "store.db"
    out = source.ok("--db", str(target), "import", "--jsonl", str(path))
    assert out.splitlines()[-1].startswith("audit chain intact: ")
    assert "audit chain intact" in source.ok("--db", str(target), "audit", "verify")
    for change_id in changes(source):
        assert source.ok("--db", str(target), "show", change_id) == source.ok("show", change_id)
    again = source("--db", str(target), "import", "--jsonl", str(path))
    assert again.code == 1 and again.out == ""
    assert again.err.count("\n") == 1 and "is not empty" in again.err


def test_a_cut_file_is_one_line_and_writes_nothing(
    source: Cli, tmp_path: Path, rows: Callable[..., int]
) -> None:
    path = tmp_path / "store.jsonl"
    source.ok("export", "--jsonl", str(path))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    target = tmp_path / "target" / "store.db"
    res = source("--db", str(target), "import", "--jsonl", str(path))
    assert res.code == 2 and res.out == ""
    assert res.err.count("\n") == 1 and "cut short; nothing was written" in res.err
    assert not target.parent.exists()  # not even an empty store: the import created it, and took it back
    assert rows(source.db, "changes") > 0  # the store it came from is untouched


def test_export_to_a_folder_that_does_not_exist_is_one_line(source: Cli, tmp_path: Path) -> None:
    res = source("export", "--jsonl", str(tmp_path / "missing" / "store.jsonl"))
    assert res.code == 2 and res.err.count("\n") == 1 and "cannot write" in res.err
    assert list(tmp_path.glob("missing*")) == []


def test_migrate_store_and_switch_with_the_printed_line(source: Cli, pg_database: str) -> None:
    res = source("migrate-store", "--to", pg_database)
    assert res.code == 0, res.err
    assert "changes: 2 rows copied" in res.err
    last = res.out.splitlines()[-1]
    assert last == f"export CORTEX_CHANGE_DB='{pg_database}'"
    words = shlex.split(last)
    assert words[0] == "export"
    switched = words[1].split("=", 1)[1]
    env = {"CORTEX_CHANGE_DB": switched}
    assert changes(source) == sorted(c["change_id"] for c in json.loads(source.ok("list", "--json", env=env)))
    for change_id in changes(source):
        assert source.ok("show", change_id, env=env) == source.ok("show", change_id)
    verified = source.ok("audit", "verify", env=env)
    assert verified == source.ok("audit", "verify")
    # A second run finds the target no longer empty: one line, nothing written.
    before = source.ok("audit", "verify", env=env)
    again = source("migrate-store", "--to", pg_database)
    assert again.code == 1 and again.out == "" and again.err.count("\n") == 1
    assert "is not empty" in again.err and "nothing was written" in again.err
    assert source.ok("audit", "verify", env=env) == before


def test_migrate_store_masks_a_password(source: Cli) -> None:
    res = source("migrate-store", "--to", "postgresql://mover:hunter2@127.0.0.1:1/nowhere")
    assert res.code == 5 and res.err.count("\n") == 1
    assert "hunter2" not in res.err and "mover:***@" in res.err


def test_import_jsonl_goes_alone(source: Cli, tmp_path: Path) -> None:
    path = tmp_path / "store.jsonl"
    source.ok("export", "--jsonl", str(path))
    res = source("--db", str(tmp_path / "t.db"), "import", "shell-tool", str(tmp_path), "--jsonl", str(path))
    assert res.code == 2 and res.err.count("\n") == 1 and "--jsonl: goes alone" in res.err
