"""Post-change checks: HTTP health checks and Prometheus queries against a baseline."""

from __future__ import annotations

import json
import urllib.parse

from ..domain.plan import HealthCheck, PrometheusSpec, ValidationSpec
from ..domain.values import Frozen
from .execute import fetch_url

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any, Final


class CheckResult(Frozen):
    __slots__ = ("detail", "name", "ok")

    def __init__(self, name: str, ok: bool, detail: str) -> None:
        self.name: Final = name
        self.ok: Final = ok
        self.detail: Final = detail

    def as_dict(self) -> dict[str, Any]:
        return {"check": self.name, "ok": self.ok, "detail": self.detail}


def health(check: HealthCheck) -> CheckResult:
    """GET the URL; healthy when the status is one the check expects."""
    status, _, error = fetch_url(check.url, check.timeout)
    name = f"GET {check.url}"
    if error:
        return CheckResult(name, False, error)
    if status not in check.expect_status:
        want = " or ".join(map(str, check.expect_status))
        return CheckResult(name, False, f"status {status}, expected {want}")
    return CheckResult(name, True, f"status {status}")


def query(base: str, promql: str, timeout: float = 10.0) -> float:
    """The first sample of an instant query (Prometheus HTTP API); raises ValueError when there is none."""
    address = f"{base.rstrip('/')}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    status, body, error = fetch_url(address, timeout)
    if error or status != 200:
        raise ValueError(error or f"Prometheus answered {status}")
    try:
        result = json.loads(body)["data"]["result"]
        return float(result[0]["value"][1])
    except (KeyError, IndexError, TypeError, ValueError, json.JSONDecodeError):
        raise ValueError(f"no sample for {promql!r}") from None


def query_range(
    base: str, promql: str, start: float, end: float, step: float, timeout: float = 10.0
) -> list[float]:
    """The samples of a range query's first series from `start` to `end` every `step` seconds
    (Prometheus HTTP API `/api/v1/query_range`); raises ValueError when it fails. Samples that are
    not finite numbers (NaN: a ratio over no requests) are left out."""
    import math

    params = {"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{max(step, 1.0):g}"}
    address = f"{base.rstrip('/')}/api/v1/query_range?{urllib.parse.urlencode(params)}"
    status, body, error = fetch_url(address, timeout)
    if error or status != 200:
        raise ValueError(error or f"Prometheus answered {status}")
    try:
        result = json.loads(body)["data"]["result"]
        values = [float(v[1]) for v in result[0]["values"]] if result else []
    except (KeyError, IndexError, TypeError, ValueError, json.JSONDecodeError):
        raise ValueError(f"no range answer for {promql!r}") from None
    return [v for v in values if math.isfinite(v)]


def baseline(spec: ValidationSpec) -> dict[str, float]:
    """Latency measured just before the change, to compare against afterwards ({} when none)."""
    prom = spec.prometheus
    if prom is None or not prom.url or not prom.latency_query:
        return {}
    try:
        return {"latency": query(prom.url, prom.latency_query)}
    except ValueError:
        return {}


def prometheus(spec: ValidationSpec, base: dict[str, float]) -> list[CheckResult]:
    """Error rate against ERROR_RATE_THRESHOLD %, latency against LATENCY_THRESHOLD % of baseline."""
    prom: PrometheusSpec | None = spec.prometheus
    if prom is None:
        return []
    if not prom.url:
        why = "no Prometheus URL (validation.prometheus.url or PROMETHEUS_URL)"
        return [CheckResult("prometheus", False, why)]
    out = []
    if prom.error_rate_query:
        out.append(_bounded("error rate %", prom.url, prom.error_rate_query, spec.error_rate_threshold))
    if prom.latency_query and "latency" in base:
        limit = base["latency"] * spec.latency_threshold / 100
        out.append(_bounded("latency", prom.url, prom.latency_query, limit))
    return out


def _bounded(name: str, url: str, promql: str, limit: float) -> CheckResult:
    try:
        value = query(url, promql)
    except ValueError as exc:
        return CheckResult(name, False, str(exc))
    return CheckResult(name, value <= limit, f"{value:g} (limit {limit:g})")


def run_round(spec: ValidationSpec, base: dict[str, float]) -> list[CheckResult]:
    """Every check of one validation round."""
    return [health(c) for c in spec.health_checks] + prometheus(spec, base)
