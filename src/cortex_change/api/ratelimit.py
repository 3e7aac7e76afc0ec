"""Per-identity request rate limits on the REST API (docs/security.md#rate-limits).

Each identity may send `RATE_LIMIT_PER_MINUTE` requests in any minute (0: no limit), or its
token's `rate` scope if the token has one. Counted after authentication, in memory, per process:
a sliding window of one minute at one-second resolution (at most 60 counts per identity), under a
lock; identities idle for over a minute are forgotten. Several server processes each count
separately. Over the limit: HTTP 429 with Retry-After; the first refusal in a minute is audited
and announced (services/throttle.py)."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from fastapi import Request

from ..domain.agents import Principal
from ..domain.errors import CortexError, RateLimited
from ..services import throttle
from ..services.context import Context

WINDOW = throttle.WINDOW_SECONDS
DEFAULT_SOURCE = "RATE_LIMIT_PER_MINUTE"
SCOPE_SOURCE = "the token's rate scope"
log = logging.getLogger("cortex_change.ratelimit")


class Window:
    """One identity's requests in the last minute: [second, count] buckets, oldest first."""

    __slots__ = ("alerted", "buckets", "seen", "total")

    def __init__(self) -> None:
        self.buckets: deque[list[int]] = deque()
        self.total = 0
        self.seen = 0.0  # the last request, allowed or not
        self.alerted: float | None = None  # when its last refusal was announced


class Verdict:
    """Allowed, or refused with the seconds to wait and whether this refusal is to be announced."""

    __slots__ = ("alert", "retry_after")

    def __init__(self, retry_after: int = 0, alert: bool = False) -> None:
        self.retry_after = retry_after  # 0: allowed
        self.alert = alert

    @property
    def allowed(self) -> bool:
        return self.retry_after == 0


ALLOWED = Verdict()


class Limiter:
    """Sliding one-minute windows per identity; thread-safe, memory bounded by the identities
    active in the last minute. `clock` gives seconds (monotonic by default; tests inject one)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._windows: dict[str, Window] = {}
        self._swept = clock()

    def hit(self, identity: str, limit: int) -> Verdict:
        """Count one request of `identity` against `limit` a minute (it counts only if allowed)."""
        now = self.clock()
        second = int(now // 1)
        with self._lock:
            self._sweep(now)
            window = self._windows.get(identity)
            if window is None:
                window = self._windows[identity] = Window()
            window.seen = now
            buckets = window.buckets
            while buckets and buckets[0][0] <= second - WINDOW:  # a bucket counts for WINDOW seconds
                window.total -= buckets.popleft()[1]
            if window.total < limit:
                if buckets and buckets[-1][0] == second:
                    buckets[-1][1] += 1
                else:
                    buckets.append([second, 1])
                window.total += 1
                return ALLOWED
            # Refused: wait until enough of the oldest buckets expire to leave room for one more.
            excess, freed, retry = window.total - limit + 1, 0, WINDOW
            for start, count in buckets:
                freed += count
                if freed >= excess:
                    retry = start + WINDOW - second
                    break
            alert = window.alerted is None or now - window.alerted >= WINDOW
            if alert:
                window.alerted = now
            return Verdict(max(1, retry), alert)

    def unalert(self, identity: str) -> None:
        """The announcement failed: let the next refusal try again."""
        with self._lock:
            window = self._windows.get(identity)
            if window is not None:
                window.alerted = None

    def _sweep(self, now: float) -> None:
        """At most once a minute, forget identities with no request for over a minute."""
        if now - self._swept < WINDOW:
            return
        self._swept = now
        idle = [name for name, w in self._windows.items() if now - w.seen > WINDOW]
        for name in idle:
            del self._windows[name]

    def __len__(self) -> int:
        with self._lock:
            return len(self._windows)


def limit_of(ctx: Context, who: Principal) -> tuple[int, str]:
    """`who`'s requests a minute (0: no limit) and where the number comes from."""
    if who.scopes.rate is not None:
        return who.scopes.rate, SCOPE_SOURCE
    return int(ctx.settings["RATE_LIMIT_PER_MINUTE"]), DEFAULT_SOURCE


def check(request: Request, ctx: Context, who: Principal) -> None:
    """Count this request of the authenticated `who`; raise RateLimited over its limit (429).
    The first refusal of an identity in a minute is audited and queued to the outbox."""
    limit, source = limit_of(ctx, who)
    if limit <= 0:
        return
    limiter: Limiter = request.app.state.limiter
    verdict = limiter.hit(who.name, limit)
    if verdict.allowed:
        return
    if verdict.alert:
        try:
            throttle.alert(ctx, who.name, limit)
        except CortexError as exc:  # the refusal stands; a later one announces it
            limiter.unalert(who.name)
            log.warning("rate limit alert for %s not recorded: %s", who.name, exc)
    raise RateLimited(
        f"{who.name} is over its limit of {limit} requests a minute ({source}); "
        f"retry in {verdict.retry_after} s",
        verdict.retry_after,
    )
