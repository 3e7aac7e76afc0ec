"""Credentials out of messages: the one place a URL's secrets are masked (SPEC §11 "Limits").

A store URL reaches messages in many ways (an error naming it, the driver echoing it or a piece
of it, `config show`); each passes through `redact`. Malformed URLs are the point: a password
with an unescaped `@`, `/` or `?`, an unclosed `[`, `password=` in the query string.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

MASK = "***"
SHORTEST_LOOSE = 4  # a secret this long is masked anywhere in a message, not only inside its URL
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_SECRET_NAME = re.compile(r"pass|secret|token", re.IGNORECASE)
# Whole words that name a credential (split at non-alphanumerics and camelCase): api_key,
# X-Amz-Signature, accessToken, auth — but not author, monkey or design.
SECRET_WORDS = frozenset(
    [
        "token",
        "accesstoken",
        "password",
        "passwd",
        "pwd",
        "secret",
        "auth",
        "authorization",
        "key",
        "apikey",
        "signature",
        "sig",
        "credential",
        "credentials",
    ]
)
# Credentials in any URL or conninfo text, whoever wrote it: `://user:PASSWORD@`, `password=VALUE`.
_ANY_USERINFO = re.compile(r"(://[^\s:/?#@]*:)[^\s@]*@")
_ANY_PARAM = re.compile(r"((?:\b|%[0-9A-Fa-f]{2})[\w%.-]*=)('[^']*'|[^\s&#;'\"]*)")

Span = tuple[int, int]


def _userinfo_spans(url: str) -> list[Span]:
    """The password as libpq reads it (up to the first `@` or `/`) and as a person means it
    (up to the last `@` before the query)."""
    scheme = _SCHEME.match(url)
    if scheme is None:
        return []
    start = scheme.end()
    rest = url[start:]
    ends = []
    stop = re.search(r"[@/]", rest)
    if stop is not None and stop.group() == "@":
        ends.append(stop.start())
    authority = re.split(r"[?#]", rest, maxsplit=1)[0]
    if "@" in authority:
        ends.append(authority.rfind("@"))
    spans = []
    for end in ends:
        colon = rest.find(":", 0, end)
        if colon >= 0:
            spans.append((start + colon + 1, start + end))
    return spans


def secret_name(name: str) -> bool:
    """Does a parameter's name (as sent: percent-encoded) look like a credential's?"""
    decoded = unquote(name)
    if _SECRET_NAME.search(decoded):
        return True
    words = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", decoded.replace("+", " "))
    return any(w in SECRET_WORDS for w in re.split(r"[^a-z0-9]+", words.lower()))


def _query_spans(url: str) -> list[Span]:
    """Values of query parameters whose name says secret (`password`, `sslpassword`, ...)."""
    spans = []
    for match in re.finditer(r"[?&]([^=&#]*)=([^&#]*)", url):
        if secret_name(match.group(1)):
            spans.append(match.span(2))
    return spans


def _spans(url: str) -> list[Span]:
    merged: list[Span] = []
    for begin, end in sorted(s for s in _userinfo_spans(url) + _query_spans(url) if s[0] < s[1]):
        if merged and begin <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((begin, end))
    return merged


def redact_url(url: str) -> str:
    """A URL (or a file path: unchanged) fit to print: every credential it holds masked."""
    out, last = [], 0
    for begin, end in _spans(url):
        out += [url[last:begin], MASK]
        last = end
    return _generic("".join(out) + url[last:])


def redact(text: str, *urls: str) -> str:
    """`text` with each of `urls` shown masked, their secrets masked wherever else they appear
    (raw or percent-decoded), and any other URL's password or `password=` value too."""
    for url in urls:
        text = text.replace(url, redact_url(url)) if url else text
        pieces = {url[b:e] for b, e in _spans(url)}
        pieces |= {part for piece in pieces for part in re.split(r"[@/?#]", piece)}  # libpq splits there
        for secret in sorted(pieces | {unquote(p) for p in pieces}, key=len, reverse=True):
            if len(secret) >= SHORTEST_LOOSE:
                text = text.replace(secret, MASK)
    return _generic(text)


def _generic(text: str) -> str:
    text = _ANY_USERINFO.sub(rf"\g<1>{MASK}@", text)
    return _ANY_PARAM.sub(_mask_param, text)


def _mask_param(match: re.Match[str]) -> str:
    name, value = match.group(1), match.group(2)
    if not secret_name(name.rstrip("=")) or not value or value.startswith(MASK):
        return match.group(0)
    return f"{name}{MASK}"
