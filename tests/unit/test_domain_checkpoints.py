"""The pure rules of signed audit checkpoints (domain/checkpoints.py): what is signed, when the
worker signs, key validity, consistency of a chain with its checkpoints, reading witness lines."""

from __future__ import annotations

import json

import pytest

from cortex_change.domain.checkpoints import (
    GENESIS,
    ChainShrunk,
    Checkpoint,
    ClockBackwards,
    PublicKey,
    consistency,
    due,
    following,
    key_problem,
    order_problems,
    parse_lines,
)
from cortex_change.domain.errors import ValidationError

H = {n: f"{n:064x}" for n in range(1, 21)}  # the chain's hashes by seq, as stored


def _cp(number: int, length: int, at: str = "2026-01-15T09:00:00Z", head: str | None = None) -> Checkpoint:
    return Checkpoint(number, length, head or H[length], at, GENESIS, "k1", "sig")


def test_the_signed_bytes_are_canonical_json_of_the_signed_fields() -> None:
    c = Checkpoint(3, 7, H[7], "2026-01-15T09:00:00Z", "a" * 64, "k1", "sig")
    assert json.loads(c.signed_bytes()) == {
        "type": "cortex-change.audit-checkpoint/1",
        "number": 3,
        "length": 7,
        "head": H[7],
        "at": "2026-01-15T09:00:00Z",
        "previous": "a" * 64,
        "key_id": "k1",
    }
    assert b" " not in c.signed_bytes() and c.signed_bytes() == c.copy_with(signature="x").signed_bytes()
    assert parse_lines(c.line(), "w")[0] == c


def test_following_links_to_the_last_and_refuses_clock_and_shrinkage() -> None:
    first = following(None, 4, H[4], "2026-01-15T09:00:00Z", "k1")
    assert (first.number, first.previous) == (1, GENESIS)
    second = following(first, 6, H[6], "2026-01-15T10:00:00Z", "k1")
    assert (second.number, second.previous) == (2, first.digest())
    with pytest.raises(ClockBackwards, match="the clock went backwards"):
        following(second, 7, H[7], "2026-01-15T09:59:59Z", "k1")
    with pytest.raises(ChainShrunk, match="events were removed"):
        following(second, 5, H[5], "2026-01-15T11:00:00Z", "k1")


@pytest.mark.parametrize(
    ("last_length", "length", "elapsed", "expected"),
    [
        (None, 0, 0, False),  # nothing to vouch for
        (None, 1, 0, True),  # the first checkpoint at once
        (5, 5, 99_999, False),  # an unchanged chain is not re-signed
        (5, 6, 3599, False),
        (5, 6, 3600, True),  # the interval passed
        (5, 15, 1, True),  # ten events
    ],
)
def test_due(last_length: int | None, length: int, elapsed: float, expected: bool) -> None:
    last = None if last_length is None else _cp(1, last_length)
    assert due(last, length, 3600, 10, elapsed) is expected


def test_key_validity_periods() -> None:
    keys = {"k1": PublicKey("k1", "pub", "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z")}
    assert key_problem(keys, _cp(1, 1, "2026-01-15T09:00:00Z")) == ""
    assert "outside its key's validity" in key_problem(keys, _cp(1, 1, "2026-02-01T00:00:00Z"))
    assert "outside its key's validity" in key_problem(keys, _cp(1, 1, "2025-12-31T23:59:59Z"))
    assert "not a known key" in key_problem({}, _cp(1, 1))


def test_a_chain_that_extends_every_checkpoint_has_no_findings() -> None:
    assert consistency([_cp(1, 3), _cp(2, 8)], H, 10) == []


def test_a_rewrite_names_the_checkpoint_and_the_range_after_the_last_that_matches() -> None:
    rewritten = {**H, 8: "e" * 64}
    (f,) = consistency([_cp(1, 3), _cp(2, 8)], rewritten, 10)
    assert f.kind == "rewritten" and f.first_bad_seq == 4
    assert "checkpoint #2" in f.message and "among #4–#8" in f.message


def test_a_rewrite_is_pinned_to_one_event_by_adjacent_checkpoints_or_a_reference() -> None:
    rewritten = {**H, 4: "e" * 64}
    (f,) = consistency([_cp(1, 3), _cp(2, 4)], rewritten, 10)
    assert f.first_bad_seq == 4 and "is #4" in f.message
    rewritten = {**H, 6: "e" * 64, 7: "f" * 64, 8: "0" * 64}
    (f,) = consistency([_cp(1, 3), _cp(2, 8)], rewritten, 10, reference=H)
    assert f.first_bad_seq == 6 and "is #6" in f.message


def test_truncation() -> None:
    (f,) = consistency([_cp(1, 3), _cp(2, 8)], H, 5)
    assert f.kind == "truncated" and f.first_bad_seq == 6 and "#6–#8 were removed" in f.message


def test_a_copy_that_starts_later_skips_earlier_checkpoints() -> None:
    assert consistency([_cp(1, 3)], {}, 10, chain_start=5) == []


def test_order_problems_catch_a_fork_and_a_checkpoint_that_does_not_follow() -> None:
    a = following(None, 3, H[3], "2026-01-15T09:00:00Z", "k1")
    b = following(a, 5, H[5], "2026-01-15T10:00:00Z", "k1")
    assert order_problems([a, b]) == []
    fork = following(a, 6, H[6], "2026-01-15T10:00:00Z", "k1")
    assert [f.kind for f in order_problems([a, b, fork])] == ["order"]
    back = Checkpoint(2, 2, H[2], "2026-01-15T10:00:00Z", a.digest(), "k1")
    assert "does not follow" in order_problems([a, back])[0].message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "w line 1: is not JSON"),
        ("[]", "w line 1: is not a checkpoint"),
        ('{"type": "x"}', "missing number"),
        (json.dumps({**_cp(1, 1).to_json(), "type": "other"}), "not a checkpoint of this kind"),
        (json.dumps({**_cp(1, 1).to_json(), "length": -1}), "whole numbers"),
        (json.dumps({**_cp(1, 1).to_json(), "head": "xyz"}), "head is not a SHA-256"),
        (json.dumps({**_cp(1, 1).to_json(), "at": "yesterday"}), "at is not a UTC time"),
        ("\n" + json.dumps(_cp(1, 1).to_json()) + "\n{", "w line 3"),
    ],
)
def test_malformed_witness_lines_are_one_line_errors(text: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as exc:
        parse_lines(text, "w")
    assert "\n" not in str(exc.value)
