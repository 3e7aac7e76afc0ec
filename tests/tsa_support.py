"""A local RFC 3161 timestamp authority for tests: a test CA and a TSA certificate generated here
(cryptography's x509 builder), and a real HTTP server on 127.0.0.1 that answers each
TimeStampReq with a TimeStampResp it builds and signs (asn1crypto), or spoils on purpose.

Importable as `tsa_support` from every test folder (tests/ is on pytest's pythonpath).
"""

from __future__ import annotations

import hashlib
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as ax509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from support import HttpServer, Received, Reply

START = datetime(2024, 1, 1, tzinfo=UTC)
POLICY = "1.3.6.1.4.1.99999.1"
Key = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _new_key(kind: str) -> Key:
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


class Pki:
    """A test CA and a TSA certificate it issued (extendedKeyUsage timeStamping, critical unless
    `eku_critical` is false; `eku` names another usage to make a certificate no TSA may use)."""

    def __init__(self, kind: str = "ec", *, eku_critical: bool = True, eku: str = "timestamping") -> None:
        self.ca_key = _new_key("ec")
        self.ca_cert = self._certificate(
            _name("cortex-change test CA"), self.ca_key, self.ca_key, _name("cortex-change test CA"), ca=True
        )
        self.key = _new_key(kind)
        usage = (
            ExtendedKeyUsageOID.TIME_STAMPING if eku == "timestamping" else ExtendedKeyUsageOID.CODE_SIGNING
        )
        self.cert = self._certificate(
            _name("cortex-change test TSA"),
            self.key,
            self.ca_key,
            self.ca_cert.subject,
            ca=False,
            eku=(usage, eku_critical),
        )

    @staticmethod
    def _certificate(
        subject: x509.Name,
        key: Key,
        signer: Key,
        issuer: x509.Name,
        *,
        ca: bool,
        eku: tuple[Any, bool] | None = None,
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(START)
            .not_valid_after(START + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if eku is not None:
            builder = builder.add_extension(x509.ExtendedKeyUsage([eku[0]]), critical=eku[1])
        return builder.sign(signer, hashes.SHA256())

    def ca_pem(self) -> bytes:
        return self.ca_cert.public_bytes(serialization.Encoding.PEM)


def _sign(key: Key, message: bytes) -> tuple[bytes, str]:
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(message, padding.PKCS1v15(), hashes.SHA256()), "sha256_rsa"
    return key.sign(message, ec.ECDSA(hashes.SHA256())), "sha256_ecdsa"


def token(
    pki: Pki,
    imprint: Any,
    nonce: int | None,
    *,
    serial: int = 1,
    gen_time: datetime | None = None,
    spoil: str = "",
) -> cms.ContentInfo:
    """A TimeStampToken over `imprint` (a tsp.MessageImprint) signed by the TSA certificate.

    `spoil`: "signature" flips a bit of the signature, "tstinfo" alters the TSTInfo after signing,
    "ess" names another certificate in the ESS attribute.
    """
    info = tsp.TSTInfo(
        {
            "version": "v1",
            "policy": POLICY,
            "message_imprint": imprint,
            "serial_number": serial,
            "gen_time": gen_time or datetime.now(UTC).replace(microsecond=0),
            "accuracy": {"seconds": 1},
            "nonce": nonce,
        }
    )
    econtent = info.dump()
    cert = ax509.Certificate.load(pki.cert.public_bytes(serialization.Encoding.DER))
    ca = ax509.Certificate.load(pki.ca_cert.public_bytes(serialization.Encoding.DER))
    named = ca if spoil == "ess" else cert
    attrs = cms.CMSAttributes(
        [
            cms.CMSAttribute({"type": "content_type", "values": ["tst_info"]}),
            cms.CMSAttribute({"type": "message_digest", "values": [hashlib.sha256(econtent).digest()]}),
            cms.CMSAttribute(
                {
                    "type": "signing_certificate_v2",
                    "values": [{"certs": [{"cert_hash": hashlib.sha256(named.dump()).digest()}]}],
                }
            ),
        ]
    )
    signature, algorithm = _sign(pki.key, attrs.dump())
    if spoil == "signature":
        signature = signature[:-1] + bytes([signature[-1] ^ 1])
    if spoil == "tstinfo":
        info = tsp.TSTInfo.load(econtent)
        info = tsp.TSTInfo({**_fields(info), "serial_number": serial + 1000})
    signer = cms.SignerInfo(
        {
            "version": "v1",
            "sid": {"issuer_and_serial_number": {"issuer": cert.issuer, "serial_number": cert.serial_number}},
            "digest_algorithm": {"algorithm": "sha256"},
            "signed_attrs": attrs,
            "signature_algorithm": {"algorithm": algorithm},
            "signature": signature,
        }
    )
    signed = cms.SignedData(
        {
            "version": "v3",
            "digest_algorithms": [algos.DigestAlgorithm({"algorithm": "sha256"})],
            "encap_content_info": {"content_type": "tst_info", "content": info},
            "certificates": [cert, ca],
            "signer_infos": [signer],
        }
    )
    return cms.ContentInfo({"content_type": "signed_data", "content": signed})


def _fields(info: tsp.TSTInfo) -> dict[str, Any]:
    return {name: info[name] for name, _spec, *_ in tsp.TSTInfo._fields if info[name].native is not None}


def response(status: str, tst: cms.ContentInfo | None = None, text: str = "") -> bytes:
    """A DER TimeStampResp: a status (with optional text), and the token when granted."""
    info: dict[str, Any] = {"status": status}
    if text:
        info["status_string"] = [text]
    if status not in ("granted", "granted_with_mods"):
        info["fail_info"] = {"bad_request"}
    if tst is None:  # asn1crypto's TimeStampResp requires the token RFC 3161 makes optional
        status_der = tsp.PKIStatusInfo(info).dump()
        return bytes(core.Sequence.load(b"\x30" + _length(len(status_der)) + status_der).dump())
    return bytes(tsp.TimeStampResp({"status": info, "time_stamp_token": tst}).dump())


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


class TsaServer(HttpServer):
    """A timestamp authority on a free port of 127.0.0.1. `mode` says how it answers:
    "granted"; "imprint" or "nonce" (a token for another imprint / nonce); "signature", "tstinfo",
    "ess" (a spoiled token, see `token`); "rejection" / "waiting" (that status, no token);
    "http500"; "garbage" (not DER)."""

    def __init__(self, pki: Pki | None = None) -> None:
        self.pki = pki or Pki()
        self.mode = "granted"
        self._serials = itertools.count(1)
        super().__init__()

    def answer(self, request: Received) -> Reply:
        if request.method != "POST" or request.headers.get("content-type") != "application/timestamp-query":
            return Reply(415, b"want application/timestamp-query")
        mode = self.mode
        if mode == "http500":
            return Reply(500, b"down")
        if mode == "garbage":
            return Reply(200, b"<html>not a timestamp</html>", (("Content-Type", "text/html"),))
        if mode in ("rejection", "waiting"):
            return self._reply(response(mode, text="test authority says no"))
        req = tsp.TimeStampReq.load(request.body)
        imprint = req["message_imprint"]
        nonce = req["nonce"].native
        if mode == "imprint":
            imprint = tsp.MessageImprint(
                {"hash_algorithm": {"algorithm": "sha256"}, "hashed_message": hashlib.sha256(b"x").digest()}
            )
        if mode == "nonce":
            nonce = nonce + 1
        spoil = mode if mode in ("signature", "tstinfo", "ess") else ""
        tst = token(self.pki, imprint, nonce, serial=next(self._serials), spoil=spoil)
        return self._reply(response("granted", tst))

    @staticmethod
    def _reply(body: bytes) -> Reply:
        return Reply(200, body, (("Content-Type", "application/timestamp-reply"),))
