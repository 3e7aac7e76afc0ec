"""The API's rate limiter (api/ratelimit.py) with an injected clock: a sliding one-minute window
per identity, Retry-After, one announcement a minute, idle identities forgotten."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import cast

from cortex_change.api.ratelimit import Limiter, limit_of
from cortex_change.config import load
from cortex_change.domain.agents import Principal, Scopes
from cortex_change.services.context import Context


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_window_allows_the_limit_then_refuses_until_the_oldest_requests_expire() -> None:
    clock = Clock()
    limiter = Limiter(clock)
    assert all(limiter.hit("bot", 3).allowed for _ in range(3))
    refused = limiter.hit("bot", 3)
    assert not refused.allowed and refused.retry_after == 60
    clock.now += 59.5
    assert limiter.hit("bot", 3).retry_after == 1  # whole seconds, never 0 while refused
    clock.now += 0.5
    assert limiter.hit("bot", 3).allowed  # the first minute's requests have expired


def test_the_window_slides_second_by_second() -> None:
    clock = Clock()
    limiter = Limiter(clock)
    assert limiter.hit("bot", 3).allowed  # t=1000
    clock.now += 10
    assert limiter.hit("bot", 3).allowed  # t=1010
    assert limiter.hit("bot", 3).allowed
    refused = limiter.hit("bot", 3)
    assert refused.retry_after == 50  # the request of t=1000 leaves the window at t=1060
    clock.now += 50
    assert limiter.hit("bot", 3).allowed
    verdict = limiter.hit("bot", 3)
    assert verdict.retry_after == 10  # now the two of t=1010 are the oldest
    clock.now += 10
    assert limiter.hit("bot", 3).allowed and limiter.hit("bot", 3).allowed
    assert not limiter.hit("bot", 3).allowed


def test_refused_requests_do_not_count() -> None:
    clock = Clock()
    limiter = Limiter(clock)
    assert limiter.hit("bot", 1).allowed
    for _ in range(100):
        clock.now += 0.5
        assert not limiter.hit("bot", 1).allowed
    clock.now = 1060
    assert limiter.hit("bot", 1).allowed


def test_identities_are_counted_apart_each_with_its_own_limit() -> None:
    limiter = Limiter(Clock())
    assert all(limiter.hit("bot", 2).allowed for _ in range(2))
    assert not limiter.hit("bot", 2).allowed
    assert all(limiter.hit("alice", 5).allowed for _ in range(5))
    assert not limiter.hit("alice", 5).allowed


def test_the_first_refusal_is_announced_once_a_minute() -> None:
    clock = Clock()
    limiter = Limiter(clock)
    limiter.hit("bot", 1)
    alerts = []
    for _ in range(240):  # two minutes of refusals, two a second
        verdict = limiter.hit("bot", 1)
        if not verdict.allowed:
            alerts.append(verdict.alert)
        clock.now += 0.5
    assert alerts[0] is True
    assert sum(alerts) == 2  # the first, and one in the next minute (allowed in between once)


def test_a_failed_announcement_is_tried_again_by_the_next_refusal() -> None:
    limiter = Limiter(Clock())
    limiter.hit("bot", 1)
    assert limiter.hit("bot", 1).alert
    assert not limiter.hit("bot", 1).alert
    limiter.unalert("bot")
    assert limiter.hit("bot", 1).alert


def test_identities_idle_for_over_a_minute_are_forgotten() -> None:
    clock = Clock()
    limiter = Limiter(clock)
    for i in range(1000):
        limiter.hit(f"agent-{i}", 10)
    assert len(limiter) == 1000
    clock.now += 30
    limiter.hit("alice", 10)
    assert len(limiter) == 1001  # swept at most once a minute, and none idle for a minute yet
    clock.now += 31
    limiter.hit("bob", 10)
    assert len(limiter) == 2  # alice (31 s idle) and bob remain


def test_concurrent_hits_allow_exactly_the_limit() -> None:
    limiter = Limiter(Clock())
    results: list[bool] = []
    lock = threading.Lock()

    def burst() -> None:
        for _ in range(50):
            allowed = limiter.hit("bot", 120).allowed
            with lock:
                results.append(allowed)

    threads = [threading.Thread(target=burst) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 400 and sum(results) == 120


def test_the_limit_is_the_tokens_rate_scope_else_the_setting() -> None:
    def ctx(value: str) -> Context:
        return cast(Context, SimpleNamespace(settings=load({"RATE_LIMIT_PER_MINUTE": value})))

    person, bot = Principal("alice"), Principal("bot", True, Scopes(rate=5))
    assert limit_of(ctx("600"), person) == (600, "RATE_LIMIT_PER_MINUTE")
    assert limit_of(ctx("0"), person) == (0, "RATE_LIMIT_PER_MINUTE")  # 0: no limit
    assert limit_of(ctx("600"), bot) == (5, "the token's rate scope")
    assert limit_of(ctx("0"), bot) == (5, "the token's rate scope")
