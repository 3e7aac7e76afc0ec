"""uvicorn's access log without secrets: the value of a query parameter whose name looks like a
credential (`?access_token=…`, `api_key`, `password`, …) is masked before the line is written.

The API reads no credential from a URL (tokens go in the Authorization header), but a client
may still put one there, and log files outlive requests. `create_app` installs the filter.
"""

from __future__ import annotations

import logging
import re

from ..redaction import redact_url

ACCESS_LOGGER = "uvicorn.access"
# A calendar feed's secret is in its path (calendar clients send no header): masked as well.
FEED_PATH = re.compile(r"(/api/v1/calendar/)[^/?\s]+(\.ics)")


def _masked(target: str) -> str:
    target = FEED_PATH.sub(r"\1***\2", target)
    return redact_url(target) if "?" in target else target


class RedactQuery(logging.Filter):
    """Masks secrets in the request target of each access log record (its query, a feed's path)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_masked(a) if isinstance(a, str) else a for a in record.args)
        return True


def install() -> None:
    """Put the filter on uvicorn's access logger (once, however many apps a process creates)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, RedactQuery) for f in logger.filters):
        logger.addFilter(RedactQuery())
