"""Issue 11: one masking function for every URL that can reach a message (SPEC §11 "Limits")."""

from __future__ import annotations

import pytest

from cortex_change.redaction import redact, redact_url

SECRET = "S3cretPW"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "postgresql://postgres:S3cretPW@db.example:5432/cortex",
            "postgresql://postgres:***@db.example:5432/cortex",
        ),
        ("postgresql://postgres:S3cretPW@[::1", "postgresql://postgres:***@[::1"),
        (
            "postgresql://postgres@127.0.0.1:1/x?password=S3cretPW",
            "postgresql://postgres@127.0.0.1:1/x?password=***",
        ),
        (
            "postgresql://u@h/x?sslmode=require&sslpassword=S3cretPW&application_name=a@b",
            "postgresql://u@h/x?sslmode=require&sslpassword=***&application_name=a@b",
        ),
        ("postgresql://h/x?%70assword=S3cretPW", "postgresql://h/x?%70assword=***"),
        ("postgresql://u:S3cret@PW@h/x", "postgresql://u:***@h/x"),  # an unescaped @ in the password
        ("postgresql://u:S3c/retPW@h/x", "postgresql://u:***@h/x"),  # ... a /
        ("postgresql://u:S3c?retPW@h/x", "postgresql://u:***@h/x"),  # ... a ? (libpq reads it so)
        ("postgresql://admin@srv:S3cretPW@h/x", "postgresql://admin@srv:***@h/x"),
        ("postgres://u:S3cret%40PW@h/x", "postgres://u:***@h/x"),
    ],
)
def test_every_shape_of_url_is_shown_without_its_password(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    assert "S3cret" not in redact_url(url)


@pytest.mark.parametrize(
    "location",
    [
        "/var/lib/cortex-change/cortex-change.db",
        "postgresql://postgres@127.0.0.1:5432/postgres",
        "postgresql://h1:5432,h2:5433/db?target_session_attrs=read-write&options=-csearch_path%3Dt_1",
    ],
)
def test_a_location_without_credentials_is_shown_as_it_is(location: str) -> None:
    assert redact_url(location) == location


def test_the_secret_is_masked_wherever_a_message_repeats_it() -> None:
    url = "postgresql://u:S3cret%21PW@h/x"
    message = f'cannot open the database {url}: invalid percent-encoded token: "S3cret%21PW" (S3cret!PW)'
    out = redact(message, url)
    assert "S3cret" not in out
    assert out.startswith("cannot open the database postgresql://u:***@h/x: ")


def test_credentials_of_any_url_or_conninfo_in_a_message_are_masked() -> None:
    text = "tried http://svc:S3cretPW@host/a then host=h password=S3cretPW sslpassword='S3c ret' user=u"
    out = redact(text)
    assert "S3c" not in out
    assert "http://svc:***@host/a" in out
    assert "user=u" in out


def test_a_short_password_is_masked_in_its_url_but_not_across_the_message() -> None:
    """Masking a two-letter password everywhere would garble the message; its URL still hides it."""
    url = "postgresql://u:pw@h/x"
    assert redact(f"{url} refused: pwd unknown", url) == "postgresql://u:***@h/x refused: pwd unknown"


def test_masking_twice_changes_nothing() -> None:
    once = redact_url(f"postgresql://u:{SECRET}@h/x?password={SECRET}")
    assert redact(once, once) == once
