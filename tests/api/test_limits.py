"""SPEC §11 "Limits" at the live server (`cortex-change serve`), on SQLite and PostgreSQL:
headers ≤ 16 KiB (431), bodies ≤ 1 MiB (413), documents within PLAN_JSON_MAX and numbers
finite (422); a refused request stores nothing, and an endless header is never read whole."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .conftest import Api
from .test_api import PLANS, count, problem

KIB, MIB = 1024, 1024 * 1024


def _changes(api: Api) -> tuple[int, int]:
    """(changes, audit events) in the store."""
    return count(api, "SELECT count(*) FROM changes"), count(api, "SELECT count(*) FROM audit_events")


def _post_raw(api: Api, path: str, content: bytes | Iterator[bytes], who: str = "alice") -> httpx.Response:
    return api.as_(who).post(path, content=content, headers={"Content-Type": "application/json"})


def _rss_mib(pid: int) -> float:
    """Resident memory of a process, in MiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


# --- headers ------------------------------------------------------------------------------------


def test_headers_over_16_kib_are_refused_with_431(shared_api: Api) -> None:
    client = shared_api.as_("alice")
    assert client.get("/changes", headers={"X-Padding": "x" * (15 * KIB)}).status_code == 200
    body = problem(client.get("/changes", headers={"X-Padding": "x" * (17 * KIB)}), 431)
    assert body["detail"] == "request headers are larger than 16384 bytes"
    spread = {f"X-Pad-{i}": "y" * 1000 for i in range(20)}  # many headers add up
    problem(client.get("/changes", headers=spread), 431)


def _raw_request(port: int, head: bytes, filler: int, chunk: int = MIB) -> bytes:
    """Send `head`, then `filler` bytes of one header value; what the server answered (b"" when it
    reset the connection before the answer could be read)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        try:
            sock.sendall(head)
            block = b"a" * chunk
            for _ in range(filler // chunk):
                sock.sendall(block)
            sock.sendall(b"\r\n\r\n")
        except OSError:  # refused mid-way: the server stopped reading
            pass
        answer = b""
        try:
            while chunk_read := sock.recv(65536):
                answer += chunk_read
        except OSError:
            pass
        return answer


def test_a_head_far_over_the_limit_is_refused_as_it_arrives(shared_api: Api) -> None:
    head = b"GET /api/v1/changes HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
    answer = _raw_request(shared_api.server.port, head, 2 * MIB, chunk=64 * KIB)
    status, _, rest = answer.partition(b"\r\n")
    assert status == b"HTTP/1.1 431 Request Header Fields Too Large", answer[:300]
    headers, _, body = rest.partition(b"\r\n\r\n")
    assert b"content-type: application/problem+json" in headers
    assert json.loads(body)["status"] == 431


def test_a_100_mb_authorization_header_is_never_read_whole(shared_api: Api) -> None:
    server = shared_api.server
    assert server.proc is not None
    pid = server.proc.pid
    before = _rss_mib(pid)
    peak = [before]
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss_mib(pid))
            time.sleep(0.005)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
    answer = _raw_request(server.port, head, 100 * MIB)
    done.set()
    watcher.join()
    after = _rss_mib(pid)
    print(f"server RSS: before {before:.1f} MiB, peak {peak[0]:.1f} MiB, after {after:.1f} MiB")
    assert peak[0] - before < 50, (before, peak[0], after)
    assert answer == b"" or answer.startswith(b"HTTP/1.1 431 "), answer[:300]
    assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200  # still serving


# --- bodies -------------------------------------------------------------------------------------


def _big_body(size: int) -> bytes:
    doc = {"type": "normal", "category": "deployment", "title": "Big", "description": "d" * size}
    return json.dumps(doc).encode()


def test_a_body_over_1_mib_is_refused_with_413_by_its_length(shared_api: Api) -> None:
    stored = _changes(shared_api)
    body = problem(_post_raw(shared_api, "/changes", _big_body(2 * MIB)), 413)
    assert body["detail"] == "the body is larger than 1048576 bytes"
    assert _changes(shared_api) == stored


def test_a_streamed_body_over_1_mib_is_refused_with_413(shared_api: Api) -> None:
    stored = _changes(shared_api)
    whole = _big_body(MIB + 100 * KIB)

    def chunks() -> Iterator[bytes]:  # no Content-Length: sent chunked
        for at in range(0, len(whole), 64 * KIB):
            yield whole[at : at + 64 * KIB]

    problem(_post_raw(shared_api, "/changes", chunks()), 413)
    assert _changes(shared_api) == stored


def test_a_body_under_1_mib_reaches_the_rules(shared_api: Api) -> None:
    stored = _changes(shared_api)
    big = {"steps": ["x" * 200_000]}  # within 1 MiB, over PLAN_JSON_MAX
    r = shared_api.as_("alice").post(
        "/changes",
        json={"type": "normal", "category": "deployment", "title": "t", "implementation_plan": big},
    )
    assert "PLAN_JSON_MAX" in problem(r, 422)["detail"]
    assert _changes(shared_api) == stored


# --- finite numbers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"implementation_plan": {"steps": ["a"], "weight": float("nan")}}, "implementation_plan"),
        ({"rollback_plan": {"steps": ["a"], "n": [1, float("inf")]}}, "rollback_plan"),
        ({"validation": {"health_checks": [], "x": float("-inf")}}, "validation"),
        ({"parameters": {"replicas": float("nan")}}, "parameters"),
    ],
    ids=["implementation_plan", "rollback_plan", "validation", "parameters"],
)
def test_nan_and_infinity_are_refused_with_422(shared_api: Api, fields: dict[str, Any], where: str) -> None:
    stored = _changes(shared_api)
    doc = {"type": "normal", "category": "deployment", "title": "t", **PLANS, **fields}
    r = _post_raw(shared_api, "/changes", json.dumps(doc).encode())  # NaN, Infinity: what json.dumps writes
    assert problem(r, 422)["detail"] == f"{where}: numbers must be finite (NaN and Infinity are not allowed)"
    assert _changes(shared_api) == stored


def test_nan_in_an_update_is_refused_with_422(shared_api: Api) -> None:
    change_id = shared_api.create("alice", **PLANS)["change_id"]
    stored = _changes(shared_api)
    update = json.dumps({"test_plan": {"steps": [], "n": float("nan")}}).encode()
    r = shared_api.as_("alice").patch(
        f"/changes/{change_id}", content=update, headers={"Content-Type": "application/json"}
    )
    problem(r, 422)
    assert _changes(shared_api) == stored


def test_nan_in_integration_details_is_refused_with_422(shared_api: Api) -> None:
    stored = _changes(shared_api)
    body = json.dumps({"details": {"environment": "staging", "service": "svc", "n": float("nan")}})
    r = _post_raw(shared_api, "/integrations/cicd-master/deploy", body.encode(), who="ops-lead")
    assert problem(r, 422)["detail"] == "details: NaN is not allowed: numbers must be finite"
    assert _changes(shared_api) == stored
