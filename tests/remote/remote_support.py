"""A real `cortex-change serve` on a temporary SQLite store, and the real CLI as its client.

(A module of its own, not conftest.py: test folders share the module name `conftest`.)
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import NamedTuple

from cortex_change.config import KEYS_BY_NAME
from support import free_port

CLI = shutil.which("cortex-change", path=str(Path(sys.executable).parent))
_SCRUBBED = {
    *KEYS_BY_NAME,
    "CORTEX_CHANGE_USER",
    "CORTEX_CHANGE_CONFIG",
    "CORTEX_CHANGE_URL",
    "CORTEX_CHANGE_TOKEN",
}
ID = re.compile(r"RFC-\d{14}-[0-9a-f]{6}")


class Run(NamedTuple):
    code: int
    out: str
    err: str


class Server:
    """One server process; `local(...)` runs the CLI on its store, `client(token, ...)` through it."""

    def __init__(self, root: Path) -> None:
        assert CLI is not None, f"cortex-change is not installed next to {sys.executable}"
        self.root = root
        self.cwd = root / "cwd"
        self.cwd.mkdir(parents=True)
        self.db = root / "server" / "store.db"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.nowhere = root / "no-such-dir" / "client.db"  # the client must never use a local store
        self.proc: subprocess.Popen[bytes] | None = None
        self.tokens: dict[str, str] = {}

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
        env["XDG_DATA_HOME"] = str(self.root / "xdg")
        env.update(extra)
        return env

    def run(self, args: tuple[str, ...], env: dict[str, str]) -> Run:
        assert CLI is not None
        proc = subprocess.run(
            [CLI, *args], env=env, cwd=self.cwd, capture_output=True, timeout=60, check=False
        )
        return Run(proc.returncode, proc.stdout.decode(), proc.stderr.decode())

    def local(self, *args: str, user: str | None = None, db: Path | None = None) -> Run:
        """The CLI without a server, on the server's store (or `db`)."""
        extra = {"CORTEX_CHANGE_DB": str(db or self.db)}
        if user:
            extra["CORTEX_CHANGE_USER"] = user
        return self.run(args, self.env(**extra))

    def client(self, who: str, *args: str, url: str | None = None, **extra: str) -> Run:
        """The CLI as a client: CORTEX_CHANGE_URL and `who`'s token, no usable local store."""
        settings = {
            "CORTEX_CHANGE_URL": url or self.url,
            "CORTEX_CHANGE_TOKEN": self.token(who),
            "CORTEX_CHANGE_DB": str(self.nowhere),
            **extra,
        }
        env = self.env(**settings)
        return self.run(args, env)

    def token(self, who: str) -> str:
        if who not in self.tokens:
            res = self.local("token", "create", who)
            assert res.code == 0, res.err
            self.tokens[who] = res.out.strip()
        return self.tokens[who]

    def start(self) -> None:
        assert CLI is not None
        self.token("alice")  # creates the store before the server opens it
        self.proc = subprocess.Popen(
            [CLI, "serve", "--port", str(self.port), "--no-access-log", "--log-level", "warning"],
            env=self.env(CORTEX_CHANGE_DB=str(self.db)),
            cwd=self.cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"the server exited: {err}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the server did not answer /healthz within 30 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()


def has_whoami(srv: Server) -> bool:
    """Whether the server can tell a token's identity (GET /api/v1/whoami)."""
    request = urllib.request.Request(
        f"{srv.url}/api/v1/whoami", headers={"Authorization": f"Bearer {srv.token('alice')}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def same_ids(text: str, ids: dict[str, str]) -> str:
    """Change ids replaced by their order of appearance, so two stores' outputs compare."""

    def name(m: re.Match[str]) -> str:
        return ids.setdefault(m.group(0), f"<id{len(ids)}>")

    return ID.sub(name, text)
