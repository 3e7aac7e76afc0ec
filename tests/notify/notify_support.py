"""Real local receivers for the channels' tests: an HTTP server and an SMTP server (aiosmtpd)."""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from cortex_change.config import Settings, load
from cortex_change.notify.message import Message

SMTP_USER = "notifier"
SMTP_PASSWORD = "pa55-word-do-not-leak"
UNICODE_PASSWORD = "pässwörd-ünïcode-do-not-leak"  # smtplib.login cannot send this one


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def settings(tmp_path: Path, env: Mapping[str, str], addresses: Mapping[str, str] | None = None) -> Settings:
    """Settings from exactly `env` plus a TOML file (never the developer's own configuration)."""
    toml = tmp_path / "notify.toml"
    lines = []
    if addresses is not None:
        lines.append("[addresses]")
        lines += [f"{json.dumps(k)} = {json.dumps(v)}" for k, v in addresses.items()]
    toml.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return load({"CORTEX_CHANGE_CONFIG": str(toml), **env})


def message(**overrides: Any) -> Message:
    """A typical approval request; override any field."""
    fields: dict[str, Any] = {
        "event_id": "5f0c1e2d3c4b5a69788796a5b4c3d2e1",
        "kind": "approval_requested",
        "change_id": "RFC-20250304101112-a1b2c3",
        "subject": "[cortex-change] Approval requested: RFC-20250304101112-a1b2c3 'Rotate TLS certificates'",
        "text": "Rotate TLS certificates on the edge proxies was submitted by alice.",
        "ask": "Approve or reject RFC-20250304101112-a1b2c3 as CAB member.",
        "recipients": ("tech-lead", "ops-lead"),
        "change": {
            "title": "Rotate TLS certificates",
            "type": "normal",
            "state": "pending_approval",
            "risk_score": 42,
            "risk_level": "medium",
        },
        "at": "2025-03-04T10:11:12Z",
    }
    fields.update(overrides)
    return Message(**fields)


@dataclass(frozen=True)
class Received:
    """One request as it arrived: path, headers (names lower-cased), raw body."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


class HttpReceiver:
    """A threaded HTTP server on 127.0.0.1 that records requests and answers `status` with `reply`."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.status = 200
        self.reply = b"ok"
        self.delay = 0.0
        self.location = ""
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _record(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                owner.requests.append(Received(self.command, self.path, headers, body))
                if owner.delay:
                    time.sleep(owner.delay)
                self.send_response(owner.status)
                if owner.location:
                    self.send_header("Location", owner.location)
                self.send_header("Content-Length", str(len(owner.reply)))
                self.end_headers()
                self.wfile.write(owner.reply)

            do_POST = _record
            do_GET = _record

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def url(self, path: str = "/") -> str:
        """The URL of `path` on this server."""
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def close(self) -> None:
        """Stop serving and release the port."""
        self.server.shutdown()
        self.server.server_close()


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


def authenticator(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    """Accept SMTP_USER with SMTP_PASSWORD or UNICODE_PASSWORD (UTF-8)."""
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == SMTP_USER.encode()
        and auth_data.password in (SMTP_PASSWORD.encode(), UNICODE_PASSWORD.encode())
    )
    return AuthResult(success=ok, handled=False)


class SmtpServer:
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


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server-side TLS context for the test certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context
