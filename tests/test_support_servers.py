"""The test servers of tests/support.py keep the run's output clean: a client that goes away
before its answer (a timeout under test) costs no traceback."""

from __future__ import annotations

import socket
import struct
import threading
import time

import pytest

from support import HttpServer, Received, Reply


class Held(HttpServer):
    """Answers a large body once the test lets it (after the client has gone)."""

    def __init__(self) -> None:
        self.go = threading.Event()
        super().__init__()

    def answer(self, request: Received) -> Reply:
        assert self.go.wait(10)
        return Reply(200, b"x" * 256 * 1024)


def _handlers() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if "process_request_thread" in t.name}


def test_a_client_gone_before_its_answer_leaves_no_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    before = _handlers()
    with Held() as server:
        port = int(server.origin.rsplit(":", 1)[1])
        client = socket.create_connection(("127.0.0.1", port), timeout=5)
        client.sendall(b"GET /slow HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        deadline = time.monotonic() + 5
        while not server.requests and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.requests, "the request never arrived"
        # Close with a reset (linger 0), as a client does that gives up at its timeout.
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()
        handlers = _handlers() - before
        server.go.set()
        for handler in handlers:
            handler.join(5)
            assert not handler.is_alive()
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    assert "Error" not in err, err
