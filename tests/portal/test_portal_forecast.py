"""The performance impact forecast (docs/canary.md) through the doors: the API's assessment carries
it (its response model forbids unknown fields) and the portal's change page shows it beside the
risk. The history — earlier changes' statistical judgements of the service — is written on the
server's store in-process, as validation writes it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html import escape

import pytest

from api.conftest import serving
from cortex_change.domain.events import Event, EventKind
from cortex_change.services import unit
from cortex_change.services.context import open_context
from portal.conftest import Portal
from portal.test_portal_http import signed_in
from support import TEST_IMPLEMENTERS, FakeClock, file_change


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    cwd = tmp_path_factory.mktemp("forecast")
    store = str(cwd / "store.db")
    with serving(store, cwd) as running:
        an_hour_ago = FakeClock(datetime.now(UTC) - timedelta(hours=1))  # judged before any assessment
        ctx = open_context(
            env={"CORTEX_CHANGE_DB": store, "IMPLEMENTERS": TEST_IMPLEMENTERS}, clock=an_hour_ago
        )
        try:
            for n in range(6):  # six earlier changes of `chat`, each judged: error rate +0.1·n points
                earlier = file_change(
                    ctx, type="normal", category="deployment", title=f"Chat {n}", requested_by="alice",
                    affected_services=["chat"],
                )  # fmt: skip
                figures = {
                    "call": "pass",
                    "metrics": [
                        {"metric": "error_rate", "shift": 0.1 * n, "change_pct": None},
                        {"metric": "latency", "shift": 2.0, "change_pct": 2.0 * n},
                    ],
                }
                unit.record(ctx, earlier.change_id, [Event(EventKind.CANARY_JUDGED, "worker:w1", figures)])
        finally:
            ctx.close()
        yield Portal(url=running.server.url, tokens=running.tokens, api=running)


def test_the_assessment_records_the_forecast_and_the_change_page_shows_it(site: Portal) -> None:
    change = site.api.create(affected_services=["chat"])
    r = site.api.as_("alice").post(f"/changes/{change['change_id']}/assess", json={})
    assert r.status_code == 200, r.text
    forecast = r.json()["assessment"]["forecast"]
    assert len(forecast["basis"]) == 6
    assert forecast["error_rate"] == {"unit": "points", "median": 0.25, "low": 0.05, "high": 0.45, "n": 6}
    assert forecast["latency"]["median"] == 5.0
    assert forecast["summary"].startswith("error rate +0.25 points (80 %: +0.05 points to +0.45 points; n=6)")
    with signed_in(site, "tech-lead") as c:
        html = c.get(f"/changes/{change['change_id']}").text
    assert "Expected impact, from the statistical validation of earlier changes" in html
    assert escape(forecast["summary"]) in html

    other = site.api.create(affected_services=["search"])
    r = site.api.as_("alice").post(f"/changes/{other['change_id']}/assess", json={})
    assert r.json()["assessment"]["forecast"]["summary"].startswith("no history (0 earlier judged")


def test_a_change_document_keeps_the_forecast(site: Portal) -> None:
    change = site.api.create(affected_services=["chat"])
    site.api.as_("alice").post(f"/changes/{change['change_id']}/assess", json={})
    doc = site.api.as_("tech-lead").get(f"/changes/{change['change_id']}").json()
    assert doc["assessment"]["forecast"]["latency"]["unit"] == "%"
