"""The generic webhook against a real HTTP receiver: body, headers, HMAC signature, failures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from notify_support import message, settings

from cortex_change.notify.message import DeliveryError, Message
from cortex_change.notify.webhook import send, sign, verify_signature
from support import HttpReceiver, free_port

SECRET = "whsec-7f3a-do-not-leak"


def test_posts_the_message_json_signed(receiver: HttpReceiver, tmp_path: Path) -> None:
    cfg = settings(tmp_path, {"WEBHOOK_URL": receiver.url("/hooks/cortex"), "WEBHOOK_SECRET": SECRET})
    msg = message(subject="Änderung genehmigt ✓", text="naïve café — 变更")
    send(msg, cfg)
    [got] = receiver.requests
    assert (got.method, got.path) == ("POST", "/hooks/cortex")
    assert got.headers["content-type"] == "application/json"
    assert got.headers["x-cortex-event-id"] == msg.event_id
    assert got.headers["user-agent"].startswith("cortex-change/")
    doc = got.json()
    assert doc["type"] == "cortex-change.notification"
    assert doc["version"] == 1
    del doc["type"], doc["version"]
    assert Message.from_json(doc) == msg
    assert doc["recipients"] == ["tech-lead", "ops-lead"]
    signature = got.headers["x-cortex-signature"]
    assert signature.startswith("sha256=") and len(signature) == len("sha256=") + 64
    assert verify_signature(got.body, signature, SECRET)
    assert not verify_signature(got.body, signature, SECRET + "x")
    assert not verify_signature(got.body + b" ", signature, SECRET)


def test_unsigned_without_a_secret(receiver: HttpReceiver, tmp_path: Path) -> None:
    send(message(), settings(tmp_path, {"WEBHOOK_URL": receiver.url()}))
    [got] = receiver.requests
    assert "x-cortex-signature" not in got.headers


def test_the_body_is_stable_across_retries(receiver: HttpReceiver, tmp_path: Path) -> None:
    cfg = settings(tmp_path, {"WEBHOOK_URL": receiver.url(), "WEBHOOK_SECRET": SECRET})
    send(message(), cfg)
    send(message(), cfg)
    first, second = receiver.requests
    assert first.body == second.body
    assert first.headers["x-cortex-signature"] == second.headers["x-cortex-signature"]


@pytest.mark.parametrize(
    "header",
    ["", "sha256=", "sha1=abc", "sha256=" + "0" * 64, "sha256=ü" + "0" * 63, "SHA256=zz"],
)
def test_verify_signature_rejects_bad_headers(header: str) -> None:
    assert not verify_signature(b"{}", header, SECRET)


def test_verify_signature_accepts_upper_case_hex_and_refuses_an_empty_secret() -> None:
    good = sign(b"{}", SECRET)
    assert verify_signature(b"{}", "sha256=" + good.removeprefix("sha256=").upper(), SECRET)
    assert not verify_signature(b"{}", sign(b"{}", ""), "")


def test_a_500_is_a_delivery_error_without_the_secret(receiver: HttpReceiver, tmp_path: Path) -> None:
    receiver.status = 500
    receiver.reply = f"upstream broke\nsecret was {SECRET}".encode()
    cfg = settings(tmp_path, {"WEBHOOK_URL": receiver.url("/h"), "WEBHOOK_SECRET": SECRET})
    with pytest.raises(DeliveryError) as err:
        send(message(), cfg)
    reason = str(err.value)
    assert "HTTP 500" in reason and "upstream broke" in reason
    assert SECRET not in reason and "\n" not in reason


def test_a_redirect_is_not_followed(receiver: HttpReceiver, tmp_path: Path) -> None:
    # urllib would replay a redirected POST as a GET without its body: that is no delivery.
    receiver.status, receiver.location = 302, receiver.url("/elsewhere")
    with pytest.raises(DeliveryError, match="HTTP 302"):
        send(message(), settings(tmp_path, {"WEBHOOK_URL": receiver.url("/h")}))
    assert [r.method for r in receiver.requests] == ["POST"]


def test_a_refused_connection_is_a_delivery_error(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/h"
    with pytest.raises(DeliveryError, match=r"webhook: cannot reach http://127\.0\.0\.1"):
        send(message(), settings(tmp_path, {"WEBHOOK_URL": url, "WEBHOOK_SECRET": SECRET}))


def test_a_slow_receiver_times_out(receiver: HttpReceiver, tmp_path: Path) -> None:
    receiver.delay = 0.6
    with pytest.raises(DeliveryError, match="timed out"):
        send(message(), settings(tmp_path, {"WEBHOOK_URL": receiver.url()}), timeout=0.2)


def test_not_configured_or_not_http(tmp_path: Path) -> None:
    with pytest.raises(DeliveryError, match="WEBHOOK_URL is not set"):
        send(message(), settings(tmp_path, {}))
    # host:port passes config validation (it is meant for SMTP) but is no HTTP URL.
    with pytest.raises(DeliveryError, match=r"not http\(s\)"):
        send(message(), settings(tmp_path, {"WEBHOOK_URL": "example.com:8080"}))


def test_the_body_is_compact_sorted_utf8_json() -> None:
    from cortex_change.notify.webhook import body_of

    raw = body_of(message(subject="café"))
    assert (
        raw == json.dumps(json.loads(raw), ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()
    )
    assert "café".encode() in raw
