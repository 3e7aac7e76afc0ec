"""Request size limits (SPEC §11): headers ≤ 16 KiB (431), bodies ≤ 1 MiB (413), as problem details."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

HEADERS_MAX = 16 * 1024  # bytes of all header lines ("name: value\r\n") of one request
BODY_MAX = 1024 * 1024  # bytes of one request body, however it is sent
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Message, Receive, Send], Awaitable[None]]


def headers_size(headers: list[tuple[bytes, bytes]]) -> int:
    """Bytes the header lines took on the wire (`name: value` and CRLF each)."""
    return sum(len(name) + len(value) + 4 for name, value in headers)


class Limits:
    """ASGI middleware: refuses headers over HEADERS_MAX (431) and bodies over BODY_MAX (413) —
    by Content-Length before reading any, and by counting a streamed (chunked) body — then hands
    the app the body it read."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        size, length = 0, b"0"
        for name, value in headers:
            size += len(name) + len(value) + 4  # headers_size, in the one pass
            if name == b"content-length":
                length = value  # the last one, as a dict of the headers would keep
        if size > HEADERS_MAX:
            await _refuse(scope, receive, send, 431, f"request headers are larger than {HEADERS_MAX} bytes")
            return
        if length.isdigit() and int(length) > BODY_MAX:
            await _refuse(scope, receive, send, 413, f"the body is larger than {BODY_MAX} bytes")
            return
        message = await receive()
        if message["type"] == "http.request" and not message.get("more_body", False):
            # The whole body in one message (the usual case): handed on as it is, no copy.
            if len(message.get("body", b"")) > BODY_MAX:
                await _refuse(scope, receive, send, 413, f"the body is larger than {BODY_MAX} bytes")
                return
            await self.app(scope, _replay([message], receive), send)
            return
        body = bytearray()
        while True:
            if message["type"] != "http.request":  # the client went away: let the app see it
                await self.app(scope, _replay([message], receive), send)
                return
            body += message.get("body", b"")
            if len(body) > BODY_MAX:
                await _refuse(scope, receive, send, 413, f"the body is larger than {BODY_MAX} bytes")
                return
            if not message.get("more_body", False):
                break
            message = await receive()
        whole = {"type": "http.request", "body": bytes(body), "more_body": False}
        await self.app(scope, _replay([whole], receive), send)


def _replay(first: list[Message], receive: Receive) -> Receive:
    """`receive` that answers the messages already read first."""
    pending = list(first)

    async def replay() -> Message:
        return pending.pop() if pending else await receive()  # one message at most

    return replay


async def _refuse(scope: Message, receive: Receive, send: Send, status: int, detail: str) -> None:
    """Answer problem details and close the connection (the rest of the request is not read)."""
    from http import HTTPStatus

    from .problems import problem

    slug = HTTPStatus(status).phrase.lower().replace(" ", "-")
    response = problem(status, slug, detail, scope.get("path", ""))
    response.headers["Connection"] = "close"
    await response(scope, receive, send)
