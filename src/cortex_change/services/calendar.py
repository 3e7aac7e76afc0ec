"""The calendar of planned changes (docs/schedule.md): entries over a span, the iCalendar feed, and
the feeds' secrets (created once, only a hash kept, revoked; audited).

A feed secret is not an API token: it opens the calendar feed and nothing else.
"""

from __future__ import annotations

import hmac
import os
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from ..domain import calendar, permissions
from ..domain import validation as v
from ..domain.calendar import Entry
from ..domain.codec import fmt_time
from ..domain.errors import NotFound, ValidationError
from ..domain.events import Event, EventKind
from ..domain.lifecycle import State
from ..domain.schedule import instant, stamp
from ..domain.windows import Window
from ..store import audit, changes
from ..store import calendar as feeds
from .context import Context
from .tokens import digest, new_secret
from .windows import overlapping

DEFAULT_DAYS = timedelta(days=14)  # `calendar` without --to: two weeks
LONGEST = timedelta(days=366)  # a span asked for at once
FEED_PAST = timedelta(days=30)  # the feed: a month back ...
FEED_AHEAD = timedelta(days=180)  # ... and half a year ahead
ENTRIES_MAX = 2000
FEED = re.compile(r"^ccf_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
PATH = "/api/v1/calendar/{}.ics"


class FeedNotFound(NotFound):
    """An unknown, malformed or revoked feed: which of them is never said."""


def span(start: str | None, end: str | None, now: datetime) -> tuple[datetime, datetime]:
    """[from, to) from what a person typed: ISO 8601 times or dates (a date `to` includes its day);
    by default today (UTC) and the 14 days after it."""
    first = (
        now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        if start is None
        else instant("from", start)
    )
    if end is None:
        last = first + DEFAULT_DAYS
    else:
        last = instant("to", end)
        if len(end.strip()) == 10:  # a date: up to the end of that day
            last += timedelta(days=1)
    if last <= first:
        raise ValidationError("to", f"{stamp(last)} is not after from ({stamp(first)})")
    if last - first > LONGEST:
        raise ValidationError("to", f"the span is over {LONGEST.days} days; ask for a shorter one")
    return first, last


def _in_view(w: Window, service: str | None, environment: str | None) -> bool:
    """A window shown beside the changes asked for: one over everything (or a CMDB tier), and one
    over the service or environment asked about (any, when none is asked about)."""
    if w.scope == "service":
        return service is None or w.scope_value == service.strip().lower()
    if w.scope == "environment":
        return environment is None or w.scope_value == environment
    return True


def _read(
    ctx: Context, start: datetime, end: datetime, service: str | None, environment: str | None
) -> tuple[list[Entry], list[Window]]:
    with ctx.db.read() as tx:
        ids = changes.planned_between(
            tx, start.timestamp(), end.timestamp(), tuple(State), service=service, limit=ENTRIES_MAX
        )
        records = [changes.get(tx, cid) for cid in ids]
        found = overlapping(ctx, tx, start.timestamp(), end.timestamp())
    if environment is not None:  # a change naming no environment covers every one (as at the gate)
        records = [c for c in records if c.environment in (None, environment)]
    shown = [w for w in found if _in_view(w, service, environment)]
    return [calendar.entry(c) for c in records], shown


def entries(
    ctx: Context, start: datetime, end: datetime, service: str | None = None, environment: str | None = None
) -> list[Entry]:
    """Changes in any state whose planned window overlaps [start, end), soonest first."""
    if service is not None:
        v.name("service", service)
    if environment is not None:
        v.name("environment", environment)
    return _read(ctx, start, end, service, environment)[0]


def entry_doc(e: Entry) -> dict[str, Any]:
    return {
        "change_id": e.change_id,
        "title": e.title,
        "state": e.state,
        "type": e.type,
        "risk_level": e.risk_level,
        "services": list(e.services),
        "environment": e.environment,
        "requested_by": e.requested_by,
        "planned_start": stamp(e.planned_start),
        "planned_end": stamp(e.planned_end),
    }


def window_doc(w: Window) -> dict[str, Any]:
    return {
        "window_id": w.window_id,
        "kind": w.kind,
        "starts_at": stamp(w.starts_at),
        "ends_at": stamp(w.ends_at),
        "scope": w.scope,
        "scope_value": w.scope_value,
        "reason": w.reason,
    }


def calendar_view(
    ctx: Context,
    *,
    start: str | None = None,
    end: str | None = None,
    service: str | None = None,
    environment: str | None = None,
) -> dict[str, Any]:
    """What `calendar` and `GET /api/v1/calendar` show: the span, its planned changes (any state)
    and the freeze and maintenance windows over it."""
    if service is not None:
        v.name("service", service)
    if environment is not None:
        v.name("environment", environment)
    first, last = span(start, end, ctx.clock())
    found, shown = _read(ctx, first, last, service, environment)
    return {
        "from": stamp(first),
        "to": stamp(last),
        "changes": [entry_doc(e) for e in found],
        "windows": [window_doc(w) for w in shown],
    }


def month_view(ctx: Context, first: datetime, last: datetime) -> tuple[list[Entry], list[Window]]:
    """The portal's month: every planned change and window over [first, last)."""
    return _read(ctx, first, last, None, None)


# --- feeds ---------------------------------------------------------------------------------------


def _feed_name(name: str) -> str:
    """Who or what subscribes (a person, a team's calendar): one line."""
    return v.name("NAME", name).strip()


def create_feed(ctx: Context, name: str, actor: str) -> tuple[str, str]:
    """A new feed: (feed_id, its secret, shown only now). CHANGE_MANAGERS and ADMINS may."""
    permissions.require(permissions.Act.MANAGE_FEEDS, actor, ctx.policy)
    name = _feed_name(name)
    feed_id = os.urandom(6).hex()
    secret = new_secret()
    now = ctx.clock()
    with ctx.db.transaction() as tx:
        feeds.insert(tx, feed_id, name, digest(secret), fmt_time(now) or "")
        audit.append(
            tx,
            None,
            [Event(EventKind.CALENDAR_FEED_CREATED, actor, {"feed_id": feed_id, "name": name})],
            now,
        )
    return feed_id, f"ccf_{feed_id}_{secret}"


def feed_path(secret: str) -> str:
    """Where a calendar client subscribes: the API's path with the secret in it."""
    return PATH.format(secret)


def list_feeds(ctx: Context) -> list[dict[str, Any]]:
    with ctx.db.read() as tx:
        rows = feeds.listing(tx)
    return [{"feed_id": r[0], "name": r[1], "created_at": r[2], "revoked_at": r[3]} for r in rows]


def revoke_feed(ctx: Context, feed_id: str, actor: str) -> None:
    permissions.require(permissions.Act.MANAGE_FEEDS, actor, ctx.policy)
    now = ctx.clock()
    with ctx.db.transaction() as tx:
        if feeds.revoke(tx, feed_id, fmt_time(now) or "") != 1:
            raise NotFound(f"no active calendar feed {feed_id!r} (calendar feed list shows them)")
        audit.append(tx, None, [Event(EventKind.CALENDAR_FEED_REVOKED, actor, {"feed_id": feed_id})], now)


def _check_feed(ctx: Context, secret: str) -> None:
    m = FEED.match(secret)
    if not m:
        raise FeedNotFound("no such calendar feed")
    with ctx.db.read() as tx:
        row = feeds.find(tx, m.group(1))
    if row is None or row[2] is not None or not hmac.compare_digest(str(row[1]), digest(m.group(2))):
        raise FeedNotFound("no such calendar feed")


def calendar_ics(ctx: Context, feed_secret: str) -> str:
    """The iCalendar feed behind a feed secret: a month back to half a year ahead."""
    _check_feed(ctx, feed_secret)
    now = ctx.clock()
    found, shown = _read(ctx, now - FEED_PAST, now + FEED_AHEAD, None, None)
    return calendar.ics(found, shown, now)
