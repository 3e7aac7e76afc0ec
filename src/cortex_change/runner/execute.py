"""Carrying out one executable step: a command (no shell unless asked) or an HTTP request."""

from __future__ import annotations

import contextlib
import fnmatch
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Collection, Iterable, Mapping

from ..domain.plan import SECRET_REF, HttpStep, RunStep
from ..domain.values import Frozen
from ..outbound import no_redirect_opener

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Final

TAIL_CHARS = 2000  # of stdout/stderr kept in the audit trail
POLL_SECONDS = 0.05
REDACTED = "***"
# What a command sees of the environment besides the RUNNER_ENV_PASSTHROUGH names (SPEC §11).
BASE_ENV = ("PATH", "HOME", "LANG")


class StepResult(Frozen):
    __slots__ = ("duration", "error", "exit_code", "ok", "output", "status")

    def __init__(
        self,
        ok: bool,
        duration: float,
        exit_code: int | None = None,
        status: int | None = None,
        output: str = "",
        error: str = "",
    ) -> None:
        self.ok: Final = ok
        self.duration: Final = duration
        self.exit_code: Final = exit_code
        self.status: Final = status  # HTTP status
        self.output: Final = output  # tail of stdout+stderr (or the response body), secrets redacted
        self.error: Final = error  # why it failed, one line

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
    """A `${env:NAME}` reference names a variable that is not set, or not one of PLAN_SECRETS."""


def step_environment(env: Mapping[str, str], passthrough: Iterable[str] = ()) -> dict[str, str]:
    """A command's whole environment: PATH, HOME, LANG and the passthrough names, those set."""
    return {name: env[name] for name in (*BASE_ENV, *passthrough) if name in env}


class Secrets:
    """Resolves `${env:NAME}` for the `allowed` names (PLAN_SECRETS) at run time; redacts their
    values, and the `hidden` ones (the server's own secret settings), from whatever steps show."""

    def __init__(
        self, env: Mapping[str, str], allowed: Collection[str] = (), hidden: Iterable[str] = ()
    ) -> None:
        self.env = env
        self.allowed = frozenset(allowed)
        self.values: set[str] = {value for value in hidden if value}

    def resolve(self, text: str) -> str:
        def sub(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in self.allowed:
                raise MissingSecret(
                    f"${{env:{name}}} is not allowed: list {name} in PLAN_SECRETS for steps to use it"
                )
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
    env: Mapping[str, str] | None = None,
) -> StepResult:
    """Run a command with exactly `env` (default: `step_environment` of this process, no
    passthrough); `tick` is called while it runs (lease heart-beats)."""
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
        return StepResult(False, 0.0, error=secrets.redact(str(exc)))
    try:
        proc = subprocess.Popen(
            argv,
            shell=step.shell,
            cwd=cwd,
            env=dict(step_environment(os.environ) if env is None else env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: a timeout kills children too
        )
    except OSError as exc:
        why = secrets.redact(f"cannot start: {exc.strerror or exc}")
        return StepResult(False, time.monotonic() - start, error=why)
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


def http_request(
    step: HttpStep, secrets: Secrets, timeout: float, allowed_hosts: Collection[str] = ()
) -> StepResult:
    """Make the request, when its host is one of `allowed_hosts` (HTTP_STEP_ALLOWED_HOSTS), without
    following redirects; the step succeeds when the status is one it expects."""
    start = time.monotonic()
    try:
        url = secrets.resolve(step.url)
        headers = {k: secrets.resolve(v) for k, v in step.headers}
        body = secrets.resolve(step.body).encode() if step.body is not None else None
    except MissingSecret as exc:
        return StepResult(False, 0.0, error=secrets.redact(str(exc)))
    refusal = host_refusal(url, allowed_hosts)
    if refusal:
        return StepResult(False, 0.0, error=secrets.redact(refusal))
    if body is not None:
        headers.setdefault("Content-Type", "application/json")
    status, text, error = fetch_url(
        url, timeout, method=step.method, body=body, headers=headers, follow_redirects=False
    )
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


def host_refusal(url: str, allowed: Collection[str]) -> str:
    """Why a step may not reach `url`'s host ("" when it may): the host urllib would connect to
    must match an entry of `allowed` (`host` or `host:port`, `*` wildcards, any case)."""
    import http.client

    if not allowed:
        return "HTTP steps reach no host: list the hosts they may reach in HTTP_STEP_ALLOWED_HOSTS"
    try:
        request = urllib.request.Request(url)
        target = (http.client.HTTPSConnection if request.type == "https" else http.client.HTTPConnection)(
            request.host
        )
    except (ValueError, http.client.HTTPException) as exc:
        return f"request failed: {type(exc).__name__}: {exc}"[:500]
    host, port = target.host.lower(), target.port
    if not re.fullmatch(r"[a-z0-9.:_-]+", host):
        return f"{host!r} is not a host name"
    for entry in allowed:
        pattern, want = _host_entry(entry.lower())
        if fnmatch.fnmatchcase(host, pattern) and want in (None, port):
            return ""
    shown = f"[{host}]" if ":" in host else host
    return f"{shown}:{port} is not in HTTP_STEP_ALLOWED_HOSTS ({', '.join(allowed)})"


def _host_entry(entry: str) -> tuple[str, int | None]:
    """(host pattern, port or None for any) of `host`, `host:port`, `[v6]` or `[v6]:port`."""
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        return host, int(rest[1:]) if rest[1:].isdigit() else None
    host, sep, port = entry.rpartition(":")
    if sep and port.isdigit() and ":" not in host:
        return host, int(port)
    return entry, None


def fetch_url(
    url: str,
    timeout: float,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    follow_redirects: bool = True,
) -> tuple[int | None, str, str]:
    """(status, body text, error) of one request; HTTP error statuses are answers, not errors
    (without `follow_redirects`, a 3xx too).

    Whatever goes wrong on the way (a bad URL, a refused connection, a server speaking
    nonsense) is an error string, never an exception: a step or a check fails, the runner goes on.
    """
    import http.client

    try:
        request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
        opener = urllib.request.build_opener() if follow_redirects else no_redirect_opener()
        with opener.open(request, timeout=timeout) as resp:
            return int(resp.status), resp.read(64_000).decode("utf-8", "replace"), ""
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read(64_000).decode("utf-8", "replace"), ""
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", None) or exc
        return None, "", f"request failed: {type(exc).__name__}: {reason}"[:500]


def _secs(seconds: float) -> str:
    return f"{seconds:g}s"
