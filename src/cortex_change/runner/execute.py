"""Carrying out one executable step: a command (no shell unless asked) or an HTTP request."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ..domain.plan import SECRET_REF, HttpStep, RunStep

TAIL_CHARS = 2000  # of stdout/stderr kept in the audit trail
POLL_SECONDS = 0.05
REDACTED = "***"


@dataclass(frozen=True)
class StepResult:
    ok: bool
    duration: float
    exit_code: int | None = None
    status: int | None = None  # HTTP status
    output: str = ""  # tail of stdout+stderr (or the response body), secrets redacted
    error: str = ""  # why it failed, one line

    def details(self) -> dict[str, object]:
        out: dict[str, object] = {"ok": self.ok, "duration_seconds": round(self.duration, 3)}
        for key in ("exit_code", "status"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.output:
            out["output_tail"] = self.output
        if self.error:
            out["error"] = self.error
        return out


class MissingSecret(Exception):
    """A `${env:NAME}` reference names a variable that is not set."""


class Secrets:
    """Resolves `${env:NAME}` at run time and remembers the values to redact them from output."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.values: set[str] = set()

    def resolve(self, text: str) -> str:
        def sub(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in self.env:
                raise MissingSecret(f"environment variable {name} is not set (referenced as ${{env:{name}}})")
            value = self.env[name]
            if value:
                self.values.add(value)
            return value

        return SECRET_REF.sub(sub, text)

    def redact(self, text: str) -> str:
        for value in sorted(self.values, key=len, reverse=True):
            text = text.replace(value, REDACTED)
        return text


def run_command(
    step: RunStep,
    secrets: Secrets,
    timeout: float,
    cwd: str | None = None,
    tick: Callable[[], None] | None = None,
) -> StepResult:
    """Run a command; `tick` is called while it runs (lease heart-beats)."""
    start = time.monotonic()
    try:
        if isinstance(step.command, str) and not step.shell:
            import shlex

            argv: str | list[str] = [secrets.resolve(a) for a in shlex.split(step.command)]
        elif isinstance(step.command, str):
            argv = secrets.resolve(step.command)
        else:
            argv = [secrets.resolve(a) for a in step.command]
    except (MissingSecret, ValueError) as exc:
        return StepResult(False, 0.0, error=str(exc))
    try:
        proc = subprocess.Popen(
            argv,
            shell=step.shell,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: a timeout kills children too
        )
    except OSError as exc:
        return StepResult(False, time.monotonic() - start, error=f"cannot start: {exc.strerror or exc}")
    output, timed_out = _collect(proc, timeout, start, tick)
    duration = time.monotonic() - start
    tail = secrets.redact(output.decode("utf-8", "replace"))[-TAIL_CHARS:]
    if timed_out:
        return StepResult(False, duration, None, output=tail, error=f"timed out after {_secs(timeout)}")
    if proc.returncode != 0:
        return StepResult(False, duration, proc.returncode, output=tail, error=f"exit code {proc.returncode}")
    return StepResult(True, duration, 0, output=tail)


def _collect(
    proc: subprocess.Popen[bytes], timeout: float, start: float, tick: Callable[[], None] | None
) -> tuple[bytes, bool]:
    """Read output until exit, or until the timeout kills the whole process group (True)."""
    import threading

    chunks: list[bytes] = []
    stdout = proc.stdout
    assert stdout is not None
    reader = threading.Thread(target=lambda: chunks.append(stdout.read()), daemon=True)
    reader.start()
    timed_out = False
    while proc.poll() is None:
        if time.monotonic() - start >= timeout:
            timed_out = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            break
        if tick is not None:
            try:
                tick()
            except BaseException:  # the lease was lost: stop the command before giving up
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                raise
        time.sleep(POLL_SECONDS)
    reader.join(timeout=2)
    return b"".join(chunks), timed_out


def http_request(step: HttpStep, secrets: Secrets, timeout: float) -> StepResult:
    """Make the request; the step succeeds when the status is one it expects."""
    start = time.monotonic()
    try:
        url = secrets.resolve(step.url)
        headers = {k: secrets.resolve(v) for k, v in step.headers}
        body = secrets.resolve(step.body).encode() if step.body is not None else None
    except MissingSecret as exc:
        return StepResult(False, 0.0, error=str(exc))
    if body is not None:
        headers.setdefault("Content-Type", "application/json")
    status, text, error = fetch_url(url, timeout, method=step.method, body=body, headers=headers)
    duration = time.monotonic() - start
    text = secrets.redact(text)[-TAIL_CHARS:]
    if error:
        return StepResult(False, duration, status=status, output=text, error=secrets.redact(error))
    if status not in step.expect_status:
        want = " or ".join(map(str, step.expect_status))
        return StepResult(
            False, duration, status=status, output=text, error=f"status {status}, expected {want}"
        )
    return StepResult(True, duration, status=status, output=text)


def fetch_url(
    url: str,
    timeout: float,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int | None, str, str]:
    """(status, body text, error) of one request; HTTP error statuses are answers, not errors.

    Whatever goes wrong on the way (a bad URL, a refused connection, a server speaking
    nonsense) is an error string, never an exception: a step or a check fails, the runner goes on.
    """
    import http.client

    try:
        request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return int(resp.status), resp.read(64_000).decode("utf-8", "replace"), ""
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read(64_000).decode("utf-8", "replace"), ""
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", None) or exc
        return None, "", f"request failed: {type(exc).__name__}: {reason}"[:500]


def _secs(seconds: float) -> str:
    return f"{seconds:g}s"
