"""POSTing a notification over HTTP(S), for every HTTP channel: no redirects, one-line redacted errors."""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from .. import __version__
from ..outbound import no_redirect_opener
from .message import DeliveryError

_SNIPPET = 200  # characters of a failing response's body kept in the reason


def one_line(text: str) -> str:
    """Collapse all whitespace (newlines included) to single spaces."""
    return " ".join(text.split())


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every non-empty secret in `text` with ***."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def origin(url: str) -> str:
    """scheme://host[:port] of a URL: safe to show, unlike its path or query (Slack's is a secret)."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    host = f"[{parts.hostname}]" if parts.hostname and ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}{port}"


def _checked_origin(channel: str, url: str) -> str:
    # Only http(s): urllib would also "POST" to file:// and ftp:// URLs without any error.
    try:
        parts = urlsplit(url)
        if parts.scheme in ("http", "https") and parts.hostname:
            return origin(url)
    except ValueError:  # e.g. a port that is not a number
        pass
    raise DeliveryError(f"{channel}: the URL is not http(s)://host[:port]/…")


def _snippet(raw: bytes) -> str:
    text = one_line(raw.decode("utf-8", "replace"))
    if not text:
        return ""
    return f": {text[:_SNIPPET]}{'…' if len(text) > _SNIPPET else ''}"


def post(
    channel: str,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    timeout: float,
    secrets: Iterable[str] = (),
) -> int:
    """POST `body`; return the 2xx status or raise DeliveryError with a one-line, redacted reason."""
    hidden = list(secrets)
    where = _checked_origin(channel, url)
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"User-Agent": f"cortex-change/{__version__}", **headers},
    )
    opener = no_redirect_opener()  # urllib would replay the POST as a GET without its body
    try:
        with opener.open(request, timeout=timeout) as response:
            status: int = response.status
            response.read(64 * 1024)  # drain, so the server sees a complete exchange
    except urllib.error.HTTPError as exc:
        try:
            detail = _snippet(exc.read(4096))
        except (OSError, http.client.HTTPException):
            detail = ""
        reason = f"{channel}: {where} answered HTTP {exc.code}{detail}"
        raise DeliveryError(redact(one_line(reason), hidden)) from None
    except urllib.error.URLError as exc:
        reason = f"{channel}: cannot reach {where}: {exc.reason}"
        raise DeliveryError(redact(one_line(reason), hidden)) from None
    except (OSError, http.client.HTTPException) as exc:  # timeouts and resets while reading
        reason = f"{channel}: {where} failed: {type(exc).__name__}: {exc}"
        raise DeliveryError(redact(one_line(reason), hidden)) from None
    return status
