"""The cheaper per-request paths (issue 12, bench/README.md "Latest figures (API)") behave as the
ones they replace: the size limits' one-message fast path, the query parameter check run on the
event loop, and PostgreSQL's snapshot opened by one statement."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest

from cortex_change.api import limits, strict
from cortex_change.store.db import open_store

Message = dict[str, Any]


def _run_limits(
    messages: list[Message], headers: list[tuple[bytes, bytes]]
) -> tuple[list[Message], list[Message]]:
    """(what the app behind Limits received, what was sent back) for one request."""
    seen: list[Message] = []
    sent: list[Message] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            seen.append(message)
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    pending = list(messages)

    async def receive() -> Message:
        return pending.pop(0)

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/x", "headers": headers}
    asyncio.run(limits.Limits(app)(scope, receive, send))
    return seen, sent


def _status(sent: list[Message]) -> int:
    return int(next(m["status"] for m in sent if m["type"] == "http.response.start"))


def test_a_body_in_one_message_reaches_the_app_whole_and_once() -> None:
    body = b'{"reason": "x"}'
    seen, sent = _run_limits(
        [{"type": "http.request", "body": body, "more_body": False}],
        [(b"content-length", str(len(body)).encode())],
    )
    assert [m["body"] for m in seen] == [body]
    assert _status(sent) == 204


def test_a_streamed_body_is_joined_into_one_message() -> None:
    parts = [b'{"rea', b'son": ', b'"x"}']
    messages = [{"type": "http.request", "body": p, "more_body": i < 2} for i, p in enumerate(parts)]
    seen, _ = _run_limits(messages, [(b"transfer-encoding", b"chunked")])
    assert seen == [{"type": "http.request", "body": b"".join(parts), "more_body": False}]


def test_bodies_over_the_limit_are_refused_however_they_come() -> None:
    over = b"x" * (limits.BODY_MAX + 1)
    _, sent = _run_limits([{"type": "http.request", "body": over}], [])  # no Content-Length
    assert _status(sent) == 413
    half = b"x" * (limits.BODY_MAX // 2 + 1)
    streamed = [{"type": "http.request", "body": half, "more_body": True}] * 2
    seen, sent = _run_limits(streamed, [])
    assert _status(sent) == 413 and seen == []
    _, sent = _run_limits([], [(b"content-length", str(len(over)).encode())])  # refused unread
    assert _status(sent) == 413


def test_the_last_content_length_counts_and_header_bytes_are_summed() -> None:
    twice = [(b"content-length", b"1"), (b"content-length", str(limits.BODY_MAX + 1).encode())]
    _, sent = _run_limits([], twice)
    assert _status(sent) == 413
    big = [(b"x-pad", b"y" * limits.HEADERS_MAX)]
    _, sent = _run_limits([], big)
    assert _status(sent) == 431
    assert limits.headers_size(big) > limits.HEADERS_MAX


def test_a_client_gone_before_the_body_is_passed_on_to_the_app() -> None:
    seen, _ = _run_limits([{"type": "http.disconnect"}], [])
    assert seen == [{"type": "http.disconnect"}]


def test_the_query_parameter_check_runs_on_the_event_loop() -> None:
    """A plain `def` dependency would cost every request a thread pool hop."""
    assert inspect.iscoroutinefunction(strict.only_known_query_parameters)


def test_reads_are_repeatable_read_snapshots_and_writes_stay_read_committed(store_url: str) -> None:
    """PostgreSQL opens a snapshot with one `BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY`; the
    pooled connection goes back to the default for the next writer."""
    if not store_url.startswith("postgresql://"):
        pytest.skip("PostgreSQL's isolation levels")
    store = open_store(store_url, pooled=True)
    show = "SELECT current_setting('transaction_isolation'), current_setting('transaction_read_only')"
    try:
        for _ in range(3):  # the pool hands the same connection back
            with store.read() as tx:
                assert tx.one(show) == ("repeatable read", "on")
            with store.transaction() as tx:
                assert tx.one(show) == ("read committed", "off")
    finally:
        store.close()
