"""Plan steps and validation specs (SPEC §7), parsed from the record's JSON into value types."""

from __future__ import annotations

import re

from .errors import ValidationError
from .values import Frozen

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any, Final

DEFAULT_RUN_TIMEOUT = 600.0  # a command with no timeout of its own
DEFAULT_HTTP_TIMEOUT = 30.0
MAX_TIMEOUT = 24 * 3600.0
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)?")
# `${env:NAME}`: resolved when the step runs, never stored resolved.
SECRET_REF = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")


class TextStep(Frozen):
    """A step a person carries out and then reports."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text: Final = text


class RunStep(Frozen):
    """A command: argv (no shell) or one shell line when `shell` is set."""

    __slots__ = ("command", "shell", "timeout")

    def __init__(
        self, command: str | tuple[str, ...], shell: bool = False, timeout: float = DEFAULT_RUN_TIMEOUT
    ) -> None:
        self.command: Final = command
        self.shell: Final = shell
        self.timeout: Final = timeout

    def describe(self) -> str:
        return self.command if isinstance(self.command, str) else " ".join(self.command)


class HttpStep(Frozen):
    __slots__ = ("body", "expect_status", "headers", "method", "timeout", "url")

    def __init__(
        self,
        method: str,
        url: str,
        expect_status: tuple[int, ...] = (200,),
        timeout: float = DEFAULT_HTTP_TIMEOUT,
        headers: tuple[tuple[str, str], ...] = (),
        body: str | None = None,
    ) -> None:
        self.method: Final = method
        self.url: Final = url
        self.expect_status: Final = expect_status
        self.timeout: Final = timeout
        self.headers: Final = headers
        self.body: Final = body

    def describe(self) -> str:
        return f"{self.method} {self.url}"


class RunbookStep(Frozen):
    """A catalog runbook with its parameters; `version` is stamped when the change is filed."""

    __slots__ = ("name", "params", "version")

    def __init__(
        self, name: str, params: tuple[tuple[str, Any], ...] = (), version: int | None = None
    ) -> None:
        self.name: Final = name
        self.params: Final = params
        self.version: Final = version

    def describe(self) -> str:
        version = "" if self.version is None else f" v{self.version}"
        given = ", ".join(f"{k}={v}" for k, v in self.params)
        return f"runbook {self.name}{version}" + (f" ({given})" if given else "")


Step = TextStep | RunStep | HttpStep | RunbookStep
RUNBOOK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class HealthCheck(Frozen):
    __slots__ = ("expect_status", "timeout", "url")

    def __init__(self, url: str, expect_status: tuple[int, ...] = (200,), timeout: float = 10.0) -> None:
        self.url: Final = url
        self.expect_status: Final = expect_status
        self.timeout: Final = timeout


class CanaryMetric(Frozen):
    """A metric the statistical decision judges (`prometheus.canary`; docs/canary.md): its PromQL
    (None: the built-in query of the same name, error_rate or latency), which direction harms and
    the tolerated harmful effect in % of the baseline median (None: the configured defaults)."""

    __slots__ = ("name", "query", "tolerance", "worse")

    def __init__(
        self, name: str, query: str | None = None, worse: str | None = None, tolerance: float | None = None
    ) -> None:
        self.name: Final = name
        self.query: Final = query
        self.worse: Final = worse
        self.tolerance: Final = tolerance


class PrometheusSpec(Frozen):
    __slots__ = ("canary", "error_rate_query", "latency_query", "url")

    def __init__(
        self,
        url: str,
        error_rate_query: str | None = None,
        latency_query: str | None = None,
        canary: tuple[CanaryMetric, ...] = (),
    ) -> None:
        self.url: Final = url
        self.error_rate_query: Final = error_rate_query
        self.latency_query: Final = latency_query
        self.canary: Final = canary


class ValidationSpec(Frozen):
    """What post-change validation checks, how long, how often, and how many failures trip it."""

    __slots__ = (
        "error_rate_threshold",
        "failures_to_trip",
        "health_checks",
        "interval",
        "latency_threshold",
        "period",
        "prometheus",
    )

    def __init__(
        self,
        health_checks: tuple[HealthCheck, ...] = (),
        period: float = 1800.0,
        interval: float = 60.0,
        failures_to_trip: int = 3,
        prometheus: PrometheusSpec | None = None,
        error_rate_threshold: float = 5.0,
        latency_threshold: float = 200.0,
    ) -> None:
        self.health_checks: Final = health_checks
        self.period: Final = period
        self.interval: Final = interval
        self.failures_to_trip: Final = failures_to_trip
        self.prometheus: Final = prometheus
        self.error_rate_threshold: Final = error_rate_threshold  # %
        self.latency_threshold: Final = latency_threshold  # % of baseline

    @property
    def has_checks(self) -> bool:
        return bool(self.health_checks) or self.prometheus is not None


class Defaults(Frozen):
    """Configuration that fills what a change's validation leaves out (SPEC §9)."""

    __slots__ = (
        "error_rate_threshold",
        "failures_to_trip",
        "health_checks",
        "interval",
        "latency_threshold",
        "period",
        "prometheus_url",
    )

    def __init__(
        self,
        period: float = 1800.0,
        interval: float = 60.0,
        failures_to_trip: int = 3,
        error_rate_threshold: float = 5.0,
        latency_threshold: float = 200.0,
        prometheus_url: str = "",
        health_checks: tuple[HealthCheck, ...] = (),
    ) -> None:
        self.period: Final = period
        self.interval: Final = interval
        self.failures_to_trip: Final = failures_to_trip
        self.error_rate_threshold: Final = error_rate_threshold
        self.latency_threshold: Final = latency_threshold
        self.prometheus_url: Final = prometheus_url
        self.health_checks: Final = health_checks


def duration(field_name: str, value: Any) -> float:
    """Seconds from `30s`, `2m`, `1h`, `500ms` or a number of seconds."""
    if isinstance(value, bool):
        raise ValidationError(field_name, f"{value!r} is not a duration (e.g. 30s, 2m, 1h)")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.fullmatch(value.strip())):
        seconds = float(m.group(1)) * _UNITS[m.group(2) or "s"]
    else:
        raise ValidationError(field_name, f"{value!r} is not a duration (e.g. 500ms, 30s, 2m, 1h)")
    if not 0 < seconds <= MAX_TIMEOUT:
        raise ValidationError(field_name, f"{value!r} is out of range (more than 0, at most 24h)")
    return seconds


def steps(field_name: str, plan: dict[str, Any] | None, max_timeout: float | None = None) -> list[Step]:
    """The plan's steps as value types; raises naming the first bad step, or the first whose
    timeout exceeds `max_timeout` (STEP_TIMEOUT_MAX, checked when a change is filed)."""
    if not plan:
        return []
    parsed = [_step(f"{field_name} step {i}", raw) for i, raw in enumerate(plan.get("steps", []), 1)]
    for i, step in enumerate(parsed, 1):
        if max_timeout is not None and isinstance(step, RunStep | HttpStep) and step.timeout > max_timeout:
            raise ValidationError(
                f"{field_name} step {i} timeout",
                f"{step.timeout:g}s is more than STEP_TIMEOUT_MAX ({max_timeout:g}s)",
            )
    return parsed


def has_adhoc_steps(plan: dict[str, Any] | None) -> bool:
    """True when a plan (as stored) holds a `run` or `http` step: executable, and no runbook's."""
    raw = (plan or {}).get("steps", [])
    return any(isinstance(s, dict) and ("run" in s or "http" in s) for s in raw)


def has_executable_steps(plan: dict[str, Any] | None) -> bool:
    """True when an implementation plan (as stored) has a step that executes: run, http, runbook."""
    return any(not isinstance(s, TextStep) for s in steps("implementation_plan", plan))


def is_automated(step_list: list[Step]) -> bool:
    """True when every step can run without a person (and there is at least one): run, http, runbook."""
    return bool(step_list) and not any(isinstance(s, TextStep) for s in step_list)


def _step(where: str, raw: Any) -> Step:
    if isinstance(raw, str):
        return TextStep(raw)
    if not isinstance(raw, dict):
        raise ValidationError(where, "must be text or an object with run, http or runbook")
    kinds = [k for k in STEP_KEYS if k in raw]
    if len(kinds) != 1:
        raise ValidationError(where, 'must have exactly one of "run", "http" or "runbook" (or be plain text)')
    _known(where, raw, STEP_KEYS[kinds[0]])
    if kinds[0] == "runbook":
        return _runbook(where, raw)
    return _run(where, raw) if kinds[0] == "run" else _http(where, raw["http"])


STEP_KEYS = {
    "run": {"run", "shell", "timeout", "name"},
    "http": {"http", "name"},
    "runbook": {"runbook", "params", "version"},
}


def _runbook(where: str, raw: dict[str, Any]) -> RunbookStep:
    """The shape only: the catalog checks the name and parameters when the change is filed."""
    name, params, version = raw["runbook"], raw.get("params", {}), raw.get("version")
    if not isinstance(name, str) or not RUNBOOK_NAME.fullmatch(name):
        raise ValidationError(f"{where} runbook", f"{name!r} is not a runbook name (letters, digits, . _ -)")
    if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
        raise ValidationError(
            f"{where} params", 'must be an object of parameters, e.g. {"deployment": "web"}'
        )
    if version is not None and (not isinstance(version, int) or isinstance(version, bool) or version < 1):
        raise ValidationError(
            f"{where} version", f"{version!r} is not a runbook version (a whole number ≥ 1)"
        )
    return RunbookStep(name, tuple(params.items()), version)


def _run(where: str, raw: dict[str, Any]) -> RunStep:
    command, shell = raw["run"], raw.get("shell", False)
    if not isinstance(shell, bool):
        raise ValidationError(f"{where} shell", "must be true or false")
    if isinstance(command, list) and not shell:
        if not command or not all(isinstance(a, str) for a in command):
            raise ValidationError(f"{where} run", "an argument list must hold at least one text item")
        parsed: str | tuple[str, ...] = tuple(command)
    elif isinstance(command, str) and command.strip():
        parsed = command
    else:
        raise ValidationError(f"{where} run", "must be a command line (text) or a list of arguments")
    if "\x00" in (command if isinstance(command, str) else "".join(command)):
        raise ValidationError(f"{where} run", "must not contain NUL characters")
    timeout = duration(f"{where} timeout", raw.get("timeout", DEFAULT_RUN_TIMEOUT))
    return RunStep(parsed, shell, timeout)


def _http(where: str, raw: Any) -> HttpStep:
    if not isinstance(raw, dict):
        raise ValidationError(f"{where} http", "must be an object with method and url")
    allowed = {"method", "url", "expect_status", "timeout", "headers", "body"}
    _known(f"{where} http", raw, allowed)
    method = str(raw.get("method", "GET")).upper()
    if method not in HTTP_METHODS:
        raise ValidationError(
            f"{where} http.method", f"{method!r} is not allowed; allowed: {', '.join(HTTP_METHODS)}"
        )
    headers = raw.get("headers", {})
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise ValidationError(f"{where} http.headers", "must map header names to text")
    body = raw.get("body")
    if body is not None and not isinstance(body, str):
        import json

        body = json.dumps(body)
    return HttpStep(
        method,
        url(f"{where} http.url", raw.get("url")),
        statuses(f"{where} http.expect_status", raw.get("expect_status", 200)),
        duration(f"{where} http.timeout", raw.get("timeout", DEFAULT_HTTP_TIMEOUT)),
        tuple((str(k), v) for k, v in headers.items()),
        body,
    )


def url(field_name: str, value: Any) -> str:
    """An http(s) URL; `${env:NAME}` references are allowed in it."""
    if not isinstance(value, str) or not re.fullmatch(r"https?://\S+", value):
        raise ValidationError(field_name, f"{value!r} is not an http:// or https:// URL")
    return value


def statuses(field_name: str, value: Any) -> tuple[int, ...]:
    items = value if isinstance(value, list) else [value]
    if not items or not all(
        isinstance(v, int) and not isinstance(v, bool) and 100 <= v <= 599 for v in items
    ):
        raise ValidationError(field_name, f"{value!r} is not an HTTP status (100–599) or a list of them")
    return tuple(items)


def health_checks(where: str, raw: list[Any]) -> tuple[HealthCheck, ...]:
    """Health checks from their JSON or TOML form: URLs or {url, expect_status, timeout}."""
    return tuple(_check(f"{where} {i}", c) for i, c in enumerate(raw, 1))


def validation_spec(raw: dict[str, Any] | None, defaults: Defaults) -> ValidationSpec:
    """The change's validation block over the configured defaults (period, interval, thresholds)."""
    raw = raw or {}
    checks = health_checks("validation health_checks", raw.get("health_checks", []))
    prom = raw.get("prometheus")
    return ValidationSpec(
        health_checks=checks or defaults.health_checks,
        period=duration("validation period", raw["period"]) if "period" in raw else defaults.period,
        interval=duration("validation interval", raw["interval"]) if "interval" in raw else defaults.interval,
        failures_to_trip=_count(
            "validation failures_to_trip", raw.get("failures_to_trip", defaults.failures_to_trip)
        ),
        prometheus=_prometheus(prom, defaults.prometheus_url) if prom is not None else None,
        error_rate_threshold=defaults.error_rate_threshold,
        latency_threshold=defaults.latency_threshold,
    )


def check_validation(raw: Any) -> dict[str, Any] | None:
    """Validate a change's `validation` block as given (None when absent)."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ValidationError("validation", 'must be a JSON object such as {"health_checks": [...]}')
    allowed = {"health_checks", "period", "interval", "failures_to_trip", "prometheus"}
    _known("validation", raw, allowed)
    if not isinstance(raw.get("health_checks", []), list):
        raise ValidationError("validation health_checks", "must be a list of {url, expect_status}")
    validation_spec(raw, Defaults())
    return dict(raw)


def _check(where: str, raw: Any) -> HealthCheck:
    if isinstance(raw, str):
        return HealthCheck(url(where, raw))
    if not isinstance(raw, dict):
        raise ValidationError(where, "must be a URL or an object with url and expect_status")
    _known(where, raw, {"url", "expect_status", "timeout"})
    return HealthCheck(
        url(f"{where} url", raw.get("url")),
        statuses(f"{where} expect_status", raw.get("expect_status", 200)),
        duration(f"{where} timeout", raw.get("timeout", 10)),
    )


def _known(where: str, raw: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ValidationError(where, f"unknown key {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}")


def _count(field_name: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 1000:
        raise ValidationError(field_name, f"{value!r} is not a whole number 1–1000")
    return value


def _prometheus(raw: Any, default_url: str) -> PrometheusSpec:
    if not isinstance(raw, dict):
        raise ValidationError("validation prometheus", "must be an object with url and queries")
    _known("validation prometheus", raw, {"url", "error_rate_query", "latency_query", "canary"})
    address = raw.get("url") or default_url
    queries = {k: raw.get(k) for k in ("error_rate_query", "latency_query")}
    for k, q in queries.items():
        if q is not None and (not isinstance(q, str) or not q.strip()):
            raise ValidationError(f"validation prometheus {k}", "must be a PromQL expression (text)")
    canary = _canary(raw.get("canary", {}), queries)
    if not any(queries.values()) and not any(m.query for m in canary):
        raise ValidationError("validation prometheus", "needs error_rate_query or latency_query")
    if not address:
        return PrometheusSpec("", queries["error_rate_query"], queries["latency_query"], canary)
    return PrometheusSpec(
        url("validation prometheus url", address),
        queries["error_rate_query"],
        queries["latency_query"],
        canary,
    )


CANARY_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
CANARY_MAX = 20


def _canary(raw: Any, queries: dict[str, Any]) -> tuple[CanaryMetric, ...]:
    """`prometheus.canary`: metric name -> {query, worse, tolerance} (docs/canary.md)."""
    where = "validation prometheus canary"
    if not isinstance(raw, dict) or len(raw) > CANARY_MAX:
        raise ValidationError(
            where, f"must map up to {CANARY_MAX} metric names to {{query, worse, tolerance}}"
        )
    out = []
    for name, entry in raw.items():
        at = f"{where} {name}"
        if not isinstance(name, str) or not CANARY_NAME.fullmatch(name):
            raise ValidationError(at, "names are lowercase letters, digits and _ (at most 40)")
        if not isinstance(entry, dict):
            raise ValidationError(at, "must be an object with query, worse and/or tolerance")
        _known(at, entry, {"query", "worse", "tolerance"})
        query = entry.get("query")
        if query is not None and (not isinstance(query, str) or not query.strip()):
            raise ValidationError(f"{at} query", "must be a PromQL expression (text)")
        if query is None and not queries.get(f"{name}_query"):
            raise ValidationError(
                f"{at} query", "is needed (only error_rate and latency have their own query)"
            )
        worse = entry.get("worse")
        if worse is not None and worse not in ("higher", "lower", "either"):
            raise ValidationError(f"{at} worse", f"{worse!r} is not higher, lower or either")
        tolerance = entry.get("tolerance")
        if tolerance is not None and (
            isinstance(tolerance, bool)
            or not isinstance(tolerance, (int, float))
            or not 0 <= tolerance <= 10_000
        ):
            raise ValidationError(f"{at} tolerance", f"{tolerance!r} is not a percentage 0–10000")
        out.append(CanaryMetric(name, query, worse, None if tolerance is None else float(tolerance)))
    return tuple(out)
