"""Every page in a real browser: labelled controls, keyboard use, a phone's width, hostile text,
and no Content-Security-Policy violation (so nothing inline was needed)."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from portal.browser import DESKTOP, PHONE, shot
from portal.conftest import Portal
from portal.test_portal_flow import sign_in

EXAMPLE_CMDB = Path(__file__).resolve().parents[2] / "examples" / "cortex-platform-cmdb.json"

HOSTILE = "<script>alert(1)</script> \"quoted\" 'single' & \u202eevil\u202c " + "W" * 140  # titles ≤ 200
PAGES = (
    "/",
    "/changes",
    "/changes?mine=1",
    "/changes/new",
    "/inbox",
    "/cab",
    "/calendar",
    "/audit",
    "/compliance",
    "/incidents",
    "/cis",
    "/calendar?week=2026-12-02",
    "/cis/redis-cache",
)

UNLABELLED = """els => els.filter(e => e.type !== 'hidden' && !(e.labels && e.labels.length)
    && !e.getAttribute('aria-label')).map(e => e.outerHTML.slice(0, 120))"""


def _watch_csp(page: Page) -> list[str]:
    seen: list[str] = []
    page.on("console", lambda m: seen.append(m.text) if "Content Security Policy" in m.text else None)
    return seen


def test_every_page_labels_its_controls_and_fits_a_phone(browser: Browser, portal: Portal) -> None:
    ran = portal.api.cli("cmdb", "import", str(EXAMPLE_CMDB), "--as", "ops-lead")
    assert ran.code == 0, ran.err
    cid = portal.api.create(
        "alice", title=HOSTILE, description=HOSTILE + " " + "D" * 200, affected_services=["redis-cache"]
    )["change_id"]
    r = portal.api.as_("alice").post(f"/changes/{cid}/assess")
    assert r.status_code == 200, r.text
    for viewport, tag in ((DESKTOP, "desktop"), (PHONE, "phone")):
        page = sign_in(browser, portal, "tech-lead", viewport)
        violations = _watch_csp(page)
        for path in (*PAGES, f"/changes/{cid}"):
            page.goto(portal.url + path)
            assert page.locator("input, select, textarea").evaluate_all(UNLABELLED) == [], path
            assert page.locator("h1").count() == 1, path
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= page.viewport_size["width"] + 1, (path, width)  # type: ignore[index]
        expect(page.locator(".lede")).to_have_text(HOSTILE)  # shown as text, never run
        expect(page.get_by_role("heading", name="Blast radius (CMDB): 5 CI(s)")).to_be_visible()
        expect(
            page.get_by_text("Most critical: cortex-chat → depends on redis-cache (tier 0)")
        ).to_be_visible()
        shot(page, f"hostile-change-{tag}")
        page.goto(portal.url + "/cis/redis-cache")
        expect(page.get_by_role("heading", name="Blast radius: 5 CI(s)")).to_be_visible()
        expect(page.locator("figure.graph svg .node")).to_have_count(5)
        shot(page, f"ci-page-{tag}")
        page.goto(portal.url + "/changes")
        expect(page.get_by_role("cell", name=HOSTILE)).to_be_visible()
        assert violations == [], violations
        page.context.close()


def test_keyboard_only_skip_link_and_sign_in(browser: Browser, portal: Portal) -> None:
    page = browser.new_page(viewport=DESKTOP)  # type: ignore[arg-type]
    page.goto(portal.url + "/signin")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="cortex-change")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_label("Identity")).to_be_focused()
    page.keyboard.type("ops-lead")
    page.keyboard.press("Tab")
    expect(page.get_by_label("API token")).to_be_focused()
    page.keyboard.type(portal.tokens["ops-lead"])
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # the skip link moves focus to the main content
    expect(page.locator("main")).to_be_focused()
    page.context.close()


def test_a_refused_field_is_marked_beside_itself_and_nothing_is_filed(
    browser: Browser, portal: Portal
) -> None:
    before = len(portal.api.as_("alice").get("/changes").json()["items"])
    page = sign_in(browser, portal, "ops-lead")
    page.goto(portal.url + "/changes/new")
    page.get_by_label("Title").fill("T" * 201)
    page.get_by_role("button", name="File the change").click()
    title = page.get_by_label("Title")
    expect(title).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#e-title")).to_have_text("title: is 201 characters; at most 200 allowed")
    expect(title).to_have_value("T" * 201)  # what was typed is kept
    page.get_by_label("Title").fill("Rotate the TLS certificate")
    page.locator("#implementation_plan-0-kind").select_option("json")
    page.locator("#implementation_plan-0-value").fill("{not json")
    page.get_by_role("button", name="Preview risk").click()  # htmx swaps the answer in place
    expect(page.locator("#preview")).to_contain_text("implementation_plan step 1: is not a JSON object")
    assert len(portal.api.as_("alice").get("/changes").json()["items"]) == before
    page.context.close()


def test_without_javascript_a_change_is_filed_previewed_and_read(browser: Browser, portal: Portal) -> None:
    context = browser.new_context(java_script_enabled=False, viewport=DESKTOP)  # type: ignore[arg-type]
    page = context.new_page()
    page.goto(portal.url + "/")
    page.get_by_label("Identity").fill("cto")
    page.get_by_label("API token").fill(portal.tokens["cto"])
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="New change").click()
    page.get_by_label("Title").fill("Rotate the signing keys")
    page.get_by_label("Impact").select_option("high")
    page.locator("#implementation_plan-0-value").fill("Generate the new key pair")
    page.get_by_role("button", name="Add a step to the implementation plan").click()  # a round trip
    page.locator("#implementation_plan-1-value").fill("Publish the public key")
    page.get_by_role("button", name="Remove step 1 of the implementation plan").click()
    expect(page.locator("#implementation_plan-0-value")).to_have_value("Publish the public key")
    page.locator("#rollback_plan-0-value").fill("Restore the old key pair")
    page.get_by_role("button", name="Preview risk").click()  # the whole page comes back with it
    expect(page.locator("#preview")).to_contain_text("Route technical-lead")
    expect(page.get_by_label("Title")).to_have_value("Rotate the signing keys")
    page.get_by_role("button", name="File the change").click()
    expect(page.locator(".lede")).to_have_text("Rotate the signing keys")
    page.get_by_role("button", name="Assess risk and route").click()
    expect(page.locator("#live")).to_contain_text("pending_approval")
    expect(page.locator("ol.steps, .timeline").last).to_contain_text("assessed")
    shot(page, "no-javascript-change")
    context.close()
