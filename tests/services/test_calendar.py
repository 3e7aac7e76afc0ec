"""The calendar on both backends: planned changes by span, service and environment (every state),
the windows beside them; feeds created (secret hashed), listed, revoked, audited; the feed's .ics."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta

import pytest
from icalendar import Calendar

from cortex_change.domain.errors import Forbidden, NotFound, ValidationError
from cortex_change.services.calendar import (
    calendar_ics,
    calendar_view,
    create_feed,
    entries,
    feed_path,
    list_feeds,
    revoke_feed,
)
from cortex_change.services.changes import assess_change, cancel_change
from cortex_change.services.context import Context
from cortex_change.services.windows import add_window
from support import FakeClock, file_change, query


def _planned(ctx: Context, clock: FakeClock, days: float, hours: float = 2, **kw: object) -> str:
    start = clock() + timedelta(days=days)
    fields = {
        "type": "normal",
        "category": "deployment",
        "title": "Deploy api",
        "requested_by": "dev",
        "impact": "low",
        "affected_services": ["api"],
        "environment": "production",
        "rollback_plan": {"steps": ["undo"]},
        "planned_start": start.isoformat(),
        "planned_end": (start + timedelta(hours=hours)).isoformat(),
        **kw,
    }
    return str(file_change(ctx, **fields).change_id)


def test_entries_by_span_service_and_environment(make_ctx: Callable[..., Context], clock: FakeClock) -> None:
    ctx = make_ctx()
    soon = _planned(ctx, clock, 1)
    later = _planned(ctx, clock, 20, affected_services=["Web"], title="Deploy web")
    staging = _planned(ctx, clock, 2, environment="staging")
    anywhere = _planned(ctx, clock, 3, environment=None)
    cancelled = _planned(ctx, clock, 4)
    cancel_change(ctx, change_id=cancelled, actor="dev", reason="not needed")
    assess_change(ctx, change_id=soon)
    unplanned = file_change(
        ctx, type="normal", category="deployment", title="No window", requested_by="dev", impact="low"
    )
    now = clock()

    def ids(**kw: object) -> list[str]:
        return [e.change_id for e in entries(ctx, now, now + timedelta(days=30), **kw)]  # type: ignore[arg-type]

    assert ids() == [soon, staging, anywhere, cancelled, later]  # soonest first, every state
    assert unplanned.change_id not in ids()
    assert ids(service="web") == [later]  # any letter case
    assert ids(environment="production") == [soon, anywhere, cancelled, later]  # none named: every one
    assert ids(environment="staging") == [staging, anywhere]
    assert [e.change_id for e in entries(ctx, now, now + timedelta(days=2))] == [soon]
    # half-open: a change starting exactly at the end is not in the span
    start_of_soon = now + timedelta(days=1)
    assert [e.change_id for e in entries(ctx, now, start_of_soon)] == []
    first = entries(ctx, now, now + timedelta(days=2))[0]
    assert (first.state, first.risk_level, first.services) == ("pending_approval", "medium", ("api",))


def test_the_view_parses_its_span_and_shows_windows_in_scope(
    make_ctx: Callable[..., Context], clock: FakeClock
) -> None:
    ctx = make_ctx()
    cid = _planned(ctx, clock, 1)
    for scope in ("all", "service:api", "service:web", "environment:staging"):
        add_window(
            ctx,
            kind="freeze",
            start=(clock() + timedelta(days=2)).isoformat(),
            end=(clock() + timedelta(days=3)).isoformat(),
            scope=scope,
            reason=f"freeze {scope}",
            actor="change-manager",
        )
    view = calendar_view(ctx)
    assert (view["from"], view["to"]) == ("2026-01-15T00:00:00Z", "2026-01-29T00:00:00Z")  # today + 14 days
    assert [c["change_id"] for c in view["changes"]] == [cid]
    assert view["changes"][0]["planned_start"] == "2026-01-16T09:00:00Z"
    assert len(view["windows"]) == 4
    scoped = calendar_view(ctx, service="api", environment="production")
    assert sorted(w["reason"] for w in scoped["windows"]) == ["freeze all", "freeze service:api"]
    dated = calendar_view(ctx, start="2026-01-16", end="2026-01-16")  # a date `to` includes its day
    assert (dated["from"], dated["to"]) == ("2026-01-16T00:00:00Z", "2026-01-17T00:00:00Z")
    assert [c["change_id"] for c in dated["changes"]] == [cid]
    assert calendar_view(ctx, start="2026-01-17T00:00:00+01:00", end="2026-01-18")["changes"] == []
    for start, end, field in (
        ("tomorrow", None, "from"),
        (None, "2026-13-01", "to"),
        ("2026-02-01", "2026-01-01", "to"),
        ("2026-01-01", "2027-06-01", "to"),
    ):
        with pytest.raises(ValidationError) as bad:
            calendar_view(ctx, start=start, end=end)
        assert str(bad.value).startswith(f"{field}:"), str(bad.value)
    with pytest.raises(ValidationError):
        calendar_view(ctx, service="")


def test_feeds_are_hashed_audited_and_revoked(
    make_ctx: Callable[..., Context], clock: FakeClock, store_url: str
) -> None:
    ctx = make_ctx(ADMINS="root")
    cid = _planned(ctx, clock, 1, title="Deploy api; with, commas")
    add_window(
        ctx,
        kind="freeze",
        start=(clock() + timedelta(days=5)).isoformat(),
        end=(clock() + timedelta(days=6)).isoformat(),
        scope="all",
        reason="Release freeze",
        actor="change-manager",
    )
    _planned(ctx, clock, 200)  # beyond the feed's 180 days
    feed_id, secret = create_feed(ctx, "ops team", "change-manager")
    assert feed_path(secret) == f"/api/v1/calendar/{secret}.ics"
    assert secret.startswith(f"ccf_{feed_id}_")
    stored = query(store_url, "SELECT name, secret_hash FROM calendar_feeds WHERE feed_id=?", (feed_id,))
    plain = secret.split("_", 2)[2]
    assert stored == [("ops team", hashlib.sha256(plain.encode()).hexdigest())]
    dump = str(query(store_url, "SELECT * FROM calendar_feeds", ()))
    assert plain not in dump  # only the hash is kept
    body = calendar_ics(ctx, secret)
    events = {str(e["UID"]): e for e in Calendar.from_ical(body).walk("VEVENT")}
    assert set(events) == {f"{cid}@cortex-change", *[u for u in events if u.startswith("W-")]}
    assert len(events) == 2
    assert str(events[f"{cid}@cortex-change"]["SUMMARY"]) == f"{cid} Deploy api; with, commas"
    other_id, _ = create_feed(ctx, "admin's", "root")  # ADMINS may too
    assert sorted(f["feed_id"] for f in list_feeds(ctx)) == sorted([feed_id, other_id])

    for wrong in (
        "",
        "nope",
        secret[:-1] + ("A" if secret[-1] != "A" else "B"),
        secret.replace("ccf_", "cc_"),
    ):
        with pytest.raises(NotFound) as unknown:
            calendar_ics(ctx, wrong)
        assert str(unknown.value) == "no such calendar feed"
    revoke_feed(ctx, feed_id, "change-manager")
    with pytest.raises(NotFound) as revoked:
        calendar_ics(ctx, secret)
    assert str(revoked.value) == "no such calendar feed"  # never which
    assert {f["feed_id"]: f["revoked_at"] is not None for f in list_feeds(ctx)} == {
        feed_id: True,
        other_id: False,
    }
    with pytest.raises(NotFound):
        revoke_feed(ctx, feed_id, "change-manager")  # already revoked
    actions = query(store_url, "SELECT action, actor FROM audit_events ORDER BY seq", ())
    assert [a for a in actions if a[0].startswith("calendar_feed")] == [
        ("calendar_feed_created", "change-manager"),
        ("calendar_feed_created", "root"),
        ("calendar_feed_revoked", "change-manager"),
    ]


def test_only_change_managers_and_admins_manage_feeds(
    make_ctx: Callable[..., Context], store_url: str
) -> None:
    ctx = make_ctx(ADMINS="root")
    with pytest.raises(Forbidden) as refused:
        create_feed(ctx, "mine", "dev")
    assert "dev may not manage calendar feeds" in str(refused.value)
    feed_id, _ = create_feed(ctx, "team", "root")
    with pytest.raises(Forbidden):
        revoke_feed(ctx, feed_id, "dev")
    with pytest.raises(ValidationError):
        create_feed(ctx, " ", "root")
    assert [r[0] for r in query(store_url, "SELECT feed_id FROM calendar_feeds", ())] == [feed_id]
