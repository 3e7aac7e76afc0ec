"""Integration templates (SPEC §10): a (component, action) pair and its DETAILS become a change
request, or an operation on an existing change. Templates are data (see catalog/)."""

from __future__ import annotations

import re

from .errors import ValidationError
from .validation import PLAN_JSON_MAX, json_text
from .values import Frozen

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any, Final

PLACEHOLDER = re.compile(r"\{(\w+)\}")
RECORD_FIELDS = ("environment", "tested_in_staging", "impact", "urgency", "title", "description")
SERVICE_KEYS = ("service", "services")
MAX_PARAMETERS = 50
MAX_VALUE = 5_000
OPERATIONS = ("approve", "reject", "review", "route", "execute", "report_success", "report_failure")


class Rule(Frozen):
    """When every `when` parameter matches (case-insensitive), apply `then` to the template."""

    __slots__ = ("then", "when")

    def __init__(self, when: dict[str, str], then: dict[str, str]) -> None:
        self.when: Final = when
        self.then: Final = then

    def matches(self, params: dict[str, Any]) -> bool:
        return all(str(params.get(k, "")).lower() == str(v).lower() for k, v in self.when.items())


class Template(Frozen):
    __slots__ = (
        "action",
        "actor",
        "category",
        "component",
        "description",
        "impact",
        "implementation_plan",
        "model",
        "operation",
        "requester",
        "rollback_plan",
        "rules",
        "services",
        "summary",
        "text_field",
        "title",
        "type",
        "urgency",
        "validation",
    )

    def __init__(
        self,
        component: str,
        action: str,
        summary: str,
        type: str = "normal",
        category: str = "deployment",
        title: str = "{text}",
        description: str = "{text}",
        impact: str = "medium",
        urgency: str = "medium",
        requester: str = "",
        text_field: str = "text",
        services: tuple[str, ...] = (),
        model: str | None = None,
        rules: tuple[Rule, ...] = (),
        implementation_plan: dict[str, Any] | None = None,
        rollback_plan: dict[str, Any] | None = None,
        validation: dict[str, Any] | None = None,
        operation: str | None = None,
        actor: str = "",
    ) -> None:
        self.component: Final = component
        self.action: Final = action
        self.summary: Final = summary
        self.type: Final = type
        self.category: Final = category
        self.title: Final = title
        self.description: Final = description
        self.impact: Final = impact
        self.urgency: Final = urgency
        self.requester: Final = requester
        self.text_field: Final = text_field
        self.services: Final = services
        self.model: Final = model
        self.rules: Final = rules
        self.implementation_plan: Final = implementation_plan
        self.rollback_plan: Final = rollback_plan
        self.validation: Final = validation
        self.operation: Final = operation  # set for entries that act on an existing change
        self.actor: Final = actor

    @property
    def who(self) -> str:
        return self.requester or self.actor or self.component


class Request(Frozen):
    """What `create_change` needs, rendered from a template and DETAILS."""

    __slots__ = ("fields", "parameters")

    def __init__(self, fields: dict[str, Any], parameters: dict[str, Any] | None = None) -> None:
        self.fields: Final = fields
        self.parameters: Final = {} if parameters is None else parameters


def parse_details(text: str, text_field: str, max_bytes: int = PLAN_JSON_MAX) -> dict[str, Any]:
    """DETAILS is a JSON object (finite numbers) or free text (which becomes `text_field`), at
    most `max_bytes` bytes (PLAN_JSON_MAX)."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise ValidationError("details", f"is {size} bytes; at most {max_bytes} allowed (PLAN_JSON_MAX)")
    stripped = text.strip()
    if not stripped:
        raise ValidationError("details", "must not be empty (free text or a JSON object)")
    if not stripped.startswith("{"):
        return {text_field: text, "text": text}
    data = json_text("details", stripped)
    if not isinstance(data, dict):
        raise ValidationError("details", "JSON details must be an object")
    if not data:
        raise ValidationError("details", "a JSON object of details must have at least one field")
    if len(data) > MAX_PARAMETERS:
        raise ValidationError("details", f"has {len(data)} fields; at most {MAX_PARAMETERS} allowed")
    for key, value in data.items():
        _check_value(key, value)
    data.setdefault("text", data.get("description") or data.get(text_field) or "")
    return data


def _check_value(key: str, value: Any) -> None:
    scalars = (str, int, float, bool, type(None))
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(v, scalars) for v in items):
        raise ValidationError(f"details.{key}", "must be text, a number, true/false or a list of those")
    if any(isinstance(v, str) and len(v) > MAX_VALUE for v in items):
        raise ValidationError(f"details.{key}", f"is longer than {MAX_VALUE} characters")


def fill(template: str, params: dict[str, Any]) -> str:
    """Replace {name} with the parameter's text; values are inserted, never re-read as templates."""
    return PLACEHOLDER.sub(lambda m: _text(params.get(m.group(1), "")), template)


def _text(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return "" if value is None else str(value)


def _fill_any(value: Any, params: dict[str, Any]) -> Any:
    if isinstance(value, str):
        return fill(value, params)
    if isinstance(value, list):
        return [_fill_any(v, params) for v in value]
    if isinstance(value, dict):
        return {k: _fill_any(v, params) for k, v in value.items()}
    return value


def one_line_title(text: str, limit: int = 200) -> str:
    """A title from free text: its first non-empty line, shortened to fit."""
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return first if len(first) <= limit else first[: limit - 1] + "…"


def render(t: Template, params: dict[str, Any]) -> Request:
    """Turn a template and parsed DETAILS into create_change arguments."""
    chosen: dict[str, Any] = {
        "type": t.type,
        "category": t.category,
        "impact": t.impact,
        "urgency": t.urgency,
    }
    for rule in t.rules:
        if rule.matches(params):
            chosen.update(rule.then)
    services = [fill(s, params) for s in t.services]
    for key in SERVICE_KEYS:
        value = params.get(key)
        services += value if isinstance(value, list) else ([value] if value else [])
    title = params.get("title") or fill(t.title, params) or f"{t.component} {t.action}"
    fields: dict[str, Any] = {
        **chosen,
        "title": one_line_title(str(title)),
        "description": str(params.get("description") or fill(t.description, params)),
        "requested_by": t.who,
        "affected_services": [str(s) for s in services if str(s).strip()],
    }
    for key in ("environment", "tested_in_staging", "impact", "urgency"):
        if params.get(key) not in (None, ""):
            fields[key] = str(params[key])
    if t.implementation_plan is not None:
        fields["implementation_plan"] = _fill_any(t.implementation_plan, params)
    if t.rollback_plan is not None:
        fields["rollback_plan"] = _fill_any(t.rollback_plan, params)
    if t.validation is not None:
        fields["validation"] = _fill_any(t.validation, params)
    extra = {k: v for k, v in params.items() if k not in (*RECORD_FIELDS, *SERVICE_KEYS, "text")}
    return Request(fields, extra)
