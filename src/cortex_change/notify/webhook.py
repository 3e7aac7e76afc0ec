"""The generic JSON webhook, signed with HMAC-SHA256 over the raw body."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import TYPE_CHECKING

from .http import post
from .message import DeliveryError

if TYPE_CHECKING:
    from ..config import Settings
    from .message import Message

TYPE = "cortex-change.notification"
VERSION = 1
SIGNATURE_HEADER = "X-Cortex-Signature"
EVENT_HEADER = "X-Cortex-Event-Id"


def body_of(message: Message) -> bytes:
    """The exact bytes posted (and signed): the message's JSON plus its type and version."""
    document = {**message.to_json(), "type": TYPE, "version": VERSION}
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


def sign(body: bytes, secret: str) -> str:
    """The X-Cortex-Signature value: sha256=<hex HMAC-SHA256 of body keyed with secret>."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(body: bytes, header: str, secret: str) -> bool:
    """Whether `header` is the signature of the exact `body` under `secret` (constant-time)."""
    given = header.strip().lower()
    if not secret or not given.startswith("sha256="):
        return False
    # Compare bytes: compare_digest refuses non-ASCII str, and a header is attacker-controlled.
    return hmac.compare_digest(sign(body, secret).encode(), given.encode())


def send(message: Message, settings: Settings, timeout: float = 10.0) -> None:
    """POST the message as JSON to WEBHOOK_URL, signed when WEBHOOK_SECRET is set."""
    url: str = settings["WEBHOOK_URL"]
    secret: str = settings["WEBHOOK_SECRET"]
    if not url:
        raise DeliveryError("webhook: WEBHOOK_URL is not set")
    body = body_of(message)
    headers = {"Content-Type": "application/json", EVENT_HEADER: message.event_id}
    if secret:
        headers[SIGNATURE_HEADER] = sign(body, secret)
    post("webhook", url, body, headers, timeout, secrets=(secret,))
