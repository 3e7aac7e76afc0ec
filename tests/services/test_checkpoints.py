"""Signed audit checkpoints (issue 19, docs/checkpoints.md) on both backends: the rewrite attack a
database administrator can mount against the bare hash chain, caught by the checkpoints; truncation;
tampered signatures; key rotation; refusals to sign; a failing webhook witness retried; the worker's
interval."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from audit_attack import rewrite, truncate
from cortex_change.domain.errors import Refused
from cortex_change.domain.events import EventKind
from cortex_change.services import audit as audit_service
from cortex_change.services import checkpoints, worker
from cortex_change.services.context import Context
from cortex_change.signing import generate
from support import FakeClock, HttpReceiver, file_change, query

pytest.importorskip("cryptography")

CHANGE = {
    "type": "normal",
    "category": "documentation",
    "title": "Fix a typo in the runbook",
    "impact": "low",
    "affected_services": ["docs"],
    "rollback_plan": {"steps": ["revert the commit"]},
    "implementation_plan": {"steps": ["edit the page"]},
    "requested_by": "alice",
}


def _key(tmp_path: Path, name: str = "signing.pem") -> str:
    path = str(tmp_path / name)
    generate(path)
    return path


@pytest.fixture
def signed(make_ctx: Callable[..., Context], tmp_path: Path, store_url: str) -> tuple[Context, str, Path]:
    """A context that signs with a fresh key into a witness file."""
    witness = tmp_path / "witness.jsonl"
    ctx = make_ctx(AUDIT_SIGNING_KEY=_key(tmp_path), AUDIT_WITNESS_FILE=str(witness))
    return ctx, store_url, witness


def _events(ctx: Context, n: int) -> None:
    for _ in range(n):
        file_change(ctx, **CHANGE)


def _sign(ctx: Context) -> Any:
    c = checkpoints.checkpoint(ctx)
    checkpoints.publish_due(ctx, "test")
    return c


def test_the_rewrite_attack_passes_plain_verify_but_not_the_checkpoints(
    signed: tuple[Context, str, Path], clock: FakeClock
) -> None:
    ctx, store, witness = signed
    _events(ctx, 2)
    first = _sign(ctx)  # vouches for events #1-#2
    clock.advance(minutes=5)
    _events(ctx, 3)
    second = _sign(ctx)  # #3-#5
    assert (first.length, second.length) == (2, 5)
    assert len(witness.read_text().splitlines()) == 2

    rewrite(store, 4, {"note": "nothing to see here"})

    assert audit_service.verify(ctx).ok  # the bare chain cannot tell
    report = checkpoints.verify(ctx, sources=[str(witness)])
    assert report.chain.ok and not report.ok
    (finding,) = [f for f in report.findings if f.checkpoint == second]
    assert finding.kind == "rewritten"
    assert "checkpoint #2" in finding.message and "event #5" in finding.message
    assert finding.first_bad_seq == 3  # #2 still matches checkpoint #1: the rewrite is in #3-#5
    assert "#3–#5" in finding.message
    assert not [f for f in report.findings if f.checkpoint == first]


def test_an_export_taken_before_the_attack_names_the_first_rewritten_event(
    signed: tuple[Context, str, Path], tmp_path: Path
) -> None:
    ctx, store, witness = signed
    _events(ctx, 5)
    _sign(ctx)
    audit_service.export(ctx, directory=str(tmp_path / "before"), all_events=True)

    rewrite(store, 3, {"note": "edited"})

    report = checkpoints.verify(ctx, sources=[str(witness), str(tmp_path / "before")])
    (finding,) = report.findings
    assert finding.first_bad_seq == 3
    assert "the first event that no longer matches is #3" in finding.message


def test_signing_refuses_a_chain_that_no_longer_extends_its_last_checkpoint(
    signed: tuple[Context, str, Path],
) -> None:
    ctx, store, _ = signed
    _events(ctx, 3)
    _sign(ctx)
    rewrite(store, 2, {"note": "edited"})
    with pytest.raises(Refused, match="no longer extends checkpoint #1"):
        checkpoints.checkpoint(ctx)


def test_truncation_is_reported(signed: tuple[Context, str, Path]) -> None:
    ctx, store, witness = signed
    _events(ctx, 4)
    c = _sign(ctx)
    truncate(store, 2)

    assert audit_service.verify(ctx).ok
    report = checkpoints.verify(ctx, sources=[str(witness)])
    (finding,) = report.findings
    assert finding.kind == "truncated" and finding.checkpoint == c
    assert "events #3–#4 were removed (truncated)" in finding.message


def test_a_tampered_signature_or_content_is_rejected(
    signed: tuple[Context, str, Path], tmp_path: Path
) -> None:
    ctx, _, witness = signed
    _events(ctx, 2)
    _sign(ctx)
    line = json.loads(witness.read_text())
    forged = dict(line, length=1)  # content changed under the signature
    flipped = dict(
        line, signature=line["signature"][:-4] + ("AAA=" if line["signature"][-4:] != "AAA=" else "BBB=")
    )
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(forged) + "\n" + json.dumps(flipped) + "\n")

    report = checkpoints.verify(ctx, sources=[str(bad)])
    kinds = [f.kind for f in report.findings]
    assert kinds.count("signature") == 2 and not report.ok
    assert "bad signature: rejected" in report.findings[0].message


def test_a_malformed_witness_file_is_one_line(signed: tuple[Context, str, Path], tmp_path: Path) -> None:
    ctx, _, _ = signed
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"type": "cortex-change.audit-checkpoint/1"}\nnot json\n')
    with pytest.raises(Exception, match=r"bad.jsonl line 1: is not a checkpoint \(missing number"):
        checkpoints.verify(ctx, sources=[str(bad)])
    with pytest.raises(Exception, match="not found"):
        checkpoints.verify(ctx, sources=[str(tmp_path / "nowhere")])


def test_rotation_keeps_old_checkpoints_verifiable_and_refuses_a_retired_key(
    make_ctx: Callable[..., Context], tmp_path: Path, clock: FakeClock
) -> None:
    witness = tmp_path / "witness.jsonl"
    one, two = _key(tmp_path, "one.pem"), _key(tmp_path, "two.pem")
    ctx1 = make_ctx(AUDIT_SIGNING_KEY=one, AUDIT_WITNESS_FILE=str(witness))
    _events(ctx1, 1)
    a = _sign(ctx1)  # key 1, registered on first use

    ctx2 = make_ctx(AUDIT_SIGNING_KEY=two, AUDIT_WITNESS_FILE=str(witness))
    _events(ctx2, 1)
    with pytest.raises(Refused, match="is not registered"):
        checkpoints.checkpoint(ctx2)
    clock.advance(minutes=1)
    checkpoints.add_key(ctx2, public_file=two + ".pub", valid_from=None, valid_to=None)
    checkpoints.retire_key(ctx2, key_id=a.key_id)
    b = _sign(ctx2)
    assert b.key_id != a.key_id

    clock.advance(minutes=1)
    _events(ctx1, 1)
    with pytest.raises(Refused, match="is not valid at"):
        checkpoints.checkpoint(ctx1)  # the retired key no longer signs

    report = checkpoints.verify(ctx2, sources=[str(witness)], key_files=[one + ".pub", two + ".pub"])
    assert report.ok and {c.key_id for c in report.verified} == {a.key_id, b.key_id}

    # A checkpoint the retired key signed after its validity (a stolen old key) fails.
    from cortex_change.domain.checkpoints import following
    from cortex_change.signing import load_signing_key

    late = following(b, 3, "f" * 64, "2030-01-01T00:00:00Z", a.key_id)
    late = late.copy_with(signature=load_signing_key(one).sign(late.signed_bytes()))
    stolen = tmp_path / "stolen.jsonl"
    stolen.write_text(late.line() + "\n")
    report = checkpoints.verify(ctx2, sources=[str(stolen)])
    (finding,) = report.findings
    assert finding.kind == "key" and "outside its key's validity" in finding.message


def test_key_files_that_are_missing_or_readable_by_others_are_refused_in_one_line(
    make_ctx: Callable[..., Context], tmp_path: Path, store_url: str
) -> None:
    path = _key(tmp_path)
    os.chmod(path, 0o644)
    ctx = make_ctx(AUDIT_SIGNING_KEY=path)
    _events(ctx, 1)
    with pytest.raises(Refused) as exc:
        checkpoints.checkpoint(ctx)
    assert "readable by group or others (mode 0644)" in str(exc.value) and "\n" not in str(exc.value)
    with pytest.raises(Refused, match="does not exist"):
        checkpoints.checkpoint(make_ctx(AUDIT_SIGNING_KEY=str(tmp_path / "missing.pem")))
    with pytest.raises(Refused, match="is not set"):
        checkpoints.checkpoint(make_ctx())
    assert query(store_url, "SELECT count(*) FROM audit_checkpoints")[0][0] == 0


def test_a_clock_gone_backwards_refuses_to_sign(signed: tuple[Context, str, Path], clock: FakeClock) -> None:
    ctx, _, _ = signed
    _events(ctx, 1)
    _sign(ctx)
    clock.advance(hours=-2)
    _events(ctx, 1)
    with pytest.raises(Refused, match="the clock went backwards"):
        checkpoints.checkpoint(ctx)


@pytest.mark.usefixtures("direct")
def test_a_failing_webhook_witness_is_retried_alerted_and_then_delivered(
    make_ctx: Callable[..., Context], tmp_path: Path, clock: FakeClock, receiver: HttpReceiver
) -> None:
    ctx = make_ctx(
        AUDIT_SIGNING_KEY=_key(tmp_path),
        AUDIT_WITNESS_WEBHOOK=receiver.url("/witness"),
        WEBHOOK_SECRET="s3cret",
        OUTBOX_MAX_ATTEMPTS="2",
        OUTBOX_RETRY_BASE="30",
    )
    _events(ctx, 1)
    receiver.status = 503
    c = _sign(ctx)
    (r,) = checkpoints.list_checkpoints(ctx)[0]["receipts"]
    assert (r["state"], r["attempts"]) == ("pending", 1) and "HTTP 503" in r["last_error"]
    assert checkpoints.last_witnessed(ctx) is None

    clock.advance(seconds=31)
    assert checkpoints.publish_due(ctx, "test") == 0  # second failure: alerted, still pending
    with ctx.db.read() as tx:
        from cortex_change.store import audit

        assert audit.count(tx, EventKind.WITNESS_FAILED) == 1

    receiver.status = 200
    clock.advance(seconds=61)
    assert checkpoints.publish_due(ctx, "test") == 1
    (r,) = checkpoints.list_checkpoints(ctx)[0]["receipts"]
    assert r["state"] == "delivered" and r["receipt"]["status"] == 200
    assert checkpoints.last_witnessed(ctx) == c
    from cortex_change.notify.webhook import verify_signature

    body = receiver.requests[-1].body
    assert json.loads(body)["head"] == c.head
    assert verify_signature(body, receiver.requests[-1].headers["x-cortex-signature"], "s3cret")


def test_the_worker_checkpoints_on_its_interval_and_after_n_events(
    make_ctx: Callable[..., Context], tmp_path: Path, clock: FakeClock
) -> None:
    witness = tmp_path / "witness.jsonl"
    ctx = make_ctx(
        AUDIT_SIGNING_KEY=_key(tmp_path),
        AUDIT_WITNESS_FILE=str(witness),
        AUDIT_CHECKPOINT_INTERVAL="3600",
        AUDIT_CHECKPOINT_EVENTS="5",
    )

    def numbers() -> list[int]:
        return [c["number"] for c in checkpoints.list_checkpoints(ctx)]

    _events(ctx, 1)
    worker.tick(ctx, "w1")
    assert numbers() == [1]  # the first: at once
    _events(ctx, 1)
    clock.advance(minutes=30)
    worker.tick(ctx, "w1")
    assert numbers() == [1]  # neither an hour nor five events
    clock.advance(minutes=31)
    worker.tick(ctx, "w1")
    assert numbers() == [1, 2]
    clock.advance(hours=2)
    worker.tick(ctx, "w1")
    assert numbers() == [1, 2]  # an unchanged chain is not signed again
    _events(ctx, 5)
    worker.tick(ctx, "w1")
    assert numbers() == [1, 2, 3]  # five events: at once
    assert len(witness.read_text().splitlines()) == 3


def test_a_worker_that_cannot_sign_alerts_once_and_carries_on(
    make_ctx: Callable[..., Context], tmp_path: Path, clock: FakeClock
) -> None:
    ctx = make_ctx(AUDIT_SIGNING_KEY=str(tmp_path / "missing.pem"), AUDIT_CHECKPOINT_EVENTS="1")
    _events(ctx, 1)
    worker.tick(ctx, "w1")
    clock.advance(minutes=10)
    worker.tick(ctx, "w1")
    with ctx.db.read() as tx:
        from cortex_change.store import audit

        assert audit.count(tx, EventKind.CHECKPOINT_FAILED) == 1
    file_change(ctx, **CHANGE)  # change work goes on


def test_export_carries_checkpoints_and_keys_for_offline_verification(
    signed: tuple[Context, str, Path], tmp_path: Path
) -> None:
    ctx, _, witness = signed
    _events(ctx, 3)
    _sign(ctx)
    out = tmp_path / "export"
    audit_service.export(ctx, directory=str(out), all_events=True)
    assert (out / checkpoints.CHECKPOINTS_FILE).read_text() == witness.read_text()
    key = ctx.settings["AUDIT_SIGNING_KEY"] + ".pub"
    report = checkpoints.verify_offline(str(out), sources=[str(witness)], key_files=[key])
    assert report.ok and report.latest is not None and report.latest.length == 3
