"""Self-healing (docs/self-healing.md), pure: `[remediations.NAME]` tables into `Remediation`
values (`define`), Prometheus Alertmanager's webhook (version 4) read into `Alert`s
(`parse_webhook`), which remediation an alert matches (`matching`), the change request its labels
fill in (`request_fields`), the dedupe key of an alert (Alertmanager's fingerprint + startsAt) and
the storm bound (`bound`: the model's rate unless the remediation sets a lower one).

Templates are `{{ labels.NAME }}` slots only. A label value filled into a slot must be a plain
identifier-like value (`SAFE_VALUE`): an alert can never smuggle a space, a quote, a newline or an
invisible character into a change; the runbook's own patterns then judge its parameters again."""

from __future__ import annotations

import hashlib
import json
import re

from .errors import ConfigError, ValidationError
from .runbooks import config_table
from .values import Frozen

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any, Final

    from .runbooks import Runbook
    from .standard import StandardModel

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]{0,127}")
SLOT = re.compile(r"\{\{\s*labels\.([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}")
# What a label value filled into a template may be: letters, digits and . _ : / @ - inside, no
# space, quote, control or invisible character, at most 253 characters (a DNS name's length).
SAFE_VALUE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._:/@-]{0,251}[A-Za-z0-9])?", re.ASCII)
KEYS = frozenset(
    {
        "description",
        "match",
        "model",
        "runbook",
        "rollback",
        "parameters",
        "services",
        "environment",
        "title",
        "category",
        "impact",
        "urgency",
        "validation",
        "limit",
        "window",
        "page_every",
    }
)
LEVELS = ("low", "medium", "high", "critical")
DURATION = re.compile(r"(\d{1,9})([smhd])")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
DEFAULT_WINDOW = 3600  # a model without a rate: at most `limit` (1) changes an hour
DEFAULT_PAGE_EVERY = 3600
STATUSES = ("firing", "resolved")
TEXT_MAX = 1024  # an alert's fingerprint, startsAt, endsAt, generatorURL


class Remediation(Frozen):
    """One `[remediations.NAME]` table, checked against the catalog's models and runbooks."""

    __slots__ = (
        "category",
        "description",
        "environment",
        "impact",
        "limit",
        "match",
        "model",
        "name",
        "page_every",
        "parameters",
        "rollback",
        "runbook",
        "runbook_params",
        "services",
        "title",
        "urgency",
        "validation",
        "window",
    )

    def __init__(
        self,
        name: str,
        match: tuple[tuple[str, str], ...],
        model: str,
        runbook: str,
        parameters: tuple[tuple[str, str], ...],
        *,
        runbook_params: tuple[str, ...] = (),
        rollback: str | None = None,
        services: tuple[str, ...] = (),
        environment: str | None = None,
        title: str = "",
        description: str = "",
        category: str = "infrastructure",
        impact: str = "low",
        urgency: str = "medium",
        validation: dict[str, Any] | None = None,
        limit: int | None = None,
        window: int | None = None,
        page_every: int = DEFAULT_PAGE_EVERY,
    ) -> None:
        self.name: Final = name
        self.match: Final = match  # label -> value, all must be equal
        self.model: Final = model
        self.runbook: Final = runbook
        self.parameters: Final = parameters  # the change's parameters: name -> template
        self.runbook_params: Final = runbook_params  # the parameters the runbooks take
        self.rollback: Final = rollback
        self.services: Final = services
        self.environment: Final = environment
        self.title: Final = title
        self.description: Final = description
        self.category: Final = category
        self.impact: Final = impact
        self.urgency: Final = urgency
        self.validation: Final = validation
        self.limit: Final = limit  # None: the model's rate limit (or 1 for a model without one)
        self.window: Final = window  # seconds; None: the model's rate window (or an hour)
        self.page_every: Final = page_every  # at most one page per remediation and target this often


class Alert(Frozen):
    """One alert of an Alertmanager webhook."""

    __slots__ = ("annotations", "ends_at", "fingerprint", "generator_url", "labels", "starts_at", "status")

    def __init__(
        self,
        status: str,
        labels: dict[str, str],
        starts_at: str,
        fingerprint: str,
        annotations: dict[str, str] | None = None,
        ends_at: str = "",
        generator_url: str = "",
    ) -> None:
        self.status: Final = status
        self.labels: Final = labels
        self.starts_at: Final = starts_at
        self.fingerprint: Final = fingerprint  # Alertmanager's, or one made from the labels
        self.annotations: Final = {} if annotations is None else annotations
        self.ends_at: Final = ends_at
        self.generator_url: Final = generator_url

    @property
    def key(self) -> str:
        """The dedupe key: the same alert firing again (Alertmanager's repeat) files nothing new;
        the same labels firing again later (a new startsAt) is a new alert."""
        return f"{self.fingerprint}@{self.starts_at}"

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "")


class Webhook(Frozen):
    __slots__ = ("alerts", "group_key", "receiver", "status")

    def __init__(self, receiver: str, status: str, group_key: str, alerts: tuple[Alert, ...]) -> None:
        self.receiver: Final = receiver
        self.status: Final = status
        self.group_key: Final = group_key
        self.alerts: Final = alerts


# ---- the configuration -----------------------------------------------------------------------


def define(
    name: str, raw: Any, models: Mapping[str, StandardModel], runbooks: Mapping[str, Runbook]
) -> Remediation:
    """A `[remediations.NAME]` table as a Remediation; ConfigError naming the table and key."""
    where = f"remediations.{name}"
    if not NAME.fullmatch(name):
        raise ConfigError(where, "a remediation name is letters, digits, '.', '_' or '-' (at most 64)")
    raw = config_table(where, raw, KEYS)
    match = _match(where, raw.get("match"))
    model = _known(f"{where}.model", raw.get("model"), models, "standard model")
    runbook = _known(f"{where}.runbook", raw.get("runbook"), runbooks, "runbook")
    rollback = None
    if raw.get("rollback") is not None:
        rollback = _known(f"{where}.rollback", raw["rollback"], runbooks, "runbook")
    parameters = _templates(f"{where}.parameters", raw.get("parameters"))
    given = {p for p, _ in parameters}
    condition = models[model].condition
    if condition.field not in given:
        raise ConfigError(
            f"{where}.parameters",
            f"model {model} judges the parameter {condition.field!r}: give it a value (e.g. "
            f'{condition.field} = "{{{{ labels.instance }}}}")',
        )
    takes: set[str] = set()
    for book in [runbooks[runbook]] + ([runbooks[rollback]] if rollback else []):
        patterns = dict(book.params)
        takes |= set(patterns)
        missing = sorted(set(patterns) - dict(book.defaults).keys() - given)
        if missing:
            raise ConfigError(
                f"{where}.parameters", f"runbook {book.name} needs the parameter {missing[0]!r}"
            )
    listed = raw.get("services", [])
    if not isinstance(listed, list):
        raise ConfigError(f"{where}.services", "must be a list of texts")
    services = tuple(_template(f"{where}.services", s) for s in listed)
    if not services:
        services = (dict(parameters)[condition.field],)
    return Remediation(
        name,
        match,
        model,
        runbook,
        parameters,
        runbook_params=tuple(sorted(takes & given)),
        rollback=rollback,
        services=services,
        environment=_optional_template(f"{where}.environment", raw.get("environment")),
        title=_template(
            f"{where}.title", raw.get("title", f"Self-healing {name}: {{{{ labels.alertname }}}}")
        ),
        description=_text(f"{where}.description", raw.get("description", "")),
        category=_text(f"{where}.category", raw.get("category", "infrastructure")),
        impact=_level(f"{where}.impact", raw.get("impact", "low")),
        urgency=_level(f"{where}.urgency", raw.get("urgency", "medium")),
        validation=_table(f"{where}.validation", raw.get("validation")),
        limit=_whole(f"{where}.limit", raw.get("limit"), 1, 10_000),
        window=None if raw.get("window") is None else _duration(f"{where}.window", raw["window"]),
        page_every=_duration(f"{where}.page_every", raw.get("page_every", "1h")),
    )


def define_all(
    tables: Any, models: Mapping[str, StandardModel], runbooks: Mapping[str, Runbook]
) -> dict[str, Remediation]:
    """Every `[remediations.*]` table (none: an empty dict)."""
    if tables is None:
        return {}
    if not isinstance(tables, dict):
        raise ConfigError("remediations", "must be a TOML table of [remediations.NAME] tables")
    return {name: define(name, raw, models, runbooks) for name, raw in tables.items()}


def _match(where: str, raw: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"{where}.match", 'needs labels to match, e.g. { alertname = "WorkerDown" }')
    for label, value in raw.items():
        if not LABEL_NAME.fullmatch(label):
            raise ConfigError(f"{where}.match", f"{label!r} is not a Prometheus label name")
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{where}.match.{label}", "must be a non-empty text (compared exactly)")
    return tuple(sorted(raw.items()))


def _known(where: str, value: Any, known: Mapping[str, Any], what: str) -> str:
    if not isinstance(value, str) or value not in known:
        raise ConfigError(where, f"unknown {what} {value!r}; known: {', '.join(sorted(known)) or 'none'}")
    return value


def _templates(where: str, raw: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(where, 'needs a table of parameters, e.g. { target = "{{ labels.instance }}" }')
    out = []
    for key, value in raw.items():
        if not LABEL_NAME.fullmatch(key):
            raise ConfigError(where, f"{key!r} is not a parameter name (letters, digits, _)")
        out.append((key, _template(f"{where}.{key}", value)))
    return tuple(sorted(out))


def _template(where: str, value: Any) -> str:
    """A text whose only `{{ … }}` are `{{ labels.NAME }}` slots."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(where, "must be a non-empty text")
    rest = SLOT.sub("", value)
    if "{{" in rest or "}}" in rest:
        raise ConfigError(where, f"{value!r}: the only template slot is {{{{ labels.NAME }}}}")
    return value


def _optional_template(where: str, value: Any) -> str | None:
    return None if value is None else _template(where, value)


def _text(where: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(where, "must be a text")
    return value


def _level(where: str, value: Any) -> str:
    if value not in LEVELS:
        raise ConfigError(where, f"{value!r} is not allowed; allowed: {', '.join(LEVELS)}")
    return str(value)


def _table(where: str, value: Any) -> dict[str, Any] | None:
    if value is not None and not isinstance(value, dict):
        raise ConfigError(where, "must be a table (the change's validation document)")
    return value


def _whole(where: str, value: Any, lo: int, hi: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ConfigError(where, f"{value!r} is not a whole number {lo}–{hi}")
    return value


def _duration(where: str, value: Any) -> int:
    m = DURATION.fullmatch(str(value).strip())
    if not m or int(m.group(1)) == 0:
        raise ConfigError(where, f"{value!r} is not a duration such as 30s, 5m, 1h, 1d")
    return int(m.group(1)) * UNITS[m.group(2)]


# ---- the webhook ------------------------------------------------------------------------------


def parse_webhook(body: Any) -> Webhook:
    """Alertmanager's webhook document (version 4); ValidationError naming the bad field."""
    if not isinstance(body, dict):
        raise ValidationError("body", "must be a JSON object (Alertmanager's webhook, version 4)")
    version = body.get("version", "4")
    if version != "4":
        raise ValidationError("version", f"{version!r} is not supported; Alertmanager sends version 4")
    alerts = body.get("alerts")
    if not isinstance(alerts, list):
        raise ValidationError("alerts", "must be a list of alerts")
    return Webhook(
        _opt_text("receiver", body.get("receiver")),
        _opt_text("status", body.get("status")),
        _opt_text("groupKey", body.get("groupKey")),
        tuple(_alert(f"alerts[{i}]", a) for i, a in enumerate(alerts)),
    )


def _alert(where: str, raw: Any) -> Alert:
    if not isinstance(raw, dict):
        raise ValidationError(where, "must be a JSON object")
    status = raw.get("status")
    if status not in STATUSES:
        raise ValidationError(f"{where}.status", f"{status!r} is not allowed; allowed: firing, resolved")
    labels = _labels(f"{where}.labels", raw.get("labels"))
    starts = raw.get("startsAt")
    if not isinstance(starts, str) or not starts or len(starts) > TEXT_MAX:
        raise ValidationError(f"{where}.startsAt", "must be the alert's start time (RFC 3339 text)")
    fingerprint = raw.get("fingerprint") or fingerprint_of(labels)
    if not isinstance(fingerprint, str) or len(fingerprint) > TEXT_MAX or not fingerprint.isprintable():
        raise ValidationError(f"{where}.fingerprint", "must be Alertmanager's fingerprint (hex text)")
    return Alert(
        str(status),
        labels,
        starts,
        fingerprint,
        _labels(f"{where}.annotations", raw.get("annotations") or {}),
        _opt_text(f"{where}.endsAt", raw.get("endsAt")),
        _opt_text(f"{where}.generatorURL", raw.get("generatorURL")),
    )


def _labels(where: str, raw: Any) -> dict[str, str]:
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise ValidationError(where, "must be a JSON object of texts")
    return dict(raw)


def _opt_text(where: str, value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > TEXT_MAX:
        raise ValidationError(where, f"must be a text of at most {TEXT_MAX} characters")
    return value


def fingerprint_of(labels: Mapping[str, str]) -> str:
    """A fingerprint for an alert that brings none: a hash of its sorted labels."""
    text = json.dumps(sorted(labels.items()), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# ---- deciding ---------------------------------------------------------------------------------


def matching(remediations: Iterable[Remediation], alert: Alert) -> Remediation | None:
    """The remediation whose every `match` label the alert holds with the same value; where several
    do, the one matching the most labels (then the first by name)."""
    found = [r for r in remediations if all(alert.labels.get(k) == v for k, v in r.match)]
    if not found:
        return None
    return min(found, key=lambda r: (-len(r.match), r.name))


def fill(template: str, labels: Mapping[str, str], where: str) -> str:
    """The template with each `{{ labels.NAME }}` replaced by the label's value (checked)."""

    def value(m: re.Match[str]) -> str:
        label = m.group(1)
        text = labels.get(label)
        if text is None:
            raise ValidationError(f"{where}: labels.{label}", "the alert has no such label")
        if not SAFE_VALUE.fullmatch(text):
            shown = text if len(text) <= 60 else text[:57] + "..."
            raise ValidationError(
                f"{where}: labels.{label}",
                f"{shown!r} is not allowed in a remediation (letters, digits and . _ : / @ - only, "
                "at most 253 characters)",
            )
        return text

    return SLOT.sub(value, template)


def request_fields(rem: Remediation, alert: Alert, requester: str) -> dict[str, Any]:
    """The standard change the alert asks for, as the field table takes it (`ChangeRequest.of`)."""
    labels = alert.labels
    params = {k: fill(t, labels, f"remediations.{rem.name}.parameters.{k}") for k, t in rem.parameters}
    services = [fill(t, labels, f"remediations.{rem.name}.services") for t in rem.services]
    step_params = {k: params[k] for k in rem.runbook_params}
    steps: list[Any] = [{"runbook": rem.runbook, "params": _taken(step_params)}]
    if rem.rollback is not None:
        rollback: dict[str, Any] = {
            "automated": True,
            "steps": [{"runbook": rem.rollback, "params": _taken(step_params)}],
        }
    else:
        rollback = {"steps": [f"Check {', '.join(services)} by hand: remediation {rem.name} has no rollback"]}
    title = fill(rem.title, labels, f"remediations.{rem.name}.title")
    why = f"Alertmanager alert {alert.name or '(no alertname)'} ({alert.key}) matched remediation {rem.name}"
    description = (rem.description + "\n\n" if rem.description else "") + why
    fields: dict[str, Any] = {
        "type": "standard",
        "category": rem.category,
        "title": title[:200],
        "description": description,
        "requested_by": requester,
        "impact": rem.impact,
        "urgency": rem.urgency,
        "affected_services": services,
        "implementation_plan": {"steps": steps},
        "rollback_plan": rollback,
        "standard_model": rem.model,
        "parameters": params,
    }
    if rem.environment is not None:
        fields["environment"] = fill(rem.environment, labels, f"remediations.{rem.name}.environment")
    if rem.validation is not None:
        fields["validation"] = rem.validation
    return fields


def _taken(params: dict[str, str]) -> dict[str, str]:
    return dict(sorted(params.items()))


def bound(rem: Remediation, model: StandardModel) -> tuple[int, int]:
    """(limit, window seconds): how many changes the remediation may file per window for the same
    value of the model's rate field — the model's rate unless the remediation sets a lower one."""
    c = model.condition
    rate = c.kind == "rate" and c.limit is not None
    limit = int(c.limit) if rate and c.limit is not None else 1
    window = c.window_seconds if rate else DEFAULT_WINDOW
    if rem.limit is not None:
        limit = min(limit, rem.limit) if rate else rem.limit
    if rem.window is not None:
        window = max(window, rem.window) if rate else rem.window
    return limit, window


def details(rem: Remediation | None, alert: Alert) -> dict[str, Any]:
    """What the audit trail keeps of an alert: its key, name, status and the labels it was judged on."""
    used = {"alertname"} | ({k for k, _ in rem.match} if rem else set())
    if rem is not None:
        for template in [t for _, t in rem.parameters] + list(rem.services):
            used |= set(SLOT.findall(template))
    return {
        "remediation": rem.name if rem else None,
        "alert": alert.key,
        "alertname": alert.name,
        "status": alert.status,
        "labels": {k: alert.labels[k][:256] for k in sorted(used) if k in alert.labels},
        "generator_url": alert.generator_url[:512],
    }
