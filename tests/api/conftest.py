"""The real server as a subprocess (`cortex-change serve`) on a store, and tokens made by the real CLI."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest

from cortex_change.config import KEYS_BY_NAME
from support import backend_store, free_port

CLI = shutil.which("cortex-change", path=str(Path(sys.executable).parent))
# The identities the default configuration gives roles to (TECH_LEADS, CAB_MEMBERS, CISO, CTO).
IDENTITIES = ("alice", "tech-lead", "ops-lead", "security-lead", "ciso", "cto")
_SCRUBBED = {*KEYS_BY_NAME, "CORTEX_CHANGE_USER", "CORTEX_CHANGE_CONFIG"}


class Ran(NamedTuple):
    code: int
    out: str
    err: str


def environment(store: str, home: Path) -> dict[str, str]:
    """os.environ without any cortex-change setting, pointed at `store`."""
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    env["CORTEX_CHANGE_DB"] = store
    env["XDG_DATA_HOME"] = str(home / "xdg")
    return env


def run_cli(store: str, cwd: Path, *args: str) -> Ran:
    """The real console script with `--db store`, from `cwd` (no cortex-change.toml there)."""
    assert CLI is not None, f"cortex-change is not installed next to {sys.executable}"
    proc = subprocess.run(
        [CLI, "--db", store, *args],
        env=environment(store, cwd),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return Ran(proc.returncode, proc.stdout, proc.stderr)


class Server:
    """`cortex-change serve` on a free port; its combined output goes to a log file."""

    def __init__(self, store: str, cwd: Path, *, access_log: bool = False) -> None:
        self.store = store
        self.cwd = cwd
        self.access_log = access_log
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = cwd / f"server-{uuid.uuid4().hex[:6]}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        assert CLI is not None
        self.port = free_port()
        args = [CLI, "serve", "--port", str(self.port)]
        if not self.access_log:
            args.append("--no-access-log")
        self.log_path = self.cwd / f"server-{self.port}.log"
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                args, env=environment(self.store, self.cwd), cwd=self.cwd, stdout=log, stderr=log
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}: {self.log()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server did not answer /healthz in 30 s: {self.log()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class Api:
    """A running server on a store, with a token per identity (made by the real CLI)."""

    def __init__(self, server: Server, tokens: dict[str, str], revoked: str) -> None:
        self.server = server
        self.tokens = tokens
        self.revoked = revoked
        self._clients: dict[str, httpx.Client] = {}

    @property
    def store(self) -> str:
        return self.server.store

    def as_(self, who: str) -> httpx.Client:
        """A client authenticated as `who`."""
        if who not in self._clients:
            self._clients[who] = httpx.Client(
                base_url=f"{self.server.url}/api/v1",
                headers={"Authorization": f"Bearer {self.tokens[who]}"},
                timeout=30,
            )
        return self._clients[who]

    def anonymous(self) -> httpx.Client:
        return httpx.Client(base_url=f"{self.server.url}/api/v1", timeout=30)

    def cli(self, *args: str) -> Ran:
        return run_cli(self.store, self.server.cwd, *args)

    def create(self, who: str = "alice", **fields: Any) -> dict[str, Any]:
        body = {"type": "normal", "category": "deployment", "title": "Deploy new feature X", **fields}
        r = self.as_(who).post("/changes", json=body)
        assert r.status_code == 201, r.text
        doc: dict[str, Any] = r.json()
        return doc

    def close(self) -> None:
        for c in self._clients.values():
            c.close()


def make_token(store: str, cwd: Path, name: str) -> str:
    res = run_cli(store, cwd, "token", "create", name)
    assert res.code == 0, res.err
    token = res.out.strip()
    assert token.startswith("cc_"), res.out
    return token


@contextlib.contextmanager
def serving(store: str, cwd: Path, toml: str | None = None) -> Iterator[Api]:
    """A live server on `store` (with `toml` as its cortex-change.toml), stopped afterwards."""
    if toml is not None:
        (cwd / "cortex-change.toml").write_text(toml)
    running = start_api(store, cwd)
    try:
        yield running
    finally:
        running.close()
        running.server.stop()


def start_api(store: str, cwd: Path, *, access_log: bool = False) -> Api:
    tokens = {name: make_token(store, cwd, name) for name in IDENTITIES}
    revoked = make_token(store, cwd, "mallory")
    res = run_cli(store, cwd, "token", "revoke", revoked.split("_")[1])
    assert res.code == 0, res.err
    server = Server(store, cwd, access_log=access_log).start()
    return Api(server, tokens, revoked)


@pytest.fixture
def api(store_url: str, tmp_path: Path) -> Iterator[Api]:
    """A fresh server on a fresh store (each backend in turn)."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    with serving(store_url, cwd) as running:
        yield running


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def shared_api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """One server per backend for a whole module (tests create their own changes).

    Same backends as the `store_url` fixture, at module scope so the server starts once.
    """
    cwd = tmp_path_factory.mktemp("api")
    with serving(backend_store(request, cwd), cwd) as running:
        yield running
