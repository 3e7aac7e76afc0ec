"""`compliance report` through the server (GET /api/v1/compliance/report) equals the local report."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from remote_support import Server

REPORT = ("compliance", "report", "--period", "today")
GENERATED = re.compile(r"generated \S+|\"generated_at\": \"[^\"]+\"")


def _same(text: str) -> str:
    """The report without its generation time (the two runs are seconds apart)."""
    return GENERATED.sub("generated <at>", text)


def test_the_report_through_the_server_equals_the_local_one(server: Server) -> None:
    change_id = server.client("dev", "create", "normal", "deployment", "Audited").out.strip()
    assert server.client("dev", "assess", change_id).code == 0
    assert server.client("tech-lead", "approve", change_id, "ok").code == 0
    for framework in ("soc2", "hipaa", "iso27001"):
        for fmt in ("text", "json", "csv"):
            args = (*REPORT, "--framework", framework, "--format", fmt)
            remote, local = server.client("dev", *args), server.local(*args)
            assert remote.code == local.code == 0, (args, remote.err)
            assert _same(remote.out) == _same(local.out), args
    report = json.loads(server.client("dev", *REPORT, "--framework", "soc2", "--format", "json").out)
    assert change_id in {c["change_id"] for c in report["changes"]}
    assert report["audit_chain"]["ok"] is True


def test_bad_input_is_refused_by_the_client_and_the_server(server: Server) -> None:
    res = server.client("dev", "compliance", "report", "--framework", "pci", "--period", "today")
    assert res.code == 2 and "soc2" in res.err and res.out == ""
    request = urllib.request.Request(
        f"{server.url}/api/v1/compliance/report?framework=soc2&period=fortnight",
        headers={"Authorization": f"Bearer {server.token('dev')}"},
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    with caught.value as answer:
        assert answer.code == 422
        assert "today, week" in json.loads(answer.read())["detail"]
