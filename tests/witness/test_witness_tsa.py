"""The RFC 3161 witness against a real local timestamp authority (tests/tsa_support.py): a test CA
and TSA certificate generated here, TimeStampResps built and signed per request."""

from __future__ import annotations

import base64

import pytest

from cortex_change.witness import WitnessError, tsa
from support import free_port
from tsa_support import Pki, TsaServer

DATA = b'{"at":"2025-01-01T00:00:00Z","head":"ab","key_id":"k1","length":3,"previous":null}'


def test_granted_token_verifies_online_and_offline(tsa_server: TsaServer, pki: Pki) -> None:
    stamp = tsa.stamp(tsa_server.url("/tsa"), DATA)
    sent = tsa_server.requests[0]
    assert sent.headers["content-type"] == "application/timestamp-query"
    assert stamp.serial == 1 and stamp.nonce is not None
    assert stamp.tsa == "CN=cortex-change test TSA" and stamp.policy == "1.3.6.1.4.1.99999.1"
    offline = tsa.verify_token(stamp.token, DATA, [pki.ca_pem()])
    assert offline.gen_time == stamp.gen_time and offline.serial == 1
    receipt = stamp.receipt(tsa.authority(tsa_server.url("/tsa")))
    assert base64.b64decode(receipt["token"]) == stamp.token
    assert receipt["gen_time"].endswith("Z") and receipt["authority"] == tsa_server.origin


def test_request_asks_for_the_certificate_with_a_fresh_nonce(tsa_server: TsaServer) -> None:
    from asn1crypto import tsp

    tsa.stamp(tsa_server.url(), DATA)
    tsa.stamp(tsa_server.url(), DATA)
    first, second = (tsp.TimeStampReq.load(r.body) for r in tsa_server.requests)
    assert first["cert_req"].native is True
    assert first["message_imprint"]["hash_algorithm"]["algorithm"].native == "sha256"
    assert first["nonce"].native != second["nonce"].native


def test_rsa_tsa_verifies() -> None:
    rsa_pki = Pki("rsa")
    with TsaServer(rsa_pki) as srv:
        stamp = tsa.stamp(srv.url(), DATA)
    tsa.verify_token(stamp.token, DATA, [rsa_pki.ca_pem()])


def test_token_for_other_bytes_is_refused_offline(tsa_server: TsaServer) -> None:
    stamp = tsa.stamp(tsa_server.url(), DATA)
    with pytest.raises(WitnessError, match="imprint does not match the checkpoint's signed bytes"):
        tsa.verify_token(stamp.token, DATA + b" ")


def test_untrusted_ca_is_refused(tsa_server: TsaServer) -> None:
    stamp = tsa.stamp(tsa_server.url(), DATA)
    stranger = Pki()
    with pytest.raises(WitnessError, match="does not chain to a trusted certificate"):
        tsa.verify_token(stamp.token, DATA, [stranger.ca_pem()])


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("imprint", "imprint does not match"),
        ("nonce", "does not carry our nonce"),
        ("signature", "signature does not verify"),
        ("tstinfo", "signed digest does not match its TSTInfo"),
        ("ess", "ESS signing certificate is not its signer's"),
        ("rejection", r"answered status rejection \(test authority says no; failInfo bad_request\)"),
        ("garbage", "not a TimeStampResp"),
    ],
)
def test_bad_answers_are_refused_in_one_line(tsa_server: TsaServer, mode: str, message: str) -> None:
    tsa_server.mode = mode
    with pytest.raises(WitnessError, match=message) as caught:
        tsa.stamp(tsa_server.url(), DATA)
    assert "\n" not in str(caught.value)
    assert caught.value.retry is False


def test_waiting_and_server_errors_are_retried(tsa_server: TsaServer) -> None:
    tsa_server.mode = "waiting"
    with pytest.raises(WitnessError, match="status waiting") as waiting:
        tsa.stamp(tsa_server.url(), DATA)
    tsa_server.mode = "http500"
    with pytest.raises(WitnessError, match="answered HTTP 500") as down:
        tsa.stamp(tsa_server.url(), DATA)
    assert waiting.value.retry and down.value.retry


def test_unreachable_tsa_is_an_error_to_retry() -> None:
    url = f"http://127.0.0.1:{free_port()}/tsa"
    with pytest.raises(WitnessError, match=r"cannot reach timestamp authority http://127\.0\.0\.1:\d+:") as e:
        tsa.stamp(url, DATA, timeout=2)
    assert e.value.retry is True


def test_certificate_without_critical_timestamping_usage_is_refused() -> None:
    for pki in (Pki(eku_critical=False), Pki(eku="codesigning")):
        with TsaServer(pki) as srv, pytest.raises(WitnessError, match="is not a TSA certificate"):
            tsa.stamp(srv.url(), DATA)


def test_credentials_in_the_url_become_basic_auth_and_are_never_shown(tsa_server: TsaServer) -> None:
    url = tsa_server.url("/tsa").replace("http://", "http://user:s3cret@")
    tsa.stamp(url, DATA)
    assert (
        tsa_server.requests[-1].headers["authorization"]
        == "Basic " + base64.b64encode(b"user:s3cret").decode()
    )
    tsa_server.mode = "http500"
    with pytest.raises(WitnessError) as caught:
        tsa.stamp(url, DATA)
    assert "s3cret" not in str(caught.value) and "user" not in str(caught.value)


def test_oversized_answer_is_refused(tsa_server: TsaServer) -> None:
    with pytest.raises(WitnessError, match="more than 100 bytes"):
        tsa.stamp(tsa_server.url(), DATA, limit=100)


def test_not_http_url_is_refused() -> None:
    with pytest.raises(WitnessError, match="AUDIT_TSA_URL: the URL is not http"):
        tsa.stamp("file:///etc/passwd", DATA)


def test_malformed_token_is_one_line() -> None:
    with pytest.raises(WitnessError, match="the timestamp token is malformed"):
        tsa.verify_token(b"\x30\x03\x02\x01\x01", DATA)
