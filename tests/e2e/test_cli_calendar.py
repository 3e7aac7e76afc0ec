"""`cortex-change calendar` and `calendar feed` as real subprocesses on both backends: the table
(times UTC, windows listed after it), --json, filters, bad dates (exit 2), and feeds created,
listed and revoked (change managers only). The CLI runs on the real clock."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import Cli

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def iso(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def planned(cli: Cli, service: str, start: str, end: str, title: str, env: str = "production") -> str:
    return cli.create(
        "normal",
        "deployment",
        title,
        "--service",
        service,
        "--environment",
        env,
        "--planned-start",
        start,
        "--planned-end",
        end,
    )


def test_the_table_lists_planned_changes_and_windows(cli: Cli) -> None:
    web = planned(cli, "web", iso(DAY), iso(DAY + 2 * HOUR), "Deploy web 2.4")
    api = planned(cli, "api", iso(2 * DAY), iso(2 * DAY + HOUR), "Rotate api keys", env="staging")
    planned(cli, "web", iso(30 * DAY), iso(30 * DAY + HOUR), "Far away")
    cli.ok("assess", web)
    cli.ok(
        "windows",
        "add",
        "freeze",
        iso(3 * DAY),
        iso(4 * DAY),
        "--reason",
        "Launch freeze",
        "--as",
        "change-manager",
    )
    out = cli.ok("calendar")
    lines = out.splitlines()
    assert lines[0].startswith("planned changes ") and lines[0].endswith(" (UTC)")
    assert lines[1].split() == ["START", "END", "CHANGE", "STATE", "RISK", "SERVICES", "TITLE"]
    assert lines[2].split()[2:5] == [web, "pending_approval", "medium"]
    assert lines[2].split()[5:] == ["web", "Deploy", "web", "2.4"]
    assert lines[3].split()[2:6] == [api, "pending_assessment", "-", "api"]
    assert lines[1].index("CHANGE") == lines[2].index(web) == lines[3].index(api)  # aligned columns
    assert "Far away" not in out  # beyond the 14 days
    assert lines[4].startswith("FREEZE  ") and lines[4].endswith("all  Launch freeze")

    assert [r.split()[2] for r in cli.ok("calendar", "--service", "API").splitlines()[2:3]] == [api]
    assert api not in cli.ok("calendar", "--env", "production")
    far = cli.ok("calendar", "--from", iso(29 * DAY)[:10], "--to", iso(31 * DAY)[:10])
    assert "Far away" in far and web not in far

    view = json.loads(cli.ok("calendar", "--json"))
    assert [c["change_id"] for c in view["changes"]] == [web, api]
    assert view["changes"][0]["planned_start"].endswith("Z")
    assert [w["reason"] for w in view["windows"]] == ["Launch freeze"]


def test_an_empty_span_says_so(cli: Cli) -> None:
    cli.create("normal", "deployment", "Unplanned")  # a store exists
    res = cli("calendar", "--from", "2030-01-01", "--to", "2030-01-02")
    assert res.code == 0, res.err
    assert res.out.splitlines() == [
        "planned changes 2030-01-01T00:00:00Z to 2030-01-03T00:00:00Z (UTC)",
        "no planned changes in this span",
    ]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--from", "tomorrow"), "argument --from: 'tomorrow' is not an ISO 8601 time"),
        (("--to", "2026-02-30"), "argument --to: '2026-02-30' is not an ISO 8601 time"),
        (("--from", "1999-12-31"), "is outside the years 2000–9998"),
        (("--from", "2026-03-01", "--to", "2026-02-01"), "is not after from"),
        (("--from", "2026-01-01", "--to", "2028-01-01"), "the span is over 366 days"),
        (("--service", ""), "must not be empty"),
    ],
)
def test_bad_dates_exit_2(cli: Cli, args: tuple[str, ...], words: str) -> None:
    cli.create("normal", "deployment", "Unplanned")
    before = cli.counts()
    res = cli("calendar", *args)
    assert res.code == 2, (res.code, res.out, res.err)
    assert words in res.err and res.out == ""
    assert cli.counts() == before


def test_feeds_are_created_listed_and_revoked(cli: Cli) -> None:
    res = cli("calendar", "feed", "create", "ops", "--as", "alice")
    assert res.code == 1 and "alice may not manage calendar feeds" in res.err, res
    res = cli("calendar", "feed", "create", "ops team", "--as", "change-manager")
    assert res.code == 0, res.err
    path = res.out.strip()
    assert path.startswith("/api/v1/calendar/ccf_") and path.endswith(".ics")
    assert "shown once" in res.err
    feed_id = path.split("_")[1]
    listed = cli.ok("calendar", "feed", "list")
    assert listed.split()[:2] == [feed_id, "ops"] and listed.rstrip().endswith("active")
    assert path.split("_", 2)[2].removesuffix(".ics") not in listed
    assert cli.ok("calendar", "feed", "revoke", feed_id, "--as", "change-manager").strip() == (
        f"calendar feed {feed_id} revoked"
    )
    rows = json.loads(cli.ok("calendar", "feed", "list", "--json"))
    assert rows[0]["feed_id"] == feed_id and rows[0]["revoked_at"]
    res = cli("calendar", "feed", "revoke", feed_id, "--as", "change-manager")
    assert res.code == 3, (res.code, res.err)
    actions = [e["action"] for e in cli.events() if e["action"].startswith("calendar_feed")]
    assert actions == ["calendar_feed_created", "calendar_feed_revoked"]


def test_a_bad_date_is_refused_before_any_store_is_opened(cli: Cli) -> None:
    res = cli("calendar", "--to", "next week")
    assert res.code == 2, (res.code, res.err)
    assert "argument --to: 'next week' is not an ISO 8601 time" in res.err
