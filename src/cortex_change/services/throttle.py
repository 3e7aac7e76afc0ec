"""An identity over its request rate (api/ratelimit.py, docs/security.md#rate-limits): audited and
announced to the change managers through the outbox, in one transaction."""

from __future__ import annotations

from ..domain.events import Event, EventKind
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
        followups.announce(
            tx,
            ctx,
            Event(EventKind.RATE_LIMITED, ACTOR, details),
            now,
            subject=f"Rate limit: {identity} over {limit} requests a minute",
            text=f"{identity} sent more than {limit} requests to the API within {WINDOW_SECONDS} s; "
            "the rest were refused (HTTP 429) until its rate falls back under the limit.",
            ask=f"check what {identity} is doing; revoke its token if it is running away",
            recipients=ctx.policy.change_managers,
        )
