"""The learned risk model in the portal (issue 17; docs/portal.md, docs/risk-model.md), against a
live server on a generated history (tests/risk_history.py) with a model trained on it: the change
page's prediction and its factors (hidden by ML_PREDICTION=false), the risk page's model card or
why there is none, backtests (model beside rules) and their refusals — and the same in chromium."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import escape
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from api.conftest import Api, Server, serving
from cortex_change.services import risk_model
from cortex_change.services.changes import assess_change
from cortex_change.services.context import open_context
from cortex_change.services.unit import load
from portal.browser import DESKTOP, PHONE, shot
from portal.conftest import Portal
from portal.test_portal_flow import sign_in
from portal.test_portal_http import client, signed_in
from portal.test_portal_pages import UNLABELLED
from risk_history import generate
from support import TEST_IMPLEMENTERS, FakeClock, file_change, query

pytest.importorskip("sklearn", reason="the `ml` extra (scikit-learn) trains the model")

HISTORY = 100  # ~10 days of changes: enough for a model at ML_MIN_SAMPLES=40, about a second
MIN_SAMPLES = 40
RISKY = {
    "type": "normal",
    "category": "configuration",
    "title": "Change the orders database's pool",
    "impact": "medium",
    "affected_services": ["orders-db"],
    "implementation_plan": {"steps": ["apply the change"]},
}
FACTOR = re.compile(r'<tr><td>([a-z0-9_-]+)</td><td class="num">([+-]\d+\.\d{3})</td></tr>')


@dataclass(frozen=True)
class Trained:
    """A server on a store holding a history and model v1 trained on it."""

    site: Portal
    predicted: str  # assessed through the API with the model: its prediction recorded
    unpredicted: str  # assessed before there was a model
    start: str  # a backtest's From with enough closed changes before it
    end: str
    early: str  # a From with none before it


def _toml(folder: Path, *lines: str) -> Path:
    path = folder / "cortex-change.toml"
    path.write_text("\n".join((f"ML_MIN_SAMPLES = {MIN_SAMPLES}", *lines)) + "\n")
    return path


def _history(store: str, config: Path) -> tuple[list[str], str, FakeClock]:
    """The generated history, a change assessed before any model, then model v1 trained; the days
    its first and its two-thirds change were filed, that change's id and the history's clock."""
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0) - timedelta(days=30))
    env = {"CORTEX_CHANGE_DB": store, "IMPLEMENTERS": TEST_IMPLEMENTERS, "CORTEX_CHANGE_CONFIG": str(config)}
    ctx = open_context(env=env, clock=clock)
    try:
        ids = generate(ctx, clock, HISTORY)
        early = file_change(ctx, **RISKY, requested_by="alice").change_id
        assess_change(ctx, change_id=early)
        risk_model.train(ctx)
        days = [load(ctx, c).timeline.created_at.date().isoformat() for c in (ids[0], ids[HISTORY * 2 // 3])]
    finally:
        ctx.close()
    return days, early, clock


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trained]:
    cwd = tmp_path_factory.mktemp("risk")
    store = str(cwd / "store.db")
    (first_day, start), unpredicted, clock = _history(store, _toml(cwd))
    with serving(store, cwd) as api:
        predicted = api.create("alice", **RISKY)["change_id"]
        r = api.as_("alice").post(f"/changes/{predicted}/assess")
        assert r.status_code == 200, r.text
        end = (clock().date() + timedelta(days=1)).isoformat()
        site = Portal(url=api.server.url, tokens=api.tokens, api=api)
        yield Trained(site, predicted, unpredicted, start, end, first_day)


def _prediction(site: Portal, change_id: str) -> dict[str, Any] | None:
    doc = site.api.as_("alice").get(f"/changes/{change_id}").json()
    found: dict[str, Any] | None = doc["assessment"]["prediction"]
    return found


def _cli_json(site: Portal, *args: str) -> dict[str, Any]:
    ran = site.api.cli("risk", *args, "--json")
    assert ran.code == 0, ran.err
    out: dict[str, Any] = json.loads(ran.out)
    return out


def _rows(html: str, name: str) -> list[str]:
    """The cells of a scores table's row `name` (its th: the name, `(chosen)` after the chosen)."""
    row = re.search(rf'<tr><th scope="row">{re.escape(name)}</th>(.*?)</tr>', html)
    assert row is not None, f"no {name} row"
    return re.findall(r"<td>(.*?)</td>", row.group(1))


def _candidates(html: str, chosen: str | None, candidates: dict[str, Any]) -> None:
    """Each candidate's row shows its scores, the chosen one marked."""
    assert chosen is None or chosen in candidates
    for name, s in candidates.items():
        assert _rows(html, f"{name} (chosen)" if name == chosen else name) == _figures(s), name


def _figures(s: dict[str, Any]) -> list[str]:
    """A scores row as the page (and `cortex-change risk`) prints it."""

    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.1%}"

    def num(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.3f}"

    rates = (s["accuracy"], s["false_positive_rate"], s["precision"], s["recall"])
    return [str(s["count"]), str(s["failures"]), *map(pct, rates), num(s["brier"]), num(s["auc"])]


# --- the change page ---


def test_the_change_page_shows_the_prediction_and_its_factors(trained: Trained) -> None:
    site = trained.site
    predicted = _prediction(site, trained.predicted)
    assert predicted is not None and predicted["model_version"] == 1
    with signed_in(site, "tech-lead") as c:
        html = c.get(f"/changes/{trained.predicted}").text
        plain = c.get(f"/changes/{trained.unpredicted}").text
    assert f"P(failure) {predicted['probability']:.1%}</strong> (model v1)" in html
    factors = FACTOR.findall(html)
    assert factors == [(f["feature"], f"{f['log_odds']:+.3f}") for f in predicted["factors"]]
    assert len(factors) == 5
    sizes = [abs(float(v)) for _, v in factors]
    assert sizes == sorted(sizes, reverse=True)  # largest first
    assert _prediction(site, trained.unpredicted) is None  # assessed before the model
    assert "P(failure)" not in plain and 'class="factors"' not in plain
    assert "Score <strong>" in plain  # the rules' score is there, alone


def test_ml_prediction_false_hides_the_recorded_prediction(
    trained: Trained, tmp_path_factory: pytest.TempPathFactory
) -> None:
    site = trained.site
    cwd = tmp_path_factory.mktemp("hidden")
    _toml(cwd, "ML_PREDICTION = false")
    server = Server(site.api.store, cwd).start()  # the same store, read with ML_PREDICTION=false
    try:
        hidden = Portal(url=server.url, tokens=site.tokens, api=Api(server, site.tokens, site.api.revoked))
        with signed_in(hidden, "tech-lead") as c:
            page = c.get(f"/changes/{trained.predicted}")
            risk = c.get("/risk")
    finally:
        server.stop()
    assert page.status_code == 200, page.text
    assert _prediction(site, trained.predicted) is not None  # still recorded
    assert "P(failure)" not in page.text and 'class="factors"' not in page.text
    assert "Score <strong>" in page.text
    assert "RISK_MODEL=advisory, ML_PREDICTION=false" in risk.text


# --- the risk page ---


def test_the_risk_page_shows_the_model_card(trained: Trained) -> None:
    site = trained.site
    card = _cli_json(site, "status")["model"]
    with signed_in(site, "alice") as c:  # any signed-in person: a requester with no role reads it
        r = c.get("/risk")
    assert r.status_code == 200, r.text
    html = r.text
    assert f"<dd>model v{card['version']}</dd>" in html
    assert card["trained_at"].replace("T", " ").replace("Z", " UTC") in html
    assert (
        f"{card['samples']} closed changes, {card['failures']} failed ({card['failure_share']:.1%})" in html
    )
    assert f'<dd class="wrap">{escape(card["algorithm"])}; {card["features"]} features</dd>' in html
    assert "RISK_MODEL=advisory, ML_PREDICTION=true" in html
    held = card["holdout"]
    _candidates(html, card.get("chosen"), card.get("candidates") or {"newest": held})
    assert f"judged by models trained on the {held['trained_on']} before them" in html
    assert "<caption>Reliability of the chosen model on the held-out changes</caption>" in html
    bins = re.findall(r"<tr><td>(\d\.\d–\d\.\d)</td><td>(\d+)</td>", html)
    assert bins == [(f"{b['from']:.1f}–{b['to']:.1f}", str(b["count"])) for b in held["reliability"]]
    assert '<a href="/risk" aria-current="page">Risk model</a>' in html


def test_a_backtest_shows_the_model_beside_the_rules(trained: Trained) -> None:
    site = trained.site
    expected = _cli_json(site, "backtest", "--from", trained.start, "--to", trained.end)
    with signed_in(site, "ops-lead") as c:
        r = c.get("/risk", params={"from": trained.start, "to": trained.end})
    assert r.status_code == 200, r.text
    assert expected["trained_on"] >= MIN_SAMPLES and expected["tested_on"] > 0
    assert (
        f"Trained on {expected['trained_on']} changes closed before From; "
        f"tested on {expected['tested_on']} filed in the period."
    ) in r.text
    picked = expected["selection"]
    assert (
        f"Chosen: {expected['chosen']}, on the newest {picked['samples']} of them "
        f"(trained on the {picked['trained_on']} before)"
    ) in r.text
    section = r.text.split('id="backtest-h"')[1]  # after the card's own candidates
    _candidates(section, expected["chosen"], picked["candidates"])
    assert _rows(section, "model") == _figures(expected["model"])
    assert _rows(section, "rules") == _figures(expected["rules"])
    assert "<caption>Reliability (model)</caption>" in r.text
    assert f'value="{trained.start}"' in r.text and f'value="{trained.end}"' in r.text


def test_a_refused_backtest_says_why_and_writes_nothing(trained: Trained) -> None:
    site = trained.site
    counts = "SELECT (SELECT count(*) FROM audit_events), (SELECT count(*) FROM risk_models)"
    with signed_in(site, "ops-lead") as c:
        before = query(site.api.store, counts)
        bad = c.get("/risk", params={"from": "last tuesday", "to": trained.end})
        early = c.get("/risk", params={"from": trained.early, "to": trained.end})
        backwards = c.get("/risk", params={"from": trained.end, "to": trained.start})
        hostile = c.get("/risk", params={"from": "<b>2026</b>" + "x" * 500, "to": trained.end})
        assert query(site.api.store, counts) == before
    assert bad.status_code == 422
    assert "from: &#39;last tuesday&#39; is not an ISO 8601 time" in bad.text
    assert early.status_code == 422
    assert f"0 change(s) closed before it, fewer than ML_MIN_SAMPLES={MIN_SAMPLES}" in early.text
    assert backwards.status_code == 422 and "to: must be after --from" in backwards.text
    assert hostile.status_code == 422 and "&lt;b&gt;2026&lt;/b&gt;" in hostile.text
    assert "<b>2026" not in hostile.text and "x" * 100 not in hostile.text  # escaped, and shortened
    for r in (bad, early, backwards):
        assert "model v1" in r.text and '<tr><th scope="row">rules</th>' not in r.text


def test_without_a_model_the_page_says_why_and_signed_out_it_asks_to_sign_in(portal: Portal) -> None:
    with signed_in(portal, "alice") as c:
        r = c.get("/risk")
        refused = c.get("/risk", params={"from": "2026-01-01", "to": "2026-02-01"})
    assert r.status_code == 200, r.text
    assert "no model trained: the rules alone assess (0 closed change(s) with recorded features; " in r.text
    assert "needs ML_MIN_SAMPLES=200)" in r.text and "<dt>Version</dt>" not in r.text
    assert refused.status_code == 422
    assert "0 change(s) closed before it, fewer than ML_MIN_SAMPLES=200" in refused.text
    with client(portal) as anonymous:
        away = anonymous.get("/risk")
    assert away.status_code == 303 and away.headers["location"] == "/signin?next=/risk"


# --- in a real browser ---


def _csp_violations(page: Page) -> list[str]:
    """The console's Content-Security-Policy complaints on `page`, as they come."""
    seen: list[str] = []
    page.on("console", lambda m: seen.append(m.text) if "Content Security Policy" in m.text else None)
    return seen


def _browse(page: Page, trained: Trained, predicted: dict[str, Any], tag: str) -> None:
    """From the navigation to the card, a backtest and a refused one; then the change's prediction."""
    violations = _csp_violations(page)
    page.get_by_role("link", name="Risk model").click()
    expect(page.get_by_role("heading", name="Model card")).to_be_visible()
    expect(page.locator(".facts")).to_contain_text("model v1")
    page.get_by_label("From").fill(trained.start)
    page.get_by_label("To").fill(trained.end)
    page.get_by_role("button", name="Run the backtest").click()
    expect(page.get_by_role("row", name=re.compile(r"^rules "))).to_be_visible()
    expect(page.get_by_role("row", name=re.compile(r"^model "))).to_be_visible()
    assert page.locator("input, select, textarea").evaluate_all(UNLABELLED) == []
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"] + 1, width  # type: ignore[index]
    shot(page, f"risk-page-{tag}")
    page.get_by_label("From").fill("last tuesday")
    page.get_by_role("button", name="Run the backtest").click()
    expect(page.get_by_role("alert")).to_have_text(re.compile(r"^from: 'last tuesday' is not an ISO 8601"))
    page.goto(f"{trained.site.url}/changes/{trained.predicted}")
    expect(page.get_by_text(f"P(failure) {predicted['probability']:.1%}")).to_be_visible()
    factors = page.locator("table.factors tbody tr")
    expect(factors).to_have_count(len(predicted["factors"]))
    expect(factors.first).to_contain_text(predicted["factors"][0]["feature"])
    shot(page, f"change-prediction-{tag}")
    assert violations == [], violations


def test_the_risk_page_and_a_prediction_in_chromium(browser: Browser, trained: Trained) -> None:
    predicted = _prediction(trained.site, trained.predicted)
    assert predicted is not None
    for viewport, tag in ((DESKTOP, "desktop"), (PHONE, "phone")):
        page = sign_in(browser, trained.site, "security-lead", viewport)
        try:
            _browse(page, trained, predicted, tag)
        finally:
            page.context.close()
