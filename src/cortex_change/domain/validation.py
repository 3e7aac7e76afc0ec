"""Input rules of SPEC §1: each check names the field and what is allowed, or returns the value."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from enum import StrEnum

from .errors import ValidationError
from .model import Plan
from .values import Frozen

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any, Final, TypeVar

    E = TypeVar("E", bound=StrEnum)

TITLE_MAX = 200
DESCRIPTION_MAX = 20_000
IDENTITY_MAX = 200
NAME_MAX = 200
REASON_MAX = 5_000
LIST_MAX = 100
PLAN_STEPS_MAX = 500
PLAN_JSON_MAX = 100_000  # bytes of a document's compact JSON (the PLAN_JSON_MAX key's default)
STEP_TIMEOUT_MAX = 3600.0  # the STEP_TIMEOUT_MAX key's default
CHANGE_ID = re.compile(r"^RFC-\d{14}-[0-9a-f]{6}$", re.ASCII)  # ASCII: \d would take any script's digits
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _utf8(field: str, value: str) -> str:
    if not isinstance(value, str):  # JSON input (--details) may hold numbers, lists, null
        raise ValidationError(field, f"must be text, not {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(field, "is not valid UTF-8 text") from None
    return value


def text(field: str, value: str, *, max_len: int, min_len: int = 0) -> str:
    """Free text stored exactly as given (newlines, quotes and `$(...)` included)."""
    _utf8(field, value)
    if len(value) < min_len:
        raise ValidationError(field, f"must not be empty (1–{max_len} characters)")
    if len(value) > max_len:
        raise ValidationError(field, f"is {len(value)} characters; at most {max_len} allowed")
    return value


def reason(field: str, value: str, max_len: int = REASON_MAX) -> str:
    """A reason a decision rests on (approve, reject, cancel, rollback): 1–max_len characters,
    not only white space."""
    text(field, value, max_len=max_len)
    if not value.strip():
        raise ValidationError(field, f"must not be empty: say why (1–{max_len} characters)")
    return value


def title(value: str) -> str:
    text("title", value, max_len=TITLE_MAX)  # a string first: JSON input may hold anything
    if not value.strip():
        raise ValidationError("title", f"must not be empty (1–{TITLE_MAX} characters)")
    return value


def description(value: str) -> str:
    return text("description", value, max_len=DESCRIPTION_MAX)


def name(field: str, value: str, max_len: int = NAME_MAX) -> str:
    """A one-line name: an identity, a service, a CI. No control characters."""
    _utf8(field, value)
    if not value.strip():
        raise ValidationError(field, "must not be empty")
    if len(value) > max_len:
        raise ValidationError(field, f"is {len(value)} characters; at most {max_len} allowed")
    if _CONTROL.search(value):
        raise ValidationError(field, "must be one line without control characters")
    return value


def identity(field: str, value: str) -> str:
    return name(field, value, IDENTITY_MAX)


def names(field: str, values: Iterable[str]) -> list[str]:
    """A list of names, de-duplicated in order."""
    if not isinstance(values, list | tuple | set | frozenset):  # a bare string would split into letters
        raise ValidationError(field, f"must be a list of names, not {type(values).__name__}")
    out: list[str] = []
    for value in values:
        item = name(field, value)
        if item not in out:
            out.append(item)
    if len(out) > LIST_MAX:
        raise ValidationError(field, f"lists {len(out)} names; at most {LIST_MAX} allowed")
    return out


def choice(field: str, value: str, enum: type[E]) -> E:
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(e.value for e in enum)
        raise ValidationError(field, f"{value!r} is not allowed; allowed: {allowed}") from None


def one_of(field: str, value: str, allowed: Iterable[str]) -> str:
    options = list(allowed)
    if value not in options:
        raise ValidationError(field, f"{value!r} is not allowed; allowed: {', '.join(options)}")
    return value


def change_id(value: str) -> str:
    # fullmatch: match() would let a trailing newline through
    if not isinstance(value, str) or not CHANGE_ID.fullmatch(value):
        raise ValidationError("change_id", f"{value!r} is not a change id (RFC-YYYYMMDDHHMMSS-xxxxxx)")
    return value


class Limits(Frozen):
    """Configured maxima documents are checked against when a change is filed or updated."""

    __slots__ = ("json_bytes", "step_timeout")

    def __init__(self, json_bytes: int = PLAN_JSON_MAX, step_timeout: float = STEP_TIMEOUT_MAX) -> None:
        self.json_bytes: Final = json_bytes  # PLAN_JSON_MAX
        self.step_timeout: Final = step_timeout  # STEP_TIMEOUT_MAX, seconds


DEFAULT_LIMITS = Limits()


def document(field: str, value: Any, max_bytes: int = PLAN_JSON_MAX) -> Any:
    """A JSON document (plan, validation, parameters, details) of finite numbers whose compact
    encoding holds at most `max_bytes` bytes (PLAN_JSON_MAX)."""
    try:
        encoded = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError:
        raise ValidationError(field, "numbers must be finite (NaN and Infinity are not allowed)") from None
    except RecursionError:
        raise ValidationError(field, "is nested too deeply") from None
    except TypeError as exc:
        raise ValidationError(field, f"is not a JSON document: {exc}") from None
    size = len(encoded.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise ValidationError(field, f"is {size} bytes of JSON; at most {max_bytes} allowed (PLAN_JSON_MAX)")
    return value


def json_text(field: str, text: str) -> Any:
    """Parse JSON text: only finite numbers (json.loads takes NaN, Infinity and 1e999 as floats)."""

    def constant(name: str) -> Any:
        raise ValidationError(field, f"{name} is not allowed: numbers must be finite")

    def number(literal: str) -> float:
        value = float(literal)
        if not math.isfinite(value):
            raise ValidationError(field, f"{literal[:40]} is out of range: numbers must be finite")
        return value

    try:
        return json.loads(text, parse_constant=constant, parse_float=number)
    except json.JSONDecodeError as exc:
        raise ValidationError(
            field, f"malformed JSON: {exc.msg} (line {exc.lineno} column {exc.colno})"
        ) from None
    except RecursionError:
        raise ValidationError(field, "is nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise ValidationError(field, f"malformed JSON: {' '.join(str(exc).split())}") from None


def plan(field: str, value: Any, limits: Limits = DEFAULT_LIMITS) -> Plan | None:
    """A plan object: {"steps": [text | {...}, ...], ...other documented keys}, within `limits`."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValidationError(field, 'must be a JSON object such as {"steps": ["..."]}')
    document(field, value, limits.json_bytes)
    steps = value.get("steps", [])
    if not isinstance(steps, list):
        raise ValidationError(field, "steps must be a list of text or objects")
    if len(steps) > PLAN_STEPS_MAX:
        raise ValidationError(field, f"has {len(steps)} steps; at most {PLAN_STEPS_MAX} allowed")
    for i, step in enumerate(steps, 1):
        if isinstance(step, str):
            text(f"{field} step {i}", step, max_len=REASON_MAX, min_len=1)
        elif not isinstance(step, dict):
            raise ValidationError(field, f"step {i} must be text or an object")
    from . import plan as plans

    plans.steps(field, value, limits.step_timeout)  # executable steps must parse now, not fail at run time
    if "max_duration" in value:
        plans.duration(f"{field} max_duration", value["max_duration"])
    return dict(value)


def parameters(values: dict[str, Any], max_bytes: int = PLAN_JSON_MAX) -> dict[str, Any]:
    """A standard request's parameters: named scalars (text, finite numbers, true/false)."""
    document("parameters", values, max_bytes)
    if len(values) > LIST_MAX:
        raise ValidationError("parameters", f"has {len(values)} entries; at most {LIST_MAX} allowed")
    out: dict[str, Any] = {}
    for key, value in values.items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", key):
            raise ValidationError("parameters", f"{key!r} is not a parameter name (letters, digits, _)")
        items = value if isinstance(value, list) else [value]
        if not all(isinstance(v, (str, int, float, bool)) or v is None for v in items):
            raise ValidationError(
                f"parameters.{key}", "must be text, a number, true/false or a list of those"
            )
        for v in items:
            if isinstance(v, str):
                text(f"parameters.{key}", v, max_len=REASON_MAX)
        out[key] = value
    return out
