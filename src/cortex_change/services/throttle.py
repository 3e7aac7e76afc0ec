"""An identity over its request rate (api/ratelimit.py, docs/security.md#rate-limits): audited and
announced to the change managers through the outbox, in one transaction."""

from __future__ import annotations

from ..domain import schedule
from ..domain.events import Event, EventKind
from ..notify.message import Message
from ..store import audit
from . import followups
from .context import Context

WINDOW_SECONDS = 60
ACTOR = "rate-limiter"


def alert(ctx: Context, identity: str, limit: int) -> None:
    """`identity` went over `limit` requests a minute: a `rate_limited` audit event (no change)
    and one outbox message per enabled channel to the policy's change managers."""
    now = ctx.clock()
    details = {"identity": identity, "limit": limit, "window_seconds": WINDOW_SECONDS}
    with ctx.db.transaction() as tx:
        rows = audit.append(tx, None, [Event(EventKind.RATE_LIMITED, ACTOR, details)], now)
        followups.queue(
            tx,
            ctx,
            Message(
                event_id=rows[0]["event_id"],
                kind="rate_limited",
                change_id=None,
                subject=f"[cortex-change] Rate limit: {identity} over {limit} requests a minute"[:300],
                text=(
                    f"{identity} sent more than {limit} requests to the API within {WINDOW_SECONDS} s; "
                    "the rest were refused (HTTP 429) until its rate falls back under the limit."
                )[:4000],
                ask=f"check what {identity} is doing; revoke its token if it is running away",
                recipients=tuple(sorted(ctx.policy.change_managers)),
                change=None,
                at=schedule.stamp(now),
            ),
            now,
        )
