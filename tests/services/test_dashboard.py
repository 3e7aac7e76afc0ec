"""The portal dashboard's data (services/dashboard.py over store/reports.py): weekly series counted
in SQL on both backends, in one read, with exact week boundaries (Monday 00:00 UTC)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cortex_change.domain.errors import ValidationError
from cortex_change.services import changes, implementation, queries
from cortex_change.services.context import Context
from cortex_change.services.dashboard import dashboard, week_start
from cortex_change.services.reports import metrics_report
from support import FakeClock, file_change


class Spying:
    """A store that counts the reads and transactions opened through it and keeps their SQL."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.reads = 0
        self.transactions = 0
        self.sql: list[tuple[str, tuple[Any, ...]]] = []

    @contextmanager
    def _spied(self, opened: AbstractContextManager[Any]) -> Iterator[Any]:
        with opened as tx:
            run_all, run_one = tx.all, tx.one

            def spy_all(sql: str, params: Any = ()) -> Any:
                self.sql.append((sql, tuple(params)))
                return run_all(sql, params)

            def spy_one(sql: str, params: Any = ()) -> Any:
                self.sql.append((sql, tuple(params)))
                return run_one(sql, params)

            tx.all, tx.one = spy_all, spy_one
            yield tx

    def read(self) -> AbstractContextManager[Any]:
        self.reads += 1
        return self._spied(self.inner.read())

    def transaction(self) -> AbstractContextManager[Any]:
        self.transactions += 1
        return self._spied(self.inner.transaction())

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def at(clock: FakeClock, year: int, month: int, day: int, hour: int, minute: int, second: int) -> None:
    clock.set(datetime(year, month, day, hour, minute, second, tzinfo=UTC))


def filed(ctx: Context, kind: str = "normal", title: str = "change") -> str:
    change = file_change(ctx, type=kind, category="patch", title=title, requested_by="dev")
    return str(change.change_id)


def approved(ctx: Context, clock: FakeClock, change_id: str, after: timedelta) -> None:
    """Assessed 30 minutes after filing, approved `after` that."""
    clock.advance(minutes=30)
    changes.assess_change(ctx, change_id=change_id)
    clock.advance(seconds=after.total_seconds())
    changes.approve_change(ctx, change_id=change_id, approver="tech-lead", reason="ok")


def finished(ctx: Context, clock: FakeClock, change_id: str, after: timedelta, status: str) -> None:
    """Implemented `after` its approval, then closed with `status`."""
    clock.advance(seconds=after.total_seconds())
    implementation.implement_change(ctx, change_id=change_id, actor="cortex-deployer")
    changes.close_change(ctx, change_id=change_id, status=status, notes="", actor="cortex-deployer")


@pytest.fixture
def seeded(make_ctx: Callable[..., Context], clock: FakeClock) -> tuple[Context, dict[str, str]]:
    """Changes over three weeks before the clock's 2026-01-15 (a Thursday), and one just before.

    week 0 (from Mon 2025-12-29): a successful (MTTA 2.5 h, MTTI 10 min), a failed (MTTA 5 h,
    MTTI 20 min), an emergency left unassessed (filed at 00:00:00 exactly), one filed on Sunday
    night and approved at Monday 00:00:00 exactly (MTTA 2 h, in week 1).
    week 1 (from Mon 2026-01-05): one rejected, one cancelled before any assessment.
    week 2 (from Mon 2026-01-12): one assessed and pending, an emergency left unassessed.
    Before the window, at Sun 2025-12-28 23:59:59: one filed (inside the month, not the weeks).
    """
    ctx = make_ctx()
    ids: dict[str, str] = {}
    at(clock, 2025, 12, 28, 23, 59, 59)
    ids["before"] = filed(ctx, title="before the window")
    at(clock, 2025, 12, 29, 0, 0, 0)
    ids["emergency0"] = filed(ctx, "emergency", "emergency at the window's start")
    at(clock, 2025, 12, 30, 10, 0, 0)
    ids["successful"] = filed(ctx, title="successful")
    approved(ctx, clock, ids["successful"], timedelta(hours=2))
    finished(ctx, clock, ids["successful"], timedelta(minutes=10), "successful")
    at(clock, 2025, 12, 31, 10, 0, 0)
    ids["failed"] = filed(ctx, title="failed")
    approved(ctx, clock, ids["failed"], timedelta(hours=4, minutes=30))
    finished(ctx, clock, ids["failed"], timedelta(minutes=20), "failed")
    at(clock, 2026, 1, 4, 22, 0, 0)
    ids["sunday"] = filed(ctx, title="filed on Sunday, approved on Monday")
    approved(ctx, clock, ids["sunday"], timedelta(hours=1, minutes=30))  # 2026-01-05 00:00:00
    at(clock, 2026, 1, 6, 9, 0, 0)
    ids["rejected"] = filed(ctx, title="rejected")
    clock.advance(minutes=30)
    changes.assess_change(ctx, change_id=ids["rejected"])
    changes.reject_change(ctx, change_id=ids["rejected"], rejector="tech-lead", reason="too risky")
    at(clock, 2026, 1, 8, 9, 0, 0)
    ids["cancelled"] = filed(ctx, title="cancelled")
    changes.cancel_change(ctx, change_id=ids["cancelled"], actor="dev", reason="not needed")
    at(clock, 2026, 1, 13, 9, 0, 0)
    ids["pending"] = filed(ctx, title="pending")
    changes.assess_change(ctx, change_id=ids["pending"])
    at(clock, 2026, 1, 14, 9, 0, 0)
    ids["emergency2"] = filed(ctx, "emergency", "emergency this week")
    at(clock, 2026, 1, 15, 9, 0, 0)
    return ctx, ids


def test_week_start_is_monday_midnight_utc() -> None:
    assert week_start(datetime(2026, 1, 15, 9, 0, tzinfo=UTC)) == datetime(2026, 1, 12, tzinfo=UTC)
    assert week_start(datetime(2026, 1, 12, 0, 0, tzinfo=UTC)) == datetime(2026, 1, 12, tzinfo=UTC)
    assert week_start(datetime(2026, 1, 11, 23, 59, 59, tzinfo=UTC)) == datetime(2026, 1, 5, tzinfo=UTC)


def test_weekly_series_are_exact(seeded: tuple[Context, dict[str, str]]) -> None:
    ctx, ids = seeded
    doc = dashboard(ctx, weeks=3)

    assert doc["generated_at"] == "2026-01-15T09:00:00Z"
    assert doc["window"] == {"start": "2025-12-29T00:00:00Z", "end": "2026-01-19T00:00:00Z"}
    assert doc["weeks"] == ["2025-12-29", "2026-01-05", "2026-01-12"]
    assert doc["created"] == [4, 2, 2]
    assert doc["outcomes"] == {
        "successful": [1, 0, 0],
        "failed": [1, 0, 0],
        "rolled_back": [0, 0, 0],
        "cancelled": [0, 1, 0],
        "rejected": [0, 1, 0],
        "open": [2, 0, 2],
    }
    assert doc["mtta_hours"] == [3.75, 2.0, None]  # (2.5 + 5) / 2; the Sunday change's 2 h in week 1
    assert doc["mtti_minutes"] == [15.0, None, None]
    assert doc["emergency"] == [1, 0, 1]
    assert doc["emergency_rate"] == [25.0, 0.0, 50.0]

    # The risk levels the assessments gave, read one record at a time (another path than SQL's).
    levels: dict[str, int] = {}
    for name, change_id in ids.items():
        if name != "before":
            level = queries.get_change(ctx, change_id=change_id)["risk_level"] or "unassessed"
            levels[level] = levels.get(level, 0) + 1
    assert levels["unassessed"] == 3  # two emergencies and the cancelled change
    assert doc["risk_mix"] == {
        level: levels.get(level, 0) for level in ("low", "medium", "high", "critical", "unassessed")
    }


def test_month_metrics_match_metrics_report(seeded: tuple[Context, dict[str, str]]) -> None:
    ctx, _ = seeded
    doc = dashboard(ctx, weeks=3)
    assert doc["metrics"] == metrics_report(ctx, period_text="month")
    assert doc["metrics"]["period"]["label"] == "month"
    assert doc["metrics"]["changes_created"] == 9  # the weeks' 8 and the one just before them
    assert doc["metrics"]["closures"] == {"cancelled": 1, "failed": 1, "successful": 1}
    kpis = {k["key"]: k["value"] for k in doc["metrics"]["kpis"]}
    assert kpis["change_success_rate"] == 50.0
    assert kpis["emergency_change_rate"] == round(100 * 2 / 9, 2)
    assert {k["key"] for k in doc["metrics"]["dora"]} == {
        "deployment_frequency",
        "lead_time",
        "change_failure_rate",
        "time_to_restore",
    }


def test_longer_window_keeps_the_weeks_aligned(seeded: tuple[Context, dict[str, str]]) -> None:
    ctx, _ = seeded
    doc = dashboard(ctx, weeks=5)
    assert doc["weeks"][0] == "2025-12-15"
    assert doc["created"] == [0, 1, 4, 2, 2]  # the change filed at 23:59:59 on Sunday is in week 1
    assert doc["outcomes"]["open"] == [0, 1, 2, 0, 2]
    assert doc["mtta_hours"] == [None, None, 3.75, 2.0, None]
    assert doc["emergency_rate"] == [None, 0.0, 25.0, 0.0, 50.0]
    assert doc["risk_mix"]["unassessed"] == 4
    assert sum(doc["risk_mix"].values()) == 9
    for week in range(5):
        assert sum(series[week] for series in doc["outcomes"].values()) == doc["created"][week]


def test_one_read_and_covering_indexes(seeded: tuple[Context, dict[str, str]], store_url: str) -> None:
    ctx, _ = seeded
    spy = Spying(ctx.db)
    doc = dashboard(Context(ctx.settings, spy, ctx.clock), weeks=3)
    assert (spy.reads, spy.transactions) == (1, 0)
    assert doc["created"] == [4, 2, 2]
    weekly = [(sql, params) for sql, params in spy.sql if "GROUP BY 1" in sql]
    assert len(weekly) == 3
    assert all("doc" not in sql for sql, _ in weekly)
    if store_url.startswith("postgresql://"):
        return
    with ctx.db.read() as tx:  # SQLite: each weekly series reads one index range, never a row
        for sql, params in weekly:
            plan = " ".join(str(row[-1]) for row in tx.all("EXPLAIN QUERY PLAN " + sql, params))
            assert "COVERING INDEX" in plan, (sql, plan)


def test_an_empty_store_gives_zeros_and_none(make_ctx: Callable[..., Context]) -> None:
    doc = dashboard(make_ctx(), weeks=2)
    assert doc["weeks"] == ["2026-01-05", "2026-01-12"]
    assert doc["created"] == [0, 0]
    assert all(series == [0, 0] for series in doc["outcomes"].values())
    assert doc["mtta_hours"] == doc["mtti_minutes"] == doc["emergency_rate"] == [None, None]
    assert doc["risk_mix"] == {"low": 0, "medium": 0, "high": 0, "critical": 0, "unassessed": 0}
    assert doc["metrics"]["changes_created"] == 0


@pytest.mark.parametrize("weeks", [0, -1, 54, True])
def test_weeks_out_of_range_are_refused(make_ctx: Callable[..., Context], weeks: int) -> None:
    with pytest.raises(ValidationError, match="weeks"):
        dashboard(make_ctx(), weeks=weeks)
