"""A command that fails on its first use of a location leaves nothing behind: not even the empty
store (and folders) opening it created; a store something was written to stays."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import Cli


def test_bad_input_on_a_new_location_creates_no_store(
    tmp_path: Path, cli_factory: Callable[[Path], Cli]
) -> None:
    cli = cli_factory(tmp_path)
    store = cli.db
    assert isinstance(store, Path) and not store.parent.exists()
    bad = cli("create", "normal", "nonsense", "Title", "Description")
    assert bad.code == 2 and "category: 'nonsense' is not allowed" in bad.err
    assert not store.parent.exists()
    missing = cli("approve", "RFC-20260101000000-abcdef", "tech-lead", "ok")
    assert missing.code == 3 and not store.parent.exists()

    change_id = cli.create("normal", "deployment", "Title", "Description")
    assert store.exists()
    again = cli("create", "normal", "nonsense", "Title", "Description")
    assert again.code == 2 and store.exists()  # a store in use is never taken back
    assert cli.show(change_id)["change_id"] == change_id


def test_a_location_beside_other_files_keeps_them(tmp_path: Path, cli_factory: Callable[[Path], Cli]) -> None:
    cli = cli_factory(tmp_path)
    assert isinstance(cli.db, Path)
    cli.db.parent.mkdir(parents=True)
    (cli.db.parent / "notes.txt").write_text("mine")
    assert cli("create", "normal", "nonsense", "Title", "Description").code == 2
    assert sorted(p.name for p in cli.db.parent.iterdir()) == ["notes.txt"]
