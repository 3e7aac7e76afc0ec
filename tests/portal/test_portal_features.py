"""What each portal page does, over HTTP against a live server: list filters and paging, the
runbook picker, the audit export (verified offline by the CLI), compliance downloads, tokens for
ADMINS, an emergency review from the CAB workbench, and a failed change's rollback on its page."""

from __future__ import annotations

import csv
import io
import json
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.conftest import serving
from portal.conftest import Portal
from portal.test_portal_http import client, page_csrf, signed_in, try_sign_in

ROW = re.compile(r'<td><a href="/changes/(RFC-[^"]+)">')


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    """A server whose ADMINS is ops-lead (the shared `portal` has none)."""
    cwd = tmp_path_factory.mktemp("features")
    with serving(str(cwd / "store.db"), cwd, toml='ADMINS = "ops-lead"\n') as api:
        yield Portal(url=api.server.url, tokens=api.tokens, api=api)


def test_lists_filter_like_the_api_and_page_with_a_cursor(site: Portal) -> None:
    mine = [
        site.api.create("tech-lead", category="security", title=f"Patch {n}")["change_id"] for n in range(27)
    ]
    other = site.api.create("alice", category="infrastructure", title="Resize the pool")["change_id"]
    with signed_in(site, "tech-lead") as c:
        first = c.get("/changes", params={"category": "security"})
        assert first.status_code == 200, first.text
        listed = site.api.as_("alice").get("/changes", params={"category": "security"}).json()["items"]
        order = [i["change_id"] for i in listed]  # the API's order: newest first
        assert sorted(order) == sorted(mine)
        assert ROW.findall(first.text) == order[:25]
        older = re.search(r'href="(/changes\?[^"]*before=[^"]+)"', first.text)
        assert older is not None
        rest = c.get(older.group(1).replace("&amp;", "&"))
        assert ROW.findall(rest.text) == order[25:]
        assert "Older changes" not in rest.text
        assert ROW.findall(c.get("/changes", params={"mine": "1", "category": "infrastructure"}).text) == []
        assert other in ROW.findall(c.get("/changes", params={"requested_by": "alice"}).text)
        bad = c.get("/changes", params={"risk_level": "extreme"})
        assert bad.status_code == 422
        assert "risk_level: &#39;extreme&#39; is not allowed" in bad.text or "risk_level" in bad.text


def test_the_runbook_picker_files_a_stamped_runbook_step(site: Portal) -> None:
    with signed_in(site, "alice") as c:
        form = {
            "csrf": page_csrf(c, "/changes/new"),
            "type": "normal",
            "category": "deployment",
            "title": "Restart the web deployment",
            "impact": "low",
            "urgency": "low",
            "implementation_plan.kind": "runbook:kubectl-rollout-restart",
            "implementation_plan.value": "deployment=web, namespace=prod",
            "rollback_plan.kind": "text",
            "rollback_plan.value": "nothing to undo",
            "op": "submit",
        }
        bad = c.post("/changes/new", data={**form, "implementation_plan.value": "deployment=web;rm -rf /"})
        assert bad.status_code == 422, bad.text
        assert "params.deployment: &#39;web;rm -rf /&#39; does not fully match" in bad.text
        r = c.post("/changes/new", data=form)
        assert r.status_code == 303, r.text
    cid = r.headers["location"].split("/")[2].split("?")[0]
    step = site.api.as_("alice").get(f"/changes/{cid}").json()["implementation_plan"]["steps"][0]
    assert step["runbook"] == "kubectl-rollout-restart"
    assert step["params"] == {"deployment": "web", "namespace": "prod"}
    assert isinstance(step["version"], int)


def test_the_audit_export_downloads_and_verifies_offline(site: Portal, tmp_path: Path) -> None:
    site.api.create("alice", title="Something to audit")
    with signed_in(site, "alice") as c:
        r = c.get("/audit/export")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/gzip"
    assert "attachment" in r.headers["content-disposition"]
    with tarfile.open(fileobj=io.BytesIO(r.content), mode="r:gz") as tar:
        tar.extractall(tmp_path, filter="data")
    ran = site.api.cli("audit", "verify", "--export", str(tmp_path / "audit-export"))
    assert ran.code == 0, ran.err + ran.out
    assert "intact" in ran.out


def test_the_compliance_report_downloads_as_csv_and_json(site: Portal) -> None:
    site.api.create("alice", title="Counted by the report")
    with signed_in(site, "alice") as c:
        shown = c.get("/compliance", params={"framework": "soc2", "period": "month"})
        assert shown.status_code == 200 and "segregation_of_duties" in shown.text
        as_csv = c.get("/compliance", params={"framework": "soc2", "period": "month", "format": "csv"})
        as_json = c.get("/compliance", params={"framework": "soc2", "period": "month", "format": "json"})
        bad = c.get("/compliance", params={"framework": "pci", "period": "month"})
    rows = list(csv.reader(io.StringIO(as_csv.text)))
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert rows[0][:3] == ["framework", "control", "change_id"] and len(rows) > 1
    report = json.loads(as_json.text)
    assert report["framework"] == "soc2" and report["audit_chain"]["ok"] is True
    assert bad.status_code == 422 and "framework" in bad.text


def test_admins_create_and_revoke_tokens_in_the_portal(site: Portal) -> None:
    with signed_in(site, "ops-lead") as admin:
        created = admin.post("/tokens", data={"csrf": page_csrf(admin, "/tokens"), "name": "newbie"})
        assert created.status_code == 201, created.text
        token = re.search(r'id="new-token">(cc_[0-9a-f]{12}_[A-Za-z0-9_-]{43})<', created.text)
        assert token is not None
        with client(site) as c:
            assert try_sign_in(c, "newbie", token.group(1)).status_code == 303
        token_id = token.group(1).split("_")[1]
        revoked = admin.post(f"/tokens/{token_id}/revoke", data={"csrf": page_csrf(admin, "/tokens")})
        assert revoked.status_code == 303
    with client(site) as c:
        assert try_sign_in(c, "newbie", token.group(1)).status_code == 401
    made = site.api.cli("token", "create", "scan-bot", "--agent", "--scope", "categories=security")
    assert made.code == 0, made.err
    with signed_in(site, "ops-lead") as admin:
        listed = admin.get("/tokens").text
    assert "<td>agent</td>" in listed and "categories=security components=none" in listed
    log = site.api.cli("audit", "log")
    assert re.search(r"token_created \| ops-lead", log.out) and re.search(
        r"token_revoked \| ops-lead", log.out
    )


def test_an_emergency_review_from_the_cab_workbench(site: Portal) -> None:
    cid = site.api.create("alice", type="emergency", category="security", title="Hotfix the login")[
        "change_id"
    ]
    assert site.api.as_("alice").post(f"/changes/{cid}/assess").json()["state"] == "approved"
    with signed_in(site, "security-lead") as c:
        cab = c.get("/cab")
        due = cab.text.split("Emergency reviews due", 1)[1]
        assert cid in due
        page = c.get(f"/changes/{cid}")
        assert 'action="/changes/' + cid + '/review"' in page.text
        r = c.post(
            f"/changes/{cid}/review",
            data={
                "csrf": page_csrf(c, f"/changes/{cid}"),
                "outcome": "accepted",
                "notes": "Root cause fixed",
            },
        )
        assert r.status_code == 303, r.text
    review = site.api.as_("alice").get(f"/changes/{cid}").json()["review"]
    assert review["reviewer"] == "security-lead" and review["outcome"] == "accepted"
    with signed_in(site, "alice") as c:  # the requester is never offered the review
        assert 'action="/changes/' + cid + '/review"' not in c.get(f"/changes/{cid}").text


def test_a_failed_change_shows_its_rollback(site: Portal) -> None:
    doc = site.api.create(
        "alice",
        title="Migrate, badly",
        impact="low",
        urgency="low",
        implementation_plan={"steps": [{"run": ["false"]}]},
        rollback_plan={"steps": [{"run": ["true"]}]},
    )
    cid = doc["change_id"]
    assert site.api.as_("alice").post(f"/changes/{cid}/assess").json()["state"] == "pending_approval"
    r = site.api.as_("tech-lead").post(f"/changes/{cid}/approve", json={"reason": "ok"})
    assert r.json()["state"] == "approved", r.text
    with signed_in(site, "alice") as c:
        r = c.post(f"/changes/{cid}/implement", data={"csrf": page_csrf(c, f"/changes/{cid}")})
        assert r.status_code == 303, r.text
        assert site.api.cli("worker", "run", "--once", "--name", "w1").code == 0
        page = c.get(f"/changes/{cid}").text
    assert "Rollback and incidents" in page and "rolled_back" in page
    implementation, rollback = page.split("Rollback and incidents", 1)
    assert '<li class="step-failed"><strong>failed</strong> — false' in implementation
    assert '<li class="step-succeeded"><strong>succeeded</strong> — true' in rollback


def test_the_calendar_shows_planned_changes_by_month_and_by_week(site: Portal) -> None:
    cid = site.api.create(
        "alice",
        title="Window <b>bold</b>",
        planned_start="2027-03-10T22:00:00Z",
        planned_end="2027-03-11T01:00:00Z",
    )["change_id"]
    with signed_in(site, "alice") as c:
        month = c.get("/calendar", params={"month": "2027-03"})
        week = c.get("/calendar", params={"week": "2027-03-12"})  # a Friday: the week of Monday 8 March
        other = c.get("/calendar", params={"week": "2027-03-15"})
    assert month.status_code == week.status_code == 200
    assert month.text.count(f'href="/changes/{cid}"') == 2  # both days it spans
    assert "Window &lt;b&gt;bold&lt;/b&gt;" in month.text
    assert "Week of 2027-03-08" in week.text and week.text.count(f'href="/changes/{cid}"') == 2
    assert 'href="/calendar?week=2027-03-01"' in week.text and 'href="/calendar?week=2027-03-15"' in week.text
    assert cid not in other.text
