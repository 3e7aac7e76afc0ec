"""Helpers the test folders share: real local servers on 127.0.0.1 (HTTP recording every request,
a TCP server that answers with something that is not HTTP, SMTP with aiosmtpd), direct store
reads and a clock the test moves. Their fixtures are in tests/conftest.py.

(A module of its own, not conftest.py: test folders share the module name `conftest`. It is
importable as `support` from every folder: pyproject.toml puts tests/ on pytest's pythonpath.)
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple, Self
from urllib.parse import parse_qs, urlsplit, urlunsplit

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

# --- the store and the clock --------------------------------------------------------------------


def execute(db: Path | str, sql: str, params: tuple[Any, ...] = ()) -> None:
    """One statement, committed, straight into the store (as a database administrator would);
    `query` is for reading: SQLite would roll its writes back."""
    if str(db).startswith("postgresql://"):
        import psycopg

        with psycopg.connect(str(db), autocommit=True) as pg:
            pg.execute(sql.replace("?", "%s"), params)
        return
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute(sql, params)
    finally:
        conn.close()


def query(db: Path | str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Rows straight from the store, bypassing the program: a SQLite file or a PostgreSQL URL."""
    if str(db).startswith("postgresql://"):
        import psycopg

        with psycopg.connect(str(db), autocommit=True) as conn:
            return list(conn.execute(sql.replace("?", "%s"), params).fetchall())
    conn = sqlite3.connect(db)
    try:
        return list(conn.execute(sql, params).fetchall())
    finally:
        conn.close()


def file_change(ctx: Any, **fields: Any) -> Any:
    """services.changes.create_change with a request checked from `fields` (SPEC §1's names,
    `requested_by` included) within the context's configured limits; the new `Change`."""
    from cortex_change.domain.fields import ChangeRequest
    from cortex_change.services.changes import create_change, limits

    return create_change(ctx, ChangeRequest.of(fields, limits(ctx.settings)))


class FakeClock:
    """A clock the test moves by hand; UTC, whole seconds."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now

    def set(self, when: datetime) -> None:
        self.now = when


# --- local servers ------------------------------------------------------------------------------


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class _Server:
    """A server the test stops with `close()`, or with a `with` block."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class Received:
    """One request as it arrived: method, path (with its query), headers (names lower-cased), raw body."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)

    def text(self) -> str:
        """The body decoded as UTF-8."""
        return self.body.decode()


class Reply(NamedTuple):
    """What an HttpServer answers: status, body and headers besides Content-Length."""

    status: int = 200
    body: bytes = b"ok"
    headers: tuple[tuple[str, str], ...] = ()


class HttpServer(_Server):
    """A threaded HTTP server on a free port of 127.0.0.1, for any method.

    Every request is appended to `requests` before it is answered (a test may put a list there
    whose `append` waits), then answered with `answer(request)`: 200 "ok" unless a subclass
    answers otherwise.
    """

    def __init__(self) -> None:
        self.requests: list[Received] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                headers = {k.lower(): v for k, v in self.headers.items()}
                request = Received(self.command, self.path, headers, self.rfile.read(length))
                owner.requests.append(request)
                reply = owner.answer(request)
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers:
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    # The client went away first (it timed out, as tests make it): nobody to answer.
                    self.close_connection = True

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)  # daemon threads
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()

    def url(self, path: str = "/") -> str:
        """The URL of `path` on this server."""
        return self.origin + path

    def answer(self, request: Received) -> Reply:
        return Reply()

    def close(self) -> None:
        """Stop serving and release the port."""
        self.server.shutdown()
        self.server.server_close()


class HttpReceiver(HttpServer):
    """Answers every request with `status` and `reply` (and a Location header when `location` is
    set), after `delay` seconds."""

    def __init__(self) -> None:
        self.status = 200
        self.reply = b"ok"
        self.delay = 0.0
        self.location = ""
        super().__init__()

    def answer(self, request: Received) -> Reply:
        if self.delay:
            time.sleep(self.delay)
        return Reply(self.status, self.reply, (("Location", self.location),) if self.location else ())


def promql(request: Received) -> str:
    """The query of a Prometheus instant-query request (/api/v1/query?query=…)."""
    return parse_qs(urlsplit(request.path).query)["query"][0]


def prometheus_vector(value: float | None) -> bytes:
    """Prometheus's answer to an instant query: one sample of `value`, or none when it is None."""
    result = [] if value is None else [{"metric": {}, "value": [0, str(value)]}]
    return json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}}).encode()


class Garbage(_Server):
    """A TCP server on 127.0.0.1 that answers every request with something that is not HTTP."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.origin = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                conn.sendall(b"garbage\r\n\r\n")

    def close(self) -> None:
        self.sock.close()


@dataclass(frozen=True)
class Captured:
    """One SMTP transaction: envelope, raw content, and how the session was secured."""

    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    tls: bool
    authenticated: bool


@dataclass
class Capture:
    """aiosmtpd handler: refuses `refuse` recipients with their reply, keeps every message."""

    refuse: dict[str, str] = field(default_factory=dict)
    messages: list[Captured] = field(default_factory=list)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        self.messages.append(
            Captured(
                str(envelope.mail_from),
                list(envelope.rcpt_tos),
                raw,
                session.ssl is not None,
                bool(session.authenticated),
            )
        )
        return "250 Message accepted for delivery"


class SmtpServer(_Server):
    """An aiosmtpd server on 127.0.0.1 (plain, STARTTLS-capable, or implicit TLS) capturing mail."""

    def __init__(self, **smtp_options: Any) -> None:
        self.capture = Capture()
        self.port = free_port()
        self.controller = Controller(self.capture, hostname="127.0.0.1", port=self.port, **smtp_options)
        self.controller.start()

    @property
    def messages(self) -> list[Captured]:
        """Everything delivered so far."""
        return self.capture.messages

    def close(self) -> None:
        """Stop the server."""
        self.controller.stop()


# The operators and workers the suites implement with (SPEC §11 IMPLEMENTERS); tests of the
# permission table itself (tests/security) name their own.
TEST_IMPLEMENTERS = ",".join(
    [
        "cortex-deployer",
        "ops",
        "ops2",
        "ops-2",
        "ops-busy",
        "oncall",
        "w1",
        "w2",
        "worker-001",
        "worker-002",
        *(f"operator-{n}" for n in range(10)),
    ]
)


@contextmanager
def fresh_database(prefix: str) -> Iterator[str]:
    """A PostgreSQL database of its own on CORTEX_TEST_POSTGRES_URL's server, dropped afterwards.
    Without the variable the test skips, except under CI=true, where it fails."""
    import pytest

    server = os.environ.get("CORTEX_TEST_POSTGRES_URL")
    if not server:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but CORTEX_TEST_POSTGRES_URL is not set: PostgreSQL tests cannot run")
        pytest.skip("CORTEX_TEST_POSTGRES_URL is not set: PostgreSQL tests skipped")
    import psycopg

    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(server)
    try:
        yield urlunsplit((parts.scheme, parts.netloc, f"/{name}", "", ""))
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def backend_store(request: Any, folder: Path) -> str:
    """A new, empty store for the backend a fixture is parametrised with (`sqlite` | `postgres`):
    a file in `folder`, or a schema of its own in the run's PostgreSQL database."""
    if request.param == "sqlite":
        return str(folder / "store.db")
    database: str = request.getfixturevalue("postgres_database")
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return f"{database}?options=-csearch_path%3D{schema}"
