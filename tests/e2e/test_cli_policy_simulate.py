"""`cortex-change policy simulate` as an operator runs it, on a generated history
(tests/risk_history.py): the report, its JSON, and bad input — one line each, nothing written."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from cortex_change.services.context import open_context
from risk_history import generate
from support import TEST_IMPLEMENTERS, FakeClock

if TYPE_CHECKING:
    from conftest import Cli


@pytest.fixture
def filed(cli: Cli, clock: FakeClock) -> list[str]:
    cli.env["IMPLEMENTERS"] = TEST_IMPLEMENTERS
    ctx = open_context(env={"CORTEX_CHANGE_DB": str(cli.db), "IMPLEMENTERS": TEST_IMPLEMENTERS}, clock=clock)
    try:
        return generate(ctx, clock, 40, seed=9)
    finally:
        ctx.close()


def _digest(cli: Cli) -> str:
    """The SQLite file's bytes, or on PostgreSQL the changes, the trail and the outbox."""
    if isinstance(cli.db, Path):
        return hashlib.sha256(cli.db.read_bytes()).hexdigest()
    ctx = open_context(env={"CORTEX_CHANGE_DB": str(cli.db)})
    try:
        with ctx.db.read() as tx:
            rows = [
                tx.all("SELECT change_id, version, doc FROM changes ORDER BY change_id"),
                tx.all("SELECT seq, hash FROM audit_events ORDER BY seq"),
                tx.all("SELECT COUNT(*) FROM outbox"),
            ]
    finally:
        ctx.close()
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def test_the_report_sets_the_candidate_beside_the_running_configuration(
    cli: Cli, filed: list[str], tmp_path: Path
) -> None:
    candidate = tmp_path / "new.toml"
    candidate.write_text("auto_approve_threshold = 45\nrisk_threshold_low = 46\ncab_min_approvals = 3\n")
    before = _digest(cli)
    text = cli.ok("policy", "simulate", "--config", str(candidate), "--period", "2026-Q1", "--list", "3")
    lines = text.splitlines()
    assert lines[0] == (
        f"40 changes filed in 2026-Q1 replayed under the running configuration and under {candidate} "
        "(0 never assessed, left out); nothing was written"
    )
    assert lines[1] == (
        "settings that differ: CAB_MIN_APPROVALS 2 → 3, RISK_THRESHOLD_LOW 30 → 46, "
        "AUTO_APPROVE_THRESHOLD 25 → 45"
    )
    assert lines[2].split() == ["route", "current", "candidate", "change"]
    assert any(line.startswith("auto-approved ") for line in lines)
    assert any(
        line.startswith("approver-hours by role (minutes per approval: technical-lead 15, cab 30")
        for line in lines
    )
    assert any(line.startswith("approved by the system and then failed: current ") for line in lines)
    assert any(line.endswith("changes would take another route:") for line in lines)

    out = json.loads(
        cli.ok(
            "policy",
            "simulate",
            "--config",
            str(candidate),
            "--period",
            "2026-Q1",
            "--json",
            "--minutes",
            "cab=60",
        )
    )
    assert (out["replayed"], out["unlike_recorded"], out["config"]) == (40, 0, str(candidate))
    assert out["minutes_per_approval"]["cab"] == 60
    assert out["candidate"]["routes"]["auto-approved"] > out["current"]["routes"]["auto-approved"]
    assert {m["to"] for m in out["moved"]} >= {"auto-approved"}
    assert [m["change_id"] for m in out["moved"]] == [
        c for c in filed if c in {m["change_id"] for m in out["moved"]}
    ]
    empty = json.loads(
        cli.ok("policy", "simulate", "--config", str(candidate), "--period", "2025-Q3", "--json")
    )
    assert (empty["replayed"], empty["moved"]) == (0, [])
    assert _digest(cli) == before  # nothing written


@pytest.mark.parametrize(
    ("args", "toml", "says"),
    [
        (["--period", "2026-Q1"], None, "config: "),
        (
            ["--period", "2026-Q1"],
            "risk_threshold_low = 'high'\n",
            "RISK_THRESHOLD_LOW: 'high' is not a whole number",
        ),
        (["--period", "2026-Q1"], "colour = 'red'\n", "colour: is not a configuration key"),
        (["--period", "2026-Q1"], 'risk_threshold_low = "$(id)\n', "cannot be read as TOML"),
        (["--period", "2026-Q1"], "risk_threshold_low = 70\n", "thresholds must rise"),
        (["--period", "2026-Q5"], "", "period: '2026-Q5' is not a period; allowed: "),
        (["--period", "2026-Q1", "--minutes", "board=5"], "", "minutes: 'board' is not a role; allowed: "),
        (["--period", "2026-Q1", "--minutes", "cab=lots"], "", "minutes: 'cab=lots': give role=N"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(
    cli: Cli, filed: list[str], tmp_path: Path, args: list[str], toml: str | None, says: str
) -> None:
    config = tmp_path / "candidate.toml"
    if toml is not None:
        config.write_text(toml)
    before = _digest(cli)
    r = cli("policy", "simulate", "--config", str(config), *args)
    assert r.code == 2, r.err
    assert r.err.count("\n") == 1 and says in r.err and r.out == ""
    assert _digest(cli) == before


def test_a_store_that_does_not_exist_is_not_created(
    tmp_path: Path, cli_factory: Callable[[Path], Cli]
) -> None:
    cli = cli_factory(tmp_path)
    config = tmp_path / "c.toml"
    config.write_text("auto_approve_threshold = 30\n")
    r = cli("policy", "simulate", "--config", str(config), "--period", "month")
    assert r.code != 0 and "does not exist" in r.err
    assert not (tmp_path / "db").exists()
