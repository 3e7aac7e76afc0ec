"""uvicorn's httptools protocol with a bound on the request head: an endless header is refused
(431) as it arrives, never gathered whole in memory (httptools and uvicorn keep no limit of
their own). `cortex-change serve` runs it; `limits.py` checks the exact sizes in the app."""

from __future__ import annotations

import json

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .limits import HEADERS_MAX

HEAD_MAX = HEADERS_MAX + 8 * 1024  # the request line besides the headers
LINGER_SECONDS = 2.0  # how long a refused client may go on sending (discarded) before the close


def _response(status: int, reason: str, detail: str) -> bytes:
    body = json.dumps(
        {
            "type": f"https://cortex-change.dev/problems/{reason.lower().replace(' ', '-')}",
            "title": reason.lower(),
            "status": status,
            "detail": detail,
        }
    ).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/problem+json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


TOO_LARGE = _response(
    431, "Request Header Fields Too Large", f"the request head is larger than {HEAD_MAX} bytes"
)


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """Counts the bytes of a request head still incomplete after each read; beyond HEAD_MAX the
    request is answered 431 and the connection closed (after a short linger, so that a client
    still sending can read the answer)."""

    _in_head = False
    _head_bytes = 0
    _refused = False

    def on_message_begin(self) -> None:
        self._in_head, self._head_bytes = True, 0
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # lingering: what the client still sends is dropped
        super().data_received(data)
        if not self._in_head or self.transport.is_closing():
            return
        self._head_bytes += len(data)
        if self._head_bytes > HEAD_MAX:
            self._refuse()

    def _refuse(self) -> None:
        self._refused = True
        self.logger.warning("Request head larger than %d bytes refused (431).", HEAD_MAX)
        self.transport.write(TOO_LARGE)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)
