"""PagerDuty: Events API v2 — trigger an alert per change, resolve it when the change closes."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .http import post
from .message import DeliveryError

if TYPE_CHECKING:
    from ..config import Settings
    from .message import Message

# Which message kinds page someone, and which one clears the page. The dedup_key is the
# change id, so every trigger about one change lands on the same PagerDuty alert and the
# change's closing resolves it.
EVENT_ACTIONS: dict[str, str] = {
    "emergency": "trigger",
    "rollback_failed": "trigger",
    "lease_expired": "trigger",
    "incident": "trigger",
    "remediation_refused": "trigger",  # self-healing refused by the rules: a person instead
    "closed": "resolve",
}
# Severity of a trigger (PagerDuty: critical, error, warning, info); others are "error".
SEVERITY: dict[str, str] = {"rollback_failed": "critical", "incident": "critical"}
SUMMARY_MAX = 1024  # PagerDuty refuses longer summaries


def payload(message: Message, routing_key: str) -> dict[str, Any]:
    """The Events API v2 document for one message."""
    action = EVENT_ACTIONS.get(message.kind)
    if action is None:
        raise DeliveryError(f"pagerduty: kind {message.kind!r} has no event action (see EVENT_ACTIONS)")
    # A message without a change (none today) still needs a key; its event id is stable.
    dedup_key = message.change_id or message.event_id
    event: dict[str, Any] = {"routing_key": routing_key, "event_action": action, "dedup_key": dedup_key}
    if action == "resolve":
        return event
    summary = " ".join(message.subject.split()) or message.kind
    details: dict[str, Any] = {
        **message.change,
        "event_id": message.event_id,
        "kind": message.kind,
        "change_id": message.change_id,
        "text": message.text,
        **({"ask": message.ask} if message.ask else {}),
    }
    body: dict[str, Any] = {
        "summary": summary if len(summary) <= SUMMARY_MAX else summary[: SUMMARY_MAX - 1] + "…",
        "source": "cortex-change",
        "severity": SEVERITY.get(message.kind, "error"),
        "class": message.kind,
        "custom_details": details,
    }
    if message.at:
        body["timestamp"] = message.at
    event["payload"] = body
    return event


def send(message: Message, settings: Settings, timeout: float = 10.0) -> None:
    """Send a trigger or resolve event to PAGERDUTY_EVENTS_URL (202 expected; any 2xx accepted)."""
    key: str = settings["PAGERDUTY_API_KEY"]
    if not key:
        raise DeliveryError("pagerduty: PAGERDUTY_API_KEY is not set")
    body = json.dumps(payload(message, key), ensure_ascii=False).encode()
    post(
        "pagerduty",
        settings["PAGERDUTY_EVENTS_URL"],
        body,
        {"Content-Type": "application/json"},
        timeout,
        (key,),
    )
