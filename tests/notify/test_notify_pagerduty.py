"""PagerDuty Events API v2 against a real HTTP receiver: trigger, resolve, severities, failures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from notify_support import message, settings

from cortex_change.notify.message import DeliveryError
from cortex_change.notify.pagerduty import EVENT_ACTIONS, SUMMARY_MAX, send
from support import HttpReceiver, free_port

KEY = "R0UT1NGkeyDoNotLeak0123456789abc"


def _env(receiver: HttpReceiver) -> dict[str, str]:
    return {
        "PAGERDUTY_ENABLED": "true",
        "PAGERDUTY_API_KEY": KEY,
        "PAGERDUTY_EVENTS_URL": receiver.url("/v2/enqueue"),
    }


def _sent(receiver: HttpReceiver, tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    receiver.status, receiver.reply = 202, b'{"status":"success","message":"Event processed"}'
    send(message(**overrides), settings(tmp_path, _env(receiver)))
    [got] = receiver.requests
    assert got.path == "/v2/enqueue"
    assert got.headers["content-type"] == "application/json"
    doc: dict[str, Any] = got.json()
    return doc


def test_event_actions() -> None:
    assert EVENT_ACTIONS["emergency"] == EVENT_ACTIONS["rollback_failed"] == "trigger"
    assert EVENT_ACTIONS["lease_expired"] == "trigger"
    assert EVENT_ACTIONS["closed"] == "resolve"


def test_an_emergency_triggers(receiver: HttpReceiver, tmp_path: Path) -> None:
    doc = _sent(
        receiver,
        tmp_path,
        kind="emergency",
        subject="[cortex-change] Emergency change RFC-20250304101112-a1b2c3",
    )
    assert set(doc) == {"routing_key", "event_action", "dedup_key", "payload"}
    assert doc["routing_key"] == KEY
    assert doc["event_action"] == "trigger"
    assert doc["dedup_key"] == "RFC-20250304101112-a1b2c3"
    payload = doc["payload"]
    assert payload["summary"] == "[cortex-change] Emergency change RFC-20250304101112-a1b2c3"
    assert payload["source"] == "cortex-change"
    assert payload["severity"] == "error"
    assert payload["timestamp"] == "2025-03-04T10:11:12Z"
    assert payload["class"] == "emergency"
    details = payload["custom_details"]
    assert details["event_id"] == "5f0c1e2d3c4b5a69788796a5b4c3d2e1"
    assert details["change_id"] == "RFC-20250304101112-a1b2c3"
    assert details["kind"] == "emergency"
    assert details["risk_score"] == 42 and details["title"] == "Rotate TLS certificates"
    assert details["ask"].startswith("Approve or reject")


@pytest.mark.parametrize(("kind", "severity"), [("rollback_failed", "critical"), ("lease_expired", "error")])
def test_severity(receiver: HttpReceiver, tmp_path: Path, kind: str, severity: str) -> None:
    assert _sent(receiver, tmp_path, kind=kind)["payload"]["severity"] == severity


def test_closing_resolves_with_only_the_key(receiver: HttpReceiver, tmp_path: Path) -> None:
    doc = _sent(receiver, tmp_path, kind="closed")
    assert doc == {"routing_key": KEY, "event_action": "resolve", "dedup_key": "RFC-20250304101112-a1b2c3"}


def test_the_summary_is_cut_to_1024(receiver: HttpReceiver, tmp_path: Path) -> None:
    summary = _sent(receiver, tmp_path, kind="emergency", subject="x" * 3000)["payload"]["summary"]
    assert len(summary) == SUMMARY_MAX and summary.endswith("…")


def test_a_kind_without_an_action_is_refused_before_sending(receiver: HttpReceiver, tmp_path: Path) -> None:
    with pytest.raises(DeliveryError, match="no event action"):
        send(message(kind="approval_requested"), settings(tmp_path, _env(receiver)))
    assert receiver.requests == []


def test_a_400_is_a_delivery_error_without_the_key(receiver: HttpReceiver, tmp_path: Path) -> None:
    receiver.status = 400
    receiver.reply = f'{{"status":"invalid event","errors":["bad routing_key {KEY}"]}}'.encode()
    with pytest.raises(DeliveryError) as err:
        send(message(kind="emergency"), settings(tmp_path, _env(receiver)))
    reason = str(err.value)
    assert "HTTP 400" in reason and "invalid event" in reason and KEY not in reason


def test_a_refused_connection(tmp_path: Path) -> None:
    env = {"PAGERDUTY_API_KEY": KEY, "PAGERDUTY_EVENTS_URL": f"http://127.0.0.1:{free_port()}/v2/enqueue"}
    with pytest.raises(DeliveryError, match="pagerduty: cannot reach") as err:
        send(message(kind="rollback_failed"), settings(tmp_path, env))
    assert KEY not in str(err.value)


def test_not_configured(tmp_path: Path) -> None:
    with pytest.raises(DeliveryError, match="PAGERDUTY_API_KEY is not set"):
        send(message(kind="emergency"), settings(tmp_path, {}))
