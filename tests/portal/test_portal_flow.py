"""A change from request to closed in a real browser (Playwright driving Debian's chromium): sign in,
file with a plan and preview the risk, assess, the requester is offered no approval and a forged
one is refused, two CAB members vote to quorum, a worker carries it out while the page watches,
sign out. Every page is saved as a screenshot (tests/artifacts/portal/); with
CORTEX_UPDATE_SCREENSHOTS=1 the README's two are written to docs/img/ as well."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from portal.browser import DESKTOP, PHONE, new_page, shot
from portal.conftest import Portal

DOCS = Path(__file__).resolve().parents[2] / "docs" / "img"


def sign_in(browser: Browser, portal: Portal, who: str, viewport: dict[str, int] = DESKTOP) -> Page:
    page = new_page(browser, viewport)
    page.goto(portal.url + "/")
    expect(page).to_have_url(re.compile(r"/signin\?next=/$"))
    page.get_by_label("Identity").fill(who)
    page.get_by_label("API token").fill(portal.tokens[who])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    expect(page.get_by_text(f"Signed in as {who}")).to_be_visible()
    return page


def readme_shot(page: Page, name: str) -> None:
    path = shot(page, name)
    if os.environ.get("CORTEX_UPDATE_SCREENSHOTS") == "1":
        DOCS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS / f"{name}.png")


def file_with_preview(alice: Page, marker: Path) -> str:
    """The new-change form: a plan of steps (one added with the button), the risk preview, filing."""
    alice.get_by_role("link", name="New change").click()
    alice.get_by_label("Type").select_option("normal")
    alice.get_by_label("Category").select_option("deployment")
    alice.get_by_label("Title").fill("Deploy checkout v2 <script>alert(1)</script>")
    alice.get_by_label("Description").fill("Ships the new checkout flow.")
    alice.get_by_label("Impact").select_option("critical")
    alice.get_by_label("Urgency").select_option("high")
    alice.get_by_label("Affected services").fill("web, db")
    alice.locator("#implementation_plan-0-kind").select_option("json")
    alice.locator("#implementation_plan-0-value").fill(f'{{"run": ["touch", "{marker}"], "timeout": "30s"}}')
    alice.get_by_role("button", name="Add a step to the rollback plan").click()
    expect(alice.locator("#rollback_plan-1-value")).to_be_visible()  # the form kept what was typed
    expect(alice.get_by_label("Title")).to_have_value("Deploy checkout v2 <script>alert(1)</script>")
    alice.locator("#rollback_plan-0-value").fill("Redeploy checkout v1")
    alice.locator("#rollback_plan-1-value").fill("Tell support")
    alice.get_by_role("button", name="Preview risk").click()
    preview = alice.locator("#preview")
    expect(preview).to_contain_text("Score 70")
    expect(preview).to_contain_text("Route cab")
    expect(preview).to_contain_text("2 × cab")
    shot(alice, "new-change-preview")
    alice.get_by_role("button", name="File the change").click()
    expect(alice).to_have_url(re.compile(r"/changes/RFC-[0-9]{14}-[0-9a-f]{6}\?done=created$"))
    expect(alice.locator(".lede")).to_have_text("Deploy checkout v2 <script>alert(1)</script>")
    return alice.url.split("?")[0]


def assess_and_forge_approval(alice: Page, change_url: str) -> None:
    """Assess; the requester is offered no approval, and a forged one is refused by the rule."""
    alice.get_by_role("button", name="Assess risk and route").click()
    expect(alice.locator("#live")).to_contain_text("pending_cab")
    expect(alice.get_by_role("button", name="Approve")).to_have_count(0)
    csrf = alice.locator("input[name=csrf]").first.get_attribute("value")
    forged = alice.request.post(f"{change_url}/approve", form={"csrf": csrf or "", "reason": "mine"})
    assert forged.status == 403
    assert "alice may not approve" in forged.text() and "they requested it" in forged.text()
    shot(alice, "change-pending-cab")


def cab_votes_to_quorum(browser: Browser, portal: Portal, cid: str) -> list[Page]:
    """Two CAB members vote: one from the approvals inbox, one from the CAB workbench on a phone."""
    lead = sign_in(browser, portal, "tech-lead")
    lead.get_by_role("link", name="Approvals").click()
    expect(lead.get_by_role("link", name=cid)).to_be_visible()
    shot(lead, "inbox")
    lead.get_by_label(f"Reason for approving {cid}").fill("Checked the plan and the rollback")
    lead.get_by_role("button", name="Approve").first.click()
    expect(lead.get_by_text("Nothing waits for you.")).to_be_visible()
    security = sign_in(browser, portal, "security-lead", PHONE)
    security.get_by_role("link", name="CAB").click()
    expect(security.locator("article")).to_contain_text("cab: 1 of 2")
    shot(security, "cab-workbench-phone")
    security.get_by_label(f"Reason for your vote on {cid}").fill("Fine by security")
    security.get_by_role("button", name="Vote to approve").click()
    expect(security.get_by_text("Nothing is waiting for the CAB.")).to_be_visible()
    return [lead, security]


def implement_while_watching(alice: Page, portal: Portal, change_url: str, marker: Path) -> None:
    """The requester implements: the plan is queued; a worker runs it; the page follows by itself."""
    alice.goto(change_url)
    expect(alice.locator("#live")).to_contain_text("approved")
    alice.get_by_role("button", name="Implement").click()
    expect(alice.locator(".timeline")).to_contain_text("implementation_queued")
    ran = portal.api.cli("worker", "run", "--once", "--name", "w1")
    assert ran.code == 0, ran.err
    expect(alice.locator("#live")).to_contain_text("closed", timeout=15_000)  # htmx polls every 2 s
    expect(alice.locator("#live .steps")).to_contain_text("succeeded")
    assert marker.exists()
    alice.reload()
    expect(alice.locator(".timeline")).to_contain_text("step_succeeded")
    expect(alice.get_by_text("matches its hash")).to_be_visible()


def test_a_change_from_request_to_closed_in_the_browser(
    browser: Browser, portal: Portal, tmp_path: Path
) -> None:
    marker = tmp_path / "deployed"
    alice = sign_in(browser, portal, "alice")
    shot(alice, "dashboard-empty")
    change_url = file_with_preview(alice, marker)
    assess_and_forge_approval(alice, change_url)
    others = cab_votes_to_quorum(browser, portal, change_url.rsplit("/", 1)[1])
    implement_while_watching(alice, portal, change_url, marker)
    readme_shot(alice, "change-detail")

    alice.get_by_role("link", name="Dashboard").click()
    expect(alice.locator(".charts svg")).to_have_count(5)
    readme_shot(alice, "dashboard")
    alice.get_by_role("link", name="Audit").click()
    alice.get_by_role("button", name="Verify the whole chain").click()
    expect(alice.get_by_text("Intact:")).to_be_visible()
    shot(alice, "audit")

    # Sign out: the session ends on the server, so the old cookie opens nothing.
    cookies = alice.context.cookies()
    alice.get_by_role("button", name="Sign out").click()
    expect(alice).to_have_url(re.compile(r"/signin$"))
    replay = new_page(browser, DESKTOP)
    replay.context.add_cookies([{**c, "sameSite": "Strict"} for c in cookies])  # type: ignore[misc]
    replay.goto(portal.url + "/")
    expect(replay).to_have_url(re.compile(r"/signin\?next=/$"))
    for p in (alice, *others, replay):
        p.context.close()
