"""Read the built-in catalog and the user's additions, resolving "$KEY" configuration references."""

from __future__ import annotations

import re
from importlib import resources

from ..config import Settings
from ..domain.errors import ConfigError
from ..domain.integration import OPERATIONS, PLACEHOLDER, Rule, Template
from ..domain.model import ChangeType, Level
from ..domain.runbooks import Runbook, define
from ..domain.standard import KINDS, Condition, StandardModel
from ..domain.values import Frozen

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any, Final

DURATION = re.compile(r"^(\d+)\s*([smhd]?)$")
UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
TEMPLATE_KEYS = {
    "summary",
    "type",
    "category",
    "title",
    "description",
    "impact",
    "urgency",
    "requester",
    "text_field",
    "services",
    "model",
    "rules",
    "implementation_plan",
    "rollback_plan",
    "validation",
    "operation",
    "actor",
}


class Catalog(Frozen):
    __slots__ = ("models", "runbooks", "templates")

    def __init__(
        self,
        models: dict[str, StandardModel],
        templates: dict[str, dict[str, Template]],
        runbooks: dict[str, Runbook],
    ) -> None:
        self.models: Final = models
        self.templates: Final = templates
        self.runbooks: Final = runbooks

    def template(self, component: str, action: str) -> Template:
        from ..domain.errors import ValidationError

        if component not in self.templates:
            raise ValidationError(
                "component", f"unknown component {component!r}; valid: {', '.join(sorted(self.templates))}"
            )
        actions = self.templates[component]
        if action not in actions:
            raise ValidationError(
                "action", f"unknown action {action!r} for {component}; valid: {', '.join(sorted(actions))}"
            )
        return actions[action]


def _builtin() -> dict[str, Any]:
    import tomllib

    text = (resources.files("cortex_change.catalog") / "builtin.toml").read_text("utf-8")
    return tomllib.loads(text)


def _resolve(value: Any, settings: Settings, where: str) -> Any:
    if isinstance(value, str) and value.startswith("$"):
        key = value[1:]
        if key not in settings.values:
            raise ConfigError(where, f"refers to unknown configuration key {key}")
        return settings[key]
    return value


def _duration(value: Any, where: str) -> int:
    m = DURATION.match(str(value).strip())
    if not m:
        raise ConfigError(where, f"{value!r} is not a duration such as 30s, 5m, 1h")
    return int(m.group(1)) * UNITS[m.group(2)]


def _model(name: str, raw: dict[str, Any], settings: Settings) -> StandardModel:
    where = f"models.{name}"
    cond = raw.get("condition")
    if not isinstance(cond, dict) or cond.get("kind") not in KINDS or not cond.get("field"):
        raise ConfigError(where, f"needs condition = {{kind = {' | '.join(KINDS)}, field = ...}}")
    r = {k: _resolve(v, settings, f"{where}.condition.{k}") for k, v in cond.items()}
    try:
        condition = Condition(
            kind=r["kind"],
            field=str(r["field"]),
            limit=int(r["limit"]) if "limit" in r else None,
            window_seconds=_duration(r.get("window", "1h"), f"{where}.condition.window"),
            minimum=float(r["min"]) if "min" in r else None,
            maximum=r.get("max") if r["kind"] == "max_rank" else (float(r["max"]) if "max" in r else None),
            absolute=bool(r.get("absolute", False)),
            scale=tuple(str(s) for s in r.get("scale", ())),
            whole=_flag(r.get("whole", False), f"{where}.condition.whole"),
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(where, f"condition does not parse: {exc}") from None
    _check_condition(where, condition)
    otherwise = raw.get("otherwise", "normal")
    if otherwise not in ("normal", "emergency"):
        raise ConfigError(f"{where}.otherwise", f"{otherwise!r} is not allowed; allowed: normal, emergency")
    max_level = _resolve(raw.get("max_level", "medium"), settings, f"{where}.max_level")
    levels = [level.value for level in Level]
    if max_level not in levels:
        raise ConfigError(f"{where}.max_level", f"{max_level!r} is not allowed; allowed: {', '.join(levels)}")
    return StandardModel(
        name=name,
        description=str(raw.get("description", "")),
        enabled=bool(_resolve(raw.get("enabled", True), settings, f"{where}.enabled")),
        condition=condition,
        otherwise=ChangeType(otherwise),
        max_level=Level(max_level),
    )


def _flag(value: Any, where: str) -> bool:
    """A TOML true/false (a string such as "no" would be truthy)."""
    if not isinstance(value, bool):
        raise ConfigError(where, f"{value!r} is not true or false")
    return value


def _check_condition(where: str, c: Condition) -> None:
    if c.kind == "rate" and c.limit is None:
        raise ConfigError(where, "a rate condition needs limit")
    if c.kind == "range" and c.minimum is None and c.maximum is None:
        raise ConfigError(where, "a range condition needs min or max")
    if c.kind == "max_rank" and (not c.scale or str(c.maximum) not in c.scale):
        raise ConfigError(where, "a max_rank condition needs scale and a max that is on it")


def _template(
    component: str,
    action: str,
    raw: dict[str, Any],
    models: dict[str, StandardModel],
    runbooks: dict[str, Runbook],
) -> Template:
    where = f"integrations.{component}.{action}"
    unknown = set(raw) - TEMPLATE_KEYS
    if unknown:
        raise ConfigError(
            where,
            f"unknown field(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(TEMPLATE_KEYS))}",
        )
    if raw.get("operation") is not None and raw["operation"] not in OPERATIONS:
        raise ConfigError(
            f"{where}.operation", f"{raw['operation']!r} is not allowed; allowed: {', '.join(OPERATIONS)}"
        )
    if raw.get("model") is not None and raw["model"] not in models:
        raise ConfigError(
            f"{where}.model", f"unknown model {raw['model']!r}; known: {', '.join(sorted(models))}"
        )
    for key in ("implementation_plan", "rollback_plan"):
        _no_placeholders_in_shell(f"{where}.{key}", raw.get(key))
        _known_runbooks(f"{where}.{key}", raw.get(key), runbooks)
    rules = tuple(
        Rule(
            {k: str(v) for k, v in r.get("when", {}).items()},
            {k: str(v) for k, v in r.get("then", {}).items()},
        )
        for r in raw.get("rules", [])
    )
    plain = {k: v for k, v in raw.items() if k not in ("rules", "services")}
    return Template(
        component=component, action=action, services=tuple(raw.get("services", ())), rules=rules, **plain
    )


def _no_placeholders_in_shell(where: str, plan: Any) -> None:
    """DETAILS fill {placeholders}: in a shell line they could inject commands, so refuse them there.

    An argument list (no shell) takes a filled value as one argument, whatever it contains.
    """
    for i, step in enumerate((plan or {}).get("steps", []) if isinstance(plan, dict) else [], 1):
        command = step.get("run") if isinstance(step, dict) else None
        if isinstance(command, str) and PLACEHOLDER.search(command) and (step.get("shell") or " " in command):
            raise ConfigError(
                f"{where} step {i}",
                "a command line with {placeholders} could be injected through DETAILS; "
                'write it as an argument list: run = ["prog", "{value}"]',
            )


def _known_runbooks(where: str, plan: Any, runbooks: dict[str, Runbook]) -> None:
    """A template's runbook steps name runbooks of the catalog (parameters are checked at filing)."""
    for i, step in enumerate((plan or {}).get("steps", []) if isinstance(plan, dict) else [], 1):
        name = step.get("runbook") if isinstance(step, dict) else None
        if name is not None and name not in runbooks:
            known = ", ".join(sorted(runbooks)) or "none"
            raise ConfigError(f"{where} step {i}", f"unknown runbook {name!r}; known: {known}")


def load_catalog(settings: Settings) -> Catalog:
    """Built-in entries, then the user's (same name replaces, new names add)."""
    base = _builtin()
    user = settings.extra
    raw_models = {**base.get("models", {}), **user.get("models", {})}
    models = {name: _model(name, raw, settings) for name, raw in raw_models.items()}
    raw_runbooks = {**base.get("runbooks", {}), **user.get("runbooks", {})}
    runbooks = {name: define(name, raw) for name, raw in raw_runbooks.items()}
    templates: dict[str, dict[str, Template]] = {}
    for source in (base.get("integrations", {}), user.get("integrations", {})):
        for component, actions in source.items():
            for action, raw in actions.items():
                entry = _template(component, action, raw, models, runbooks)
                templates.setdefault(component, {})[action] = entry
    return Catalog(models, templates, runbooks)
