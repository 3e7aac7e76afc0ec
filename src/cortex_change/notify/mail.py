"""E-mail over SMTP (plain, STARTTLS or implicit TLS), one message to every resolved recipient."""

from __future__ import annotations

import base64
import json
import logging
import re
import smtplib
import ssl
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import formatdate
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .message import DeliveryError

if TYPE_CHECKING:
    from ..config import Settings
    from .message import Message

log = logging.getLogger(__name__)
PORTS = {"smtp": 25, "smtps": 465}
_UNFOLDED = {"message-id", "x-cortex-event-id", "x-cortex-change-id"}
_LABELS = (("title", "Title"), ("type", "Type"), ("state", "State"))


def server(spec: str) -> tuple[bool, str, int]:
    """(implicit TLS?, host, port) from EMAIL_SMTP_SERVER: host, host:port, smtp:// or smtps://."""
    try:
        parts = urlsplit(spec if "://" in spec else f"smtp://{spec}")
        port = parts.port
    except ValueError:
        raise DeliveryError("email: EMAIL_SMTP_SERVER has a port that is not a number") from None
    if parts.username is not None or parts.password is not None:
        # Never echo the value: it carries a credential.
        raise DeliveryError(
            "email: EMAIL_SMTP_SERVER must not hold credentials; use EMAIL_SMTP_USER/PASSWORD"
        )
    if parts.scheme not in PORTS or not parts.hostname:
        raise DeliveryError(
            "email: EMAIL_SMTP_SERVER is not host[:port], smtp://host[:port] or smtps://host[:port]"
        )
    return parts.scheme == "smtps", parts.hostname, port or PORTS[parts.scheme]


def resolve(identities: tuple[str, ...], settings: Settings) -> tuple[list[str], list[str]]:
    """(addresses, identities without one): the [addresses] table, then `x@y` as is, then EMAIL_DOMAIN."""
    table: dict[str, Any] = settings.extra.get("addresses", {})
    domain: str = settings["EMAIL_DOMAIN"].strip().lstrip("@")
    found: list[str] = []
    missing: list[str] = []
    for identity in identities:
        mapped = table.get(identity)
        if isinstance(mapped, str) and mapped.strip():
            address = mapped.strip()
        elif "@" in identity:
            address = identity
        elif domain:
            address = f"{identity}@{domain}"
        else:
            missing.append(identity)
            continue
        if address not in found:
            found.append(address)
    return found, missing


def message_id(message: Message) -> str:
    """<event_id.kind@cortex-change>: the same on every retry, so mail clients fold duplicates."""
    local = re.sub(r"[^A-Za-z0-9_.-]", "-", f"{message.event_id}.{message.kind}")
    return f"<{local}@cortex-change>"


def _show(value: Any) -> str:
    if value is None or value == "":
        return "—"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def body(message: Message) -> str:
    """The plain-text body: the text, what is asked, then the change's fields."""
    change = message.change
    lines = [message.text, ""]
    if message.ask:
        lines += [f"Asked of you: {message.ask}", ""]
    if message.change_id is not None or change:
        lines.append(f"Change: {_show(message.change_id)}")
        lines += [f"{label}: {_show(change.get(key))}" for key, label in _LABELS]
        score, level = change.get("risk_score"), change.get("risk_level")
        risk = "not assessed" if score is None else f"{score} ({_show(level)})"
        lines.append(f"Risk: {risk}")
        shown = {key for key, _ in _LABELS} | {"risk_score", "risk_level"}
        lines += [f"{key}: {_show(change[key])}" for key in sorted(change) if key not in shown]
        lines.append("")
    lines += ["-- ", f"cortex-change · event {message.event_id} ({message.kind}) {message.at}".rstrip()]
    return "\n".join(lines) + "\n"


class _Policy(EmailPolicy):
    """The default policy, except that identifier headers are never folded.

    Python folds a value that fits a line of its own onto the next line ("Message-ID:" CRLF
    " <id>"); legal, but its own parser then reads the id with a leading space. Ids are
    ASCII without spaces and short enough for SMTP's 998-character line limit.
    """

    def fold(self, name: str, value: str) -> str:
        if name.lower() in _UNFOLDED and value.isascii():
            return f"{name}: {value}{self.linesep}"
        folded: str = super().fold(name, value)
        return folded

    def fold_binary(self, name: str, value: str) -> bytes:
        if name.lower() in _UNFOLDED and value.isascii():
            return f"{name}: {value}{self.linesep}".encode("ascii")
        return super().fold_binary(name, value)


POLICY = _Policy()


def compose(message: Message, sender: str, addresses: list[str]) -> EmailMessage:
    """The e-mail for `addresses`; raises DeliveryError if a header cannot be built."""
    mail = EmailMessage(policy=POLICY)
    try:
        mail["Subject"] = " ".join(message.subject.split())
        mail["From"] = sender
        mail["To"] = ", ".join(addresses)
        mail["Date"] = formatdate(usegmt=True)
        mail["Message-ID"] = message_id(message)
        mail["X-Cortex-Event-Id"] = message.event_id
        if message.change_id:
            mail["X-Cortex-Change-Id"] = message.change_id
        # RFC 3834: tells vacation responders and ticket systems not to answer.
        mail["Auto-Submitted"] = "auto-generated"
        mail.set_content(body(message))
    except (ValueError, TypeError) as exc:  # e.g. a line break or bad address in a header
        raise DeliveryError(f"email: cannot build the message: {' '.join(str(exc).split())}") from None
    return mail


def _response(exc: smtplib.SMTPResponseException) -> str:
    text = (
        exc.smtp_error.decode("utf-8", "replace")
        if isinstance(exc.smtp_error, bytes)
        else str(exc.smtp_error)
    )
    return f"{exc.smtp_code} {text}"


def _login(client: smtplib.SMTP, user: str, password: str) -> None:
    if (user + password).isascii():
        client.login(user, password)
        return
    # smtplib encodes credentials as ASCII and would crash; RFC 4616 PLAIN carries UTF-8.
    if "PLAIN" not in client.esmtp_features.get("auth", "").upper().split():
        raise DeliveryError("email: non-ASCII credentials need AUTH PLAIN, which the server does not offer")
    token = base64.b64encode(f"\0{user}\0{password}".encode()).decode("ascii")
    code, reply = client.docmd("AUTH", f"PLAIN {token}")
    if code != 235:
        raise smtplib.SMTPAuthenticationError(code, reply)


def _deliver(
    settings: Settings,
    mail: EmailMessage,
    addresses: list[str],
    target: tuple[bool, str, int],
    timeout: float,
) -> dict[str, Any]:
    implicit, host, port = target
    where = f"{host}:{port}"
    context = ssl.create_default_context()  # verifies the server's certificate and name
    client: smtplib.SMTP
    if implicit:
        client = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
    else:
        client = smtplib.SMTP(host, port, timeout=timeout)
    with client:
        client.ehlo()
        if settings["EMAIL_SMTP_STARTTLS"] and not implicit:
            # Never fall back to plain text when TLS was asked for.
            if not client.has_extn("starttls"):
                raise DeliveryError(f"email: {where} does not offer STARTTLS (EMAIL_SMTP_STARTTLS=true)")
            client.starttls(context=context)
            client.ehlo()
        user: str = settings["EMAIL_SMTP_USER"]
        if user:
            _login(client, user, settings["EMAIL_SMTP_PASSWORD"])
        refused: dict[str, Any] = client.send_message(
            mail, from_addr=settings["EMAIL_FROM"], to_addrs=addresses
        )
    return refused


def send(message: Message, settings: Settings, timeout: float = 10.0) -> None:
    """Mail the message to its recipients through EMAIL_SMTP_SERVER."""
    if not settings["EMAIL_SMTP_SERVER"]:
        raise DeliveryError("email: EMAIL_SMTP_SERVER is not set")
    addresses, missing = resolve(message.recipients, settings)
    if not addresses:
        if missing:
            raise DeliveryError(
                f"email: no address for {', '.join(missing)} (set EMAIL_DOMAIN or map them in [addresses])"
            )
        raise DeliveryError("email: the message has no recipients")
    if missing:
        log.warning("email: no address for %s; mailing the others", ", ".join(missing))
    mail = compose(message, settings["EMAIL_FROM"], addresses)
    target = server(settings["EMAIL_SMTP_SERVER"])
    _, host, port = target
    password: str = settings["EMAIL_SMTP_PASSWORD"]
    try:
        refused = _deliver(settings, mail, addresses, target, timeout)
    except DeliveryError:
        raise
    except smtplib.SMTPRecipientsRefused as exc:
        each = "; ".join(f"{a}: {code}" for a, (code, _) in exc.recipients.items())
        reason = f"email: every recipient was refused ({each})"
    except smtplib.SMTPAuthenticationError as exc:
        reason = f"email: login as {settings['EMAIL_SMTP_USER']} refused: {_response(exc)}"
    except smtplib.SMTPResponseException as exc:
        reason = f"email: {host}:{port} answered {_response(exc)}"
    except smtplib.SMTPException as exc:  # no AUTH offered, disconnected, SMTPUTF8 missing, …
        reason = f"email: {type(exc).__name__}: {exc}"
    except OSError as exc:  # refused, unreachable, timed out, TLS handshake or certificate failure
        reason = f"email: cannot talk to {host}:{port}: {type(exc).__name__}: {exc}"
    else:
        _check_refused(refused, len(addresses))
        return
    reason = " ".join(reason.split())
    raise DeliveryError(reason.replace(password, "***") if password else reason)


def _check_refused(refused: dict[str, Any], total: int) -> None:
    """Some recipients refused: retry for temporary (4xx) refusals; only log permanent (5xx) ones."""
    if not refused:
        return
    each = "; ".join(f"{a}: {code}" for a, (code, _) in refused.items())
    if any(400 <= code < 500 for code, _ in refused.values()):
        # A retry re-mails those who got it; the stable Message-ID lets their clients fold it.
        raise DeliveryError(f"email: {len(refused)} of {total} recipients temporarily refused ({each})")
    # A retry cannot succeed for them and would mail everyone else again.
    log.warning("email: %d of %d recipients permanently refused (%s)", len(refused), total, each)
