"""The calendar over HTTP on a real server per backend: the iCalendar feed behind a feed secret
(no bearer token; parsed back with `icalendar`), 404 for a wrong, revoked or API-token "feed",
`GET /api/v1/calendar` behind a token, and the client-mode CLI giving the local answer."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from icalendar import Calendar

from api.conftest import CLI, Api, environment

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def iso(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def planned(api: Api, service: str, start: str, end: str, title: str = "Deploy new feature X") -> str:
    doc = api.create(
        "alice",
        title=title,
        impact="medium",
        affected_services=[service],
        environment="production",
        planned_start=start,
        planned_end=end,
    )
    return str(doc["change_id"])


def new_feed(api: Api, name: str = "ops calendar") -> tuple[str, str]:
    """(feed id, path) from `calendar feed create`."""
    ran = api.cli("calendar", "feed", "create", name, "--as", "change-manager")
    assert ran.code == 0, ran.err
    path = ran.out.strip()
    assert path.startswith("/api/v1/calendar/ccf_") and path.endswith(".ics"), ran.out
    return path.split("_")[1], path


def problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    body: dict[str, Any] = r.json()
    return body


def test_the_feed_needs_no_bearer_token_and_parses(shared_api: Api) -> None:
    api = shared_api
    cid = planned(
        api, "cal-a", iso(DAY), iso(DAY + 2 * HOUR), title="Deploy cal-a; 2.4, with ü€🚀 " + "x" * 90
    )
    freeze = api.cli(
        "windows",
        "add",
        "freeze",
        iso(3 * DAY),
        iso(4 * DAY),
        "--reason",
        "Cal freeze",
        "--as",
        "change-manager",
    )
    assert freeze.code == 0, freeze.err
    window_id = freeze.out.split()[0]
    _, path = new_feed(api)
    r = httpx.get(api.server.url + path, timeout=30)  # no Authorization header at all
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/calendar; charset=utf-8"
    assert "no-store" in r.headers["cache-control"]
    assert b"\r\n" in r.content and all(len(line) <= 75 for line in r.content.split(b"\r\n"))
    cal = Calendar.from_ical(r.content)
    events = {str(e["UID"]): e for e in cal.walk("VEVENT")}
    change = events[f"{cid}@cortex-change"]
    assert str(change["SUMMARY"]) == f"{cid} Deploy cal-a; 2.4, with ü€🚀 " + "x" * 90
    assert str(change["STATUS"]) == "TENTATIVE"
    assert change["DTEND"].dt - change["DTSTART"].dt == 2 * HOUR
    assert str(events[f"{window_id}@cortex-change"]["SUMMARY"]) == "Freeze: Cal freeze"
    assert str(events[f"{window_id}@cortex-change"]["TRANSP"]) == "TRANSPARENT"
    assert "ccf_" not in api.server.log()  # the secret in the path is not logged (access log off here)


def test_a_wrong_revoked_or_api_token_feed_is_not_found(shared_api: Api) -> None:
    api = shared_api
    feed_id, path = new_feed(api, "to revoke")
    base = api.server.url
    details = []
    for wrong in (
        path[:-5] + ("A" if path[-5] != "A" else "B") + ".ics",  # one character off
        "/api/v1/calendar/nope.ics",
        f"/api/v1/calendar/{api.tokens['alice']}.ics",  # an API token opens no feed
        f"/api/v1/calendar/{api.tokens['alice'].replace('cc_', 'ccf_')}.ics",
    ):
        details.append(problem(httpx.get(base + wrong, timeout=30), 404)["detail"])
    ran = api.cli("calendar", "feed", "revoke", feed_id, "--as", "change-manager")
    assert ran.code == 0, ran.err
    details.append(problem(httpx.get(base + path, timeout=30), 404)["detail"])
    assert set(details) == {"no such calendar feed"}  # never which
    # a feed secret is no API token either
    secret = path.removeprefix("/api/v1/calendar/").removesuffix(".ics")
    r = httpx.get(f"{base}/api/v1/calendar", headers={"Authorization": f"Bearer {secret}"}, timeout=30)
    problem(r, 401)


def test_the_json_calendar_needs_a_token(shared_api: Api) -> None:
    api = shared_api
    cid = planned(api, "cal-b", iso(2 * DAY), iso(2 * DAY + HOUR))
    problem(api.anonymous().get("/calendar"), 401)
    r = api.as_("ops-lead").get("/calendar", params={"service": "cal-b"})
    assert r.status_code == 200, r.text
    view = r.json()
    assert set(view) == {"from", "to", "changes", "windows"}
    assert [c["change_id"] for c in view["changes"]] == [cid]
    entry = view["changes"][0]
    assert (entry["state"], entry["services"], entry["environment"]) == (
        "pending_assessment",
        ["cal-b"],
        "production",
    )
    r = api.as_("ops-lead").get("/calendar", params={"service": "cal-b", "environment": "staging"})
    assert r.json()["changes"] == []
    r = api.as_("ops-lead").get("/calendar", params={"from": iso(3 * DAY), "service": "cal-b"})
    assert r.json()["changes"] == []
    assert "from:" in problem(api.as_("ops-lead").get("/calendar", params={"from": "soon"}), 422)["detail"]
    problem(api.as_("ops-lead").get("/calendar", params={"form": "2026-01-01"}), 422)  # unknown parameter


def test_the_client_cli_answers_as_the_local_one(shared_api: Api) -> None:
    api = shared_api
    planned(api, "cal-c", iso(DAY), iso(DAY + HOUR))
    assert CLI is not None
    cwd = api.server.cwd
    env = environment(str(cwd / "no-such-dir" / "client.db"), cwd)
    env |= {"CORTEX_CHANGE_URL": api.server.url, "CORTEX_CHANGE_TOKEN": api.tokens["ops-lead"]}
    args = ["calendar", "--service", "cal-c", "--json"]
    remote = subprocess.run(
        [CLI, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    assert remote.returncode == 0, remote.stderr
    assert not (cwd / "no-such-dir").exists(), "the client opened a local store"
    local = api.cli(*args)
    assert local.code == 0, local.err
    assert json.loads(remote.stdout) == json.loads(local.out)
