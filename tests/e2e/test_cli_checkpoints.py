"""Signed audit checkpoints through the real console script (issue 19): keygen, checkpoint,
verify --checkpoints against a witness file before and after a database administrator's rewrite
(plain `audit verify` passes it; the checkpoints do not), an offline export, and the refusals."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from audit_attack import rewrite

if TYPE_CHECKING:
    from conftest import Cli

pytest.importorskip("cryptography")


def _setup(cli: Cli, tmp_path: Path) -> tuple[Path, Path]:
    key, witness = tmp_path / "keys" / "signing.pem", tmp_path / "witness.jsonl"
    key.parent.mkdir()
    out = cli.ok("audit", "keygen", str(key))
    assert out.startswith("key id ") and "public key " in out
    assert os.stat(key).st_mode & 0o777 == 0o600
    assert "PRIVATE" not in out
    cli.env.update(AUDIT_SIGNING_KEY=str(key), AUDIT_WITNESS_FILE=str(witness))
    return key, witness


def test_keygen_checkpoint_verify_and_the_rewrite_attack(cli: Cli, tmp_path: Path) -> None:
    key, witness = _setup(cli, tmp_path)
    for n in range(3):
        cli.create("normal", "deployment", f"Change {n}", "d")
    out = cli.ok("audit", "checkpoint")
    assert "checkpoint #1" in out and "witness file: published" in out
    cli.create("normal", "deployment", "Later", "d")
    cli.ok("audit", "checkpoint")
    assert len(witness.read_text().splitlines()) == 2

    res = cli("audit", "verify", "--checkpoints", str(witness), "--key", f"{key}.pub")
    assert res.code == 0, res.err
    assert "the chain extends every checkpoint" in res.out

    rewrite(str(cli.db), 4, {"note": "approved by nobody"})

    assert cli("audit", "verify").code == 0  # the bare chain cannot tell
    res = cli("audit", "verify", "--checkpoints", str(witness), "--key", f"{key}.pub")
    assert res.code == 1
    assert "checkpoint #2" in res.err and "history was rewritten" in res.err
    assert "the first event that no longer matches is #4" in res.err  # #3 is checkpoint #1's


def test_an_export_verifies_offline_with_the_public_key_and_a_witness_copy(cli: Cli, tmp_path: Path) -> None:
    key, witness = _setup(cli, tmp_path)
    cli.create("normal", "deployment", "One", "d")
    cli.ok("audit", "checkpoint")
    cli.ok("audit", "export", "--dir", str(tmp_path / "export"), "--all")
    res = cli(
        "audit", "verify", "--export", str(tmp_path / "export"),
        "--checkpoints", str(witness), "--key", f"{key}.pub",
        env={"CORTEX_CHANGE_DB": str(tmp_path / "no-such.db")},
    )  # fmt: skip
    assert res.code == 0, res.err
    lines = witness.read_text().splitlines()
    tampered = json.loads(lines[0])
    tampered["length"] += 1
    witness.write_text(json.dumps(tampered) + "\n")
    res = cli("audit", "verify", "--export", str(tmp_path / "export"), "--checkpoints", str(witness))
    assert res.code == 1 and "bad signature: rejected" in res.err


def test_refusals_are_one_line(cli: Cli, tmp_path: Path) -> None:
    key, witness = _setup(cli, tmp_path)
    cli.create("normal", "deployment", "One", "d")
    res = cli("audit", "keygen", str(key))
    assert res.code == 2 and "refusing to overwrite" in res.err
    os.chmod(key, 0o640)
    res = cli("audit", "checkpoint")
    assert res.code == 1 and len(res.err.splitlines()) == 1 and "readable by group or others" in res.err
    res = cli("audit", "checkpoint", env={"AUDIT_SIGNING_KEY": str(tmp_path / "gone.pem")})
    assert res.code == 1 and len(res.err.splitlines()) == 1 and "does not exist" in res.err
    witness.write_text("{not json\n")
    res = cli("audit", "verify", "--checkpoints", str(witness))
    assert res.code == 2 and "line 1: is not JSON" in res.err and len(res.err.splitlines()) == 1
    res = cli("config", "show")
    assert str(key) not in res.out  # AUDIT_SIGNING_KEY is masked like the other secrets
