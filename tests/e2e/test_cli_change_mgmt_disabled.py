"""CHANGE_MGMT_ENABLED=false through the real console script (docs/devops.md): every command says
so on stderr — once, before its own output, even when it fails — while stdout stays what scripts
parse; the gate allows and says why; `config show` lists the key as in effect."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the `cli` fixture's class (tests/conftest.py; a bare import is ambiguous in a mixed run)
    from conftest import Cli

BANNER = (
    "cortex-change: WARNING: change management is DISABLED (CHANGE_MGMT_ENABLED=false): everything is "
    "recorded and audited, but nothing is approved automatically and no deploy is gated\n"
)


def said_once(err: str) -> bool:
    """The banner first on stderr, and only once."""
    return err.startswith(BANNER) and err.count("WARNING") == 1


def test_every_command_says_so_once_and_stdout_stays_parseable(cli: Cli) -> None:
    cli.env["CHANGE_MGMT_ENABLED"] = "false"
    created = cli("create", "normal", "documentation", "Fix a typo", "--impact", "low", "--as", "alice")
    assert created.code == 0 and said_once(created.err)
    change_id = created.out.strip()  # stdout: the id alone, as scripts read it
    assessed = cli("assess", change_id)
    assert assessed.code == 0 and said_once(assessed.err)
    shown = cli("show", change_id)
    assert said_once(shown.err)
    doc = json.loads(shown.out)  # stdout is the document alone
    assert (doc["state"], doc["approval_required"]) == ("pending_approval", "technical-lead")
    listed = cli("list", "pending")
    assert said_once(listed.err) and change_id in listed.out
    missing = cli("show", "RFC-20260101000000-000000")
    assert missing.code != 0 and said_once(missing.err)  # said even when the command fails


def test_the_gate_allows_and_says_why(cli: Cli) -> None:
    cli.env["CHANGE_MGMT_ENABLED"] = "false"
    cli.create("normal", "documentation", "Make the store")
    res = cli("gate", "--service", "web", "--env", "production")
    assert res.code == 0, res.err
    assert res.out.startswith("deploy allowed: change management is DISABLED (CHANGE_MGMT_ENABLED=false)")
    verdict = json.loads(cli.ok("gate", "--service", "web", "--json"))
    assert verdict["allowed"] is True and verdict["change_id"] is None


def test_managed_commands_say_nothing_and_config_show_lists_the_key(cli: Cli) -> None:
    cli.create("normal", "documentation", "Make the store")
    res = cli("list")
    assert res.code == 0 and res.err == ""
    cli.env["CHANGE_MGMT_ENABLED"] = "false"
    rows = json.loads(cli.ok("config", "show", "--json"))
    row = next(r for r in rows if r["key"] == "CHANGE_MGMT_ENABLED")
    assert (row["value"], row["source"], row["in_effect"]) == (False, "environment", True)
    for key in ("CICD_AUTO_CHANGE", "GIT_MAIN_CATEGORY", "GIT_HOTFIX_CATEGORY", "GITHUB_WEBHOOK_SECRET"):
        assert next(r for r in rows if r["key"] == key)["in_effect"] is True
    cli.env["GITHUB_WEBHOOK_SECRET"] = "s3cret-value"
    assert "s3cret-value" not in cli.ok("config", "show")  # masked
