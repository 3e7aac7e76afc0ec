"""An S3-compatible bucket as a witness: each checkpoint one object, never overwritten.

`AUDIT_WITNESS_S3=s3://bucket/prefix` puts checkpoint N at `prefix/<length>-<head>.json`, its body
the witness line (the signed fields and the signature, as `domain/checkpoints.py` writes it). A
witness is append-only: the PUT carries `If-None-Match: *` (AWS S3, MinIO and Ceph refuse to
replace an existing key with 412) after a HEAD that finds no object there (for servers that ignore
the header); an object already holding the same bytes is the earlier attempt of this very upload
and is taken as done, one holding other bytes is never replaced. `AUDIT_WITNESS_S3_ENDPOINT` points
at an S3-compatible server (path-style addressing). Credentials come from the standard AWS
environment, config files or instance role (boto3's chain), never from cortex-change's own
configuration, and never appear in a message. boto3 is the `witness` extra, imported only here.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any, Final

from ..domain.checkpoints import Checkpoint, parse
from ..domain.errors import ValidationError
from ..domain.values import Frozen
from . import WitnessError, missing

if TYPE_CHECKING:
    from ..services.context import Context

NAME = re.compile(r"(?:^|/)(\d+)-([0-9a-f]{64})\.json$")
MAX_OBJECT = 64 * 1024  # a checkpoint's line is ~400 bytes: anything far larger is not one
TIMEOUTS = {"connect_timeout": 10, "read_timeout": 30}


class Location(Frozen):
    """Where the witness objects go: a bucket and a key prefix ("" for the bucket's root)."""

    __slots__ = ("bucket", "prefix")

    def __init__(self, bucket: str, prefix: str) -> None:
        self.bucket: Final = bucket
        self.prefix: Final = prefix

    def key(self, length: int, head: str) -> str:
        name = f"{length}-{head}.json"
        return f"{self.prefix}/{name}" if self.prefix else name

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"


def location(url: str) -> Location:
    """`s3://bucket[/prefix]` as a Location; a one-line ValidationError otherwise."""
    if not url.startswith("s3://"):
        raise ValidationError("AUDIT_WITNESS_S3", f"{url[:80]!r} is not s3://bucket/prefix")
    bucket, _, prefix = url[len("s3://") :].partition("/")
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket):
        raise ValidationError("AUDIT_WITNESS_S3", f"{bucket[:80]!r} is not an S3 bucket name")
    return Location(bucket, prefix.strip("/"))


class Entry(Frozen):
    """A witness object as listed: its key, the length and head its name says, its ETag."""

    __slots__ = ("etag", "head", "key", "length")

    def __init__(self, key: str, length: int, head: str, etag: str) -> None:
        self.key: Final = key
        self.length: Final = length
        self.head: Final = head
        self.etag: Final = etag


def client(endpoint: str | None = None) -> Any:
    """A boto3 S3 client on the standard AWS credential chain; `endpoint` for S3-compatible servers."""
    try:
        import boto3
        from botocore.config import Config
    except ImportError as exc:
        raise missing("the S3 checkpoint witness (AUDIT_WITNESS_S3)", exc) from None
    from botocore.exceptions import BotoCoreError

    options: dict[str, Any] = {"retries": {"max_attempts": 2, "mode": "standard"}, **TIMEOUTS}
    if endpoint:
        options["s3"] = {"addressing_style": "path"}  # MinIO, Ceph: no per-bucket DNS names
    try:
        return boto3.session.Session().client("s3", endpoint_url=endpoint or None, config=Config(**options))
    except (BotoCoreError, ValueError) as exc:  # a malformed endpoint, a broken AWS config file
        raise WitnessError(f"{_where(endpoint)}: cannot set up the client: {type(exc).__name__}") from None


def _where(endpoint: str | None) -> str:
    from ..notify.http import origin

    if not endpoint:
        return "S3"
    try:
        return f"S3 at {origin(endpoint)}"
    except ValueError:
        return "S3 at AUDIT_WITNESS_S3_ENDPOINT"


def _code(exc: Exception) -> tuple[str, int]:
    response = getattr(exc, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return code, status


def _failure(exc: Exception, what: str, where: str) -> WitnessError:
    """A botocore error as one line (its class and the server's code; never a credential)."""
    from botocore import exceptions as bex

    if isinstance(exc, bex.NoCredentialsError | bex.PartialCredentialsError):
        return WitnessError(
            f"{where}: no AWS credentials for {what} (set them in the standard AWS environment or config)"
        )
    if isinstance(exc, bex.ClientError):
        code, status = _code(exc)
        again = status >= 500 or status in (408, 409, 429) or code in ("SlowDown", "RequestTimeout")
        return WitnessError(f"{where}: {what} failed: {code or status} (HTTP {status})", retry=again)
    if isinstance(exc, bex.EndpointConnectionError | bex.ConnectionError | bex.HTTPClientError):
        return WitnessError(f"{where}: cannot reach it for {what}: {type(exc).__name__}", retry=True)
    return WitnessError(f"{where}: {what} failed: {type(exc).__name__}: {exc}", retry=True)


def _errors() -> tuple[type[Exception], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError)


def body(checkpoint: Checkpoint) -> bytes:
    """The object's bytes: the checkpoint's witness line (signed fields + signature) and a newline."""
    return (checkpoint.line() + "\n").encode("utf-8")


def publish(ctx: Context, checkpoint: Checkpoint, signed_bytes: bytes) -> dict[str, Any]:
    """The witness (services/checkpoints.py's WITNESSES["s3"]): AUDIT_WITNESS_S3, at
    AUDIT_WITNESS_S3_ENDPOINT if set; the receipt (bucket, key, ETag)."""
    endpoint = ctx.settings["AUDIT_WITNESS_S3_ENDPOINT"] or None
    return put_checkpoint(ctx.settings["AUDIT_WITNESS_S3"], checkpoint, endpoint)


def put_checkpoint(
    url: str, checkpoint: Checkpoint, endpoint: str | None = None, s3: Any = None
) -> dict[str, Any]:
    """Put `checkpoint` under `url` unless it is already there; the receipt (bucket, key, ETag)."""
    where = location(url)
    return put(
        s3 or client(endpoint),
        where,
        where.key(checkpoint.length, checkpoint.head),
        body(checkpoint),
        _where(endpoint),
    )


def put(s3: Any, where: Location, key: str, data: bytes, server: str = "S3") -> dict[str, Any]:
    """Create `key` with `data`, never replacing another object; a receipt, or WitnessError."""
    existing = _existing(s3, where, key, data, server)
    if existing is not None:
        return existing
    conditional = [True]  # dropped for a server that answers the header 501 Not Implemented

    def if_none_match(request: Any, **_: Any) -> None:
        if conditional[0]:
            request.headers["If-None-Match"] = "*"

    # A header, not put_object's IfNoneMatch parameter: botocore before 1.35 does not know it.
    s3.meta.events.register("before-sign.s3.PutObject", if_none_match)
    try:
        for _attempt in range(2):
            try:
                answer = s3.put_object(
                    Bucket=where.bucket, Key=key, Body=data, ContentType="application/json"
                )
                return _receipt(where, key, str(answer.get("ETag", "")))
            except _errors() as exc:
                code, status = _code(exc)
                if status == 412 or code == "PreconditionFailed":  # created meanwhile
                    done = _existing(s3, where, key, data, server)
                    if done is not None:
                        return done
                    raise _failure(exc, f"put {key}", server) from None
                if status == 501 and conditional[0]:
                    conditional[0] = False  # the HEAD above stands guard alone
                    continue
                raise _failure(exc, f"put {key}", server) from None
    finally:
        s3.meta.events.unregister("before-sign.s3.PutObject", if_none_match)
    raise WitnessError(f"{server}: put {key} failed")  # pragma: no cover  # the loop returns or raises


def _receipt(where: Location, key: str, etag: str) -> dict[str, Any]:
    return {"bucket": where.bucket, "key": key, "etag": etag}


def _existing(s3: Any, where: Location, key: str, data: bytes, server: str) -> dict[str, Any] | None:
    """The receipt of the object already at `key` if it holds `data`; None if there is none;
    WitnessError if it holds anything else (a witness is never overwritten)."""
    try:
        s3.head_object(Bucket=where.bucket, Key=key)
    except _errors() as exc:
        code, status = _code(exc)
        if status == 404 or code in ("404", "NoSuchKey", "NotFound"):
            return None
        raise _failure(exc, f"check {key}", server) from None
    held, etag = get(s3, where, key, server)
    if held != data:
        raise WitnessError(
            f"{server}: s3://{where.bucket}/{key} already holds another checkpoint; a witness is "
            "append-only, so it is left as it is (compare it with `audit checkpoints`)"
        )
    return _receipt(where, key, etag)


def get(s3: Any, where: Location, key: str, server: str = "S3") -> tuple[bytes, str]:
    """An object's bytes (at most MAX_OBJECT) and ETag."""
    try:
        answer = s3.get_object(Bucket=where.bucket, Key=key)
        data: bytes = answer["Body"].read(MAX_OBJECT + 1)
        answer["Body"].close()
    except _errors() as exc:
        raise _failure(exc, f"get {key}", server) from None
    if len(data) > MAX_OBJECT:
        raise WitnessError(f"{server}: s3://{where.bucket}/{key} is larger than a checkpoint can be")
    return data, str(answer.get("ETag", ""))


def listing(s3: Any, where: Location, server: str = "S3") -> list[Entry]:
    """The witness objects under the prefix, in chain order (other keys are ignored)."""
    found = []
    try:
        pages = s3.get_paginator("list_objects_v2").paginate(
            Bucket=where.bucket, Prefix=f"{where.prefix}/" if where.prefix else ""
        )
        for page in pages:
            for obj in page.get("Contents", ()):
                key = str(obj["Key"])
                rest = key[len(where.prefix) + 1 :] if where.prefix else key
                named = NAME.fullmatch(rest) if "/" not in rest else None
                if named:
                    found.append(Entry(key, int(named[1]), named[2], str(obj.get("ETag", ""))))
    except _errors() as exc:
        raise _failure(exc, f"list {where}", server) from None
    return sorted(found, key=lambda e: (e.length, e.key))


def read_back(url: str, endpoint: str | None = None, s3: Any = None) -> list[Checkpoint]:
    """Every checkpoint the bucket holds under `url`, parsed and checked against its key's name."""
    where, server = location(url), _where(endpoint)
    s3 = s3 or client(endpoint)
    out = []
    for entry in listing(s3, where, server):
        data, _etag = get(s3, where, entry.key, server)
        name = f"s3://{where.bucket}/{entry.key}"
        try:
            checkpoint = parse(json.loads(data), name)
        except ValueError as exc:  # not JSON, or not UTF-8
            raise WitnessError(f"{name} is not a checkpoint: {exc}") from None
        except ValidationError as exc:
            raise WitnessError(str(exc)) from None
        if (checkpoint.length, checkpoint.head) != (entry.length, entry.head):
            raise WitnessError(f"{name} holds {checkpoint.name()}, not the one its name says")
        out.append(checkpoint)
    return out
