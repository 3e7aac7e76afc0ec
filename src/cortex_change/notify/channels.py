"""The channels by name, and which of them the settings turn on.

Each channel module is imported on first use, not here: importing this module costs nothing
beyond the message types (urllib, smtplib and email are slow to import).
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Protocol

    from ..config import Settings
    from .message import Message


if TYPE_CHECKING:  # annotations only: no typing.Protocol at run time

    class Sender(Protocol):
        """A channel's send: deliver once or raise DeliveryError."""

        def __call__(self, message: Message, settings: Settings, timeout: float = 10.0) -> None: ...


def _slack(message: Message, settings: Settings, timeout: float = 10.0) -> None:
    from . import slack

    slack.send(message, settings, timeout)


def _email(message: Message, settings: Settings, timeout: float = 10.0) -> None:
    from . import mail

    mail.send(message, settings, timeout)


def _pagerduty(message: Message, settings: Settings, timeout: float = 10.0) -> None:
    from . import pagerduty

    pagerduty.send(message, settings, timeout)


def _webhook(message: Message, settings: Settings, timeout: float = 10.0) -> None:
    from . import webhook

    webhook.send(message, settings, timeout)


CHANNELS: dict[str, Sender] = {
    "slack": _slack,
    "email": _email,
    "pagerduty": _pagerduty,
    "webhook": _webhook,
}


def enabled(settings: Settings) -> list[str]:
    """The channels switched on and configured, in CHANNELS order."""
    on = {
        "slack": bool(settings["SLACK_NOTIFICATIONS"]) and bool(settings["SLACK_WEBHOOK_URL"]),
        "email": bool(settings["EMAIL_NOTIFICATIONS"]) and bool(settings["EMAIL_SMTP_SERVER"]),
        "pagerduty": bool(settings["PAGERDUTY_ENABLED"]) and bool(settings["PAGERDUTY_API_KEY"]),
        "webhook": bool(settings["WEBHOOK_URL"]),
    }
    return [name for name in CHANNELS if on[name]]
