"""Hostile and unusual text is stored exactly and never breaks the one-row-per-change listing."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import Cli

TITLES = [
    "He said \"ship it\" and 'left'",
    "back\\slash \\n not a newline \\",
    "line one\nline two\r\nline three\ttabbed",
    "$(rm -rf /) ; `reboot` && echo pwned | tee /etc/passwd",
    "emoji 🚀🔥 ✅ family 👨‍👩‍👧 flag 🇳🇱",
    "עדכון מסד נתונים — تحديث قاعدة البيانات \u202eRTL override",
    "é" * 200,  # exactly the limit, in characters (400 bytes of UTF-8)
    "  leading and trailing spaces  ",
    "x|y | z -- --as mallory",
]
LONG_DESCRIPTION = ('ten-k desc "q" \\ $(x) `y` 🚀 עברית\n' * 400)[:10_000]


def test_text_round_trips_exactly(cli: Cli) -> None:
    ids = {}
    for n, title in enumerate(TITLES):
        description = LONG_DESCRIPTION if n == 0 else f"{title}\n\n{title}"
        ids[cli.create("normal", "deployment", title, description)] = (title, description)

    for change_id, (title, description) in ids.items():
        doc = cli.show(change_id)
        assert doc["title"] == title
        assert doc["description"] == description
        created = [e for e in doc["audit_trail"] if e["action"] == "created"]
        assert created[0]["details"]["title"] == title

    assert len(LONG_DESCRIPTION) == 10_000
    assert len(TITLES[6]) == 200

    table = cli.ok("list").splitlines()
    assert len(table) == 1 + len(TITLES)  # header + one row per change
    listed = {line.split()[0] for line in table[1:]}
    assert listed == set(ids)

    rows = json.loads(cli.ok("list", "--json"))
    assert {r["change_id"]: r["title"] for r in rows} == {k: v[0] for k, v in ids.items()}


def test_newlines_are_escaped_in_the_listing_and_audit_log(cli: Cli) -> None:
    change_id = cli.create("normal", "deployment", "first\nsecond\\n")
    row = [line for line in cli.ok("list").splitlines() if line.startswith(change_id)]
    assert len(row) == 1
    assert row[0].endswith("first\\nsecond\\\\n")

    day = cli.events(change_id)[0]["at"][:10]
    lines = cli.ok("audit", "log", day).splitlines()
    assert len(lines) == 1
    assert re.fullmatch(rf"\S+ \| {change_id} \| created \| alice \| \{{.*\}}", lines[0])
    assert json.loads(lines[0].split(" | ", 4)[4])["title"] == "first\nsecond\\n"


def test_update_round_trips_and_records_old_and_new(cli: Cli) -> None:
    change_id = cli.create("normal", "deployment", "before")
    new_title = 'after: "quoted" $(whoami)\n🚀'
    cli.ok("update", change_id, "--title", new_title, "--as", "alice")
    doc = cli.show(change_id)
    assert doc["title"] == new_title
    updated = [e for e in doc["audit_trail"] if e["action"] == "updated"]
    assert updated[0]["details"]["changes"]["title"] == {"old": "before", "new": new_title}
