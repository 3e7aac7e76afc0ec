"""The step runner: real commands and real HTTP requests against a local server (no mocks)."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from cortex_change.domain.plan import HttpStep, RunStep
from cortex_change.runner.execute import (
    REDACTED,
    TAIL_CHARS,
    Secrets,
    StepResult,
    http_request,
    run_command,
)
from support import Garbage, HttpServer, Received, Reply, free_port

SECRET = "s3cr3t-T0ken value"  # a space in it: it must stay one argument
LOCAL = ("127.0.0.1",)  # HTTP_STEP_ALLOWED_HOSTS of these tests: the local servers
# urllib honours proxy variables; nothing may sit between the runner and 127.0.0.1.
pytestmark = pytest.mark.usefixtures("direct")


def _secrets(**env: str) -> Secrets:
    return Secrets({"TOKEN": SECRET, **env}, allowed={"TOKEN", *env})


def _gone(pid: int) -> bool:
    """The process no longer runs (it does not exist, or it is a zombie nobody reaped yet)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


# --- commands -------------------------------------------------------------------------------


def test_success_keeps_the_output_tail(tmp_path: Path) -> None:
    step = RunStep("echo hello; echo oops >&2; echo v2 > version.txt", shell=True)
    result = run_command(step, _secrets(), timeout=10, cwd=str(tmp_path))
    assert result.ok, result
    assert result.exit_code == 0
    assert result.error == ""
    assert "hello\n" in result.output and "oops\n" in result.output  # stderr joins stdout
    assert (tmp_path / "version.txt").read_text() == "v2\n"  # ran in cwd
    assert 0 <= result.duration < 5
    details = result.details()
    assert details["ok"] is True and details["exit_code"] == 0
    assert isinstance(details["duration_seconds"], float)
    assert "hello" in str(details["output_tail"])
    assert "error" not in details and "status" not in details


def test_argv_runs_without_a_shell(tmp_path: Path) -> None:
    step = RunStep((sys.executable, "-c", "import sys; print(sys.argv[1:])", "$(id)", "a b;c"))
    result = run_command(step, _secrets(), timeout=10, cwd=str(tmp_path))
    assert result.ok, result
    assert result.output.strip() == str(["$(id)", "a b;c"])  # no expansion, no splitting


def test_text_command_is_split_like_a_shell_but_not_run_by_one(tmp_path: Path) -> None:
    step = RunStep("echo 'one two' $HOME ; true")
    result = run_command(step, _secrets(), timeout=10, cwd=str(tmp_path))
    assert result.ok, result
    assert result.output == "one two $HOME ; true\n"


def test_the_tail_is_the_last_characters(tmp_path: Path) -> None:
    step = RunStep((sys.executable, "-c", "print('a' * 5000 + 'END')"))
    result = run_command(step, _secrets(), timeout=10, cwd=str(tmp_path))
    assert result.ok
    assert len(result.output) == TAIL_CHARS
    assert result.output.endswith("aEND\n")


def test_non_zero_exit_fails_with_its_code(tmp_path: Path) -> None:
    step = RunStep("echo about to fail; exit 3", shell=True)
    result = run_command(step, _secrets(), timeout=10, cwd=str(tmp_path))
    assert not result.ok
    assert result.exit_code == 3
    assert result.error == "exit code 3"
    assert "about to fail" in result.output
    assert result.details()["exit_code"] == 3
    assert result.details()["error"] == "exit code 3"


def test_hanging_command_and_its_children_are_killed_at_the_timeout(tmp_path: Path) -> None:
    step = RunStep("sleep 30 & echo $! > child.pid; echo started; sleep 30", shell=True)
    began = time.monotonic()
    result = run_command(step, _secrets(), timeout=0.5, cwd=str(tmp_path))
    took = time.monotonic() - began
    assert took < 5, took
    assert not result.ok
    assert result.exit_code is None
    assert result.error == "timed out after 0.5s"
    assert result.output == "started\n"
    assert 0.5 <= result.duration < 5
    child = int((tmp_path / "child.pid").read_text())
    deadline = time.monotonic() + 5
    while not _gone(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(child), "the background child survived the timeout"


def test_tick_is_called_while_a_command_runs(tmp_path: Path) -> None:
    ticks: list[float] = []
    result = run_command(
        RunStep(("sleep", "0.4")), _secrets(), timeout=10, cwd=str(tmp_path), tick=lambda: ticks.append(1)
    )
    assert result.ok
    assert len(ticks) >= 2


def test_missing_program_fails_without_an_exit_code(tmp_path: Path) -> None:
    result = run_command(RunStep("no-such-program-cortex-test --flag"), _secrets(), 10, str(tmp_path))
    assert not result.ok
    assert result.exit_code is None
    assert result.error.startswith("cannot start:")
    assert "No such file" in result.error


def test_unbalanced_quotes_fail_the_step(tmp_path: Path) -> None:
    result = run_command(RunStep("echo 'unterminated"), _secrets(), 10, str(tmp_path))
    assert not result.ok
    assert result.error


def test_secret_is_resolved_at_run_time_and_redacted_from_output(tmp_path: Path) -> None:
    script = "import sys; print(len(sys.argv) - 1, sys.argv[1]); open('seen', 'w').write(sys.argv[1])"
    step = RunStep(f'{sys.executable} -c "{script}" ${{env:TOKEN}}')
    result = run_command(step, _secrets(), timeout=10, cwd=str(tmp_path))
    assert result.ok, result
    assert (tmp_path / "seen").read_text() == SECRET  # the program got the real value, as one argument
    assert result.output == f"1 {REDACTED}\n"
    assert SECRET not in json.dumps(result.details())


def test_secret_in_a_shell_line_and_in_argv(tmp_path: Path) -> None:
    shell = RunStep("printf '%s|' \"${env:TOKEN}\" ${env:OTHER}; exit 4", shell=True)
    result = run_command(shell, _secrets(OTHER="plain2"), timeout=10, cwd=str(tmp_path))
    assert result.exit_code == 4
    assert result.output == f"{REDACTED}|{REDACTED}|"
    argv = RunStep(("sh", "-c", 'echo "$1" >&2', "sh", "prefix-${env:TOKEN}-suffix"))
    result = run_command(argv, _secrets(), timeout=10, cwd=str(tmp_path))
    assert result.output == f"prefix-{REDACTED}-suffix\n"


def test_missing_secret_fails_the_step_and_runs_nothing(tmp_path: Path) -> None:
    step = RunStep("touch ran; echo ${env:CORTEX_TEST_UNSET_VAR}", shell=True)
    result = run_command(step, Secrets({}, allowed={"CORTEX_TEST_UNSET_VAR"}), timeout=10, cwd=str(tmp_path))
    assert not result.ok
    assert result.exit_code is None
    assert "CORTEX_TEST_UNSET_VAR" in result.error and "not set" in result.error
    assert not (tmp_path / "ran").exists()


def test_redaction_prefers_the_longest_value() -> None:
    secrets = Secrets({"A": "abc", "B": "abcdef"}, allowed={"A", "B"})
    assert secrets.resolve("${env:A} ${env:B} $HOME ${env}") == "abc abcdef $HOME ${env}"
    assert secrets.redact("xx abcdef abc") == f"xx {REDACTED} {REDACTED}"


def test_empty_secret_is_not_redacted_everywhere() -> None:
    secrets = Secrets({"EMPTY": ""}, allowed={"EMPTY"})
    assert secrets.resolve("a${env:EMPTY}b") == "ab"
    assert secrets.redact("text stays") == "text stays"


# --- HTTP -----------------------------------------------------------------------------------


class Service(HttpServer):
    """Answers "answer from PATH" with a status by path (/ok 200, /created 201, /fail 500,
    /missing 404, else 200); /echo answers the Authorization header and the body as JSON; /slow
    answers after 2 s."""

    def answer(self, request: Received) -> Reply:
        if request.path.startswith("/slow"):
            time.sleep(2)
        path = urlsplit(request.path).path
        status = {"/ok": 200, "/created": 201, "/fail": 500, "/missing": 404}.get(path, 200)
        if path == "/echo":
            text = json.dumps({"auth": request.headers.get("authorization"), "body": request.text()})
        else:
            text = f"answer from {request.path}"
        return Reply(status, text.encode(), (("Content-Type", "text/plain"),))


@pytest.fixture
def service() -> Iterator[Service]:
    with Service() as srv:
        yield srv


def test_expected_status_succeeds(service: Service) -> None:
    step = HttpStep("POST", f"{service.origin}/created", (200, 201), body='{"v": 2}')
    result = http_request(step, _secrets(), timeout=5, allowed_hosts=LOCAL)
    assert result.ok, result
    assert result.status == 201
    assert result.output == "answer from /created"
    assert result.details()["status"] == 201 and "exit_code" not in result.details()
    (req,) = service.requests
    assert (req.method, req.path, req.text()) == ("POST", "/created", '{"v": 2}')
    assert req.headers["content-type"] == "application/json"


@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "PATCH", "DELETE"])
def test_methods_are_sent_as_given(service: Service, method: str) -> None:
    result = http_request(
        HttpStep(method, f"{service.origin}/ok"), _secrets(), timeout=5, allowed_hosts=LOCAL
    )
    assert result.ok, result
    assert service.requests[0].method == method


@pytest.mark.parametrize(("path", "status"), [("/fail", 500), ("/missing", 404), ("/created", 201)])
def test_unexpected_status_fails(service: Service, path: str, status: int) -> None:
    result = http_request(
        HttpStep("GET", f"{service.origin}{path}"), _secrets(), timeout=5, allowed_hosts=LOCAL
    )
    assert not result.ok
    assert result.status == status
    assert result.error == f"status {status}, expected 200"


def test_status_list_is_named_in_the_error(service: Service) -> None:
    result = http_request(
        HttpStep("GET", f"{service.origin}/fail", (200, 204)), _secrets(), timeout=5, allowed_hosts=LOCAL
    )
    assert result.error == "status 500, expected 200 or 204"


def test_connection_refused_fails() -> None:
    result = http_request(
        HttpStep("GET", f"http://127.0.0.1:{free_port()}/x"), _secrets(), timeout=5, allowed_hosts=LOCAL
    )
    assert not result.ok
    assert result.status is None
    assert result.error.startswith("request failed:")
    assert "refused" in result.error.lower()


def test_timeout_fails(service: Service) -> None:
    began = time.monotonic()
    result = http_request(
        HttpStep("GET", f"{service.origin}/slow"), _secrets(), timeout=0.3, allowed_hosts=LOCAL
    )
    assert time.monotonic() - began < 1.8
    assert not result.ok
    assert "timed out" in result.error


def test_secrets_in_headers_url_and_body_are_sent_but_redacted(service: Service) -> None:
    step = HttpStep(
        "POST",
        f"{service.origin}/echo?key=${{env:KEY}}",
        headers=(("Authorization", "Bearer ${env:TOKEN}"),),
        body='{"token": "${env:TOKEN}"}',
    )
    result = http_request(step, _secrets(KEY="url-key-123"), timeout=5, allowed_hosts=LOCAL)
    assert result.ok, result
    (req,) = service.requests
    assert req.headers["authorization"] == f"Bearer {SECRET}"  # the service got the real value
    assert req.path == "/echo?key=url-key-123"
    assert req.text() == json.dumps({"token": SECRET})
    assert SECRET not in result.output
    assert f"Bearer {REDACTED}" in result.output
    assert SECRET not in json.dumps(result.details())


def test_error_text_is_redacted_too() -> None:
    # Whatever the error says goes through the redaction: here the "secret" is a word of it.
    port = free_port()
    step = HttpStep("GET", f"http://127.0.0.1:{port}/${{env:WORD}}")
    result = http_request(
        step, Secrets({"WORD": "refused"}, allowed={"WORD"}), timeout=5, allowed_hosts=LOCAL
    )
    assert not result.ok
    assert result.error.startswith("request failed:")
    assert "refused" not in result.error
    assert REDACTED in result.error


def test_a_response_that_is_not_http_fails_the_step(garbage: Garbage) -> None:
    result = http_request(
        HttpStep("GET", f"{garbage.origin}/deploy"), _secrets(), timeout=5, allowed_hosts=LOCAL
    )
    assert not result.ok
    assert result.error.startswith("request failed:")


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:${env:TOKEN}/x", "http://127.0.0.1:1/${env:TOKEN}"],
    ids=["non-numeric-port", "space-in-path"],
)
def test_a_url_http_client_refuses_fails_the_step_without_showing_the_secret(url: str) -> None:
    result = http_request(HttpStep("GET", url), _secrets(), timeout=5, allowed_hosts=LOCAL)
    assert not result.ok
    assert SECRET not in result.error


def test_a_malformed_ipv6_url_fails_the_step() -> None:
    result = http_request(HttpStep("GET", "http://[::1/x"), _secrets(), timeout=5, allowed_hosts=LOCAL)
    assert not result.ok


def test_missing_secret_fails_without_a_request(service: Service) -> None:
    step = HttpStep("GET", f"{service.origin}/ok", headers=(("X-Key", "${env:CORTEX_TEST_UNSET_VAR}"),))
    result = http_request(
        step, Secrets({}, allowed={"CORTEX_TEST_UNSET_VAR"}), timeout=5, allowed_hosts=LOCAL
    )
    assert not result.ok
    assert "CORTEX_TEST_UNSET_VAR" in result.error
    assert service.requests == []


def test_step_result_details_round() -> None:
    details = StepResult(False, 1.23456, status=502, output="tail", error="why").details()
    assert details == {
        "ok": False,
        "duration_seconds": 1.235,
        "status": 502,
        "output_tail": "tail",
        "error": "why",
    }
