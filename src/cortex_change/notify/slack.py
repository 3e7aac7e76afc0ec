"""Slack: a Block Kit message posted to an incoming webhook."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .http import post
from .message import DeliveryError

if TYPE_CHECKING:
    from ..config import Settings
    from .message import Message

# Slack's documented limits; longer texts make the whole payload fail with invalid_blocks.
HEADER_MAX = 150
SECTION_MAX = 3000
FIELD_MAX = 2000
_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def escape(text: str) -> str:
    """Escape &, < and > as Slack's mrkdwn requires (they would otherwise start links or mentions)."""
    return "".join(_ESCAPES.get(ch, ch) for ch in text)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _mrkdwn(text: str, limit: int, prefix: str = "") -> str:
    """`prefix` + escaped `text`, within `limit` characters, never cutting an escape in half."""
    room = limit - len(prefix)
    out: list[str] = []
    used = 0
    for index, ch in enumerate(text):
        piece = _ESCAPES.get(ch, ch)
        last = index == len(text) - 1
        # Keep one character of room for the ellipsis unless this is the final character.
        if used + len(piece) > room - (0 if last else 1):
            out.append("…")
            break
        out.append(piece)
        used += len(piece)
    return prefix + "".join(out)


def _value(value: Any) -> str:
    return "—" if value is None or value == "" else str(value)


def risk_text(change: dict[str, Any]) -> str:
    """`score (level)`, or what is known of it."""
    score, level = change.get("risk_score"), change.get("risk_level")
    if score is None and level is None:
        return "not assessed"
    return f"{_value(score)} ({_value(level)})" if level is not None else _value(score)


def payload(message: Message, channel: str) -> dict[str, Any]:
    """The Block Kit document for one message."""
    change = message.change
    fields = [
        ("Change", message.change_id),
        ("Title", change.get("title")),
        ("Risk", risk_text(change)),
        ("State", change.get("state")),
        ("Type", change.get("type")),
    ]
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": _clip(message.subject, HEADER_MAX), "emoji": True},
        },
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": _mrkdwn(_value(value), FIELD_MAX, f"*{label}*\n")}
                for label, value in fields
            ],
        },
    ]
    if message.text:
        # A section's text must not be empty, so a message without text has no such block.
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": _mrkdwn(message.text, SECTION_MAX)}}
        )
    if message.ask:
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": _mrkdwn(message.ask, SECTION_MAX, "*Asked of you:* ")},
            }
        )
    return {"text": _mrkdwn(message.subject, SECTION_MAX), "channel": channel, "blocks": blocks}


def send(message: Message, settings: Settings, timeout: float = 10.0) -> None:
    """Post the message to SLACK_WEBHOOK_URL for SLACK_CHANNEL."""
    url: str = settings["SLACK_WEBHOOK_URL"]
    if not url:
        raise DeliveryError("slack: SLACK_WEBHOOK_URL is not set")
    body = json.dumps(payload(message, settings["SLACK_CHANNEL"]), ensure_ascii=False).encode()
    try:
        path = urlsplit(url).path
    except ValueError:
        path = ""
    # The webhook URL's path is its credential: keep it (and the whole URL) out of every reason.
    secrets = (url, path) if len(path) > 1 else ()
    post("slack", url, body, {"Content-Type": "application/json; charset=utf-8"}, timeout, secrets)
