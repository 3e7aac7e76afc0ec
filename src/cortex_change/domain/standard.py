"""Standard change models (SPEC §5): when a standard request is pre-approved, and what it becomes
when it is not. Models are data (see catalog/); this module only judges them."""

from __future__ import annotations

import json
import unicodedata

from .errors import ValidationError
from .model import ChangeType, Level
from .values import Frozen

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any, Final


class StandardDecision(Frozen):
    """`pre_approved` by `model`, or the request `becomes` another type, with the reason."""

    __slots__ = ("becomes", "max_level", "model", "pre_approved", "reason")

    def __init__(
        self,
        model: str | None,
        pre_approved: bool,
        becomes: ChangeType,
        reason: str,
        max_level: Level = Level.MEDIUM,
    ) -> None:
        self.model: Final = model
        self.pre_approved: Final = pre_approved
        self.becomes: Final = becomes
        self.reason: Final = reason
        # The highest assessed risk level the model still pre-approves (SPEC §11; `max_level`).
        self.max_level: Final = max_level


NO_MODEL = StandardDecision(
    model=None,
    pre_approved=False,
    becomes=ChangeType.NORMAL,
    reason="no enabled standard change model matches this request",
)


class Condition(Frozen):
    """What keeps a request inside its model. `kind` is one of:

    - ``rate``: fewer than ``limit`` earlier requests with the same ``field`` value within
      ``window_seconds`` (the caller counts them);
    - ``range``: ``minimum`` <= ``field`` <= ``maximum`` (``absolute`` compares the magnitude,
      ``whole`` takes whole numbers only: 2.5 replicas is outside any range);
    - ``max_rank``: ``field``'s position in ``scale`` is at or below ``maximum``'s.
    """

    __slots__ = (
        "absolute",
        "field",
        "kind",
        "limit",
        "maximum",
        "minimum",
        "scale",
        "whole",
        "window_seconds",
    )

    def __init__(
        self,
        kind: str,
        field: str,
        limit: int | None = None,
        window_seconds: int = 3600,
        minimum: float | None = None,
        maximum: float | str | None = None,
        absolute: bool = False,
        scale: tuple[str, ...] = (),
        whole: bool = False,
    ) -> None:
        self.kind: Final = kind
        self.field: Final = field
        self.limit: Final = limit
        self.window_seconds: Final = window_seconds
        self.minimum: Final = minimum
        self.maximum: Final = maximum
        self.absolute: Final = absolute
        self.scale: Final = scale
        self.whole: Final = whole


KINDS = ("rate", "range", "max_rank")


class StandardModel(Frozen):
    __slots__ = ("condition", "description", "enabled", "max_level", "name", "otherwise", "templates")

    def __init__(
        self,
        name: str,
        description: str,
        enabled: bool,
        condition: Condition,
        otherwise: ChangeType,
        templates: tuple[str, ...] = (),
        max_level: Level = Level.MEDIUM,
    ) -> None:
        self.name: Final = name
        self.description: Final = description
        self.enabled: Final = enabled
        self.condition: Final = condition
        self.otherwise: Final = otherwise
        self.templates: Final = templates  # integration entries that use it
        self.max_level: Final = max_level  # the highest assessed risk level it pre-approves (SPEC §11)

    def document(self) -> dict[str, Any]:
        """The model as a plain document, with its rule in words."""
        c = self.condition
        if c.kind == "rate":
            rule = f"fewer than {c.limit} requests per {c.field} within {c.window_seconds}s"
        elif c.kind == "range":
            lo = "" if c.minimum is None else f"{c.minimum:g} ≤ "
            hi = "" if c.maximum is None else f" ≤ {float(c.maximum):g}"
            rule = f"{lo}{'|' + c.field + '|' if c.absolute else c.field}{hi}{', whole' if c.whole else ''}"
        else:
            rule = f"{c.field} at or below {c.maximum} on {' < '.join(c.scale)}"
        return {
            "name": self.name,
            "description": self.description,
            "enabled": self.enabled,
            "rule": rule,
            "condition": {
                "kind": c.kind,
                "field": c.field,
                "limit": c.limit,
                "window_seconds": c.window_seconds,
                "min": c.minimum,
                "max": c.maximum,
                "absolute": c.absolute,
                "scale": list(c.scale),
                "whole": c.whole,
            },
            "otherwise": self.otherwise.value,
            "max_level": self.max_level.value,
        }

    def rate_key(self, parameters: dict[str, Any]) -> str | None:
        """What a rate condition counts requests by (`counting_key` of its field's value); None
        for other conditions or when the value is missing."""
        c = self.condition
        value = parameters.get(c.field)
        if c.kind != "rate" or value is None or value == "":
            return None
        return counting_key(f"parameters.{c.field}", value)

    def decide(self, parameters: dict[str, Any], recent: int = 0) -> StandardDecision:
        """Judge a request's parameters (and, for a rate, how many came before it)."""
        if not self.enabled:
            return StandardDecision(self.name, False, ChangeType.NORMAL, f"model {self.name} is disabled")
        c = self.condition
        value = parameters.get(c.field)
        if value is None or value == "":
            return self._fails(ChangeType.NORMAL, f"parameter {c.field!r} is missing")
        judge = {"rate": self._rate, "range": self._range, "max_rank": self._rank}[c.kind]
        return judge(value, recent)

    def _ok(self, why: str) -> StandardDecision:
        return StandardDecision(self.name, True, ChangeType.STANDARD, f"standard model {self.name}: {why}")

    def _fails(self, becomes: ChangeType, why: str) -> StandardDecision:
        return StandardDecision(self.name, False, becomes, f"standard model {self.name}: {why}")

    def _rate(self, value: Any, recent: int) -> StandardDecision:
        c = self.condition
        assert c.limit is not None
        window = _duration(c.window_seconds)
        if recent < c.limit:
            return self._ok(
                f"{recent} earlier request(s) for {c.field} {value} in the last {window}, limit {c.limit}"
            )
        earlier = f"{recent} earlier request(s) for {c.field} {value} in the last {window}"
        return self._fails(self.otherwise, f"{earlier} reach the limit of {c.limit}")

    def _range(self, value: Any, recent: int) -> StandardDecision:
        c = self.condition
        number = _number(value)
        if number is None:
            return self._fails(ChangeType.NORMAL, f"parameter {c.field!r} is not a number: {value!r}")
        if c.whole and not number.is_integer():
            return self._fails(ChangeType.NORMAL, f"parameter {c.field!r} is not a whole number: {value!r}")
        measured = abs(number) if c.absolute else number
        lo = c.minimum
        hi = float(c.maximum) if c.maximum is not None else None
        bounds = f"{'' if lo is None else f'{lo:g} ≤ '}{c.field}{'' if hi is None else f' ≤ {hi:g}'}"
        inside = (lo is None or measured >= lo) and (hi is None or measured <= hi)
        if inside:
            return self._ok(f"{c.field} {number:g} within {bounds}")
        return self._fails(self.otherwise, f"{c.field} {number:g} outside {bounds}")

    def _rank(self, value: Any, recent: int) -> StandardDecision:
        c = self.condition
        text = str(value).lower()
        if text not in c.scale:
            return self._fails(ChangeType.NORMAL, f"{c.field} {value!r} is not one of {', '.join(c.scale)}")
        ceiling = str(c.maximum)
        if c.scale.index(text) <= c.scale.index(ceiling):
            return self._ok(f"{c.field} {text} is at or below {ceiling}")
        return self._fails(self.otherwise, f"{c.field} {text} is above {ceiling}")


# Unicode categories no identifier may hold: controls, format characters (zero-width, bidi),
# line and paragraph separators, private use, unassigned. They make two names look alike.
INVISIBLE = frozenset({"Cc", "Cf", "Zl", "Zp", "Co", "Cn"})


def counting_key(field: str, value: Any) -> str:
    """An identifier as rate conditions compare it: NFKC, case-folded (NFKC again after), surrounding
    white space stripped, so `WORKER-777` and ` worker-777` count as `worker-777`. A value holding an
    INVISIBLE character, or nothing but white space, is refused."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    for ch in text:
        if unicodedata.category(ch) in INVISIBLE:
            raise ValidationError(
                field,
                f"holds an invisible or format character (U+{ord(ch):04X}, "
                f"{unicodedata.category(ch)}); identifiers are visible characters only",
            )
    key = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold()).strip()
    if not key:
        raise ValidationError(field, "must not be empty")
    return key


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _duration(seconds: int) -> str:
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
