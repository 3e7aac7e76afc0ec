"""SPEC §11 "Where steps run" and "Limits" through the real console script, on SQLite and
PostgreSQL: the clean step environment, PLAN_SECRETS, redaction of the server's own secrets,
HTTP_STEP_ALLOWED_HOSTS without redirects, STEP_TIMEOUT_MAX, PLAN_JSON_MAX and finite numbers.

Changes carrying ad-hoc steps are filed, assessed and approved by a technical lead (or an
ECAB member) through the CLI, as a human must approve them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from support import HttpReceiver

if TYPE_CHECKING:
    from conftest import Cli

# The server's (and worker's) own settings: a step must see none of them.
SERVER_SECRETS = {
    "PAGERDUTY_API_KEY": "pd-key-5f1e2d3c4b5a",
    "WEBHOOK_SECRET": "wh-secret-0a9b8c7d6e",
    "CORTEX_CHANGE_TOKEN": "cc_abc123_tokenvalue987",
}
ROLLBACK = json.dumps({"steps": ["Revert by hand"]})
# What a step could dig out of its parent (the CLI or the worker): the values come back redacted.
PARENTS_ENVIRONMENT = (
    "tr '\\0' '\\n' < /proc/$PPID/environ | grep -E '^(PAGERDUTY|WEBHOOK|CORTEX_CHANGE_TOKEN)'"
)


@pytest.fixture(autouse=True)
def _direct(cli: Cli) -> None:
    # The CLI's urllib honours proxy variables: 127.0.0.1 must be reached directly.
    cli.env.update({"NO_PROXY": "*", "no_proxy": "*", "LANG": "C.UTF-8"})


@pytest.fixture
def other() -> Iterator[HttpReceiver]:
    """A second local server: where a redirect points."""
    with HttpReceiver() as srv:
        yield srv


def _approved(cli: Cli, steps: list[Any], *, type_: str = "normal", env: dict[str, str] | None = None) -> str:
    """A change with these implementation steps, approved by a human of its route."""
    plan = json.dumps({"steps": steps})
    change_id = cli.create(
        type_,
        "documentation",
        "Roll out v2",
        "e2e",
        "--impact",
        "low",
        "--implementation-plan",
        plan,
        "--rollback-plan",
        ROLLBACK,
        env=env,
    )
    cli.ok("assess", change_id, env=env)
    approver = "tech-lead-oncall" if type_ == "emergency" else "tech-lead"
    cli.ok("approve", change_id, approver, "reviewed the steps", env=env)
    return change_id


def _steps(cli: Cli, change_id: str) -> list[dict[str, Any]]:
    """The details of the change's step results, read back through `show`."""
    doc = cli.show(change_id)
    return [e["details"] for e in doc["audit_trail"] if e["action"] in ("step_succeeded", "step_failed")]


def _names(output: str) -> set[str]:
    return {line.split("=", 1)[0] for line in output.splitlines() if "=" in line}


def _one_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("cortex-change: "), err
    return lines[0]


# --- the clean environment ----------------------------------------------------------------------


def test_a_step_sees_path_home_lang_and_the_passthrough_only(cli: Cli) -> None:
    env = {**SERVER_SECRETS, "RUNNER_ENV_PASSTHROUGH": "CORTEX_E2E_PASSED", "CORTEX_E2E_PASSED": "yes"}
    change_id = _approved(
        cli,
        [
            {"run": ["env"]},
            {"run": PARENTS_ENVIRONMENT, "shell": True},
        ],
    )
    res = cli("implement", change_id, "--wait", "--as", "alice", env=env)
    assert res.code == 0, res.err
    first, second = _steps(cli, change_id)
    assert _names(first["output_tail"]) == {"PATH", "HOME", "LANG", "CORTEX_E2E_PASSED"}
    assert "CORTEX_E2E_PASSED=yes\n" in first["output_tail"]
    assert sorted(second["output_tail"].splitlines()) == [
        "CORTEX_CHANGE_TOKEN=***",
        "PAGERDUTY_API_KEY=***",
        "WEBHOOK_SECRET=***",
    ]
    shown = cli.ok("show", change_id)
    trail = json.dumps(cli.events(change_id))
    for value in SERVER_SECRETS.values():
        assert value not in shown and value not in trail and value not in res.out + res.err


def test_a_step_the_worker_runs_sees_none_of_the_workers_variables(cli: Cli) -> None:
    env = {**SERVER_SECRETS, "IMPLEMENTATION_DELAY": "0"}
    change_id = _approved(cli, [{"run": ["env"]}], type_="emergency", env=env)
    cli.ok("worker", "run", "--once", "--name", "w1", env=env)
    (result,) = _steps(cli, change_id)
    assert result["ok"], result
    assert _names(result["output_tail"]) == {"PATH", "HOME", "LANG"}
    assert cli.show(change_id)["state"] == "closed"


# --- secrets ------------------------------------------------------------------------------------


def test_a_secret_not_in_plan_secrets_fails_the_step_and_nothing_runs(cli: Cli) -> None:
    change_id = _approved(cli, [{"run": "touch ran; echo ${env:DEPLOY_TOKEN}", "shell": True}])
    res = cli("implement", change_id, "--as", "alice", env={"DEPLOY_TOKEN": "tok-123456"})
    assert res.code == 1
    assert not (cli.cwd / "ran").exists()
    (failed,) = _steps(cli, change_id)
    assert failed["error"] == (
        "${env:DEPLOY_TOKEN} is not allowed: list DEPLOY_TOKEN in PLAN_SECRETS for steps to use it"
    )
    assert "exit_code" not in failed


def test_a_plan_secret_a_step_prints_shows_as_stars(cli: Cli) -> None:
    change_id = _approved(cli, [{"run": ["sh", "-c", 'echo "token is $1"', "sh", "${env:DEPLOY_TOKEN}"]}])
    env = {"DEPLOY_TOKEN": "tok-7g6f5e4d", "PLAN_SECRETS": "DEPLOY_TOKEN"}
    res = cli("implement", change_id, "--as", "alice", env=env)
    assert res.code == 0, res.err
    shown = cli.ok("show", change_id)
    assert "token is ***\\n" in shown
    assert "tok-7g6f5e4d" not in shown + json.dumps(cli.events(change_id))


# --- HTTP steps ---------------------------------------------------------------------------------


def _http(url: str) -> dict[str, Any]:
    return {"http": {"method": "POST", "url": url, "body": {"v": 2}}}


@pytest.mark.parametrize("allowed", ["", "localhost", "127.0.0.2,10.*", "127.0.0.1:1"])
def test_an_http_step_to_a_host_not_allowed_fails_and_sends_nothing(
    cli: Cli, receiver: HttpReceiver, allowed: str
) -> None:
    change_id = _approved(cli, [_http(receiver.url("/deploy"))])
    res = cli("implement", change_id, "--as", "alice", env={"HTTP_STEP_ALLOWED_HOSTS": allowed})
    assert res.code == 1
    assert receiver.requests == []
    (failed,) = _steps(cli, change_id)
    assert "HTTP_STEP_ALLOWED_HOSTS" in failed["error"]
    assert "status" not in failed


@pytest.mark.parametrize("allowed", ["127.0.0.1", "127.0.0.*", "example.com, 127.0.0.1:{port}"])
def test_an_http_step_to_an_allowed_host_is_sent(cli: Cli, receiver: HttpReceiver, allowed: str) -> None:
    change_id = _approved(cli, [_http(receiver.url("/deploy"))])
    hosts = allowed.format(port=receiver.server.server_address[1])
    res = cli("implement", change_id, "--as", "alice", env={"HTTP_STEP_ALLOWED_HOSTS": hosts})
    assert res.code == 0, res.err
    (req,) = receiver.requests
    assert (req.method, req.path, req.json()) == ("POST", "/deploy", {"v": 2})


def test_an_http_step_does_not_follow_a_redirect(
    cli: Cli, receiver: HttpReceiver, other: HttpReceiver
) -> None:
    receiver.status, receiver.location = 302, other.url("/elsewhere")
    change_id = _approved(cli, [_http(receiver.url("/deploy"))])
    res = cli("implement", change_id, "--as", "alice", env={"HTTP_STEP_ALLOWED_HOSTS": "127.0.0.1"})
    assert res.code == 1
    assert [r.path for r in receiver.requests] == ["/deploy"]
    assert other.requests == []
    (failed,) = _steps(cli, change_id)
    assert (failed["status"], failed["error"]) == (302, "status 302, expected 200")


# --- STEP_TIMEOUT_MAX ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "step",
    [{"run": "true", "timeout": "2h"}, {"http": {"url": "http://127.0.0.1/", "timeout": 3601}}],
    ids=["run", "http"],
)
def test_a_timeout_above_step_timeout_max_is_refused_when_filed(cli: Cli, step: dict[str, Any]) -> None:
    plan = json.dumps({"steps": ["Announce", step]})
    res = cli("create", "normal", "deployment", "t", "d", "--implementation-plan", plan, "--as", "alice")
    assert res.code == 2, res.err
    line = _one_line(res.err)
    assert line.startswith("cortex-change: implementation_plan step 2 timeout: ")
    assert line.endswith("is more than STEP_TIMEOUT_MAX (3600s)")
    assert cli.counts() == (0, 0)
    # a larger maximum lets it through
    cli.ok(
        "create",
        "normal",
        "deployment",
        "t",
        "d",
        "--implementation-plan",
        plan,
        "--as",
        "alice",
        env={"STEP_TIMEOUT_MAX": "7200"},
    )


def test_a_timeout_filed_under_a_larger_maximum_is_clamped_when_it_runs(cli: Cli) -> None:
    before = {"STEP_TIMEOUT_MAX": "7200"}
    change_id = _approved(cli, [{"run": ["sleep", "30"], "timeout": "2h"}], env=before)
    res = cli("implement", change_id, "--as", "alice", env={"STEP_TIMEOUT_MAX": "1"})
    assert res.code == 1
    (failed,) = _steps(cli, change_id)
    assert failed["error"] == "timed out after 1s"


# --- PLAN_JSON_MAX ------------------------------------------------------------------------------


def test_dev_zero_as_a_plan_file_is_refused_at_once(cli: Cli) -> None:
    res = cli("create", "normal", "deployment", "t", "d", "--rollback-plan", "@/dev/zero", "--as", "alice")
    assert res.code == 2
    assert _one_line(res.err) == (
        "cortex-change: rollback_plan: '/dev/zero' is larger than PLAN_JSON_MAX (100000 bytes)"
    )
    assert cli.counts() == (0, 0)


@pytest.mark.parametrize("option", ["--implementation-plan", "--validation", "--details"])
def test_a_document_larger_than_plan_json_max_is_refused_inline_and_from_a_file(
    cli: Cli, option: str
) -> None:
    limit = {"PLAN_JSON_MAX": "2048"}
    big = {"steps": ["x" * 3000]} if option != "--details" else {"environment": "x" * 3000}
    if option == "--validation":
        big = {"health_checks": ["http://127.0.0.1/" + "x" * 3000]}
    (cli.cwd / "big.json").write_text(json.dumps(big))
    for value in (json.dumps(big), "@big.json", "big.json"):
        res = cli("create", "normal", "deployment", "t", "d", option, value, "--as", "alice", env=limit)
        assert res.code == 2, (value, res.err)
        assert "is larger than PLAN_JSON_MAX (2048 bytes)" in _one_line(res.err)
    assert cli.counts() == (0, 0)


def test_a_pretty_file_within_the_limit_is_read(cli: Cli) -> None:
    (cli.cwd / "plan.json").write_text(json.dumps({"steps": ["Deploy"]}, indent=4))
    change_id = cli.create("normal", "deployment", "t", "d", "--implementation-plan", "@plan.json")
    assert cli.show(change_id)["implementation_plan"] == {"steps": ["Deploy"]}


# --- finite numbers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        (
            "--implementation-plan",
            '{"steps": ["a"], "weight": NaN}',
            "implementation_plan: NaN is not allowed",
        ),
        (
            "--rollback-plan",
            '{"steps": [{"run": "true", "timeout": Infinity}]}',
            "rollback_plan: Infinity is",
        ),
        ("--validation", '{"period": -Infinity}', "validation: -Infinity is not allowed"),
        ("--details", '{"impact": "low", "x": 1e999}', "details: 1e999 is out of range"),
        ("--test-plan", '{"steps": [], "n": [1, 2, NaN]}', "test_plan: NaN is not allowed"),
    ],
)
def test_nan_and_infinity_are_refused(cli: Cli, option: str, value: str, message: str) -> None:
    res = cli("create", "normal", "deployment", "t", "d", option, value, "--as", "alice")
    assert res.code == 2, res.err
    assert _one_line(res.err).startswith(f"cortex-change: {message}")
    assert cli.counts() == (0, 0)


def test_nan_as_a_parameter_stays_text(cli: Cli) -> None:
    change_id = cli.create("normal", "deployment", "t", "d", "--param", "x=nan", "--param", "y=inf")
    assert cli.show(change_id)["parameters"] == {"x": "nan", "y": "inf"}
