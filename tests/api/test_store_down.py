"""Issue 11: the live server on a store that is down answers 503 in one line and never names the
store URL's password — not in /readyz (no token needed), not in any problem, not in its log."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support import free_port

from .conftest import CLI, Server, environment

SECRET = "S3cretPW"


@pytest.fixture(params=["userinfo", "query", "sslpassword"])
def down(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    """A server whose PostgreSQL URL names a closed port, with a password in the URL."""
    port = free_port()  # bound, then released: nothing listens there
    url = {
        "userinfo": f"postgresql://cortex:{SECRET}@127.0.0.1:{port}/cortex",
        "query": f"postgresql://cortex@127.0.0.1:{port}/cortex?password={SECRET}",
        "sslpassword": f"postgresql://cortex@127.0.0.1:{port}/cortex?sslmode=disable&sslpassword={SECRET}",
    }[request.param]
    server = Server(url, tmp_path).start()
    try:
        yield server
    finally:
        server.stop()


def test_readyz_and_every_route_answer_503_without_the_password(down: Server) -> None:
    for path, headers in (
        ("/readyz", {}),
        ("/metrics", {}),
        ("/api/v1/changes", {}),
        ("/api/v1/changes", {"Authorization": "Bearer cc_abc_def"}),
    ):
        r = httpx.get(f"{down.url}{path}", headers=headers, timeout=30)
        assert r.status_code == 503, (path, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        problem = r.json()
        assert problem["title"] == "store unavailable"
        assert "cannot open the database postgresql://cortex" in problem["detail"]
        assert "***" in problem["detail"]
        assert SECRET not in r.text
    down.stop()
    assert SECRET not in down.log()
    assert "Traceback" not in down.log()


def test_serve_refuses_a_malformed_store_url_without_echoing_it(tmp_path: Path) -> None:
    assert CLI is not None
    url = f"postgresql://cortex:{SECRET}@[::1"
    proc = subprocess.run(
        [CLI, "serve", "--port", str(free_port())],
        env=environment(url, tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    shown = "'postgresql://cortex:***@[::1'"
    assert proc.stderr.splitlines() == [
        f"cortex-change: CORTEX_CHANGE_DB: {shown} is not a well-formed postgresql:// URL"
    ]
    assert SECRET not in proc.stdout + proc.stderr
