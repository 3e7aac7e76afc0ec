"""Helpers for the channels' tests: settings, a typical message, SMTP credentials and TLS.

The local receivers themselves (HTTP and SMTP) are in tests/support.py.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from cortex_change.config import Settings, load
from cortex_change.notify.message import Message

SMTP_USER = "notifier"
SMTP_PASSWORD = "pa55-word-do-not-leak"
UNICODE_PASSWORD = "pässwörd-ünïcode-do-not-leak"  # smtplib.login cannot send this one


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


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server-side TLS context for the test certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context
