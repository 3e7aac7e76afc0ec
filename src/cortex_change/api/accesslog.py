"""uvicorn's access log without secrets: the value of a query parameter whose name looks like a
credential (`?access_token=…`, `api_key`, `password`, …) is masked before the line is written.

The API reads no credential from a URL (tokens go in the Authorization header), but a client
may still put one there, and log files outlive requests. `create_app` installs the filter.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote_plus

MASK = "***"
ACCESS_LOGGER = "uvicorn.access"
# A name is masked when one of its words (percent-decoded, any case, split at anything but letters
# and digits and at camelCase) is one of these: access_token, accessToken, api_key, X-Api-Key,
# client_secret, X-Amz-Signature, ... but not author, monkey or design.
SECRET_WORDS = frozenset(
    ["token", "accesstoken", "password", "passwd", "pwd", "secret", "auth", "authorization", "key", "apikey", "signature", "sig", "credential", "credentials"]
)


def secret_name(name: str) -> bool:
    """Does a query parameter's name (as sent: percent-encoded) look like a credential's?"""
    words = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", unquote_plus(name))
    return any(w in SECRET_WORDS for w in re.split(r"[^a-z0-9]+", words.lower()))


def redact_target(target: str) -> str:
    """A request target (path and query, as uvicorn logs it) with credential-like values masked."""
    path, mark, query = target.partition("?")
    if not mark:
        return target
    items = []
    for item in query.split("&"):
        name, equals, value = item.partition("=")
        if equals and value and secret_name(name):
            item = f"{name}={MASK}"
        items.append(item)
    return f"{path}?{'&'.join(items)}"


class RedactQuery(logging.Filter):
    """Masks secrets in the request target of each access log record (an argument with a `?`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_target(a) if isinstance(a, str) and "?" in a else a for a in record.args
            )
        return True


def install() -> None:
    """Put the filter on uvicorn's access logger (once, however many apps a process creates)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, RedactQuery) for f in logger.filters):
        logger.addFilter(RedactQuery())
