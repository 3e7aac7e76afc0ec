"""SPEC §7: plan steps, durations and the validation block, parsed into value types.

Every refusal is a ValidationError that names the plan and the step (or the validation key).
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from cortex_change.domain import plan
from cortex_change.domain.errors import ValidationError
from cortex_change.domain.plan import (
    Defaults,
    HealthCheck,
    HttpStep,
    PrometheusSpec,
    RunStep,
    TextStep,
    ValidationSpec,
)

# --- durations ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("30s", 30.0),
        ("2m", 120.0),
        ("1h", 3600.0),
        ("500ms", 0.5),
        ("1ms", 0.001),
        ("1.5m", 90.0),
        ("45", 45.0),  # a bare number in text is seconds
        (" 10s ", 10.0),
        ("24h", 86400.0),
        (30, 30.0),
        (0.25, 0.25),
        (86400, 86400.0),
    ],
)
def test_duration_parses(value: Any, seconds: float) -> None:
    assert plan.duration("timeout", value) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("", "is not a duration"),
        ("abc", "is not a duration"),
        ("30 s", "is not a duration"),
        ("30S", "is not a duration"),
        ("2d", "is not a duration"),
        ("-5s", "is not a duration"),
        ("1e3", "is not a duration"),
        (None, "is not a duration"),
        ([30], "is not a duration"),
        (True, "is not a duration"),
        (False, "is not a duration"),
        ("0s", "out of range"),
        ("0ms", "out of range"),
        (0, "out of range"),
        (-1, "out of range"),
        ("25h", "out of range"),
        ("86401s", "out of range"),
        (math.inf, "out of range"),
        (math.nan, "out of range"),
    ],
)
def test_duration_refuses(value: Any, needle: str) -> None:
    with pytest.raises(ValidationError) as err:
        plan.duration("step 3 timeout", value)
    assert err.value.field == "step 3 timeout"
    assert str(err.value).startswith("step 3 timeout: ")
    assert needle in str(err.value)


# --- steps ----------------------------------------------------------------------------------


def _one(raw: Any) -> plan.Step:
    parsed = plan.steps("implementation_plan", {"steps": [raw]})
    assert len(parsed) == 1
    return parsed[0]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Announce in #deploys", TextStep("Announce in #deploys")),
        ({"run": "kubectl rollout restart deploy/x"}, RunStep("kubectl rollout restart deploy/x")),
        ({"run": "echo hi", "timeout": "2m"}, RunStep("echo hi", False, 120.0)),
        ({"run": ["echo", "a b", "$(id)"]}, RunStep(("echo", "a b", "$(id)"))),
        ({"run": "./migrate.sh && ./smoke.sh", "shell": True}, RunStep("./migrate.sh && ./smoke.sh", True)),
        ({"run": "true", "shell": False, "name": "noop"}, RunStep("true")),
        (
            {"http": {"method": "post", "url": "https://deploy.example/hooks/v2", "expect_status": 201}},
            HttpStep("POST", "https://deploy.example/hooks/v2", (201,)),
        ),
        (
            {
                "http": {
                    "url": "http://127.0.0.1:8080/x",
                    "expect_status": [200, 204],
                    "timeout": "10s",
                    "headers": {"Authorization": "Bearer ${env:TOKEN}"},
                    "body": {"version": 2},
                },
                "name": "hook",
            },
            HttpStep(
                "GET",
                "http://127.0.0.1:8080/x",
                (200, 204),
                10.0,
                (("Authorization", "Bearer ${env:TOKEN}"),),
                '{"version": 2}',
            ),
        ),
        (
            {"http": {"method": "DELETE", "url": "http://h/${env:PATH_PART}"}},
            HttpStep("DELETE", "http://h/${env:PATH_PART}"),
        ),
        (
            {"http": {"method": "PUT", "url": "http://h/", "body": "raw text"}},
            HttpStep("PUT", "http://h/", body="raw text"),
        ),
    ],
    ids=[
        "text",
        "run-str",
        "run-timeout",
        "run-list",
        "shell",
        "run-name",
        "http-post",
        "http-full",
        "http-secret-url",
        "http-text-body",
    ],
)
def test_steps_parse(raw: Any, expected: plan.Step) -> None:
    assert _one(raw) == expected


def test_step_defaults() -> None:
    run = _one({"run": "true"})
    assert isinstance(run, RunStep)
    assert (run.shell, run.timeout) == (False, plan.DEFAULT_RUN_TIMEOUT)
    http = _one({"http": {"url": "http://h/"}})
    assert isinstance(http, HttpStep)
    assert (http.method, http.expect_status, http.timeout, http.headers, http.body) == (
        "GET",
        (200,),
        plan.DEFAULT_HTTP_TIMEOUT,
        (),
        None,
    )


def test_steps_keep_order_and_describe_themselves() -> None:
    parsed = plan.steps(
        "implementation_plan",
        {
            "steps": [
                "first by hand",
                {"run": ["echo", "two"]},
                {"run": "echo three | cat", "shell": True},
                {"http": {"method": "HEAD", "url": "http://h/four"}},
            ],
            "estimated_duration": "15m",
        },
    )
    assert [type(s).__name__ for s in parsed] == ["TextStep", "RunStep", "RunStep", "HttpStep"]
    assert [s.describe() for s in parsed[1:]] == ["echo two", "echo three | cat", "HEAD http://h/four"]


@pytest.mark.parametrize("value", [None, {}, {"steps": []}, {"estimated_duration": "5m"}])
def test_no_steps(value: Any) -> None:
    assert plan.steps("rollback_plan", value) == []


@pytest.mark.parametrize(
    ("raw", "field", "needle"),
    [
        (42, "implementation_plan step 2", "must be text or an object"),
        (["echo"], "implementation_plan step 2", "must be text or an object"),
        ({}, "implementation_plan step 2", "exactly one of"),
        ({"name": "x"}, "implementation_plan step 2", "exactly one of"),
        (
            {"run": "true", "http": {"url": "http://h/"}},
            "implementation_plan step 2",
            "exactly one of",
        ),
        ({"run": "true", "cwd": "/tmp"}, "implementation_plan step 2", "unknown key 'cwd'"),
        ({"run": "true", "env": {}}, "implementation_plan step 2", "unknown key 'env'"),
        (
            {"http": {"url": "http://h/"}, "timeout": "5s"},
            "implementation_plan step 2",
            "unknown key 'timeout'",
        ),
        ({"run": ""}, "implementation_plan step 2 run", "must be a command line"),
        ({"run": "   "}, "implementation_plan step 2 run", "must be a command line"),
        ({"run": 7}, "implementation_plan step 2 run", "must be a command line"),
        ({"run": None}, "implementation_plan step 2 run", "must be a command line"),
        ({"run": []}, "implementation_plan step 2 run", "at least one text item"),
        ({"run": ["echo", 1]}, "implementation_plan step 2 run", "at least one text item"),
        ({"run": ["echo", "x"], "shell": True}, "implementation_plan step 2 run", "must be a command line"),
        ({"run": "echo \x00"}, "implementation_plan step 2 run", "NUL"),
        ({"run": ["echo", "a\x00b"]}, "implementation_plan step 2 run", "NUL"),
        ({"run": "true", "shell": "yes"}, "implementation_plan step 2 shell", "true or false"),
        ({"run": "true", "timeout": "0s"}, "implementation_plan step 2 timeout", "out of range"),
        ({"run": "true", "timeout": "soon"}, "implementation_plan step 2 timeout", "not a duration"),
        ({"run": "true", "timeout": "25h"}, "implementation_plan step 2 timeout", "out of range"),
        ({"http": "http://h/"}, "implementation_plan step 2 http", "must be an object"),
        (
            {"http": {"url": "http://h/", "verb": "GET"}},
            "implementation_plan step 2 http",
            "unknown key 'verb'",
        ),
        (
            {"http": {"method": "FETCH", "url": "http://h/"}},
            "implementation_plan step 2 http.method",
            "'FETCH'",
        ),
        (
            {"http": {"method": "CONNECT", "url": "http://h/"}},
            "implementation_plan step 2 http.method",
            "allowed",
        ),
        ({"http": {"method": "GET"}}, "implementation_plan step 2 http.url", "not an http"),
        ({"http": {"url": "ftp://h/x"}}, "implementation_plan step 2 http.url", "not an http"),
        ({"http": {"url": "http://"}}, "implementation_plan step 2 http.url", "not an http"),
        ({"http": {"url": "http://h/a b"}}, "implementation_plan step 2 http.url", "not an http"),
        ({"http": {"url": "deploy.example/x"}}, "implementation_plan step 2 http.url", "not an http"),
        ({"http": {"url": 5}}, "implementation_plan step 2 http.url", "not an http"),
        (
            {"http": {"url": "http://h/", "expect_status": 99}},
            "implementation_plan step 2 http.expect_status",
            "100–599",
        ),
        (
            {"http": {"url": "http://h/", "expect_status": 600}},
            "implementation_plan step 2 http.expect_status",
            "100–599",
        ),
        (
            {"http": {"url": "http://h/", "expect_status": "200"}},
            "implementation_plan step 2 http.expect_status",
            "100–599",
        ),
        (
            {"http": {"url": "http://h/", "expect_status": True}},
            "implementation_plan step 2 http.expect_status",
            "100–599",
        ),
        (
            {"http": {"url": "http://h/", "expect_status": []}},
            "implementation_plan step 2 http.expect_status",
            "100–599",
        ),
        (
            {"http": {"url": "http://h/", "expect_status": [200, "x"]}},
            "implementation_plan step 2 http.expect_status",
            "100–599",
        ),
        (
            {"http": {"url": "http://h/", "timeout": "0s"}},
            "implementation_plan step 2 http.timeout",
            "out of range",
        ),
        (
            {"http": {"url": "http://h/", "headers": ["X: y"]}},
            "implementation_plan step 2 http.headers",
            "header names",
        ),
        (
            {"http": {"url": "http://h/", "headers": {"X-N": 1}}},
            "implementation_plan step 2 http.headers",
            "header names",
        ),
    ],
)
def test_bad_steps_are_refused_naming_the_step(raw: Any, field: str, needle: str) -> None:
    with pytest.raises(ValidationError) as err:
        plan.steps("implementation_plan", {"steps": ["a good text step", raw, {"run": "true"}]})
    assert err.value.field == field
    assert str(err.value).startswith(f"{field}: ")
    assert needle in str(err.value)


def test_the_first_bad_step_is_named() -> None:
    with pytest.raises(ValidationError) as err:
        plan.steps("rollback_plan", {"steps": [{"run": "true"}, {"run": ""}, {"http": {"url": "nope"}}]})
    assert err.value.field == "rollback_plan step 2 run"


@pytest.mark.parametrize(
    ("raw_steps", "automated"),
    [
        ([], False),
        (["by hand"], False),
        ([{"run": "true"}], True),
        ([{"http": {"url": "http://h/"}}], True),
        ([{"run": "true"}, {"http": {"url": "http://h/"}}], True),
        ([{"run": "true"}, "then check the dashboard"], False),
        (["first a person", {"run": "true"}], False),
    ],
)
def test_is_automated(raw_steps: list[Any], automated: bool) -> None:
    assert plan.is_automated(plan.steps("implementation_plan", {"steps": raw_steps})) is automated


# --- validation -----------------------------------------------------------------------------

DEFAULTS = Defaults(
    period=900.0,
    interval=30.0,
    failures_to_trip=4,
    error_rate_threshold=2.5,
    latency_threshold=150.0,
    prometheus_url="http://prom.default:9090",
    health_checks=(HealthCheck("http://svc.default/healthz"),),
)


def test_validation_spec_defaults_from_configuration() -> None:
    spec = plan.validation_spec(None, DEFAULTS)
    assert spec == ValidationSpec(
        health_checks=(HealthCheck("http://svc.default/healthz"),),
        period=900.0,
        interval=30.0,
        failures_to_trip=4,
        prometheus=None,
        error_rate_threshold=2.5,
        latency_threshold=150.0,
    )
    assert spec.has_checks
    assert plan.validation_spec({}, DEFAULTS) == spec


def test_validation_spec_built_in_defaults() -> None:
    spec = plan.validation_spec(None, Defaults())
    assert (spec.period, spec.interval, spec.failures_to_trip) == (1800.0, 60.0, 3)
    assert (spec.error_rate_threshold, spec.latency_threshold) == (5.0, 200.0)
    assert spec.health_checks == ()
    assert not spec.has_checks


def test_validation_spec_overrides() -> None:
    raw = {
        "health_checks": [
            "http://127.0.0.1:1/health",
            {"url": "https://svc/ready", "expect_status": [200, 204], "timeout": "2s"},
        ],
        "period": "4s",
        "interval": "300ms",
        "failures_to_trip": 2,
        "prometheus": {"error_rate_query": "sum(rate(errors[5m]))", "latency_query": "p99"},
    }
    spec = plan.validation_spec(raw, DEFAULTS)
    assert spec.health_checks == (
        HealthCheck("http://127.0.0.1:1/health", (200,), 10.0),
        HealthCheck("https://svc/ready", (200, 204), 2.0),
    )
    assert (spec.period, spec.interval, spec.failures_to_trip) == (4.0, 0.3, 2)
    # no url in the block: PROMETHEUS_URL (the default) is used
    assert spec.prometheus == PrometheusSpec("http://prom.default:9090", "sum(rate(errors[5m]))", "p99")
    # the thresholds are configuration, not per change
    assert (spec.error_rate_threshold, spec.latency_threshold) == (2.5, 150.0)


def test_validation_spec_prometheus_own_url_and_none_at_all() -> None:
    own = plan.validation_spec(
        {"prometheus": {"url": "http://prom.mine:9090", "latency_query": "q"}}, DEFAULTS
    )
    assert own.prometheus == PrometheusSpec("http://prom.mine:9090", None, "q")
    nowhere = plan.validation_spec({"prometheus": {"error_rate_query": "q"}}, Defaults())
    assert nowhere.prometheus == PrometheusSpec("", "q", None)  # reported as a failed check at run time
    assert nowhere.has_checks


@pytest.mark.parametrize(
    "raw",
    [
        None,
        {},
        {"health_checks": ["http://h/health"], "period": "30m", "interval": "60s", "failures_to_trip": 3},
        {"health_checks": [{"url": "http://h/", "expect_status": 204}]},
        {"prometheus": {"url": "http://prometheus:9090", "error_rate_query": "x", "latency_query": "y"}},
        {"failures_to_trip": 1000},
    ],
)
def test_check_validation_accepts(raw: Any) -> None:
    assert plan.check_validation(raw) == raw


def test_check_validation_returns_a_copy() -> None:
    raw = {"period": "1m"}
    checked = plan.check_validation(raw)
    assert checked == raw
    assert checked is not raw


@pytest.mark.parametrize(
    ("raw", "field", "needle"),
    [
        ("30m", "validation", "must be a JSON object"),
        ([], "validation", "must be a JSON object"),
        ({"periods": "30m"}, "validation", "unknown key 'periods'"),
        ({"health_checks": "http://h/"}, "validation health_checks", "must be a list"),
        ({"health_checks": {"url": "http://h/"}}, "validation health_checks", "must be a list"),
        ({"health_checks": ["ftp://h/"]}, "validation health_checks 1", "not an http"),
        ({"health_checks": ["http://h/", 5]}, "validation health_checks 2", "must be a URL or an object"),
        ({"health_checks": [{"expect_status": 200}]}, "validation health_checks 1 url", "not an http"),
        (
            {"health_checks": [{"url": "http://h/", "expect_status": 0}]},
            "validation health_checks 1 expect_status",
            "100–599",
        ),
        (
            {"health_checks": [{"url": "http://h/", "timeout": "never"}]},
            "validation health_checks 1 timeout",
            "not a duration",
        ),
        ({"period": "0s"}, "validation period", "out of range"),
        ({"period": "forever"}, "validation period", "not a duration"),
        ({"interval": "25h"}, "validation interval", "out of range"),
        ({"interval": True}, "validation interval", "not a duration"),
        ({"failures_to_trip": 0}, "validation failures_to_trip", "1–1000"),
        ({"failures_to_trip": 1001}, "validation failures_to_trip", "1–1000"),
        ({"failures_to_trip": "3"}, "validation failures_to_trip", "1–1000"),
        ({"failures_to_trip": True}, "validation failures_to_trip", "1–1000"),
        ({"failures_to_trip": 2.5}, "validation failures_to_trip", "1–1000"),
        ({"prometheus": "http://prometheus:9090"}, "validation prometheus", "must be an object"),
        (
            {"prometheus": {"url": "http://p:9090"}},
            "validation prometheus",
            "error_rate_query or latency_query",
        ),
        (
            {"prometheus": {"url": "http://p:9090", "error_rate_query": "  "}},
            "validation prometheus error_rate_query",
            "PromQL",
        ),
        (
            {"prometheus": {"url": "http://p:9090", "error_rate_query": "x", "latency_query": 5}},
            "validation prometheus latency_query",
            "PromQL",
        ),
        (
            {"prometheus": {"url": "prometheus:9090", "error_rate_query": "x"}},
            "validation prometheus url",
            "not an http",
        ),
    ],
)
def test_check_validation_refuses(raw: Any, field: str, needle: str) -> None:
    with pytest.raises(ValidationError) as err:
        plan.check_validation(raw)
    assert err.value.field == field
    assert needle in str(err.value)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"health_checks": [{"url": "http://h/", "expect_statuss": 503}]}, "validation health_checks 1"),
        (
            {"prometheus": {"url": "http://p:9090", "error_rate_query": "x", "latency_querry": "y"}},
            "validation prometheus",
        ),
    ],
    ids=["health-check-typo", "prometheus-typo"],
)
def test_check_validation_refuses_unknown_nested_keys(raw: Any, field: str) -> None:
    # a typo such as 'expect_statuss' must not silently fall back to expecting 200
    with pytest.raises(ValidationError, match="unknown key") as err:
        plan.check_validation(raw)
    assert err.value.field == field
