"""The S3 witness against a real local S3 endpoint: moto's ThreadedMotoServer on 127.0.0.1."""

from __future__ import annotations

from typing import Any

import pytest

from cortex_change.domain.checkpoints import GENESIS, Checkpoint
from cortex_change.domain.errors import ValidationError
from cortex_change.witness import WitnessError, s3
from support import free_port

BUCKET = "cortex-witness"  # the bucket the `s3_endpoint` fixture creates (tests/witness/conftest.py)


def checkpoint(number: int, length: int, key_id: str = "k1") -> Checkpoint:
    head = f"{length:064x}"
    return Checkpoint(number, length, head, f"2025-01-0{number}T00:00:00Z", GENESIS, key_id, "c2lnbmF0dXJl")


def test_put_list_and_get_back(s3_endpoint: str) -> None:
    first, second = checkpoint(1, 3), checkpoint(2, 12)
    receipt = s3.put_checkpoint(f"s3://{BUCKET}/audit/prod", first, s3_endpoint)
    assert receipt["key"] == f"audit/prod/3-{first.head}.json" and receipt["bucket"] == BUCKET
    assert receipt["etag"].strip('"')
    s3.put_checkpoint(f"s3://{BUCKET}/audit/prod/", second, s3_endpoint)
    client = s3.client(s3_endpoint)
    client.put_object(Bucket=BUCKET, Key="audit/prod/README.txt", Body=b"not a checkpoint")
    entries = s3.listing(client, s3.location(f"s3://{BUCKET}/audit/prod"))
    assert [(e.length, e.head) for e in entries] == [(3, first.head), (12, second.head)]
    assert s3.read_back(f"s3://{BUCKET}/audit/prod", s3_endpoint) == [first, second]
    data, _ = s3.get(client, s3.location(f"s3://{BUCKET}/audit/prod"), receipt["key"])
    assert data == (first.line() + "\n").encode()


def test_publishing_again_is_the_same_object(s3_endpoint: str) -> None:
    c = checkpoint(1, 3)
    once = s3.put_checkpoint(f"s3://{BUCKET}", c, s3_endpoint)
    again = s3.put_checkpoint(f"s3://{BUCKET}", c, s3_endpoint)
    assert once == again and once["key"] == f"3-{c.head}.json"
    assert len(s3.listing(s3.client(s3_endpoint), s3.location(f"s3://{BUCKET}"))) == 1


def test_an_existing_other_object_is_never_overwritten(s3_endpoint: str) -> None:
    original = checkpoint(1, 3, key_id="k1")
    s3.put_checkpoint(f"s3://{BUCKET}/w", original, s3_endpoint)
    resigned = checkpoint(1, 3, key_id="k2")  # same length and head, other bytes
    with pytest.raises(WitnessError, match="already holds another checkpoint; a witness is append-only"):
        s3.put_checkpoint(f"s3://{BUCKET}/w", resigned, s3_endpoint)
    assert s3.read_back(f"s3://{BUCKET}/w", s3_endpoint) == [original]


def test_if_none_match_refuses_an_object_created_after_the_head(s3_endpoint: str) -> None:
    """The HEAD finds nothing; another writer creates the key before our PUT: the server refuses
    the PUT (If-None-Match: *, 412) and the other object stands."""
    client, other = s3.client(s3_endpoint), s3.client(s3_endpoint)
    c = checkpoint(1, 3)
    key = f"w/3-{c.head}.json"

    def race(**_: Any) -> None:
        other.put_object(Bucket=BUCKET, Key=key, Body=b"theirs")

    client.meta.events.register("before-call.s3.PutObject", race)
    with pytest.raises(WitnessError, match="already holds another checkpoint"):
        s3.put_checkpoint(f"s3://{BUCKET}/w", c, s3=client)
    assert s3.get(other, s3.location(f"s3://{BUCKET}/w"), key)[0] == b"theirs"


def test_read_back_refuses_an_object_whose_name_lies(s3_endpoint: str) -> None:
    client = s3.client(s3_endpoint)
    c = checkpoint(1, 3)
    client.put_object(Bucket=BUCKET, Key=f"w/4-{c.head}.json", Body=s3.body(c))
    with pytest.raises(WitnessError, match=r"holds checkpoint #1 .* not the one its name says"):
        s3.read_back(f"s3://{BUCKET}/w", s3_endpoint)
    client.put_object(Bucket=BUCKET, Key=f"v/4-{c.head}.json", Body=b"{}")
    with pytest.raises(WitnessError, match="is not a checkpoint"):
        s3.read_back(f"s3://{BUCKET}/v", s3_endpoint)


def test_missing_bucket_and_credentials_are_one_line(
    s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(WitnessError, match=r"S3 at http://127\.0\.0\.1:\d+: .*NoSuchBucket") as caught:
        s3.put_checkpoint("s3://no-such-bucket/w", checkpoint(1, 3), s3_endpoint)
    assert "testing-secret-key" not in str(caught.value)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(WitnessError, match="no AWS credentials") as nocreds:
        s3.put_checkpoint(f"s3://{BUCKET}/w", checkpoint(1, 3), s3_endpoint)
    assert nocreds.value.retry is False


def test_unreachable_endpoint_is_an_error_to_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    with pytest.raises(WitnessError, match="cannot reach it") as caught:
        s3.put_checkpoint(f"s3://{BUCKET}/w", checkpoint(1, 3), f"http://127.0.0.1:{free_port()}")
    assert caught.value.retry is True


@pytest.mark.parametrize("url", ["https://bucket/x", "s3://", "s3://Not_A_Bucket/x"])
def test_bad_locations_are_refused(url: str) -> None:
    with pytest.raises(ValidationError, match="AUDIT_WITNESS_S3"):
        s3.location(url)
