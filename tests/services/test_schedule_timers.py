"""AUTO_IMPLEMENT waits for a change's planned window; rescheduling cancels the old window's timer."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from cortex_change.services.changes import assess_change, schedule_change
from cortex_change.services.context import Context
from support import FakeClock, file_change, query


def _pending_implement(store_url: str, change_id: str) -> list[float]:
    sql = "SELECT due_at FROM timers WHERE change_id=? AND kind='implement' AND state='pending'"
    return [float(r[0]) for r in query(store_url, sql, (change_id,))]


def test_auto_implement_waits_for_the_window_and_a_reschedule_moves_it(
    make_ctx: Callable[..., Context], clock: FakeClock, store_url: str
) -> None:
    ctx = make_ctx(IMPLEMENTATION_DELAY="300")
    start = clock() + timedelta(days=2)
    change = file_change(
        ctx,
        type="emergency",
        category="security",
        title="Rotate keys",
        requested_by="dev",
        planned_start=start.isoformat(),
        planned_end=(start + timedelta(hours=2)).isoformat(),
    )
    assert assess_change(ctx, change_id=change.change_id).state.value == "approved"
    assert _pending_implement(store_url, change.change_id) == [start.timestamp()]  # not now + 300 s

    later = start + timedelta(days=1)
    moved = schedule_change(
        ctx,
        change_id=change.change_id,
        actor="dev",
        start=later.isoformat(),
        end=(later + timedelta(hours=2)).isoformat(),
    )
    assert moved.state.value == "approved"  # the emergency route approves again by itself
    assert _pending_implement(store_url, change.change_id) == [later.timestamp()]
