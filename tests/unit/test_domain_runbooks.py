"""Runbooks (SPEC §11): catalog tables into Runbook values, expansion, and every refusal.

A filled value is one part of one argv item, percent-encoded in a URL, and must fully match its
parameter's pattern: injection attempts are refused naming the runbook, the parameter and the
pattern.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from cortex_change.domain import plan
from cortex_change.domain.errors import ConfigError, ValidationError
from cortex_change.domain.plan import HttpStep, RunbookStep, RunStep
from cortex_change.domain.runbooks import Runbook, approved, define, expand, lookup

DNS_LABEL = "[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
RESTART: dict[str, Any] = {
    "version": 1,
    "description": "Restart a deployment",
    "run": ["kubectl", "rollout", "restart", "deployment/{deployment}", "-n", "{namespace}"],
    "params": {"deployment": DNS_LABEL, "namespace": DNS_LABEL},
    "defaults": {"namespace": "default"},
    "timeout": "2m",
}
HOOK: dict[str, Any] = {
    "version": 3,
    "http": {
        "method": "post",
        "url": "https://deploy.example/hooks/{service}?ref={ref}",
        "headers": {"X-Service": "{service}", "Authorization": "Bearer ${env:DEPLOY_TOKEN}"},
        "body": {"service": "{service}", "ref": "{ref}", "dry_run": False},
        "expect_status": [200, 202],
    },
    "params": {"service": "[^ ]+", "ref": "[0-9a-f]{7,40}"},
}


def restart() -> Runbook:
    return define("kubectl-rollout-restart", RESTART)


def hook() -> Runbook:
    return define("deploy-hook", HOOK)


# --- expansion ------------------------------------------------------------------------------


def test_argv_runbook_expands_to_a_run_step_with_defaults() -> None:
    step = expand(restart(), {"deployment": "web"})
    assert step == RunStep(
        ("kubectl", "rollout", "restart", "deployment/web", "-n", "default"), shell=False, timeout=120.0
    )


def test_given_values_replace_defaults_and_whole_numbers_become_text() -> None:
    book = define(
        "scale", {"version": 1, "run": ["kubectl", "--replicas={n}"], "params": {"n": "[0-9]{1,5}"}}
    )
    assert expand(book, {"n": 12}) == RunStep(("kubectl", "--replicas=12"), timeout=plan.DEFAULT_RUN_TIMEOUT)
    prod = expand(restart(), {"deployment": "web", "namespace": "prod"})
    assert isinstance(prod, RunStep) and prod.command[-1] == "prod"


def test_a_value_is_never_read_as_a_template() -> None:
    book = define("echo", {"version": 1, "run": ["echo", "{a}", "{b}"], "params": {"a": ".+", "b": ".+"}})
    step = expand(book, {"a": "{b}", "b": "x"})
    assert isinstance(step, RunStep) and step.command == ("echo", "{b}", "x")


def test_http_runbook_fills_and_percent_encodes_the_url_only() -> None:
    step = expand(hook(), {"service": "api/v2", "ref": "abc1234"})
    assert isinstance(step, HttpStep)
    assert step.method == "POST"
    assert step.url == "https://deploy.example/hooks/api%2Fv2?ref=abc1234"
    assert dict(step.headers) == {"X-Service": "api/v2", "Authorization": "Bearer ${env:DEPLOY_TOKEN}"}
    assert step.body is not None
    assert json.loads(step.body) == {"service": "api/v2", "ref": "abc1234", "dry_run": False}
    assert step.expect_status == (200, 202)
    assert step.timeout == plan.DEFAULT_HTTP_TIMEOUT


@pytest.mark.parametrize(
    ("value", "url"),
    [
        ("@evil.example/", "https://deploy.example/hooks/%40evil.example%2F?ref=abc1234"),
        ("x?ref=0&admin=1#", "https://deploy.example/hooks/x%3Fref%3D0%26admin%3D1%23?ref=abc1234"),
        ("../../admin", "https://deploy.example/hooks/..%2F..%2Fadmin?ref=abc1234"),
        ("a:b@c", "https://deploy.example/hooks/a%3Ab%40c?ref=abc1234"),
    ],
)
def test_a_url_value_cannot_change_host_path_or_query(value: str, url: str) -> None:
    step = expand(hook(), {"service": value, "ref": "abc1234"})
    assert isinstance(step, HttpStep) and step.url == url
    assert step.url.startswith("https://deploy.example/hooks/")


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("a b", "'a b' does not fully match"),
        ("$(id)", "'$(id)' does not fully match"),
        ("`id`", "'`id`' does not fully match"),
        (";rm -rf /", "';rm -rf /' does not fully match"),
        ("web;rm", "'web;rm' does not fully match"),
        ("../etc", "'../etc' does not fully match"),
        ("Web", "'Web' does not fully match"),
        ("", "'' does not fully match"),
        ("web-", "'web-' does not fully match"),
        ("web\n", "control or invisible character U+000A"),
        ("web\nrm", "control or invisible character U+000A"),
        ("web\r", "control or invisible character U+000D"),
        ("we\x00b", "control or invisible character U+0000"),
        ("we\u200bb", "control or invisible character U+200B"),
        ("we\u202eb", "control or invisible character U+202E"),
        ("we\u2028b", "control or invisible character U+2028"),
        ("w" * 64, "does not fully match"),
        (True, "must be text or a whole number"),
        (1.5, "must be text or a whole number"),
        (None, "must be text or a whole number"),
        (["web"], "must be text or a whole number"),
        ({"a": 1}, "must be text or a whole number"),
    ],
)
def test_injection_attempts_are_refused_naming_runbook_parameter_and_pattern(value: Any, needle: str) -> None:
    with pytest.raises(ValidationError) as caught:
        expand(restart(), {"deployment": value}, "implementation_plan step 1")
    message = str(caught.value)
    assert message.startswith(
        "implementation_plan step 1 runbook kubectl-rollout-restart params.deployment: "
    )
    assert needle in message
    assert DNS_LABEL in message
    assert "\n" not in message


def test_a_secret_reference_in_a_value_is_refused() -> None:
    """The runner resolves ${env:NAME} in a step: a value must not smuggle one in."""
    with pytest.raises(ValidationError, match=r"params.service: .*must not hold a \$\{env:NAME\} reference"):
        expand(hook(), {"service": "${env:DEPLOY_TOKEN}", "ref": "abc1234"})


def test_unknown_and_missing_parameters_are_refused() -> None:
    with pytest.raises(
        ValidationError, match=r"^runbook kubectl-rollout-restart: unknown parameter 'replicas'; "
    ):
        expand(restart(), {"deployment": "web", "replicas": "3"})
    with pytest.raises(
        ValidationError,
        match="^runbook kubectl-rollout-restart params.deployment: is missing; it must fully match "
        + re.escape(DNS_LABEL),
    ):
        expand(restart(), {})


def test_a_value_never_adds_argv_items() -> None:
    book = define("echo", {"version": 1, "run": ["echo", "x{a}y"], "params": {"a": "[^\\n]*"}})
    step = expand(book, {"a": "1 2 --force 3"})
    assert isinstance(step, RunStep)
    assert step.command == ("echo", "x1 2 --force 3y") and not step.shell


# --- lookup at filing, approved at run time -------------------------------------------------


def test_lookup_names_known_runbooks_and_refuses_another_version() -> None:
    books = {"kubectl-rollout-restart": restart(), "deploy-hook": hook()}
    assert lookup(books, RunbookStep("deploy-hook"), "rollback_plan step 2") is books["deploy-hook"]
    assert lookup(books, RunbookStep("deploy-hook", (), 3), "x") is books["deploy-hook"]
    with pytest.raises(
        ValidationError,
        match=r"^rollback_plan step 2 runbook: unknown runbook 'nope'; "
        r"known: deploy-hook, kubectl-rollout-restart$",
    ):
        lookup(books, RunbookStep("nope"), "rollback_plan step 2")
    with pytest.raises(
        ValidationError, match=r"^x version: runbook deploy-hook is at version 3 in the catalog, not 2$"
    ):
        lookup(books, RunbookStep("deploy-hook", (), 2), "x")


def test_approved_expands_only_the_stamped_version_of_a_runbook_still_there() -> None:
    books = {"kubectl-rollout-restart": restart()}
    step = RunbookStep("kubectl-rollout-restart", (("deployment", "web"),), 1)
    assert approved(books, step) == expand(restart(), {"deployment": "web"})
    changed = {"kubectl-rollout-restart": define("kubectl-rollout-restart", {**RESTART, "version": 2})}
    with pytest.raises(
        ValidationError,
        match=r"^runbook kubectl-rollout-restart: changed after approval \(filed at version 1, the catalog "
        r"now has version 2\); nothing was run$",
    ):
        approved(changed, step)
    with pytest.raises(
        ValidationError, match=r"^runbook kubectl-rollout-restart: is no longer in the catalog"
    ):
        approved({}, step)
    with pytest.raises(ValidationError, match="filed at no version"):
        approved(books, RunbookStep("kubectl-rollout-restart", (("deployment", "web"),)))


# --- catalog tables -------------------------------------------------------------------------


def test_define_reads_the_table() -> None:
    book = restart()
    assert (book.name, book.version, book.timeout) == ("kubectl-rollout-restart", 1, 120.0)
    assert dict(book.params) == {"deployment": DNS_LABEL, "namespace": DNS_LABEL}
    assert dict(book.defaults) == {"namespace": "default"}
    assert book.run == tuple(RESTART["run"]) and book.http is None
    h = hook().http
    assert h is not None and (h.method, h.expect_status) == ("POST", (200, 202))


@pytest.mark.parametrize(
    ("change", "where", "needle"),
    [
        ({"version": None}, "runbooks.rb.version", "a whole number ≥ 1 is required"),
        ({"version": 0}, "runbooks.rb.version", "a whole number ≥ 1"),
        ({"version": "1"}, "runbooks.rb.version", "a whole number ≥ 1"),
        ({"version": True}, "runbooks.rb.version", "a whole number ≥ 1"),
        (
            {"params": {"deployment": "[a-z", "namespace": DNS_LABEL}},
            "runbooks.rb.params.deployment",
            "not a regular expression",
        ),
        (
            {"params": {"deployment": "", "namespace": DNS_LABEL}},
            "runbooks.rb.params.deployment",
            "needs a pattern",
        ),
        (
            {"params": {"deployment": 5, "namespace": DNS_LABEL}},
            "runbooks.rb.params.deployment",
            "needs a pattern",
        ),
        ({"params": {"namespace": DNS_LABEL}}, "runbooks.rb", "slot {deployment} has no parameter"),
        (
            {"params": {"deployment": DNS_LABEL, "namespace": DNS_LABEL, "x": "y"}},
            "runbooks.rb.params.x",
            "is not used",
        ),
        ({"params": {"de-ploy": DNS_LABEL}}, "runbooks.rb.params", "'de-ploy' is not a parameter name"),
        ({"params": ["deployment"]}, "runbooks.rb.params", "must map parameter names to patterns"),
        ({"http": {"url": "https://h/"}}, "runbooks.rb", "exactly one of run"),
        ({"run": None}, "runbooks.rb.run", "argument list"),
        ({"run": "kubectl rollout restart"}, "runbooks.rb.run", "argument list"),
        ({"run": []}, "runbooks.rb.run", "argument list"),
        ({"run": ["kubectl", ""]}, "runbooks.rb.run", "argument list"),
        ({"run": ["{deployment}", "{namespace}"]}, "runbooks.rb.run", "must be fixed text"),
        ({"shell": True}, "runbooks.rb", "unknown key 'shell'"),
        ({"timeout": "soon"}, "runbooks.rb.timeout", "not a duration"),
        ({"defaults": {"namespace": "Not Valid"}}, "runbooks.rb.defaults.namespace", "does not fully match"),
        ({"defaults": {"zone": "a"}}, "runbooks.rb.defaults.zone", "has no pattern"),
        ({"description": 5}, "runbooks.rb.description", "must be text"),
    ],
)
def test_bad_tables_are_refused_naming_the_table(change: dict[str, Any], where: str, needle: str) -> None:
    with pytest.raises(ConfigError) as caught:
        define("rb", {**RESTART, **change})
    assert str(caught.value).startswith(where + ": ")
    assert needle in str(caught.value)


def test_a_table_with_neither_run_nor_http_is_refused() -> None:
    raw = {k: v for k, v in RESTART.items() if k != "run"}
    with pytest.raises(
        ConfigError, match=r"^runbooks.rb: needs exactly one of run \(an argument list\) or http"
    ):
        define("rb", raw)


@pytest.mark.parametrize(
    ("http", "where", "needle"),
    [
        ({"url": "https://{service}.example/x"}, "runbooks.rb.http.url", "scheme and host must be fixed"),
        ({"url": "https://deploy.example{service}"}, "runbooks.rb.http.url", "scheme and host must be fixed"),
        ({"url": "ftp://h/{service}"}, "runbooks.rb.http.url", "not an http"),
        ({"url": "https://h/{service}", "method": "CONNECT"}, "runbooks.rb.http.method", "not allowed"),
        ({"url": "https://h/{service}", "verb": "GET"}, "runbooks.rb.http", "unknown key 'verb'"),
        (
            {"url": "https://h/{service}", "expect_status": 42},
            "runbooks.rb.http.expect_status",
            "not an HTTP status",
        ),
        (
            {"url": "https://h/{service}", "headers": {"X": 1}},
            "runbooks.rb.http.headers",
            "header names to text",
        ),
        ({"url": "https://h/{service}", "body": 5}, "runbooks.rb.http.body", "text or a table"),
        ({"url": "https://h/x", "body": "{other}"}, "runbooks.rb", "slot {other} has no parameter"),
    ],
)
def test_bad_http_tables_are_refused(http: dict[str, Any], where: str, needle: str) -> None:
    with pytest.raises(ConfigError) as caught:
        define("rb", {"version": 1, "http": http, "params": {"service": "[a-z]+"}})
    assert str(caught.value).startswith(where + ": ")
    assert needle in str(caught.value)


# --- plan steps -----------------------------------------------------------------------------


def test_plan_parses_runbook_steps_by_shape() -> None:
    raw = {
        "steps": [
            "Announce",
            {"runbook": "kubectl-rollout-restart", "params": {"deployment": "web"}, "version": 1},
            {"runbook": "smoke"},
        ]
    }
    steps = plan.steps("implementation_plan", raw)
    assert steps[1] == RunbookStep("kubectl-rollout-restart", (("deployment", "web"),), 1)
    assert steps[2] == RunbookStep("smoke")
    assert [s.describe() for s in steps[1:] if isinstance(s, RunbookStep)] == [
        "runbook kubectl-rollout-restart v1 (deployment=web)",
        "runbook smoke",
    ]
    assert plan.is_automated(steps[1:]) and not plan.is_automated(steps)
    assert not plan.has_adhoc_steps(raw)  # runbook steps are not ad-hoc


@pytest.mark.parametrize(
    ("step", "field", "needle"),
    [
        ({"runbook": "x", "shell": True}, "implementation_plan step 1", "unknown key 'shell'"),
        ({"runbook": "x", "timeout": "5s"}, "implementation_plan step 1", "unknown key 'timeout'"),
        ({"runbook": "x", "run": ["ls"]}, "implementation_plan step 1", "exactly one of"),
        ({"runbook": ""}, "implementation_plan step 1 runbook", "is not a runbook name"),
        ({"runbook": "a b"}, "implementation_plan step 1 runbook", "is not a runbook name"),
        ({"runbook": 5}, "implementation_plan step 1 runbook", "is not a runbook name"),
        ({"runbook": "x", "params": ["a"]}, "implementation_plan step 1 params", "must be an object"),
        ({"runbook": "x", "version": 0}, "implementation_plan step 1 version", "not a runbook version"),
        ({"runbook": "x", "version": "1"}, "implementation_plan step 1 version", "not a runbook version"),
        ({"runbook": "x", "version": True}, "implementation_plan step 1 version", "not a runbook version"),
    ],
)
def test_plan_refuses_misshapen_runbook_steps(step: dict[str, Any], field: str, needle: str) -> None:
    with pytest.raises(ValidationError) as caught:
        plan.steps("implementation_plan", {"steps": [step]})
    assert caught.value.field == field
    assert needle in str(caught.value)
