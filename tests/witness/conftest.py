"""Fixtures for the witnesses: direct connections to 127.0.0.1, a local RFC 3161 timestamp
authority (tests/tsa_support.py) and a local S3 endpoint (moto's ThreadedMotoServer)."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from support import free_port
from tsa_support import Pki, TsaServer

BUCKET = "cortex-witness"


@pytest.fixture(autouse=True)
def _direct(direct: None) -> None:
    """No developer's proxy between the witnesses and 127.0.0.1 (see `direct` in tests/conftest.py)."""


@pytest.fixture(scope="module")
def pki() -> Pki:
    """A test CA and the TSA certificate it issued (EC P-256)."""
    return Pki()


@pytest.fixture
def tsa_server(pki: Pki) -> Iterator[TsaServer]:
    with TsaServer(pki) as srv:
        yield srv


@pytest.fixture
def s3_endpoint(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """A moto S3 server on a free port with the bucket BUCKET; credentials in the standard AWS
    environment only (no AWS config file is read)."""
    from moto.server import ThreadedMotoServer

    from cortex_change.witness import s3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing-key-id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret-key")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        url = f"http://127.0.0.1:{port}"
        # moto keeps its buckets in the process, across servers: each test starts from none.
        urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST")).close()
        s3.client(url).create_bucket(Bucket=BUCKET)
        yield url
    finally:
        server.stop()
