"""`config show` and configuration errors (SPEC §9), through the real console script."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from cortex_change.config import KEYS

if TYPE_CHECKING:
    from conftest import Cli


def _rows(cli: Cli, **kw: Any) -> dict[str, dict[str, Any]]:
    return {r["key"]: r for r in json.loads(cli.ok("config", "show", "--json", **kw))}


def test_config_show_lists_every_key_with_its_source(cli: Cli) -> None:
    rows = _rows(cli)
    assert list(rows) == [k.name for k in KEYS]
    seed_keys = {"CAB_MEMBERS", "RISK_THRESHOLD_LOW", "SLACK_WEBHOOK_URL", "SELF_HEALING", "TECH_LEADS"}
    assert seed_keys <= set(rows)
    assert rows["CORTEX_CHANGE_DB"]["source"] == "environment"
    set_by_tests = {"CORTEX_CHANGE_DB", "IMPLEMENTERS"}  # tests/conftest.py clean_env
    assert all(r["source"] == "default" for k, r in rows.items() if k not in set_by_tests)
    assert rows["RISK_THRESHOLD_LOW"]["value"] == 30
    assert rows["CAB_MEMBERS"]["value"] == "tech-lead,security-lead,ops-lead,product-lead"
    pending = {k.name for k in KEYS if k.pending}  # none since issue 19 wired the last ones in
    assert {k for k, r in rows.items() if not r["in_effect"]} == pending
    assert all(rows[k]["note"] for k in pending)

    *text, switch = cli.ok("config", "show").splitlines()
    assert len(text) == len(KEYS)
    assert switch.startswith("automation: ") and "kill switch off" in switch  # docs/agents.md
    for line in text:
        key = line.split()[0]
        assert ("[not yet in effect]" in line) == (key in pending), line
        assert "<- default" in line or "<- environment" in line


def test_environment_overrides_toml_which_overrides_defaults(cli: Cli) -> None:
    toml = cli.cwd / "cortex-change.toml"
    toml.write_text(
        'RISK_THRESHOLD_LOW = 20\nCAB_MEMBERS = ["ann", "bob", "cy"]\nSLACK_CHANNEL = "#ops"\n',
        "utf-8",
    )
    rows = _rows(cli, env={"SLACK_CHANNEL": "#from-env"})
    assert rows["RISK_THRESHOLD_LOW"]["value"] == 20
    assert rows["RISK_THRESHOLD_LOW"]["source"].endswith(toml.name)
    assert rows["CAB_MEMBERS"]["value"] == "ann,bob,cy"
    assert (rows["SLACK_CHANNEL"]["value"], rows["SLACK_CHANNEL"]["source"]) == ("#from-env", "environment")
    assert rows["RISK_THRESHOLD_MEDIUM"]["source"] == "default"

    # ... and the rules use it: 10 + 0 + documentation 5 + history 5 = 20 is "medium" now.
    change_id = cli.create("normal", "documentation", "Docs", "--impact", "low")
    cli.ok("assess", change_id)
    assert cli.show(change_id)["risk_level"] == "medium"


def test_secrets_are_masked(cli: Cli) -> None:
    rows = _rows(cli, env={"WEBHOOK_SECRET": "s3cr3t-value", "PAGERDUTY_API_KEY": "pd-key"})
    assert rows["WEBHOOK_SECRET"]["value"] == "********"
    assert rows["PAGERDUTY_API_KEY"]["value"] == "********"
    assert "s3cr3t-value" not in cli.ok("config", "show", env={"WEBHOOK_SECRET": "s3cr3t-value"})


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"RISK_THRESHOLD_LOW": "abc"}, ["RISK_THRESHOLD_LOW", "abc"]),
        ({"RISK_THRESHOLD_LOW": "70"}, ["RISK_THRESHOLD_LOW", "RISK_THRESHOLD_MEDIUM"]),
        ({"RISK_THRESHOLD_HIGH": "50"}, ["RISK_THRESHOLD_HIGH"]),
        ({"RISK_THRESHOLD_LOW": "101"}, ["RISK_THRESHOLD_LOW", "100"]),
        ({"SEGREGATION_OF_DUTIES": "maybe"}, ["SEGREGATION_OF_DUTIES", "true"]),
        ({"CAB_MIN_APPROVALS": "9"}, ["CAB_MIN_APPROVALS", "CAB_MEMBERS"]),
        ({"CAB_MEETING_SCHEDULE": "every thursday"}, ["CAB_MEETING_SCHEDULE", "cron"]),
        ({"METRICS_BACKEND": "graphite"}, ["METRICS_BACKEND", "prometheus"]),
        ({"STD_SECURITY_PATCH_MAX_SEVERITY": "extreme"}, ["STD_SECURITY_PATCH_MAX_SEVERITY"]),
    ],
    ids=lambda v: "-".join(v) if isinstance(v, dict) else "",
)
def test_bad_configuration_stops_with_the_key_named(cli: Cli, env: dict[str, str], names: list[str]) -> None:
    res = cli("create", "normal", "deployment", "T", "--as", "a", env=env)
    assert res.code == 2, res.err
    assert res.out == ""
    assert len(res.err.splitlines()) == 1
    assert "Traceback" not in res.err
    for name in names:
        assert name in res.err
    assert cli.counts() == (0, 0)


def test_unknown_toml_key_is_an_error(cli: Cli) -> None:
    (cli.cwd / "cortex-change.toml").write_text("RISK_THRESHOLD_LOOW = 20\n", "utf-8")
    res = cli("config", "show")
    assert res.code == 2
    assert "RISK_THRESHOLD_LOOW" in res.err
    assert "cortex-change.toml" in res.err


def test_malformed_toml_is_an_error(cli: Cli) -> None:
    (cli.cwd / "cortex-change.toml").write_text("RISK_THRESHOLD_LOW = = 1\n", "utf-8")
    res = cli("config", "show")
    assert res.code == 2
    assert "cortex-change.toml" in res.err
    assert len(res.err.splitlines()) == 1


def test_toml_value_is_validated_like_the_environment(cli: Cli) -> None:
    (cli.cwd / "cortex-change.toml").write_text('RISK_THRESHOLD_LOW = "abc"\n', "utf-8")
    res = cli("list")
    assert res.code == 2
    assert "RISK_THRESHOLD_LOW" in res.err


def test_a_rule_change_between_writes_is_audited(cli: Cli) -> None:
    change_id = cli.create("normal", "deployment", "Mine", requester="tech-lead")
    cli.ok("assess", change_id)
    seen = len(cli.events())
    cli.ok("approve", change_id, "tech-lead", "allowed now", env={"SEGREGATION_OF_DUTIES": "false"})
    new = cli.events()[seen:]
    assert [(e["action"], e["change_id"]) for e in new] == [("config_changed", None), ("approved", change_id)]
    assert new[0]["details"]["changes"] == {"SEGREGATION_OF_DUTIES": {"old": True, "new": False}}
    cli.ok("show", change_id, env={"SEGREGATION_OF_DUTIES": "false"})  # reading writes nothing
    assert len(cli.events()) == seen + 2
    assert cli("audit", "verify").code == 0


def test_config_show_needs_no_store_and_masks_the_database_password(cli: Cli) -> None:
    url = "postgresql://cortex:s3cret-pw@127.0.0.1:1/cortex"  # nothing listens on port 1
    res = cli("config", "show", env={"CORTEX_CHANGE_DB": url})
    assert res.code == 0, res.err
    assert "postgresql://cortex:***@127.0.0.1:1/cortex" in res.out
    assert "s3cret-pw" not in res.out + res.err
    failed = cli("list", env={"CORTEX_CHANGE_DB": url})
    assert failed.code == 5
    assert "postgresql://cortex:***@127.0.0.1:1/cortex" in failed.err
    assert "s3cret-pw" not in failed.out + failed.err
