"""Issue 18: `cortex-change import shell-tool DIR` end to end, the real console script on both
backends: the shared fixture's report (text and JSON), the records and trail it leaves, a second
run, `--dry-run`, `--salvage`, and bad folders — one line on stderr, exit 2, nothing written."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import Cli

FIXTURE = Path(os.environ.get("CORTEX_TEST_SHELLTOOL_DATA", "/work/shared/fixtures/reference-tool-data"))
pytestmark = pytest.mark.skipif(not FIXTURE.is_dir(), reason=f"no shell-tool fixture at {FIXTURE}")
CORRUPT = "RFC-20261129212853-140523"
TWICE = "RFC-20261129212854-1784c1"


def imported(cli: Cli, *args: str) -> str:
    return cli.ok("import", "shell-tool", str(FIXTURE), *args, user="migrator")


def test_the_fixture_imported_with_its_report(cli: Cli) -> None:
    out = imported(cli)
    lines = out.splitlines()
    assert lines[0] == (
        f"import shell-tool {FIXTURE}: imported 17 change(s) "
        "(6 closed, 1 implementing, 8 pending_approval, 1 pending_assessment, 1 rejected)"
    )
    assert "  already imported: 0" in lines
    assert "  audit: 73 line(s) read, 70 event(s) written" in lines
    assert "skipped files (3):" in lines
    assert any(
        line.startswith(f"  changes/approved/{CORRUPT}.json: invalid JSON at line 5 column 21")
        for line in lines
    )
    tmp = f"  changes/pending/{CORRUPT}.json.tmp: temporary file left by an interrupted update (*.tmp)"
    assert f"{tmp}: not a record" in lines
    assert any(
        line.startswith(f"  changes/approved/{TWICE}.json: stale duplicate, superseded by implemented/")
        for line in lines
    )
    assert f"  {CORRUPT}: 3 line(s), its record was not imported" in lines
    assert cli.counts() == (17, 70)
    assert cli.ok("audit", "verify").startswith("audit chain intact: 70 events verified")

    closed = json.loads(cli.ok("list", "closed", "--json"))
    assert len(closed) == 6
    failed = cli.show("RFC-20261129212850-738460")
    assert (failed["state"], failed["closure_status"], failed["closure_notes"]) == (
        "closed",
        "failed",
        "Smoke test failed",
    )
    assert failed["approvals"][0]["approver"] == "tech-lead"
    emergency = cli.show(TWICE)
    assert emergency["state"] == "implementing"
    assert [a["approver"] for a in emergency["approvals"]] == ["emergency-cab"]
    events = cli.events(TWICE)
    assert [e["action"] for e in events] == [
        "created",
        "assessed",
        "approval_requested",
        "approved",
        "implementation_started",
    ]
    assert all(e["details"]["imported"] is True for e in events)
    assert events[0]["details"]["original_timestamp"] == "2026-11-29T21:28:54Z"


def test_json_report_second_run_and_dry_run(cli: Cli) -> None:
    dry = json.loads(imported(cli, "--dry-run", "--json"))
    assert (dry["dry_run"], dry["imported"]) == (True, 17)
    assert cli.counts() == (0, 0)
    first = json.loads(imported(cli, "--json"))
    assert first["by_state"] == dry["by_state"]
    assert [s["file"] for s in first["skipped"]] == [s["file"] for s in dry["skipped"]]
    again = json.loads(imported(cli, "--json"))
    assert (again["imported"], again["already_imported"]) == (0, 17)
    assert cli.counts() == (17, 70)


def test_salvage_flags_what_it_recovered(cli: Cli) -> None:
    imported(cli)
    out = imported(cli, "--salvage")
    assert out.splitlines()[0].endswith("imported 1 change(s) (1 pending_assessment)")
    assert f"  {CORRUPT}: SALVAGED from changes/approved/{CORRUPT}.json (repaired: title)" in out.splitlines()
    assert cli.show(CORRUPT)["title"] == 'Rotate "prod" TLS certificates'
    assert cli.counts() == (18, 73)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["shell-tool", "{tmp}/nowhere"], "DIR: '{tmp}/nowhere' is not a folder"),
        (["shell-tool", "{tmp}"], "DIR: '{tmp}' is not a shell-tool store: it has no changes/ folder"),
        (["shell-tool"], "DIR: import shell-tool needs the tool's folder"),
        ([], "import: name what to import: import shell-tool DIR"),
    ],
)
def test_bad_folders_are_one_line_and_write_nothing(
    cli: Cli, tmp_path: Path, args: list[str], message: str
) -> None:
    empty = tmp_path / "not-a-store"
    empty.mkdir()
    (empty / "notes.txt").write_text("hello", encoding="utf-8")
    res = cli("import", *(a.format(tmp=empty) for a in args))
    assert res.code == 2
    assert res.err.count("\n") == 1
    assert message.format(tmp=empty) in res.err
    assert cli.counts() == (0, 0)


def test_an_unreadable_file_is_one_line_and_writes_nothing(cli: Cli, tmp_path: Path) -> None:
    copied = tmp_path / "tool"
    shutil.copytree(FIXTURE, copied)
    os.chmod(copied / "changes" / "pending", 0o755)
    os.symlink(copied / "nowhere", copied / "changes" / "pending" / "RFC-20261129212859-000000.json")
    res = cli("import", "shell-tool", str(copied))
    assert res.code == 2
    assert res.err.count("\n") == 1
    assert "cannot read" in res.err and "nothing was imported" in res.err
    assert cli.counts() == (0, 0)
