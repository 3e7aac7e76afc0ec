"""Post-change checks against real local servers: a health endpoint and a Prometheus query API."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from cortex_change.domain.plan import HealthCheck, PrometheusSpec, ValidationSpec
from cortex_change.runner import checks


@pytest.fixture(autouse=True)
def _direct(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


class Server:
    """/health answers `health_status`; /api/v1/query answers `samples[query]` like Prometheus."""

    def __init__(self) -> None:
        self.health_status = 200
        self.samples: dict[str, float | None] = {}
        self.prometheus_status = 200
        self.queries: list[str] = []
        srv = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path == "/api/v1/query":
                    promql = parse_qs(parts.query)["query"][0]
                    srv.queries.append(promql)
                    value = srv.samples.get(promql)
                    result = [] if value is None else [{"metric": {}, "value": [1.0, str(value)]}]
                    body = {"status": "success", "data": {"resultType": "vector", "result": result}}
                    self._send(srv.prometheus_status, json.dumps(body))
                else:
                    self._send(srv.health_status, "ok" if srv.health_status < 400 else "down")

            def _send(self, status: int, text: str) -> None:
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    try:
        yield srv
    finally:
        srv.close()


def _refused_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def _spec(server: Server, **prom: str) -> ValidationSpec:
    return ValidationSpec(
        prometheus=PrometheusSpec(server.url, prom.get("error_rate_query"), prom.get("latency_query")),
        error_rate_threshold=5.0,
        latency_threshold=200.0,
    )


def test_health_ok(server: Server) -> None:
    result = checks.health(HealthCheck(f"{server.url}/health"))
    assert result.ok
    assert result.name == f"GET {server.url}/health"
    assert result.detail == "status 200"
    assert result.as_dict() == {"check": result.name, "ok": True, "detail": "status 200"}


def test_health_unexpected_status(server: Server) -> None:
    server.health_status = 500
    result = checks.health(HealthCheck(f"{server.url}/health"))
    assert not result.ok
    assert result.detail == "status 500, expected 200"
    server.health_status = 503
    assert checks.health(HealthCheck(f"{server.url}/health", (200, 503))).ok


def test_health_unreachable() -> None:
    result = checks.health(HealthCheck(f"{_refused_url()}/health", timeout=2))
    assert not result.ok
    assert result.detail.startswith("request failed:")


def test_health_check_against_a_non_http_answer_fails_the_check() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(4)

    def serve() -> None:
        conn, _ = sock.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"garbage\r\n\r\n")

    threading.Thread(target=serve, daemon=True).start()
    try:
        result = checks.health(HealthCheck(f"http://127.0.0.1:{sock.getsockname()[1]}/health", timeout=2))
    finally:
        sock.close()
    assert not result.ok


def test_query_reads_the_first_sample(server: Server) -> None:
    server.samples["sum(rate(x[5m]))"] = 0.25
    assert checks.query(server.url, "sum(rate(x[5m]))") == 0.25
    assert server.queries == ["sum(rate(x[5m]))"]  # sent URL-encoded, received intact


def test_query_without_a_sample_or_with_an_error(server: Server) -> None:
    with pytest.raises(ValueError, match="no sample"):
        checks.query(server.url, "absent")
    server.prometheus_status = 503
    with pytest.raises(ValueError, match="503"):
        checks.query(server.url, "absent")
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
        health_checks=(HealthCheck(f"{server.url}/health"), HealthCheck(f"{server.url}/ready", (204,))),
        prometheus=PrometheusSpec(server.url, "errors", "p99"),
    )
    results = checks.run_round(spec, {"latency": 100.0})
    assert [(r.name, r.ok) for r in results] == [
        (f"GET {server.url}/health", True),
        (f"GET {server.url}/ready", False),
        ("error rate %", True),
        ("latency", False),
    ]
