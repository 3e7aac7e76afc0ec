"""Ed25519 keys for audit checkpoints (docs/checkpoints.md): make, load, sign, verify.

The `cryptography` package (extra `audit`) is imported only here and only when a key is used, so
no other command pays for it. A private key is never printed, logged or stored in the database:
it is a file (mode 0600) or PEM text in AUDIT_SIGNING_KEY.
"""

from __future__ import annotations

import base64
import os

from .domain.errors import MissingPackage, Refused, ValidationError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any

KEY_SETTING = "AUDIT_SIGNING_KEY"
PEM_START = "-----BEGIN"


def _ed25519() -> Any:
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:
        raise MissingPackage("audit checkpoints (Ed25519 signatures)", "cryptography", "audit") from None
    return ed25519


def _serialization() -> Any:
    _ed25519()
    from cryptography.hazmat.primitives import serialization

    return serialization


def key_id_of(raw_public: bytes) -> str:
    """A key's id: the first 16 hex digits of SHA-256 over its raw 32 bytes."""
    from hashlib import sha256

    return sha256(raw_public).hexdigest()[:16]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class SigningKey:
    """A loaded private key, its public half (base64 of the raw bytes) and its id."""

    __slots__ = ("_private", "key_id", "public_key")

    def __init__(self, private: Any) -> None:
        s = _serialization()
        raw = private.public_key().public_bytes(s.Encoding.Raw, s.PublicFormat.Raw)
        self._private = private
        self.public_key = b64(raw)
        self.key_id = key_id_of(raw)

    def sign(self, data: bytes) -> str:
        """base64 of the Ed25519 signature over `data`."""
        return b64(self._private.sign(data))

    def __repr__(self) -> str:  # never the key itself
        return f"SigningKey({self.key_id})"


def load_signing_key(value: str) -> SigningKey:
    """AUDIT_SIGNING_KEY's key: a file path (mode 0600 or stricter) or PEM text. Refusals are one
    line and never quote the key."""
    if not value.strip():
        raise Refused(f"refusing to sign: {KEY_SETTING} is not set (make a key: audit keygen FILE)")
    if value.lstrip().startswith(PEM_START):
        return _parse_private(value.encode(), f"{KEY_SETTING} (PEM text)")
    try:
        st = os.stat(value)
    except FileNotFoundError:
        raise Refused(f"refusing to sign: the key file {value!r} ({KEY_SETTING}) does not exist") from None
    except OSError as exc:
        raise Refused(f"refusing to sign: the key file {value!r} cannot be read: {exc.strerror}") from None
    if st.st_mode & 0o077:
        raise Refused(
            f"refusing to sign: the key file {value!r} is readable by group or others "
            f"(mode {st.st_mode & 0o777:04o}); chmod 600 it"
        )
    try:
        with open(value, "rb") as fh:
            data = fh.read(64 * 1024)
    except OSError as exc:
        raise Refused(f"refusing to sign: the key file {value!r} cannot be read: {exc.strerror}") from None
    return _parse_private(data, f"the key file {value!r}")


def _parse_private(data: bytes, where: str) -> SigningKey:
    ed25519, s = _ed25519(), _serialization()
    try:
        private = s.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        private = None
    if not isinstance(private, ed25519.Ed25519PrivateKey):
        raise Refused(f"refusing to sign: {where} is not an unencrypted Ed25519 private key (PEM)")
    return SigningKey(private)


def generate(path: str) -> tuple[SigningKey, str]:
    """A new key written to `path` (mode 0600, never over an existing file) and its public half to
    `path`.pub; returns the key and the public file's path."""
    ed25519, s = _ed25519(), _serialization()
    private = ed25519.Ed25519PrivateKey.generate()
    pem = private.private_bytes(s.Encoding.PEM, s.PrivateFormat.PKCS8, s.NoEncryption())
    public_path = f"{path}.pub"
    for target in (path, public_path):
        if os.path.lexists(target):
            raise ValidationError("FILE", f"{target!r} exists: refusing to overwrite a key")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise ValidationError("FILE", f"cannot create {path!r}: {exc.strerror}") from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    os.chmod(path, 0o600)  # whatever the umask
    public_pem = private.public_key().public_bytes(s.Encoding.PEM, s.PublicFormat.SubjectPublicKeyInfo)
    with open(public_path, "xb") as fh:
        fh.write(public_pem)
    return SigningKey(private), public_path


def read_public(path: str) -> tuple[str, str]:
    """(key id, base64 raw key) of a public key file (PEM, as `audit keygen` writes FILE.pub)."""
    ed25519, s = _ed25519(), _serialization()
    try:
        with open(path, "rb") as fh:
            data = fh.read(64 * 1024)
    except OSError as exc:
        raise ValidationError(path, f"cannot be read: {exc.strerror}") from None
    try:
        public = s.load_pem_public_key(data)
    except (ValueError, TypeError):
        public = None
    if not isinstance(public, ed25519.Ed25519PublicKey):
        raise ValidationError(path, "is not an Ed25519 public key (PEM, as audit keygen writes FILE.pub)")
    raw = public.public_bytes(s.Encoding.Raw, s.PublicFormat.Raw)
    return key_id_of(raw), b64(raw)


def verify(public_key: str, signature: str, data: bytes) -> bool:
    """Whether `signature` (base64) is `public_key`'s (base64 raw) over `data`."""
    ed25519 = _ed25519()
    from cryptography.exceptions import InvalidSignature

    try:
        key = ed25519.Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key, validate=True))
        key.verify(base64.b64decode(signature, validate=True), data)
    except (InvalidSignature, ValueError):
        return False
    return True
