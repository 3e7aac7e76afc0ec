"""Windows over the API: change managers add and remove them, anyone with a token lists them."""

from __future__ import annotations

from api.conftest import Api


def test_windows_are_added_listed_and_removed_by_change_managers(api: Api) -> None:
    body = {
        "kind": "freeze",
        "start": "2027-12-20T00:00:00+01:00",
        "end": "2028-01-02T00:00:00+01:00",
        "scope": "environment:production",
        "reason": "Year end",
        "policy": "cab",
    }
    refused = api.as_("alice").post("/windows", json=body)
    assert (
        refused.status_code == 403
        and "may not manage freeze and maintenance windows" in refused.json()["detail"]
    )
    tokens = api.cli("token", "create", "change-manager")
    assert tokens.code == 0, tokens.err
    cm = tokens.out.strip().splitlines()[-1].split()[-1]
    import httpx

    with httpx.Client(base_url=api.server.url + "/api/v1", headers={"Authorization": f"Bearer {cm}"}) as c:
        made = c.post("/windows", json=body)
        assert made.status_code == 201, made.text
        window = made.json()
        assert (window["starts_at"], window["policy"]) == ("2027-12-19T23:00:00Z", "cab")
        recurring = c.post(
            "/windows",
            json={"kind": "maintenance", "cron": "0 22 * * 6", "duration": "4h", "reason": "Saturdays"},
        )
        assert recurring.status_code == 201 and recurring.json()["duration_seconds"] == 14400
        bad = c.post("/windows", json={**body, "end": "2027-12-01"})
        assert bad.status_code == 422 and "END" in bad.json()["detail"]
        assert {w["window_id"] for w in api.as_("alice").get("/windows").json()} == {
            window["window_id"],
            recurring.json()["window_id"],
        }
        assert c.delete(f"/windows/{window['window_id']}").status_code == 204
        assert c.delete(f"/windows/{window['window_id']}").status_code == 404
    assert api.as_("alice").delete(f"/windows/{recurring.json()['window_id']}").status_code == 403
