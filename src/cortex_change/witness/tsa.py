"""An RFC 3161 timestamp authority as a witness: a checkpoint's signed bytes stamped with a time.

`stamp` asks the authority (a TimeStampReq: SHA-256 imprint, a random nonce, certReq) and checks
its answer as `verify_token` does offline: the token's TSTInfo carries our imprint (and nonce),
its CMS signature over the TSTInfo verifies with the signer certificate carried in the token (an
RFC 3161 TSA certificate: extendedKeyUsage timeStamping only, critical, valid at genTime, and named
by the ESS signing-certificate attribute), and, given trusted CA certificates, that certificate
chains to one of them. ASN.1 is asn1crypto's, signatures are cryptography's (the `witness` extra).
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import os
import urllib.error
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import unquote, urlsplit, urlunsplit

from ..domain.values import Frozen
from . import WitnessError, missing

if TYPE_CHECKING:
    from cryptography import x509

    from ..domain.checkpoints import Checkpoint
    from ..services.context import Context

QUERY_TYPE = "application/timestamp-query"
MAX_RESPONSE = 256 * 1024  # a token with its certificate chain is a few KiB
TIMEOUT = 10.0
MAX_CHAIN = 8
# Hashes accepted for imprints and signatures; SHA-1 only names a certificate (ESS v1).
HASHES = ("sha256", "sha384", "sha512")
GRANTED = ("granted", "granted_with_mods")


class Stamp(Frozen):
    """A checked timestamp token: its DER bytes, the time the authority vouches for, and who."""

    __slots__ = ("gen_time", "nonce", "policy", "serial", "token", "tsa")

    def __init__(
        self, token: bytes, gen_time: datetime, serial: int, nonce: int | None, tsa: str, policy: str
    ) -> None:
        self.token: Final = token
        self.gen_time: Final = gen_time
        self.serial: Final = serial
        self.nonce: Final = nonce
        self.tsa: Final = tsa  # the signer certificate's subject (RFC 4514)
        self.policy: Final = policy  # the TSA policy OID

    def receipt(self, authority: str) -> dict[str, Any]:
        """What is stored with the checkpoint: the token (base64 DER), genTime, serial, who, where."""
        return {
            "token": base64.b64encode(self.token).decode("ascii"),
            "gen_time": self.gen_time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "serial": str(self.serial),
            "tsa": self.tsa,
            "policy": self.policy,
            "authority": authority,
        }


def _asn1() -> Any:
    try:
        from asn1crypto import tsp
    except ImportError as exc:
        raise missing("the RFC 3161 timestamp witness", exc) from None
    return tsp


_RESPONSE: list[Any] = []


def _response_spec() -> Any:
    """TimeStampResp with its token OPTIONAL, as RFC 3161 has it (asn1crypto requires it, so a
    rejection, which carries none, would not parse)."""
    if not _RESPONSE:
        tsp = _asn1()
        from asn1crypto import cms

        fields = [
            ("status", tsp.PKIStatusInfo),
            ("time_stamp_token", cms.ContentInfo, {"optional": True}),
        ]
        _RESPONSE.append(type("TimeStampResp", (tsp.TimeStampResp,), {"_fields": fields}))
    return _RESPONSE[0]


def _crypto() -> None:
    try:
        import cryptography  # noqa: F401
    except ImportError as exc:
        raise missing("the RFC 3161 timestamp witness", exc) from None


def new_nonce() -> int:
    """A random positive 63-bit nonce (an ASN.1 INTEGER without a sign byte)."""
    return int.from_bytes(os.urandom(8), "big") >> 1


def request(data: bytes, nonce: int) -> bytes:
    """The DER TimeStampReq for `data`: SHA-256 imprint, `nonce`, certReq true."""
    tsp = _asn1()
    return bytes(
        tsp.TimeStampReq(
            {
                "version": "v1",
                "message_imprint": {
                    "hash_algorithm": {"algorithm": "sha256"},
                    "hashed_message": hashlib.sha256(data).digest(),
                },
                "nonce": nonce,
                "cert_req": True,
            }
        ).dump()
    )


def stamp(url: str, data: bytes, *, timeout: float = TIMEOUT, limit: int = MAX_RESPONSE) -> Stamp:
    """Ask the authority at `url` to timestamp `data`; the checked token, or WitnessError."""
    _crypto()
    nonce = new_nonce()
    raw = post(url, request(data, nonce), timeout=timeout, limit=limit)
    return read_response(raw, data, nonce, authority(url))


def publish(ctx: Context, checkpoint: Checkpoint, signed_bytes: bytes) -> dict[str, Any]:
    """The witness (services/checkpoints.py's WITNESSES["tsa"]): `signed_bytes` stamped by
    AUDIT_TSA_URL, the token checked (and chained to AUDIT_TSA_CA when set); the receipt."""
    url: str = ctx.settings["AUDIT_TSA_URL"]
    stamped = stamp(url, signed_bytes)
    trusted = trusted_from(ctx.settings["AUDIT_TSA_CA"])
    if trusted is not None:
        verify_token(stamped.token, signed_bytes, trusted)
    return stamped.receipt(authority(url))


def trusted_from(setting: str) -> list[bytes] | None:
    """AUDIT_TSA_CA: a file of CA certificates (PEM or DER) the TSA must chain to; None when unset."""
    if not setting:
        return None
    try:
        with open(setting, "rb") as f:
            return [f.read()]
    except OSError as exc:
        raise WitnessError(f"AUDIT_TSA_CA: cannot read {setting}: {exc.strerror or exc}") from None


def check_receipt(receipt: dict[str, Any], signed_bytes: bytes, trusted: list[bytes] | None) -> Stamp:
    """A stored receipt's token verified offline against the checkpoint's signed bytes; its genTime
    must be the one the receipt records."""
    checked = verify_token(decode(receipt), signed_bytes, trusted)
    recorded = str(receipt.get("gen_time", ""))
    if checked.receipt("")["gen_time"] != recorded:
        raise WitnessError(f"the stored genTime {recorded[:40]!r} is not the token's")
    return checked


def check_stored(
    receipts: Sequence[dict[str, Any]], checkpoints: Sequence[Checkpoint], trusted: list[bytes] | None
) -> tuple[int, list[tuple[Checkpoint, str]]]:
    """The delivered `tsa` receipts (store/checkpoints.py's rows) checked against their checkpoints:
    how many verified, and each checkpoint whose token does not, with why."""
    by_number = {c.number: c for c in checkpoints}
    good, bad = 0, []
    for row in receipts:
        c = by_number.get(int(row["number"]))
        if row["witness"] != "tsa" or row["state"] != "delivered" or c is None:
            continue
        try:
            check_receipt(row["receipt"] or {}, c.signed_bytes(), trusted)
        except WitnessError as exc:
            bad.append((c, f"{c.name()}'s RFC 3161 timestamp token is rejected: {exc}"))
        else:
            good += 1
    return good, bad


def authority(url: str) -> str:
    """scheme://host[:port] of the authority's URL: what messages and receipts name (never its
    credentials or path)."""
    from ..notify.http import origin

    try:
        return origin(url)
    except ValueError:
        return "the timestamp authority"


def _target(url: str) -> tuple[str, dict[str, str]]:
    """The URL without userinfo, and the Basic authorization header its userinfo stands for."""
    try:
        parts = urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        _ = parts.port  # a port that is not a number raises ValueError
    except ValueError:
        ok = False
    if not ok:
        raise WitnessError("AUDIT_TSA_URL: the URL is not http(s)://host[:port]/…")
    if parts.username is None:
        return url, {}
    netloc = parts.netloc.rpartition("@")[2]
    pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
    header = {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}
    return urlunsplit(parts._replace(netloc=netloc)), header


def post(url: str, body: bytes, *, timeout: float = TIMEOUT, limit: int = MAX_RESPONSE) -> bytes:
    """POST a TimeStampReq; the response body (at most `limit` bytes), or a one-line WitnessError."""
    from .. import __version__
    from ..outbound import no_redirect_opener

    target, auth = _target(url)
    where = authority(url)
    headers = {"Content-Type": QUERY_TYPE, "User-Agent": f"cortex-change/{__version__}", **auth}
    req = urllib.request.Request(target, data=body, method="POST", headers=headers)
    try:
        with no_redirect_opener().open(req, timeout=timeout) as response:
            raw: bytes = response.read(limit + 1)
    except urllib.error.HTTPError as exc:
        again = exc.code >= 500 or exc.code in (408, 429)
        raise WitnessError(f"timestamp authority {where} answered HTTP {exc.code}", retry=again) from None
    except urllib.error.URLError as exc:
        raise WitnessError(f"cannot reach timestamp authority {where}: {exc.reason}", retry=True) from None
    except (OSError, http.client.HTTPException) as exc:  # timeouts and resets while reading
        reason = f"timestamp authority {where} failed: {type(exc).__name__}: {exc}"
        raise WitnessError(reason, retry=True) from None
    if len(raw) > limit:
        raise WitnessError(f"timestamp authority {where} answered more than {limit} bytes")
    return raw


def read_response(raw: bytes, data: bytes, nonce: int, where: str = "the timestamp authority") -> Stamp:
    """A TimeStampResp checked against our request: granted, and a token that `verify_token`
    accepts for `data` carrying our nonce."""
    try:
        resp = _response_spec().load(raw)
        info = resp["status"]
        status = info["status"].native
        token = resp["time_stamp_token"]
        detail = _status_detail(info)
        token_der = None if token.native is None else bytes(token.dump())
    except (ValueError, TypeError, KeyError) as exc:
        raise WitnessError(f"{where} answered something that is not a TimeStampResp: {exc}") from None
    if status not in GRANTED:
        raise WitnessError(f"{where} answered status {status}{detail}", retry=status == "waiting")
    if token_der is None:
        raise WitnessError(f"{where} answered status {status} without a timestamp token")
    checked = verify_token(token_der, data)
    if checked.nonce != nonce:
        raise WitnessError(f"{where}'s token does not carry our nonce (a replayed or misdirected answer)")
    return checked


def _status_detail(info: Any) -> str:
    texts = [str(t) for t in (info["status_string"].native or [])]
    fail = info["fail_info"].native
    failures = sorted(str(f) for f in fail) if isinstance(fail, set) else []
    parts = [*texts, *(f"failInfo {f}" for f in failures)]
    return f" ({'; '.join(parts)})" if parts else ""


def verify_token(token: bytes, data: bytes, trusted: Sequence[bytes | str] | None = None) -> Stamp:
    """Check a DER TimeStampToken for `data` offline: the imprint, the signature with the signer
    certificate carried in the token, that certificate's TSA usage and validity at genTime; with
    `trusted` (CA certificates, PEM or DER), that it chains to one of them."""
    _crypto()
    try:
        return _verify(token, data, trusted)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        # asn1crypto parses lazily: a malformed part of the token fails where it is first read
        raise WitnessError(f"the timestamp token is malformed: {type(exc).__name__}: {exc}") from None


def _verify(token: bytes, data: bytes, trusted: Sequence[bytes | str] | None) -> Stamp:
    from cryptography import x509 as cx509

    signed_data, info, econtent = _open(token)
    _check_imprint(info, data)
    gen_time = info["gen_time"].native.astimezone(UTC)
    carried = _carried(signed_data)
    signers = list(signed_data["signer_infos"])
    if len(signers) != 1:
        raise WitnessError(f"the timestamp token has {len(signers)} signers (RFC 3161: exactly one)")
    signer = signers[0]
    cert_asn1 = _signer_certificate(signer, carried)
    cert = cx509.load_der_x509_certificate(bytes(cert_asn1.dump()))
    _check_signed_attributes(signer, econtent, bytes(cert_asn1.dump()))
    _check_signature(signer, cert)
    _check_tsa_certificate(cert, gen_time)
    if trusted is not None:
        pool = [cx509.load_der_x509_certificate(bytes(c.dump())) for c in carried]
        _check_chain(cert, pool, anchors(trusted), gen_time)
    nonce = info["nonce"].native
    return Stamp(
        token,
        gen_time,
        int(info["serial_number"].native),
        None if nonce is None else int(nonce),
        cert.subject.rfc4514_string(),
        str(info["policy"].dotted),
    )


def _open(token: bytes) -> tuple[Any, Any, bytes]:
    """SignedData, its TSTInfo and the TSTInfo's DER (the signed content), or WitnessError."""
    _asn1()  # registers tst_info with cms
    from asn1crypto import cms

    try:
        content = cms.ContentInfo.load(token)
        if content["content_type"].native != "signed_data":
            raise ValueError(f"content type {content['content_type'].native}, not signed_data")
        signed_data = content["content"]
        encap = signed_data["encap_content_info"]
        if encap["content_type"].native != "tst_info":
            raise ValueError(f"it encapsulates {encap['content_type'].native}, not a TSTInfo")
        econtent = bytes(encap["content"].contents)
        info = encap["content"].parsed
        info.native  # noqa: B018  # parse it all now: a malformed field fails here, not later
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise WitnessError(f"the timestamp token is malformed: {exc}") from None
    return signed_data, info, econtent


def _hash(name: str, data: bytes) -> bytes:
    if name not in HASHES:
        raise WitnessError(f"the timestamp token uses {name}, not one of {', '.join(HASHES)}")
    return hashlib.new(name, data).digest()


def _check_imprint(info: Any, data: bytes) -> None:
    imprint = info["message_imprint"]
    algorithm = imprint["hash_algorithm"]["algorithm"].native
    if imprint["hashed_message"].native != _hash(algorithm, data):
        raise WitnessError(
            "the timestamp token's message imprint does not match the checkpoint's signed bytes"
        )


def _carried(signed_data: Any) -> list[Any]:
    """The certificates the token carries (asn1crypto x509.Certificate)."""
    certs = signed_data["certificates"]
    return [c.chosen for c in certs if c.name == "certificate"] if certs.native is not None else []


def _signer_certificate(signer: Any, carried: list[Any]) -> Any:
    sid = signer["sid"]
    for cert in carried:
        if sid.name == "issuer_and_serial_number":
            wanted = sid.chosen
            if cert.issuer == wanted["issuer"] and cert.serial_number == wanted["serial_number"].native:
                return cert
        elif cert.key_identifier == sid.chosen.native:
            return cert
    raise WitnessError("the timestamp token does not carry its signer's certificate")


def _attributes(signer: Any) -> dict[str, Any]:
    attrs = signer["signed_attrs"]
    if attrs.native is None:
        raise WitnessError("the timestamp token's signature has no signed attributes")
    return {a["type"].native: a["values"] for a in attrs}


def _check_signed_attributes(signer: Any, econtent: bytes, cert_der: bytes) -> None:
    """Content type TSTInfo, the message digest of the TSTInfo, the ESS certificate reference."""
    values = _attributes(signer)
    if "content_type" not in values or values["content_type"][0].native != "tst_info":
        raise WitnessError("the timestamp token's signed content type is not TSTInfo")
    digest_name = signer["digest_algorithm"]["algorithm"].native
    if "message_digest" not in values or values["message_digest"][0].native != _hash(digest_name, econtent):
        raise WitnessError("the timestamp token's signed digest does not match its TSTInfo (altered)")
    if "signing_certificate_v2" in values:
        ess = values["signing_certificate_v2"][0]["certs"][0]
        wanted = hashlib.new(ess["hash_algorithm"]["algorithm"].native, cert_der).digest()
    elif "signing_certificate" in values:
        ess = values["signing_certificate"][0]["certs"][0]
        wanted = hashlib.sha1(cert_der, usedforsecurity=False).digest()
    else:
        raise WitnessError("the timestamp token names no signing certificate (ESS attribute)")
    if ess["cert_hash"].native != wanted:
        raise WitnessError("the timestamp token's ESS signing certificate is not its signer's")


def _check_signature(signer: Any, cert: x509.Certificate) -> None:
    """The signature over the DER SET OF signed attributes, with the certificate's public key."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

    algorithm = signer["signature_algorithm"]
    kind = algorithm.signature_algo
    hash_name = signer["digest_algorithm"]["algorithm"].native
    if hash_name not in HASHES:
        raise WitnessError(f"the timestamp token is signed with {hash_name}, not one of {', '.join(HASHES)}")
    digest = getattr(hashes, hash_name.upper())()
    attrs = bytes(signer["signed_attrs"].dump())
    message = b"\x31" + attrs[1:]  # signed as a SET OF, not as the [0] IMPLICIT it is stored as
    signature = bytes(signer["signature"].native)
    key = cert.public_key()
    try:
        if kind == "rsassa_pkcs1v15" and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, message, padding.PKCS1v15(), digest)
        elif kind == "rsassa_pss" and isinstance(key, rsa.RSAPublicKey):
            params = algorithm["parameters"]
            mgf = params["mask_gen_algorithm"]["parameters"]["algorithm"].native
            pss = padding.PSS(padding.MGF1(getattr(hashes, mgf.upper())()), params["salt_length"].native)
            pss_hash = getattr(hashes, params["hash_algorithm"]["algorithm"].native.upper())()
            key.verify(signature, message, pss, pss_hash)
        elif kind == "ecdsa" and isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, message, ec.ECDSA(digest))
        elif kind == "ed25519" and isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, message)
        else:
            raise WitnessError(f"the timestamp token's signature ({kind}) does not fit its certificate's key")
    except InvalidSignature:
        raise WitnessError("the timestamp token's signature does not verify (altered or forged)") from None


def _check_tsa_certificate(cert: x509.Certificate, at: datetime) -> None:
    """RFC 3161 §2.3: extendedKeyUsage critical with timeStamping alone; valid at genTime."""
    from cryptography import x509 as cx509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    who = cert.subject.rfc4514_string()
    try:
        eku = cert.extensions.get_extension_for_class(cx509.ExtendedKeyUsage)
    except cx509.ExtensionNotFound:
        eku = None
    if eku is None or not eku.critical or list(eku.value) != [ExtendedKeyUsageOID.TIME_STAMPING]:
        raise WitnessError(
            f"the timestamp token's signer ({who}) is not a TSA certificate "
            "(extendedKeyUsage must be timeStamping alone, critical)"
        )
    if not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
        raise WitnessError(f"the timestamp token's signer certificate ({who}) was not valid at genTime")


def anchors(trusted: Sequence[bytes | str]) -> list[x509.Certificate]:
    """Trusted CA certificates from PEM (one or several per entry) or DER."""
    from cryptography import x509 as cx509

    out = []
    for entry in trusted:
        raw = entry.encode() if isinstance(entry, str) else bytes(entry)
        try:
            if b"-----BEGIN" in raw:
                out.extend(cx509.load_pem_x509_certificates(raw))
            else:
                out.append(cx509.load_der_x509_certificate(raw))
        except ValueError as exc:
            raise WitnessError(f"a trusted certificate does not load: {exc}") from None
    return out


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    from cryptography.exceptions import InvalidSignature

    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _is_ca(cert: x509.Certificate, at: datetime) -> bool:
    from cryptography import x509 as cx509

    try:
        ca = bool(cert.extensions.get_extension_for_class(cx509.BasicConstraints).value.ca)
    except cx509.ExtensionNotFound:
        ca = False
    return ca and cert.not_valid_before_utc <= at <= cert.not_valid_after_utc


def _check_chain(
    cert: x509.Certificate, pool: list[x509.Certificate], trusted: list[x509.Certificate], at: datetime
) -> None:
    """The signer chains, through CA certificates the token carries, to a trusted certificate."""
    current = cert
    for _ in range(MAX_CHAIN):
        for anchor in trusted:
            if current == anchor or (current.issuer == anchor.subject and _issued_by(current, anchor)):
                return
        issuers = [
            c
            for c in pool
            if c != current and c.subject == current.issuer and _is_ca(c, at) and _issued_by(current, c)
        ]
        if not issuers:
            break
        current = issuers[0]
    raise WitnessError(
        f"the timestamp token's signer ({cert.subject.rfc4514_string()}) does not chain to a "
        "trusted certificate"
    )


def decode(receipt: dict[str, Any]) -> bytes:
    """The DER token of a stored receipt."""
    try:
        return base64.b64decode(str(receipt["token"]), validate=True)
    except (KeyError, ValueError) as exc:
        raise WitnessError(f"the stored timestamp receipt has no readable token: {exc}") from None
