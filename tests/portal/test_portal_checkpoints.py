"""The portal shows the chain's last witnessed checkpoint (issue 19): on the audit page (length, head,
when, which witnesses took it) and in compliance reports, against a live server whose checkpoints
are signed by the real CLI and stamped by a local RFC 3161 timestamp authority."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator

import pytest

from api.conftest import serving
from cortex_change.signing import generate
from portal.conftest import Portal
from portal.test_portal_http import signed_in
from tsa_support import TsaServer

pytest.importorskip("asn1crypto")


@pytest.fixture(scope="module")
def tsa() -> Iterator[TsaServer]:
    with TsaServer() as srv:
        yield srv


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, tsa: TsaServer) -> Iterator[Portal]:
    """A server with a signing key, a witness file and the local TSA configured."""
    cwd = tmp_path_factory.mktemp("checkpoints")
    generate(str(cwd / "signing.pem"))
    toml = (
        f'AUDIT_SIGNING_KEY = "{cwd / "signing.pem"}"\n'
        f'AUDIT_WITNESS_FILE = "{cwd / "witness.jsonl"}"\n'
        f'AUDIT_TSA_URL = "{tsa.url("/tsa")}"\n'
    )
    with serving(str(cwd / "store.db"), cwd, toml=toml) as api:
        yield Portal(url=api.server.url, tokens=api.tokens, api=api)


def test_the_audit_page_shows_the_last_witnessed_checkpoint(site: Portal, direct: None) -> None:
    with signed_in(site, "alice") as c:
        before = c.get("/audit")
    assert before.status_code == 200
    assert "No checkpoint has been taken by a witness yet" in before.text

    site.api.create("alice", title="Vouched for by a witness")
    ran = site.api.cli("audit", "checkpoint")
    assert ran.code == 0, ran.err + ran.out
    head = re.search(r"head ([0-9a-f]{64})", ran.out)
    assert head is not None, ran.out
    with signed_in(site, "alice") as c:
        shown = c.get("/audit")
    assert shown.status_code == 200
    text = shown.text
    assert "Last witnessed checkpoint" in text and head[1] in text
    assert re.search(r"#1: events #1–#\d+", text)
    assert "file — took it " in text and "tsa — took it " in text
    assert re.search(r"genTime \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", text)
    assert "no longer holds" not in text


def test_compliance_reports_cite_the_checkpoint_covering_each_change(site: Portal, direct: None) -> None:
    change = site.api.create("alice", title="Cited with its checkpoint")
    ran = site.api.cli("audit", "checkpoint")
    assert ran.code == 0, ran.err + ran.out
    newer = site.api.create("alice", title="Filed after the checkpoint")
    params = {"framework": "soc2", "period": "month"}
    with signed_in(site, "alice") as c:
        page = c.get("/compliance", params=params)
        as_csv = c.get("/compliance", params={**params, "format": "csv"})
    assert page.status_code == 200
    assert "Last witnessed checkpoint #" in page.text and "witnessed by file, tsa" in page.text
    assert "none witnessed covers its events yet" in page.text  # the change filed after it
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    by_change = {r["change_id"]: r for r in rows}
    assert by_change[change["change_id"]]["checkpoint_witnesses"] == "file tsa"
    assert re.fullmatch(r"[0-9a-f]{64}", by_change[change["change_id"]]["checkpoint_head"])
    assert by_change[newer["change_id"]]["checkpoint_length"] == ""
