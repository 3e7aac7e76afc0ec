"""`metrics` and `list` through the real console script (history seeded in-process at fixed times)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from cortex_change.services import changes, implementation
from cortex_change.services.context import Context, open_context
from support import file_change

if TYPE_CHECKING:
    from conftest import Cli, FakeClock

KPI_KEYS = {
    "change_success_rate",
    "mtta",
    "mtti",
    "rollback_rate",
    "emergency_change_rate",
    "change_induced_incidents",
    "unauthorized_changes",
    "audit_compliance",
    "risk_prediction_accuracy",
    "false_positive_rate",
}
DORA_KEYS = {"deployment_frequency", "lead_time", "change_failure_rate", "time_to_restore"}


@pytest.fixture
def ctx(cli: Cli, clock: FakeClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Context]:
    """In-process services on the same store the console script uses (either backend)."""
    monkeypatch.chdir(tmp_path)
    context = open_context(env={"CORTEX_CHANGE_DB": str(cli.db)}, clock=clock)
    yield context
    context.close()


def test_metrics_today_json_has_every_kpi_with_its_target(cli: Cli) -> None:
    change_id = cli.create("normal", "documentation", "Docs", "--impact", "low")
    cli.ok("assess", change_id)
    cli.ok("implement", change_id, "--as", "ops")
    cli.ok("close", change_id, "successful", "--as", "ops")

    report = json.loads(cli.ok("metrics", "today", "--json"))
    assert report["period"]["label"] == "today"
    assert report["changes_created"] == 1
    assert report["changes_by_state"] == {"closed": 1}
    kpis = {k["key"]: k for k in report["kpis"]}
    assert set(kpis) == KPI_KEYS
    for kpi in report["kpis"]:
        assert set(kpi) >= {"key", "name", "value", "unit", "target", "met", "note"}
        assert kpi["target"], kpi
        assert kpi["value"] is not None or kpi["note"], kpi  # no data: says why
    assert {k["key"] for k in report["dora"]} == DORA_KEYS
    assert kpis["change_success_rate"]["value"] == 100.0
    assert kpis["change_success_rate"]["met"] is True
    assert kpis["unauthorized_changes"]["value"] is None  # nothing observed yet: n/a (issue 15)
    assert "no observed changes yet" in kpis["unauthorized_changes"]["note"]

    text = cli.ok("metrics", "today")
    for kpi in report["kpis"]:
        assert kpi["name"] in text
        assert kpi["target"] in text


def test_metrics_for_a_date_range(cli: Cli, ctx: Context, clock: FakeClock) -> None:
    """Changes made in January 2026 (by a fake clock) are counted in that range only."""

    def lifecycle(kind: str, status: str | None) -> None:
        c = file_change(ctx, type=kind, category="patch", title=kind, requested_by="dev")
        clock.advance(minutes=30)
        changes.assess_change(ctx, change_id=c.change_id)
        if kind == "normal":
            clock.advance(hours=2)
            changes.approve_change(ctx, change_id=c.change_id, approver="tech-lead", reason="ok")
        if status:
            clock.advance(minutes=10)
            implementation.implement_change(ctx, change_id=c.change_id, actor="cortex-deployer")
            changes.close_change(ctx, change_id=c.change_id, status=status, notes="", actor="cortex-deployer")

    clock.set(datetime(2026, 1, 10, 9, 0, tzinfo=UTC))
    lifecycle("normal", "successful")
    lifecycle("normal", "rolled_back")
    lifecycle("emergency", None)
    lifecycle("normal", None)
    clock.set(datetime(2026, 2, 3, 9, 0, tzinfo=UTC))
    lifecycle("normal", "successful")  # outside the range

    report = json.loads(cli.ok("metrics", "2026-01-01 to 2026-01-31", "--json"))
    assert report["period"] == {
        "label": "2026-01-01 to 2026-01-31",
        "start": "2026-01-01T00:00:00Z",
        "end": "2026-02-01T00:00:00Z",
    }
    assert report["changes_created"] == 4
    assert report["changes_by_type"] == {"emergency": 1, "normal": 3}
    assert report["closures"] == {"rolled_back": 1, "successful": 1}
    kpis = {k["key"]: k["value"] for k in report["kpis"]}
    assert kpis["change_success_rate"] == 50.0
    assert kpis["rollback_rate"] == 50.0
    assert kpis["emergency_change_rate"] == 25.0

    empty = json.loads(cli.ok("metrics", "2025-06-01 to 2025-06-30", "--json"))
    assert empty["changes_created"] == 0
    assert "Change metrics: 2026-01-01 to 2026-01-31" in cli.ok("metrics", "2026-01-01 to 2026-01-31")


def test_list_groups(cli: Cli) -> None:
    def new(title: str, *extra: str) -> str:
        return cli.create("normal", "deployment", title, *extra)

    pending = new("still pending")
    awaiting = new("awaiting approval")
    cli.ok("assess", awaiting)
    low = ("--impact", "low")
    approved = cli.create("normal", "documentation", "approved", *low)
    cli.ok("assess", approved)
    implemented = cli.create("normal", "documentation", "implemented", *low)
    cli.ok("assess", implemented)
    cli.ok("implement", implemented, "--as", "ops")
    closed = cli.create("normal", "documentation", "closed", *low)
    cli.ok("assess", closed)
    cli.ok("implement", closed, "--as", "ops")
    cli.ok("close", closed, "successful", "--as", "ops")

    def listed(*args: str) -> set[str]:
        return {r["change_id"] for r in json.loads(cli.ok("list", *args, "--json"))}

    assert listed("pending") == {pending, awaiting}
    assert listed("pending_approval") == {awaiting}
    assert listed("approved") == {approved}
    assert listed("implemented") == {implemented}
    assert listed("closed") == {closed}
    assert listed("rejected") == set()
    assert listed() == {pending, awaiting, approved, implemented, closed}
    assert cli.ok("list", "rejected").strip() == "no changes"


def test_list_paging_with_limit_and_before(cli: Cli, ctx: Context, clock: FakeClock) -> None:
    ids = []
    for n in range(7):
        change = file_change(ctx, type="normal", category="patch", title=f"#{n}", requested_by="a")
        ids.append(change.change_id)
        if n % 2:
            clock.advance(seconds=1)  # some share a second, some do not
    newest_first = [r["change_id"] for r in json.loads(cli.ok("list", "--json"))]
    assert sorted(newest_first) == sorted(ids)

    pages: list[str] = []
    before: list[str] = []
    while True:
        page = json.loads(cli.ok("list", "--limit", "3", *before, "--json"))
        assert len(page) <= 3
        if not page:
            break
        pages += [r["change_id"] for r in page]
        before = ["--before", page[-1]["change_id"]]
    assert pages == newest_first
    assert newest_first[0] == ids[-1]  # alone in the newest second
    assert newest_first[-1] in ids[:2]  # the oldest second holds the first two
    created = [r["created_at"] for r in json.loads(cli.ok("list", "--json"))]
    assert created == sorted(created, reverse=True)
