"""Bad input: exit 2 (or 3 for an unknown id), one line naming the field, and nothing written."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import Cli

ABSENT_ID = "RFC-20200101000000-abcdef"
KNOWN = "{known}"  # replaced by an existing change's id

CASES: list[tuple[str, list[str | bytes], int, list[str]]] = [
    ("unknown type", ["create", "sideways", "deployment", "T"], 2, ["type", "normal"]),
    ("unknown category", ["create", "normal", "gardening", "T"], 2, ["category", "deployment"]),
    ("empty title", ["create", "normal", "deployment", ""], 2, ["title"]),
    ("whitespace title", ["create", "normal", "deployment", " \t\n "], 2, ["title"]),
    ("201-char title", ["create", "normal", "deployment", "x" * 201], 2, ["title", "200"]),
    (
        "20001-char description",
        ["create", "normal", "deployment", "T", "d" * 20_001],
        2,
        ["description", "20000"],
    ),
    ("impact huge", ["create", "normal", "deployment", "T", "--impact", "huge"], 2, ["impact", "critical"]),
    ("positional impact", ["create", "normal", "deployment", "T", "d", "bob", "huge"], 2, ["impact"]),
    ("urgency wrong", ["create", "normal", "deployment", "T", "--urgency", "wrong"], 2, ["urgency", "low"]),
    (
        "malformed plan JSON",
        ["create", "normal", "deployment", "T", "--implementation-plan", "{bad"],
        2,
        ["implementation_plan", "JSON"],
    ),
    (
        "plan not an object",
        ["create", "normal", "deployment", "T", "--rollback-plan", "[1, 2]"],
        2,
        ["rollback_plan", "object"],
    ),
    (
        "plan steps not a list",
        ["create", "normal", "deployment", "T", "--implementation-plan", '{"steps": "do it"}'],
        2,
        ["implementation_plan", "steps"],
    ),
    (
        "details unknown key",
        ["create", "normal", "deployment", "T", "--details", '{"owner": "me"}'],
        2,
        ["details", "owner", "rollback_plan"],
    ),
    ("details not an object", ["create", "normal", "deployment", "T", "--details", "[1]"], 2, ["details"]),
    (
        "details services as a string",
        ["create", "normal", "deployment", "T", "--details", '{"affected_services": "api"}'],
        2,
        ["affected_services", "list"],
    ),
    (
        "details services as numbers",
        ["create", "normal", "deployment", "T", "--details", '{"affected_services": [1, 2]}'],
        2,
        ["affected_services"],
    ),
    (
        "details environment as a number",
        ["create", "normal", "deployment", "T", "--details", '{"environment": 5}'],
        2,
        ["environment"],
    ),
    (
        "details staging citation as a list",
        ["create", "normal", "deployment", "T", "--details", '{"tested_in_staging": ["x"]}'],
        2,
        ["change_id"],
    ),
    (
        "details impact null",
        ["create", "normal", "deployment", "T", "--details", '{"impact": null}'],
        2,
        ["impact"],
    ),
    (
        "service with a newline",
        ["create", "normal", "deployment", "T", "--service", "a\nb"],
        2,
        ["affected_services"],
    ),
    ("invalid UTF-8 title", ["create", "normal", "deployment", b"bad \xff title"], 2, ["title", "UTF-8"]),
    ("show unknown id", ["show", ABSENT_ID], 3, [ABSENT_ID]),
    ("assess unknown id", ["assess", ABSENT_ID], 3, [ABSENT_ID]),
    ("approve unknown id", ["approve", ABSENT_ID, "tech-lead", "ok"], 3, [ABSENT_ID]),
    ("implement unknown id", ["implement", ABSENT_ID, "--as", "ops"], 3, [ABSENT_ID]),
    ("malformed id", ["show", "RFC-123"], 2, ["change_id", "RFC-YYYYMMDDHHMMSS-xxxxxx"]),
    ("malformed id on approve", ["approve", "rfc-1; drop table", "tech-lead", "ok"], 2, ["change_id"]),
    ("unknown list state", ["list", "done"], 2, ["state", "pending_cab"]),
    ("list limit out of range", ["list", "--limit", "0"], 2, ["limit"]),
    ("list before unknown id", ["list", "--before", ABSENT_ID], 3, [ABSENT_ID]),
    ("list before malformed id", ["list", "--before", "yesterday"], 2, ["change_id"]),
    ("bad metrics period", ["metrics", "fortnight"], 2, ["period", "today"]),
    ("metrics range backwards", ["metrics", "2026-02-01 to 2026-01-01"], 2, ["period"]),
    ("bad close status", ["close", KNOWN, "sort-of", "--as", "ops"], 2, ["status", "successful"]),
    ("bad review outcome", ["review", KNOWN, "security-lead", "meh", "n"], 2, ["outcome", "accepted"]),
    ("update unknown details key", ["update", KNOWN, "--details", '{"state": "approved"}'], 2, ["details"]),
    ("update nothing", ["update", KNOWN, "--as", "alice"], 2, ["update"]),
    ("unknown command", ["frobnicate"], 2, ["frobnicate"]),
    ("audit log bad date", ["audit", "log", "yesterday"], 2, ["date"]),
]


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory, cli_factory: Callable[[Path], Cli]) -> tuple[Cli, str]:
    """One database with an emergency change already in it (so counts start above zero)."""
    cli = cli_factory(tmp_path_factory.mktemp("bad-input"))
    change_id = cli.create("emergency", "security", "Existing change")
    cli.ok("assess", change_id)
    return cli, change_id


@pytest.mark.parametrize(("args", "code", "names"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_writes_nothing(
    seeded: tuple[Cli, str], args: list[str | bytes], code: int, names: list[str]
) -> None:
    cli, known = seeded
    argv = [known if a == KNOWN else a for a in args]
    before = cli.counts()
    version_before = cli.record(known)
    assert before[0] >= 1 and before[1] >= 1

    res = cli(*argv)

    assert res.code == code, res.err
    assert res.out == ""
    lines = res.err.splitlines()
    assert len(lines) == 1, res.err
    assert "Traceback" not in res.err
    for name in names:
        assert name in res.err, (name, res.err)
    assert cli.counts() == before
    assert cli.record(known) == version_before
