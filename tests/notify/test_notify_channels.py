"""The channel registry: names, which channels the settings turn on, dispatch, lazy imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from notify_support import message, settings

from cortex_change.notify.channels import CHANNELS, enabled
from support import HttpReceiver


def test_the_four_channels() -> None:
    assert list(CHANNELS) == ["slack", "email", "pagerduty", "webhook"]


def test_nothing_is_enabled_by_default(tmp_path: Path) -> None:
    assert enabled(settings(tmp_path, {})) == []


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"SLACK_NOTIFICATIONS": "true"}, []),  # switched on but no URL
        ({"SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/x"}, []),  # URL but off
        ({"SLACK_NOTIFICATIONS": "true", "SLACK_WEBHOOK_URL": "https://hooks.slack.com/x"}, ["slack"]),
        ({"EMAIL_NOTIFICATIONS": "true"}, []),
        ({"EMAIL_NOTIFICATIONS": "true", "EMAIL_SMTP_SERVER": "mail.example:25"}, ["email"]),
        ({"EMAIL_SMTP_SERVER": "mail.example:25"}, []),
        ({"PAGERDUTY_ENABLED": "true"}, []),
        ({"PAGERDUTY_ENABLED": "true", "PAGERDUTY_API_KEY": "k"}, ["pagerduty"]),
        ({"PAGERDUTY_API_KEY": "k"}, []),
        ({"WEBHOOK_URL": "https://example.com/hook"}, ["webhook"]),
        (
            {
                "WEBHOOK_URL": "https://example.com/hook",
                "PAGERDUTY_ENABLED": "true",
                "PAGERDUTY_API_KEY": "k",
                "EMAIL_NOTIFICATIONS": "true",
                "EMAIL_SMTP_SERVER": "smtps://mail.example",
                "SLACK_NOTIFICATIONS": "true",
                "SLACK_WEBHOOK_URL": "https://hooks.slack.com/x",
            },
            ["slack", "email", "pagerduty", "webhook"],
        ),
    ],
)
def test_enabled(tmp_path: Path, env: dict[str, str], expected: list[str]) -> None:
    assert enabled(settings(tmp_path, env)) == expected


def test_dispatch_reaches_the_channel(receiver: HttpReceiver, tmp_path: Path) -> None:
    CHANNELS["webhook"](message(), settings(tmp_path, {"WEBHOOK_URL": receiver.url("/in")}), timeout=5)
    [got] = receiver.requests
    assert got.path == "/in" and got.json()["event_id"] == message().event_id


HEAVY = (
    "urllib.request",
    "smtplib",
    "email.message",
    "cortex_change.notify.slack",
    "cortex_change.notify.mail",
    "cortex_change.notify.pagerduty",
    "cortex_change.notify.webhook",
)


def _loaded_after(statement: str, names: tuple[str, ...]) -> list[str]:
    """Which of `names` a fresh interpreter has loaded after running `statement`."""
    code = f"import sys; {statement}; print(','.join(n for n in {names!r} if n in sys.modules))"
    run = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    return [n for n in run.stdout.strip().split(",") if n]


def test_the_registry_imports_no_protocol_module() -> None:
    assert _loaded_after("import cortex_change.notify.channels", HEAVY) == []


def test_the_cli_start_up_imports_no_notification_code() -> None:
    assert _loaded_after("import cortex_change.cli.main", ("cortex_change.notify", *HEAVY[3:])) == []
