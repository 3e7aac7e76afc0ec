"""What a step may reach (SPEC §11): its environment, its secrets, its hosts. Real commands and
a real local server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cortex_change.domain.plan import HttpStep, RunStep
from cortex_change.runner.execute import (
    REDACTED,
    Secrets,
    host_refusal,
    http_request,
    run_command,
    step_environment,
)
from support import HttpReceiver

pytestmark = pytest.mark.usefixtures("direct")  # nothing between the runner and 127.0.0.1


@pytest.fixture
def other() -> Iterator[HttpReceiver]:
    with HttpReceiver() as srv:
        yield srv


def _names(output: str) -> set[str]:
    return {line.split("=", 1)[0] for line in output.splitlines() if "=" in line}


def test_step_environment_keeps_path_home_lang_and_the_passthrough() -> None:
    env = {"PATH": "/bin", "HOME": "/h", "LANG": "C", "SECRET": "x", "KEEP": "k", "LC_ALL": "C"}
    assert step_environment(env, ("KEEP", "ABSENT")) == {
        "PATH": "/bin",
        "HOME": "/h",
        "LANG": "C",
        "KEEP": "k",
    }
    assert step_environment({"SECRET": "x"}) == {}


def test_a_command_sees_nothing_of_this_process_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CORTEX_TEST_LEAK", "leaked-value")
    monkeypatch.setenv("LANG", "C.UTF-8")
    result = run_command(RunStep(("env",)), Secrets({}), timeout=10, cwd=str(tmp_path))
    assert result.ok, result
    assert _names(result.output) == {"PATH", "HOME", "LANG"}


def test_a_command_sees_exactly_the_environment_given(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "ONLY": "this"}
    result = run_command(RunStep(("env",)), Secrets({}), timeout=10, cwd=str(tmp_path), env=env)
    assert sorted(result.output.splitlines()) == ["ONLY=this", "PATH=/usr/bin:/bin"]


def test_a_reference_outside_plan_secrets_fails_before_anything_runs(tmp_path: Path) -> None:
    secrets = Secrets({"TOKEN": "t0k3n", "OTHER": "o"}, allowed={"OTHER"})
    result = run_command(RunStep("touch ran; echo ${env:TOKEN}", shell=True), secrets, 10, str(tmp_path))
    assert not result.ok
    assert result.error == "${env:TOKEN} is not allowed: list TOKEN in PLAN_SECRETS for steps to use it"
    assert not (tmp_path / "ran").exists()


def test_hidden_values_are_redacted_though_never_resolved(tmp_path: Path) -> None:
    secrets = Secrets({}, hidden=["pd-key-123456", ""])
    step = RunStep("echo key=pd-key-123456; echo plain; exit 3", shell=True)
    result = run_command(step, secrets, 10, str(tmp_path))
    assert result.output == f"key={REDACTED}\nplain\n"
    assert secrets.redact("a b") == "a b"  # an empty hidden value redacts nothing


# --- hosts --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://api.example.com/x", ["api.example.com"]),
        ("https://API.Example.com:8443/x", ["*.example.com"]),
        ("http://a.b.example.com/x", ["*.example.com"]),
        ("http://api.example.com:8080/x", ["other.org", "api.example.com:8080"]),
        ("https://api.example.com/x", ["api.example.com:443"]),
        ("http://[::1]:9000/x", ["[::1]:9000"]),
        ("http://[::1]:9000/x", ["::1"]),
    ],
)
def test_allowed_hosts_match(url: str, allowed: list[str]) -> None:
    assert host_refusal(url, allowed) == ""


@pytest.mark.parametrize(
    ("url", "allowed", "why"),
    [
        ("http://api.example.com/x", [], "HTTP steps reach no host: list the hosts they may reach in"),
        ("http://example.com/x", ["*.example.com"], "example.com:80 is not in HTTP_STEP_ALLOWED_HOSTS"),
        ("http://api.example.com/x", ["api.example.com:8080"], "api.example.com:80 is not in"),
        ("https://api.example.com/x", ["api.example.com:80"], "api.example.com:443 is not in"),
        ("http://api.example.com.evil.org/", ["api.example.com"], "api.example.com.evil.org:80 is not in"),
        ("http://api.example.com@evil.org/", ["api.example.com"], "'api.example.com@evil.org' is not a host"),
        ("http://[::2]:9000/x", ["[::1]:9000"], "[::2]:9000 is not in HTTP_STEP_ALLOWED_HOSTS"),
    ],
)
def test_other_hosts_are_refused(url: str, allowed: list[str], why: str) -> None:
    assert host_refusal(url, allowed).startswith(why)


def test_a_refused_host_gets_no_request(receiver: HttpReceiver) -> None:
    result = http_request(HttpStep("GET", receiver.url("/x")), Secrets({}), 5, allowed_hosts=["localhost"])
    assert not result.ok
    assert (
        result.error
        == f"127.0.0.1:{receiver.server.server_address[1]} is not in HTTP_STEP_ALLOWED_HOSTS (localhost)"
    )
    assert receiver.requests == []


def test_a_host_named_by_a_secret_is_checked_after_resolving_and_redacted(receiver: HttpReceiver) -> None:
    secrets = Secrets({"HOST": "127.0.0.1"}, allowed={"HOST"})
    port = receiver.server.server_address[1]
    result = http_request(HttpStep("GET", f"http://${{env:HOST}}:{port}/x"), secrets, 5, ["10.0.0.1"])
    assert result.error == f"{REDACTED}:{port} is not in HTTP_STEP_ALLOWED_HOSTS (10.0.0.1)"
    assert receiver.requests == []
    assert http_request(HttpStep("GET", f"http://${{env:HOST}}:{port}/x"), secrets, 5, ["127.0.0.1"]).ok


def test_a_redirect_is_the_answer_not_followed(receiver: HttpReceiver, other: HttpReceiver) -> None:
    receiver.status, receiver.location = 307, other.url("/stolen")
    result = http_request(HttpStep("POST", receiver.url("/deploy"), body="{}"), Secrets({}), 5, ["127.0.0.1"])
    assert (result.ok, result.status, result.error) == (False, 307, "status 307, expected 200")
    assert other.requests == []
    expected = http_request(HttpStep("GET", receiver.url("/deploy"), (307,)), Secrets({}), 5, ["127.0.0.1"])
    assert expected.ok and other.requests == []
