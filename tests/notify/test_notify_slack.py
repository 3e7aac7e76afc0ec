"""Slack against a real HTTP receiver: the Block Kit payload field by field, escaping, failures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from notify_support import message, settings

from cortex_change.notify.message import DeliveryError
from cortex_change.notify.slack import HEADER_MAX, SECTION_MAX, escape, send
from support import HttpReceiver, free_port

HOOK_PATH = "/services/T0001/B0002/XyZsecretTokenDoNotLeak"


def _sent(receiver: HttpReceiver, tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    env = {"SLACK_WEBHOOK_URL": receiver.url(HOOK_PATH), "SLACK_CHANNEL": "#changes"}
    send(message(**overrides), settings(tmp_path, env))
    [got] = receiver.requests
    assert got.path == HOOK_PATH
    assert got.headers["content-type"].startswith("application/json")
    doc: dict[str, Any] = got.json()
    return doc


def test_block_kit_payload(receiver: HttpReceiver, tmp_path: Path) -> None:
    msg = message()
    doc = _sent(receiver, tmp_path)
    assert doc["text"] == msg.subject
    assert doc["channel"] == "#changes"
    header, fields, text, ask = doc["blocks"]
    assert header == {"type": "header", "text": {"type": "plain_text", "text": msg.subject, "emoji": True}}
    assert fields["type"] == "section"
    assert [f["type"] for f in fields["fields"]] == ["mrkdwn"] * 5
    assert [f["text"] for f in fields["fields"]] == [
        "*Change*\nRFC-20250304101112-a1b2c3",
        "*Title*\nRotate TLS certificates",
        "*Risk*\n42 (medium)",
        "*State*\npending_approval",
        "*Type*\nnormal",
    ]
    assert text == {"type": "section", "text": {"type": "mrkdwn", "text": msg.text}}
    assert ask == {"type": "section", "text": {"type": "mrkdwn", "text": f"*Asked of you:* {msg.ask}"}}


def test_no_ask_no_ask_block_and_unassessed_risk(receiver: HttpReceiver, tmp_path: Path) -> None:
    doc = _sent(receiver, tmp_path, ask="", change={"title": "t", "type": "standard", "state": "draft"})
    assert len(doc["blocks"]) == 3
    assert doc["blocks"][1]["fields"][2]["text"] == "*Risk*\nnot assessed"


def test_mrkdwn_is_escaped_but_the_plain_text_header_is_not(receiver: HttpReceiver, tmp_path: Path) -> None:
    doc = _sent(
        receiver,
        tmp_path,
        subject="a <b> & c",
        text="<!channel> ping & run",
        ask="check <https://evil.example|here>",
        change={"title": "R&D <db>", "type": "normal", "state": "new"},
    )
    assert doc["text"] == "a &lt;b&gt; &amp; c"
    assert doc["blocks"][0]["text"]["text"] == "a <b> & c"
    assert doc["blocks"][1]["fields"][1]["text"] == "*Title*\nR&amp;D &lt;db&gt;"
    assert doc["blocks"][2]["text"]["text"] == "&lt;!channel&gt; ping &amp; run"
    assert doc["blocks"][3]["text"]["text"] == "*Asked of you:* check &lt;https://evil.example|here&gt;"


def test_long_texts_are_cut_to_slacks_limits(receiver: HttpReceiver, tmp_path: Path) -> None:
    doc = _sent(receiver, tmp_path, subject="S" * 400, text="&" * 5000)
    header = doc["blocks"][0]["text"]["text"]
    assert len(header) == HEADER_MAX and header.endswith("…")
    section = doc["blocks"][2]["text"]["text"]
    assert len(section) <= SECTION_MAX and section.endswith("&amp;…")  # no half-cut escape


def test_escape() -> None:
    assert escape("<&>") == "&lt;&amp;&gt;"
    assert escape("plain *bold*") == "plain *bold*"


def test_an_error_status_never_shows_the_webhook_path(receiver: HttpReceiver, tmp_path: Path) -> None:
    receiver.status, receiver.reply = 404, f"no_service {HOOK_PATH}".encode()
    env = {"SLACK_WEBHOOK_URL": receiver.url(HOOK_PATH)}
    with pytest.raises(DeliveryError) as err:
        send(message(), settings(tmp_path, env))
    reason = str(err.value)
    assert reason.startswith("slack: http://127.0.0.1:") and "HTTP 404" in reason and "no_service" in reason
    assert "XyZsecret" not in reason and "B0002" not in reason


def test_a_refused_connection_never_shows_the_webhook_path(tmp_path: Path) -> None:
    env = {"SLACK_WEBHOOK_URL": f"http://127.0.0.1:{free_port()}{HOOK_PATH}"}
    with pytest.raises(DeliveryError, match="slack: cannot reach") as err:
        send(message(), settings(tmp_path, env))
    assert "XyZsecret" not in str(err.value)


def test_not_configured(tmp_path: Path) -> None:
    with pytest.raises(DeliveryError, match="SLACK_WEBHOOK_URL is not set"):
        send(message(), settings(tmp_path, {}))
