"""Post-change checks against real local servers: a health endpoint and a Prometheus query API."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from cortex_change.domain.plan import HealthCheck, PrometheusSpec, ValidationSpec
from cortex_change.runner import checks
from support import Garbage, HttpServer, Received, Reply, free_port, prometheus_vector, promql

pytestmark = pytest.mark.usefixtures("direct")  # no proxy between the checks and 127.0.0.1


class Server(HttpServer):
    """/health answers `health_status`; /api/v1/query answers `samples[query]` like Prometheus."""

    def __init__(self) -> None:
        self.health_status = 200
        self.samples: dict[str, float | None] = {}
        self.prometheus_status = 200
        self.queries: list[str] = []
        super().__init__()

    def answer(self, request: Received) -> Reply:
        if urlsplit(request.path).path == "/api/v1/query":
            query = promql(request)
            self.queries.append(query)
            return Reply(self.prometheus_status, prometheus_vector(self.samples.get(query)))
        return Reply(self.health_status, b"ok" if self.health_status < 400 else b"down")


@pytest.fixture
def server() -> Iterator[Server]:
    with Server() as srv:
        yield srv


def _refused_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


def _spec(server: Server, **prom: str) -> ValidationSpec:
    return ValidationSpec(
        prometheus=PrometheusSpec(server.origin, prom.get("error_rate_query"), prom.get("latency_query")),
        error_rate_threshold=5.0,
        latency_threshold=200.0,
    )


def test_health_ok(server: Server) -> None:
    result = checks.health(HealthCheck(f"{server.origin}/health"))
    assert result.ok
    assert result.name == f"GET {server.origin}/health"
    assert result.detail == "status 200"
    assert result.as_dict() == {"check": result.name, "ok": True, "detail": "status 200"}


def test_health_unexpected_status(server: Server) -> None:
    server.health_status = 500
    result = checks.health(HealthCheck(f"{server.origin}/health"))
    assert not result.ok
    assert result.detail == "status 500, expected 200"
    server.health_status = 503
    assert checks.health(HealthCheck(f"{server.origin}/health", (200, 503))).ok


def test_health_unreachable() -> None:
    result = checks.health(HealthCheck(f"{_refused_url()}/health", timeout=2))
    assert not result.ok
    assert result.detail.startswith("request failed:")


def test_health_check_against_a_non_http_answer_fails_the_check(garbage: Garbage) -> None:
    result = checks.health(HealthCheck(f"{garbage.origin}/health", timeout=2))
    assert not result.ok


def test_query_reads_the_first_sample(server: Server) -> None:
    server.samples["sum(rate(x[5m]))"] = 0.25
    assert checks.query(server.origin, "sum(rate(x[5m]))") == 0.25
    assert server.queries == ["sum(rate(x[5m]))"]  # sent URL-encoded, received intact


def test_query_without_a_sample_or_with_an_error(server: Server) -> None:
    with pytest.raises(ValueError, match="no sample"):
        checks.query(server.origin, "absent")
    server.prometheus_status = 503
    with pytest.raises(ValueError, match="503"):
        checks.query(server.origin, "absent")
    with pytest.raises(ValueError, match="request failed"):
        checks.query(_refused_url(), "up")


def test_baseline_measures_latency_before_the_change(server: Server) -> None:
    server.samples["p99"] = 120.0
    assert checks.baseline(_spec(server, latency_query="p99")) == {"latency": 120.0}
    assert checks.baseline(_spec(server, error_rate_query="errors")) == {}
    assert checks.baseline(ValidationSpec()) == {}
    server.samples.clear()
    assert checks.baseline(_spec(server, latency_query="p99")) == {}  # no sample: no baseline


@pytest.mark.parametrize(("rate", "ok"), [(0.0, True), (5.0, True), (5.01, False), (12.0, False)])
def test_error_rate_against_the_threshold(server: Server, rate: float, ok: bool) -> None:
    server.samples["errors"] = rate
    (result,) = checks.prometheus(_spec(server, error_rate_query="errors"), {})
    assert result.name == "error rate %"
    assert result.ok is ok
    assert result.detail == f"{rate:g} (limit 5)"


@pytest.mark.parametrize(("latency", "ok"), [(150.0, True), (200.0, True), (200.5, False), (900.0, False)])
def test_latency_against_the_baseline(server: Server, latency: float, ok: bool) -> None:
    server.samples["p99"] = latency
    (result,) = checks.prometheus(_spec(server, latency_query="p99"), {"latency": 100.0})
    assert result.name == "latency"
    assert result.ok is ok
    assert result.detail == f"{latency:g} (limit 200)"  # LATENCY_THRESHOLD 200 % of a 100 baseline


def test_latency_without_a_baseline_is_not_judged(server: Server) -> None:
    server.samples["p99"] = 10_000.0
    assert checks.prometheus(_spec(server, latency_query="p99"), {}) == []


def test_missing_sample_or_url_is_a_failed_check(server: Server) -> None:
    (result,) = checks.prometheus(_spec(server, error_rate_query="absent"), {})
    assert not result.ok
    assert "no sample" in result.detail
    nowhere = ValidationSpec(prometheus=PrometheusSpec("", "errors", None))
    (result,) = checks.prometheus(nowhere, {})
    assert (result.name, result.ok) == ("prometheus", False)
    assert "PROMETHEUS_URL" in result.detail


def test_a_round_runs_every_check(server: Server) -> None:
    server.samples.update({"errors": 1.0, "p99": 500.0})
    spec = ValidationSpec(
        health_checks=(HealthCheck(f"{server.origin}/health"), HealthCheck(f"{server.origin}/ready", (204,))),
        prometheus=PrometheusSpec(server.origin, "errors", "p99"),
    )
    results = checks.run_round(spec, {"latency": 100.0})
    assert [(r.name, r.ok) for r in results] == [
        (f"GET {server.origin}/health", True),
        (f"GET {server.origin}/ready", False),
        ("error rate %", True),
        ("latency", False),
    ]
