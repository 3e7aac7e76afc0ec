"""Runbooks (SPEC §11): named, versioned step templates defined by admins in the catalog.

A runbook is an argv list (never a shell) or an HTTP request with `{param}` slots; each parameter
has a pattern its value must fully match. `expand` fills the slots into a `RunStep` or `HttpStep`:
a value fills part of one argv item (it can never add items) and is percent-encoded in a URL.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Collection, Mapping
from urllib.parse import quote

from .errors import ConfigError, ValidationError
from .plan import (
    DEFAULT_HTTP_TIMEOUT,
    DEFAULT_RUN_TIMEOUT,
    HTTP_METHODS,
    RUNBOOK_NAME,
    SECRET_REF,
    HttpStep,
    RunbookStep,
    RunStep,
    duration,
    statuses,
    url,
)
from .values import Frozen

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any, Final, TypeVar

    T = TypeVar("T")

SLOT = re.compile(r"\{(\w+)\}")
PARAM = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
MAX_VALUE = 1000
KEYS = {"version", "description", "params", "defaults", "run", "http", "timeout"}
HTTP_KEYS = {"method", "url", "headers", "body", "expect_status"}
# Unicode categories a value may not hold: controls, format (zero-width) characters, surrogates,
# private use, unassigned, and line or paragraph separators.
REFUSED_CATEGORIES = ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")


class HttpTemplate(Frozen):
    """The request of an HTTP runbook; `{param}` slots in url, header values and body."""

    __slots__ = ("body", "expect_status", "headers", "method", "url")

    def __init__(
        self,
        method: str,
        url: str,
        headers: tuple[tuple[str, str], ...] = (),
        body: Any = None,
        expect_status: tuple[int, ...] = (200,),
    ) -> None:
        self.method: Final = method
        self.url: Final = url
        self.headers: Final = headers
        self.body: Final = body  # text, or a table sent as JSON (slots filled in its text values)
        self.expect_status: Final = expect_status


class Runbook(Frozen):
    """One catalog runbook: exactly one of `run` (argv) or `http`."""

    __slots__ = ("defaults", "description", "http", "name", "params", "run", "timeout", "version")

    def __init__(
        self,
        name: str,
        version: int,
        description: str,
        params: tuple[tuple[str, str], ...],
        defaults: tuple[tuple[str, str], ...] = (),
        run: tuple[str, ...] | None = None,
        http: HttpTemplate | None = None,
        timeout: float | None = None,
    ) -> None:
        self.name: Final = name
        self.version: Final = version
        self.description: Final = description
        self.params: Final = params  # name -> pattern (fullmatch)
        self.defaults: Final = defaults
        self.run: Final = run
        self.http: Final = http
        self.timeout: Final = timeout


def config_table(where: str, raw: Any, keys: Collection[str]) -> dict[str, Any]:
    """A TOML data table (`[runbooks.NAME]`, `[remediations.NAME]`) holding only `keys`."""
    if not isinstance(raw, dict):
        raise ConfigError(where, "must be a TOML table")
    unknown = sorted(set(raw).difference(keys))
    if unknown:
        raise ConfigError(where, f"unknown key {unknown[0]!r}; allowed: {', '.join(sorted(keys))}")
    return raw


def define(name: str, raw: Any) -> Runbook:
    """A `[runbooks.NAME]` table as a Runbook; ConfigError naming the table for a bad entry."""
    where = f"runbooks.{name}"
    if not RUNBOOK_NAME.fullmatch(name):
        raise ConfigError(where, "a runbook name is letters, digits, '.', '_' or '-' (at most 64)")
    raw = config_table(where, raw, KEYS)
    version = raw.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ConfigError(f"{where}.version", f"{version!r} is not allowed; a whole number ≥ 1 is required")
    params = _patterns(where, raw.get("params", {}))
    if ("run" in raw) == ("http" in raw):
        raise ConfigError(where, "needs exactly one of run (an argument list) or http (a request)")
    run = _argv(where, raw["run"]) if "run" in raw else None
    http = _request(where, raw["http"]) if "http" in raw else None
    _slots_have_params(where, _templates(run, http), params)
    timeout = None
    if "timeout" in raw:
        timeout = _config(f"{where}.timeout", lambda: duration("timeout", raw["timeout"]))
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise ConfigError(f"{where}.description", "must be text")
    defaults = _defaults(where, params, raw.get("defaults", {}))
    return Runbook(name, version, description, tuple(params.items()), defaults, run, http, timeout)


def expand(book: Runbook, params: dict[str, Any], where: str = "") -> RunStep | HttpStep:
    """The step the runbook makes with these parameters; ValidationError naming the parameter."""
    field = f"{where} runbook {book.name}".strip()
    patterns = dict(book.params)
    unknown = sorted(set(params) - set(patterns))
    if unknown:
        known = ", ".join(sorted(patterns)) or "none"
        raise ValidationError(field, f"unknown parameter {unknown[0]!r}; parameters: {known}")
    values = {**dict(book.defaults), **params}
    missing = sorted(set(patterns) - set(values))
    if missing:
        raise ValidationError(
            f"{field} params.{missing[0]}", f"is missing; it must fully match {patterns[missing[0]]}"
        )
    text = {name: _value(f"{field} params.{name}", values[name], patterns[name]) for name in patterns}
    if book.run is not None:
        argv = tuple(_fill(item, text) for item in book.run)
        return RunStep(argv, False, book.timeout or DEFAULT_RUN_TIMEOUT)
    assert book.http is not None
    h = book.http
    encoded = {name: quote(value, safe="") for name, value in text.items()}
    body = h.body
    if isinstance(body, dict):
        body = json.dumps(_fill_json(body, text), ensure_ascii=False)
    elif isinstance(body, str):
        body = _fill(body, text)
    return HttpStep(
        h.method,
        url(f"{field} url", _fill(h.url, encoded)),
        h.expect_status,
        book.timeout or DEFAULT_HTTP_TIMEOUT,
        tuple((k, _fill(v, text)) for k, v in h.headers),
        body,
    )


def lookup(books: Mapping[str, Runbook], step: RunbookStep, where: str) -> Runbook:
    """The catalog's runbook for a step being filed: known, and at the version the step names (if any)."""
    book = books.get(step.name)
    if book is None:
        known = ", ".join(sorted(books)) or "none"
        raise ValidationError(f"{where} runbook", f"unknown runbook {step.name!r}; known: {known}")
    if step.version is not None and step.version != book.version:
        raise ValidationError(
            f"{where} version",
            f"runbook {step.name} is at version {book.version} in the catalog, not {step.version}",
        )
    return book


def approved(books: Mapping[str, Runbook], step: RunbookStep) -> RunStep | HttpStep:
    """The step to run now: the runbook must still be in the catalog at the version stamped at filing."""
    book = books.get(step.name)
    field = f"runbook {step.name}"
    if book is None:
        raise ValidationError(field, "is no longer in the catalog; nothing was run")
    if step.version != book.version:
        stamped = "no version" if step.version is None else f"version {step.version}"
        raise ValidationError(
            field,
            f"changed after approval (filed at {stamped}, the catalog now has version {book.version}); "
            "nothing was run",
        )
    return expand(book, dict(step.params))


def _value(field: str, value: Any, pattern: str) -> str:
    """A parameter's value as text, refused unless it is text or a whole number matching `pattern`."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValidationError(field, f"{value!r} must be text or a whole number fully matching {pattern}")
    text = str(value)
    bad = next((c for c in text if unicodedata.category(c) in REFUSED_CATEGORIES), None)
    if bad is not None:
        raise ValidationError(
            field,
            f"contains the control or invisible character U+{ord(bad):04X}; it must fully match {pattern}",
        )
    if len(text) > MAX_VALUE:
        raise ValidationError(field, f"is longer than {MAX_VALUE} characters; it must fully match {pattern}")
    if SECRET_REF.search(text):
        raise ValidationError(
            field, f"{text!r} must not hold a ${{env:NAME}} reference; it must fully match {pattern}"
        )
    if not re.fullmatch(pattern, text):
        raise ValidationError(field, f"{text!r} does not fully match {pattern}")
    return text


def _fill(template: str, values: dict[str, str]) -> str:
    """Fill every `{param}` slot in one pass (a filled value is never read as a template)."""
    return SLOT.sub(lambda m: values[m.group(1)], template)


def _fill_json(value: Any, values: dict[str, str]) -> Any:
    if isinstance(value, str):
        return _fill(value, values)
    if isinstance(value, list):
        return [_fill_json(v, values) for v in value]
    if isinstance(value, dict):
        return {k: _fill_json(v, values) for k, v in value.items()}
    return value


def _patterns(where: str, raw: Any) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}.params", "must map parameter names to patterns (regular expressions)")
    out: dict[str, str] = {}
    for name, pattern in raw.items():
        if not PARAM.fullmatch(name):
            raise ConfigError(f"{where}.params", f"{name!r} is not a parameter name (letters, digits, _)")
        if not isinstance(pattern, str) or not pattern:
            raise ConfigError(f"{where}.params.{name}", "needs a pattern (a regular expression, as text)")
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ConfigError(
                f"{where}.params.{name}", f"{pattern!r} is not a regular expression: {exc}"
            ) from None
        out[name] = pattern
    return out


def _argv(where: str, raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw or not all(isinstance(a, str) and a for a in raw):
        raise ConfigError(
            f"{where}.run", 'must be an argument list of non-empty text, e.g. ["prog", "{arg}"]'
        )
    if SLOT.search(raw[0]):
        raise ConfigError(f"{where}.run", f"the program {raw[0]!r} must be fixed text, not a {{slot}}")
    if any("\x00" in a for a in raw):
        raise ConfigError(f"{where}.run", "must not contain NUL characters")
    return tuple(raw)


def _request(where: str, raw: Any) -> HttpTemplate:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}.http", "must be a table with method and url")
    unknown = sorted(set(raw) - HTTP_KEYS)
    if unknown:
        raise ConfigError(
            f"{where}.http", f"unknown key {unknown[0]!r}; allowed: {', '.join(sorted(HTTP_KEYS))}"
        )
    method = str(raw.get("method", "GET")).upper()
    if method not in HTTP_METHODS:
        raise ConfigError(
            f"{where}.http.method", f"{method!r} is not allowed; allowed: {', '.join(HTTP_METHODS)}"
        )
    address = _config(f"{where}.http.url", lambda: url("url", raw.get("url")))
    authority = address.split("://", 1)[1].split("/", 1)[0]
    if SLOT.search(address.split("://", 1)[0] + authority):
        raise ConfigError(f"{where}.http.url", "the scheme and host must be fixed text, not {slots}")
    headers = raw.get("headers", {})
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise ConfigError(f"{where}.http.headers", "must map header names to text")
    body = raw.get("body")
    if body is not None and not isinstance(body, (str, dict)):
        raise ConfigError(f"{where}.http.body", "must be text or a table (sent as JSON)")
    expect = _config(
        f"{where}.http.expect_status", lambda: statuses("expect_status", raw.get("expect_status", 200))
    )
    return HttpTemplate(method, address, tuple((str(k), v) for k, v in headers.items()), body, expect)


def _templates(run: tuple[str, ...] | None, http: HttpTemplate | None) -> list[str]:
    """Every text that may hold slots."""
    if run is not None:
        return list(run)
    assert http is not None
    texts = [http.url, *(v for _, v in http.headers)]
    return texts + _texts(http.body)


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [t for v in value for t in _texts(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _texts(v)]
    return []


def _slots_have_params(where: str, texts: list[str], params: dict[str, str]) -> None:
    used = {m.group(1) for t in texts for m in SLOT.finditer(t)}
    orphans = sorted(used - set(params))
    if orphans:
        raise ConfigError(where, f"slot {{{orphans[0]}}} has no parameter; add it to params with a pattern")
    unused = sorted(set(params) - used)
    if unused:
        raise ConfigError(f"{where}.params.{unused[0]}", "is not used by any {slot} of the template")


def _defaults(where: str, patterns: dict[str, str], raw: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}.defaults", "must map parameter names to values")
    out: list[tuple[str, str]] = []
    for name, value in raw.items():
        if name not in patterns:
            raise ConfigError(f"{where}.defaults.{name}", "has no pattern: add it to params first")
        try:
            out.append((name, _value("value", value, patterns[name])))
        except ValidationError as exc:
            raise ConfigError(f"{where}.defaults.{name}", str(exc).removeprefix("value: ")) from None
    return tuple(out)


def _config(where: str, parse: Callable[[], T]) -> T:
    """Run a plan parser, turning its ValidationError into a ConfigError naming the table key."""
    try:
        return parse()
    except ValidationError as exc:
        raise ConfigError(where, str(exc).split(": ", 1)[1]) from None
