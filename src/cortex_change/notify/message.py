"""What a notification says, whichever channel carries it (stored as JSON in the outbox)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Message:
    """One notification about one event.

    `event_id` is the audit event it reports: stable across retries, so receivers can
    de-duplicate (at-least-once delivery).
    """

    event_id: str
    kind: str  # see notify/routing.py KINDS
    change_id: str | None
    subject: str  # one line: "[cortex-change] Approval requested: RFC-… 'title'"
    text: str  # a short paragraph for people
    ask: str  # what is asked of the reader ("" when nothing)
    recipients: tuple[str, ...] = ()  # identities (e-mail resolves them to addresses)
    change: dict[str, Any] = field(default_factory=dict)  # title, type, state, risk_score, risk_level, …
    at: str = ""  # the event's timestamp (ISO 8601, UTC)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["recipients"] = list(self.recipients)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Message:
        return cls(**{**data, "recipients": tuple(data.get("recipients", ()))})


class DeliveryError(Exception):
    """A channel could not deliver; the outbox retries it later (or dead-letters it)."""
