"""`POST /hooks/alertmanager` against the live server, on both backends: Alertmanager's webhook
(version 4) with an agent's token. A storm of 50 firing alerts (distinct fingerprints, one worker),
sent concurrently, ends in at most the model's rate of changes — the rest refused, one page —, a
repeat files nothing, an unconfigured alert is 202 with nothing filed; no token is 401, a person's
token 403, a body over 1 MiB 413, each writing nothing."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.conftest import Api, run_cli, serving
from support import query

TOML = """
AGENT_HUMAN_APPROVAL_LEVEL = "high"
PAGERDUTY_ENABLED = true
PAGERDUTY_API_KEY = "pd-test-key"

[runbooks.restart-marker]
version = 1
run = ["sh", "-c", "echo restarted $0", "{target}"]
params = { target = '[a-z0-9-]{1,40}' }

[remediations.worker-down]
match = { alertname = "WorkerDown", severity = "critical" }
model = "worker-restart"
runbook = "restart-marker"
parameters = { target = "{{ labels.worker }}" }
"""


@pytest.fixture
def healing(store_url: str, tmp_path: Path) -> Iterator[tuple[Api, httpx.Client]]:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    with serving(store_url, cwd, TOML) as api:
        made = run_cli(store_url, cwd, "token", "create", "alertmanager", "--agent")
        assert made.code == 0, made.err
        with httpx.Client(
            base_url=api.server.url, headers={"Authorization": f"Bearer {made.out.strip()}"}, timeout=60
        ) as am:
            yield api, am


def alert(fp: str, worker: str = "worker-7", alertname: str = "WorkerDown", **more: str) -> dict[str, Any]:
    return {
        "status": "firing",
        "labels": {"alertname": alertname, "severity": "critical", "worker": worker, **more},
        "annotations": {"summary": f"{worker} is down"},
        "startsAt": "2026-01-15T08:59:00.000Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph?g0.expr=up",
        "fingerprint": fp,
    }


def webhook(alerts: list[dict[str, Any]]) -> dict[str, Any]:
    """Alertmanager's documented webhook payload (version 4)."""
    return {
        "version": "4",
        "groupKey": '{}:{alertname="WorkerDown"}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "cortex-change",
        "groupLabels": {"alertname": "WorkerDown"},
        "commonLabels": {"alertname": "WorkerDown", "severity": "critical"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": alerts,
    }


def count_rows(store: str, table: str) -> int:
    return int(query(store, f"SELECT count(*) FROM {table}")[0][0])


def _changes(api: Api) -> int:
    return count_rows(api.store, "changes")


def test_a_storm_ends_in_at_most_the_models_rate_of_changes(healing: tuple[Api, httpx.Client]) -> None:
    api, am = healing
    storm = [alert(f"{i:016x}", instance=f"10.0.0.{i}:9100") for i in range(50)]
    batches = [storm[i : i + 5] for i in range(0, 50, 5)]
    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(lambda b: am.post("/hooks/alertmanager", json=webhook(b)), batches))
    assert [r.status_code for r in answers] == [202] * 10, answers[0].text
    outcomes = [a for r in answers for a in r.json()["alerts"]]
    filed = [a for a in outcomes if a["outcome"] == "filed"]
    assert len(filed) == 3 and _changes(api) == 3  # STD_WORKER_RESTART_MAX_FREQ: 3 an hour
    assert all(a["state"] == "approved" for a in filed)
    refused = [a for a in outcomes if a["outcome"] == "refused"]
    assert len(refused) == 47 and sum(bool(a["paged"]) for a in refused) == 1
    pages = query(api.store, "SELECT count(*) FROM outbox WHERE channel='pagerduty'")[0][0]
    assert pages == 1
    audited = query(api.store, "SELECT count(*) FROM audit_events WHERE action='remediation_refused'")[0][0]
    assert audited == 47

    # Alertmanager's repeat of the whole group: every alert a duplicate, nothing filed or paged.
    again = am.post("/hooks/alertmanager", json=webhook(storm))
    assert again.status_code == 202
    assert again.json()["counts"] == {"duplicate": 50}
    assert _changes(api) == 3
    # Resolved: recorded, nothing filed.
    done = am.post("/hooks/alertmanager", json=webhook([{**storm[0], "status": "resolved"}]))
    assert done.json()["counts"] == {"resolved": 1} and _changes(api) == 3


def test_the_door_refuses_before_writing(healing: tuple[Api, httpx.Client]) -> None:
    api, am = healing
    body = webhook([alert("feedface00000001")])
    url = f"{api.server.url}/hooks/alertmanager"
    assert httpx.post(url, json=body).status_code == 401
    assert httpx.post(url, json=body, headers={"Authorization": "Bearer cc_nope_nope"}).status_code == 401
    person = httpx.post(url, json=body, headers={"Authorization": f"Bearer {api.tokens['alice']}"})
    assert person.status_code == 403 and "agent" in person.json()["detail"]
    big = am.post("/hooks/alertmanager", content=b"{" + b" " * (1024 * 1024 + 10) + b"}")
    assert big.status_code == 413
    assert am.post("/hooks/alertmanager", content=b"{not json").status_code == 422
    assert am.post("/hooks/alertmanager", json={"version": "4", "alerts": "x"}).status_code == 422
    assert count_rows(api.store, "remediation_alerts") == 0 and _changes(api) == 0

    unconfigured = am.post(
        "/hooks/alertmanager", json=webhook([alert("0000000000000abc", alertname="DiskFull")])
    )
    assert unconfigured.status_code == 202
    assert unconfigured.json()["alerts"][0]["outcome"] == "unmatched"
    assert count_rows(api.store, "remediation_alerts") == 1 and _changes(api) == 0
