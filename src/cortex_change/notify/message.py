"""What a notification says, whichever channel carries it (stored as JSON in the outbox)."""

from __future__ import annotations

from ..domain.values import Frozen

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any, Final


class Message(Frozen):
    """One notification about one event.

    `event_id` is the audit event it reports: stable across retries, so receivers can
    de-duplicate (at-least-once delivery).
    """

    __slots__ = ("ask", "at", "change", "change_id", "event_id", "kind", "recipients", "subject", "text")

    def __init__(
        self,
        event_id: str,
        kind: str,
        change_id: str | None,
        subject: str,
        text: str,
        ask: str,
        recipients: tuple[str, ...] = (),
        change: dict[str, Any] | None = None,
        at: str = "",
    ) -> None:
        self.event_id: Final = event_id
        self.kind: Final = kind  # see notify/routing.py KINDS
        self.change_id: Final = change_id
        self.subject: Final = subject  # one line: "[cortex-change] Approval requested: RFC-… 'title'"
        self.text: Final = text  # a short paragraph for people
        self.ask: Final = ask  # what is asked of the reader ("" when nothing)
        self.recipients: Final = recipients  # identities (e-mail resolves them to addresses)
        self.change: Final = {} if change is None else change  # title, type, state, risk_score, risk_level, …
        self.at: Final = at  # the event's timestamp (ISO 8601, UTC)

    def to_json(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "kind": self.kind,
            "change_id": self.change_id,
            "subject": self.subject,
            "text": self.text,
            "ask": self.ask,
            "recipients": list(self.recipients),
            "change": dict(self.change),  # a copy, as asdict made: the caller may add to it
            "at": self.at,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Message:
        return cls(**{**data, "recipients": tuple(data.get("recipients", ()))})


class DeliveryError(Exception):
    """A channel could not deliver; the outbox retries it later (or dead-letters it)."""
