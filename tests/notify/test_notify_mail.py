"""E-mail against a real SMTP server (aiosmtpd): delivery, addresses, Unicode, AUTH, TLS, failures."""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from notify_support import (
    SMTP_PASSWORD,
    SMTP_USER,
    UNICODE_PASSWORD,
    authenticator,
    message,
    server_context,
    settings,
)

from cortex_change.notify.mail import resolve, send, server
from cortex_change.notify.message import DeliveryError
from support import Captured, SmtpServer, free_port

Start = Callable[..., SmtpServer]
# aiosmtpd warns when AUTH is allowed without TLS; these tests do that on purpose.
PLAIN_AUTH = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


def _env(srv: SmtpServer, **more: str) -> dict[str, str]:
    return {"EMAIL_NOTIFICATIONS": "true", "EMAIL_SMTP_SERVER": f"127.0.0.1:{srv.port}", **more}


def _parsed(captured: Captured) -> EmailMessage:
    parsed = email.message_from_bytes(captured.content, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_plain_delivery(smtp_server: Start, tmp_path: Path) -> None:
    srv = smtp_server()
    msg = message()
    send(msg, settings(tmp_path, _env(srv, EMAIL_DOMAIN="example.org", EMAIL_FROM="cab@example.org")))
    [got] = srv.messages
    assert got.mail_from == "cab@example.org"
    assert got.rcpt_tos == ["tech-lead@example.org", "ops-lead@example.org"]
    assert not got.tls and not got.authenticated
    mail = _parsed(got)
    # Python folds a subject that fits a line of its own onto the next line, and its parser
    # keeps the folding space; the subject itself is intact.
    assert mail["Subject"].lstrip() == msg.subject
    assert mail["From"] == "cab@example.org"
    assert mail["To"] == "tech-lead@example.org, ops-lead@example.org"
    assert mail["Message-ID"] == f"<{msg.event_id}.approval_requested@cortex-change>"
    assert mail["X-Cortex-Event-Id"] == msg.event_id
    assert mail["X-Cortex-Change-Id"] == "RFC-20250304101112-a1b2c3"
    assert mail["Auto-Submitted"] == "auto-generated"
    assert mail["Date"]
    assert mail.get_content_type() == "text/plain"
    content = mail.get_content()
    for line in (
        msg.text,
        f"Asked of you: {msg.ask}",
        "Change: RFC-20250304101112-a1b2c3",
        "Title: Rotate TLS certificates",
        "Type: normal",
        "State: pending_approval",
        "Risk: 42 (medium)",
    ):
        assert line in content.splitlines()


def test_the_message_id_is_stable_across_retries(smtp_server: Start, tmp_path: Path) -> None:
    srv = smtp_server()
    cfg = settings(tmp_path, _env(srv, EMAIL_DOMAIN="example.org"))
    send(message(), cfg)
    send(message(), cfg)
    first, second = (_parsed(m)["Message-ID"] for m in srv.messages)
    assert first == second


def test_address_resolution(smtp_server: Start, tmp_path: Path) -> None:
    srv = smtp_server()
    table = {"alice": "alice.smith@corp.example", "dave@old.example": "dave@new.example"}
    cfg = settings(tmp_path, _env(srv, EMAIL_DOMAIN="example.org"), addresses=table)
    recipients = ("alice", "bob@elsewhere.example", "carol", "dave@old.example", "alice")
    send(message(recipients=recipients), cfg)
    [got] = srv.messages
    # The table wins (even over an identity that looks like an address), then x@y, then EMAIL_DOMAIN.
    assert got.rcpt_tos == [
        "alice.smith@corp.example",
        "bob@elsewhere.example",
        "carol@example.org",
        "dave@new.example",
    ]


def test_without_email_domain_unmapped_identities_are_skipped(smtp_server: Start, tmp_path: Path) -> None:
    srv = smtp_server()
    cfg = settings(tmp_path, _env(srv), addresses={"alice": "alice@corp.example"})
    assert resolve(("alice", "bob", "x@y.example"), cfg) == (["alice@corp.example", "x@y.example"], ["bob"])
    send(message(recipients=("alice", "bob")), cfg)
    [got] = srv.messages
    assert got.rcpt_tos == ["alice@corp.example"]


def test_no_address_at_all_names_the_identities(smtp_server: Start, tmp_path: Path) -> None:
    srv = smtp_server()
    with pytest.raises(DeliveryError, match="no address for tech-lead, ops-lead"):
        send(message(), settings(tmp_path, _env(srv)))
    with pytest.raises(DeliveryError, match="no recipients"):
        send(message(recipients=()), settings(tmp_path, _env(srv)))
    assert srv.messages == []


def test_unicode_subject_and_body(smtp_server: Start, tmp_path: Path) -> None:
    srv = smtp_server()
    subject = "[cortex-change] Genehmigung: Überprüfung der Zertifikate ✓ — 变更请求"
    text = "Ça marche : naïve café, Ελληνικά, 日本語."
    send(message(subject=subject, text=text), settings(tmp_path, _env(srv, EMAIL_DOMAIN="example.org")))
    [got] = srv.messages
    assert got.content.isascii()  # encoded for the wire (RFC 2047 header, transfer-encoded body)
    mail = _parsed(got)
    assert mail["Subject"] == subject
    assert text in mail.get_content()


@PLAIN_AUTH
def test_login_with_auth(smtp_server: Start, tmp_path: Path) -> None:
    srv = smtp_server(authenticator=authenticator, auth_require_tls=False, auth_required=True)
    env = _env(srv, EMAIL_DOMAIN="example.org", EMAIL_SMTP_USER=SMTP_USER, EMAIL_SMTP_PASSWORD=SMTP_PASSWORD)
    send(message(), settings(tmp_path, env))
    [got] = srv.messages
    assert got.authenticated


@PLAIN_AUTH
def test_login_with_a_non_ascii_password(smtp_server: Start, tmp_path: Path) -> None:
    srv = smtp_server(authenticator=authenticator, auth_require_tls=False, auth_required=True)
    env = _env(
        srv, EMAIL_DOMAIN="example.org", EMAIL_SMTP_USER=SMTP_USER, EMAIL_SMTP_PASSWORD=UNICODE_PASSWORD
    )
    send(message(), settings(tmp_path, env))
    [got] = srv.messages
    assert got.authenticated


@PLAIN_AUTH
def test_a_wrong_password_never_shows_it(smtp_server: Start, tmp_path: Path) -> None:
    srv = smtp_server(authenticator=authenticator, auth_require_tls=False, auth_required=True)
    wrong = "wrong-Pässword-123"
    env = _env(srv, EMAIL_DOMAIN="example.org", EMAIL_SMTP_USER=SMTP_USER, EMAIL_SMTP_PASSWORD=wrong)
    with pytest.raises(DeliveryError, match=f"login as {SMTP_USER} refused: 535") as err:
        send(message(), settings(tmp_path, env))
    assert wrong not in str(err.value)
    assert srv.messages == []


def test_starttls_then_login(
    smtp_server: Start, tmp_path: Path, tls_cert: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server only accepts AUTH over TLS, so a delivery proves STARTTLS happened first.
    srv = smtp_server(tls_context=server_context(*tls_cert), authenticator=authenticator, auth_required=True)
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_cert[0]))  # trust the test certificate
    env = _env(
        srv,
        EMAIL_DOMAIN="example.org",
        EMAIL_SMTP_STARTTLS="true",
        EMAIL_SMTP_USER=SMTP_USER,
        EMAIL_SMTP_PASSWORD=SMTP_PASSWORD,
    )
    send(message(), settings(tmp_path, env))
    [got] = srv.messages
    assert got.tls and got.authenticated


def test_starttls_refuses_an_untrusted_certificate(
    smtp_server: Start, tmp_path: Path, tls_cert: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    srv = smtp_server(tls_context=server_context(*tls_cert))
    env = _env(srv, EMAIL_DOMAIN="example.org", EMAIL_SMTP_STARTTLS="true")
    with pytest.raises(DeliveryError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        send(message(), settings(tmp_path, env))
    assert srv.messages == []


def test_starttls_required_but_not_offered(smtp_server: Start, tmp_path: Path) -> None:
    srv = smtp_server()
    env = _env(srv, EMAIL_DOMAIN="example.org", EMAIL_SMTP_STARTTLS="true")
    with pytest.raises(DeliveryError, match="does not offer STARTTLS"):
        send(message(), settings(tmp_path, env))
    assert srv.messages == []


def test_smtps_implicit_tls(
    smtp_server: Start, tmp_path: Path, tls_cert: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    srv = smtp_server(ssl_context=server_context(*tls_cert))
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_cert[0]))
    env = {"EMAIL_SMTP_SERVER": f"smtps://127.0.0.1:{srv.port}", "EMAIL_DOMAIN": "example.org"}
    send(message(), settings(tmp_path, env))
    [got] = srv.messages
    assert got.rcpt_tos == ["tech-lead@example.org", "ops-lead@example.org"]


def test_a_permanently_refused_recipient_does_not_block_the_others(
    smtp_server: Start, tmp_path: Path
) -> None:
    srv = smtp_server()
    srv.capture.refuse["ops-lead@example.org"] = "550 5.1.1 no such user"
    send(message(), settings(tmp_path, _env(srv, EMAIL_DOMAIN="example.org")))
    [got] = srv.messages
    assert got.rcpt_tos == ["tech-lead@example.org"]


def test_a_temporarily_refused_recipient_is_retried(smtp_server: Start, tmp_path: Path) -> None:
    srv = smtp_server()
    srv.capture.refuse["ops-lead@example.org"] = "450 4.2.1 mailbox busy"
    with pytest.raises(DeliveryError, match="1 of 2 recipients temporarily refused"):
        send(message(), settings(tmp_path, _env(srv, EMAIL_DOMAIN="example.org")))


def test_every_recipient_refused(smtp_server: Start, tmp_path: Path) -> None:
    srv = smtp_server()
    srv.capture.refuse.update({a: "550 no" for a in ("tech-lead@example.org", "ops-lead@example.org")})
    with pytest.raises(DeliveryError, match="every recipient was refused"):
        send(message(), settings(tmp_path, _env(srv, EMAIL_DOMAIN="example.org")))
    assert srv.messages == []


def test_a_refused_connection(tmp_path: Path) -> None:
    env = {
        "EMAIL_SMTP_SERVER": f"127.0.0.1:{free_port()}",
        "EMAIL_DOMAIN": "example.org",
        "EMAIL_SMTP_USER": SMTP_USER,
        "EMAIL_SMTP_PASSWORD": SMTP_PASSWORD,
    }
    with pytest.raises(DeliveryError, match=r"email: cannot talk to 127\.0\.0\.1:") as err:
        send(message(), settings(tmp_path, env))
    assert SMTP_PASSWORD not in str(err.value)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("mail.example", (False, "mail.example", 25)),
        ("mail.example:2525", (False, "mail.example", 2525)),
        ("smtp://mail.example", (False, "mail.example", 25)),
        ("smtp://mail.example:587", (False, "mail.example", 587)),
        ("smtps://mail.example", (True, "mail.example", 465)),
        ("smtps://mail.example:2465", (True, "mail.example", 2465)),
        ("smtp://[::1]:25", (False, "::1", 25)),
    ],
)
def test_server_forms(spec: str, expected: Any) -> None:
    assert server(spec) == expected


@pytest.mark.parametrize("spec", ["https://mail.example", "smtp://", "mail.example:port"])
def test_bad_server_forms(spec: str) -> None:
    with pytest.raises(DeliveryError, match="EMAIL_SMTP_SERVER"):
        server(spec)


def test_credentials_in_the_server_url_are_refused_unshown() -> None:
    with pytest.raises(DeliveryError, match="must not hold credentials") as err:
        server("smtp://bot:hunter2@mail.example:25")
    assert "hunter2" not in str(err.value)


def test_not_configured(tmp_path: Path) -> None:
    with pytest.raises(DeliveryError, match="EMAIL_SMTP_SERVER is not set"):
        send(message(), settings(tmp_path, {"EMAIL_DOMAIN": "example.org"}))


def test_a_silent_server_times_out(tmp_path: Path) -> None:
    # A listening socket nobody answers on: the connection opens but no greeting ever comes.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        env = {"EMAIL_SMTP_SERVER": f"127.0.0.1:{silent.getsockname()[1]}", "EMAIL_DOMAIN": "example.org"}
        with pytest.raises(DeliveryError, match="timed out"):
            send(message(), settings(tmp_path, env), timeout=0.2)
