"""`cortex-change gate` and `cortex-change schedule` as real subprocesses on both backends
(docs/pipelines.md, docs/schedule.md): the gate's exit codes (0 allowed naming the change, 1
refused with each reason on its own line, 2 bad input, 5 store or server unreachable), its JSON,
and scheduling from the command line. The CLI runs on the real clock: windows are set around now."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from support import free_port

if TYPE_CHECKING:
    from conftest import Cli, Result


def iso(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def approved(
    cli: Cli, start: str, end: str, *extra: str, service: str = "web", env: str = "production"
) -> str:
    """A change for `service` in `env`, planned for [start, end), assessed and approved."""
    args = ["--service", service, "--planned-start", start, "--planned-end", end, *extra]
    if env:
        args += ["--environment", env]
    change_id = cli.create("normal", "deployment", f"Deploy {service}", *args)
    cli.ok("assess", change_id)
    cli.ok("approve", change_id, "tech-lead", "ok")
    assert cli.show(change_id)["state"] == "approved"
    return change_id


def refused_lines(res: Result) -> list[str]:
    assert res.code == 1, (res.code, res.out, res.err)
    assert res.err == ""
    lines = res.out.splitlines()
    assert lines and all(line.startswith("deploy refused: ") for line in lines), res.out
    return [line.removeprefix("deploy refused: ") for line in lines]


def one_error(res: Result, code: int) -> str:
    assert res.code == code, (res.code, res.out, res.err)
    assert res.out == ""
    assert "Traceback" not in res.err
    assert len(res.err.splitlines()) == 1, res.err
    return res.err


# --- the gate ------------------------------------------------------------------------------------


def test_an_approved_change_in_its_window_exits_0_naming_it(cli: Cli) -> None:
    change_id = approved(cli, iso(-HOUR), iso(HOUR))
    for args in (
        ("--service", "web", "--env", "production"),
        ("--service", "web"),
        ("--service", "web", "--env", "production", "--change", change_id),
    ):
        res = cli("gate", *args)
        assert res.code == 0, (res.code, res.out, res.err)
        assert res.err == ""
        assert res.out.startswith(f"deploy allowed: {change_id} (")
        assert len(res.out.splitlines()) == 1


def test_no_change_exits_1_with_the_reason(cli: Cli) -> None:
    cli.create("normal", "deployment", "Not assessed", "--service", "web")  # creates the store too
    assert refused_lines(cli("gate", "--service", "web", "--env", "production")) == [
        "no approved change names the service 'web' in production"
    ]
    assert refused_lines(cli("gate", "--service", "api")) == ["no approved change names the service 'api'"]


def test_each_reason_is_on_its_own_line(cli: Cli) -> None:
    start, end = iso(DAY), iso(DAY + HOUR)
    change_id = cli.create(
        "normal", "deployment", "Later", "--service", "web", "--environment", "production",
        "--planned-start", start, "--planned-end", end,
    )  # fmt: skip
    reasons = refused_lines(cli("gate", "--service", "api", "--env", "staging", "--change", change_id))
    assert reasons == [
        f"{change_id} does not name the service 'api' (its services: web)",
        f"{change_id} is pending_assessment, not approved",
        f"{change_id} is for the environment 'production', not 'staging'",
        f"{change_id} is planned for {start} to {end}, not now",
    ]


def test_outside_the_window_or_another_environment_exits_1(cli: Cli) -> None:
    start, end = iso(DAY), iso(DAY + HOUR)
    change_id = approved(cli, start, end)
    assert refused_lines(cli("gate", "--service", "web", "--env", "production")) == [
        f"{change_id} is planned for {start} to {end}, not now"
    ]
    cli.ok("schedule", change_id, iso(-HOUR), iso(HOUR), "--as", "alice")  # back to pending_approval
    cli.ok("approve", change_id, "tech-lead", "now is fine")
    assert cli("gate", "--service", "web", "--env", "production").code == 0
    assert refused_lines(cli("gate", "--service", "web", "--env", "staging")) == [
        f"{change_id} is for the environment 'production', not 'staging'"
    ]


def test_of_two_changes_the_one_in_its_window_is_named(cli: Cli) -> None:
    fits = approved(cli, iso(-HOUR), iso(HOUR))
    approved(cli, iso(DAY), iso(DAY + HOUR))
    assert cli.ok("gate", "--service", "web", "--env", "production").startswith(f"deploy allowed: {fits} (")


def test_json_parses_allowed_or_not(cli: Cli) -> None:
    change_id = approved(cli, iso(-HOUR), iso(HOUR))
    res = cli("gate", "--service", "web", "--env", "production", "--json")
    assert res.code == 0, res.err
    verdict = json.loads(res.out)
    assert set(verdict) == {"allowed", "change_id", "reasons", "at"}
    assert (verdict["allowed"], verdict["change_id"], verdict["reasons"]) == (True, change_id, [])
    assert datetime.strptime(verdict["at"], "%Y-%m-%dT%H:%M:%SZ")
    res = cli("gate", "--service", "web", "--env", "staging", "--json")
    assert res.code == 1
    verdict = json.loads(res.out)
    assert verdict["allowed"] is False and verdict["change_id"] is None
    assert verdict["reasons"] == [f"{change_id} is for the environment 'production', not 'staging'"]


@pytest.mark.parametrize(
    "args",
    [
        ("--service", ""),
        ("--service", "web", "--env", ""),
        ("--service", "web", "--change", "RFC-nope"),
        ("--env", "production"),  # --service is required
        ("--service", "web", "--no-such-option"),
    ],
)
def test_bad_input_exits_2(cli: Cli, args: tuple[str, ...]) -> None:
    cli.create("normal", "deployment", "Store exists")
    res = cli("gate", *args)
    assert res.code == 2, (res.code, res.out, res.err)
    assert res.out == "" and "Traceback" not in res.err


def test_an_unknown_change_exits_3(cli: Cli) -> None:
    cli.create("normal", "deployment", "Store exists")
    err = one_error(cli("gate", "--service", "web", "--change", "RFC-20260101000000-abcdef"), 3)
    assert "RFC-20260101000000-abcdef" in err


def test_a_store_that_cannot_be_opened_exits_5(cli: Cli, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-directory" / "cortex-change.db"
    err = one_error(cli("--db", str(missing), "gate", "--service", "web"), 5)
    assert str(missing) in err
    assert not missing.parent.exists()


def test_a_server_that_cannot_be_reached_exits_5(cli: Cli) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    env = {"CORTEX_CHANGE_URL": url, "CORTEX_CHANGE_TOKEN": "cc_x"}
    err = one_error(cli("gate", "--service", "web", "--env", "production", env=env), 5)
    assert f"cannot reach the server at {url}" in err
    one_error(cli("gate", "--service", "web", "--json", env=env), 5)


def test_the_gate_writes_nothing(cli: Cli) -> None:
    change_id = approved(cli, iso(-HOUR), iso(HOUR))
    before = cli.record(change_id), cli.counts()
    cli.ok("gate", "--service", "web")
    cli("gate", "--service", "web", "--env", "staging")
    assert (cli.record(change_id), cli.counts()) == before


# --- schedule and the window's fields ------------------------------------------------------------


def test_create_keeps_the_window_in_utc(cli: Cli) -> None:
    change_id = cli.create(
        "normal", "deployment", "Tonight", "--planned-start", "2030-06-01T22:00:00+02:00",
        "--planned-end", "2030-06-02T01:30:00+02:00",
    )  # fmt: skip
    doc = cli.show(change_id)
    assert (doc["planned_start"], doc["planned_end"]) == ("2030-06-01T20:00:00Z", "2030-06-01T23:30:00Z")


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("--planned-start", "2030-06-01T22:00:00Z"), "planned_end"),
        (("--planned-end", "2030-06-01T22:00:00Z"), "planned_start"),
    ],
)
def test_create_with_one_end_exits_2_naming_the_pairing_rule(
    cli: Cli, args: tuple[str, ...], field: str
) -> None:
    changes_before = cli.counts()[0]
    err = one_error(cli("create", "normal", "deployment", "Half a window", *args, "--as", "alice"), 2)
    assert f"{field}: give planned_start and planned_end together" in err
    assert cli.counts()[0] == changes_before


def test_schedule_before_approval_prints_the_window_and_state(cli: Cli) -> None:
    change_id = cli.create("normal", "deployment", "Unplanned", "--service", "web")
    out = cli.ok("schedule", change_id, "2030-06-01T22:00:00+02:00", "2030-06-01T23:00:00Z", "--as", "alice")
    assert (
        out
        == f"{change_id} planned for 2030-06-01T20:00:00Z to 2030-06-01T23:00:00Z; state pending_assessment\n"
    )
    assert cli.events(change_id)[-1]["action"] == "updated"


def test_schedule_of_an_approved_change_asks_for_approval_again(cli: Cli) -> None:
    change_id = approved(cli, iso(-HOUR), iso(HOUR))
    start, end = iso(DAY), iso(DAY + HOUR)
    out = cli.ok("schedule", change_id, start, end, "--as", "alice")
    assert out == f"{change_id} planned for {start} to {end}; state pending_approval\n"
    assert [e["action"] for e in cli.events(change_id)][-4:] == [
        "rescheduled",
        "approvals_discarded",
        "assessed",
        "approval_requested",
    ]
    assert refused_lines(cli("gate", "--service", "web")) == ["no approved change names the service 'web'"]


@pytest.mark.parametrize(
    ("start", "end", "code", "text"),
    [
        ("tonight", "2030-06-01T23:00:00Z", 2, "START: 'tonight' is not an ISO 8601 time"),
        ("2030-06-01T22:00:00Z", "2030-06-01T21:00:00Z", 2, "is not after planned_start"),
        ("2030-06-01T22:00:00Z", "2030-07-15T22:00:00Z", 2, "over 30 days"),
        ("1999-06-01T22:00:00Z", "1999-06-01T23:00:00Z", 2, "2000"),
        # Converting this to UTC leaves the years datetime holds: bad input, never a traceback.
        ("0001-01-01T00:00:00+01:00", "2030-06-01T23:00:00Z", 2, "START"),
    ],
)
def test_schedule_with_a_bad_window_exits_2_writing_nothing(
    cli: Cli, start: str, end: str, code: int, text: str
) -> None:
    change_id = approved(cli, iso(-HOUR), iso(HOUR))
    before = cli.record(change_id), cli.counts()
    err = one_error(cli("schedule", change_id, start, end, "--as", "alice"), code)
    assert text in err
    assert (cli.record(change_id), cli.counts()) == before


def test_schedule_refusals_exit_1_or_3(cli: Cli) -> None:
    change_id = approved(cli, iso(-HOUR), iso(HOUR))
    record = cli.record(change_id)
    err = one_error(cli("schedule", change_id, iso(DAY), iso(DAY + HOUR), "--as", "bob"), 1)
    assert "bob may not reschedule" in err
    assert cli.record(change_id) == record
    cli.ok("cancel", change_id, "not needed", "--as", "alice")
    err = one_error(cli("schedule", change_id, iso(DAY), iso(DAY + HOUR), "--as", "alice"), 1)
    assert "cancelled" in err
    one_error(cli("schedule", "RFC-20260101000000-abcdef", iso(DAY), iso(DAY + HOUR), "--as", "alice"), 3)
    assert cli("schedule", change_id, iso(DAY), "--as", "alice").code == 2  # END is missing
