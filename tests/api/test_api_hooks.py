"""Git and CI webhooks (POST /hooks/github, /hooks/gitlab) on a real server per backend: the
providers' documented payloads, signed as they sign them (HMAC-SHA256 computed here; GitLab's
token), filing one change per delivery; redeliveries, bad signatures, unknown events and oversized
bodies write nothing (ignored events write only their audit event)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.conftest import Api, serving
from gitpayloads import (
    GITHUB_SECRET,
    GITLAB_TOKEN,
    github_deployment,
    github_pull_request,
    github_push,
    github_signature,
    gitlab_deployment,
    gitlab_merge_request,
    gitlab_push,
)
from support import backend_store, query

TOML = f"""
GITHUB_WEBHOOK_SECRET = "{GITHUB_SECRET}"
GITLAB_WEBHOOK_TOKEN = "{GITLAB_TOKEN}"
RATE_LIMIT_PER_MINUTE = 0

[repositories]
"octo-org/web" = ["web", "checkout"]
"mike/diaspora" = ["diaspora"]
"""


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def hooked(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """One server per backend whose configuration holds both providers' secrets."""
    cwd = tmp_path_factory.mktemp("hooks")
    with serving(backend_store(request, cwd), cwd, TOML) as running:
        yield running


def counts(api: Api) -> tuple[int, int, int]:
    """(changes, audit events, idempotency keys) in the server's store."""
    return tuple(  # type: ignore[return-value]
        int(query(api.store, f"SELECT count(*) FROM {t}")[0][0])
        for t in ("changes", "audit_events", "idempotency_keys")
    )


def ignored_count(api: Api) -> int:
    rows = query(api.store, "SELECT count(*) FROM audit_events WHERE action = 'webhook_ignored'")
    return int(rows[0][0])


def github(
    api: Api,
    event: str,
    payload: Any,
    *,
    delivery: str | None = None,
    secret: str = GITHUB_SECRET,
    signature: str | None = None,
) -> httpx.Response:
    """POST as GitHub does: the raw JSON body, its HMAC, the event and delivery headers."""
    body = json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/7d1b5e4",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-GitHub-Hook-ID": "292430182",
        "X-Hub-Signature-256": signature if signature is not None else github_signature(body, secret),
    }
    return httpx.post(f"{api.server.url}/hooks/github", content=body, headers=headers, timeout=30)


def gitlab(
    api: Api, event: str, payload: Any, *, token: str | None = GITLAB_TOKEN, key: str | None = None
) -> httpx.Response:
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "GitLab/17.8.0",
        "X-Gitlab-Event": event,
        "X-Gitlab-Instance": "https://gitlab.example.com",
        "X-Gitlab-Webhook-UUID": str(uuid.uuid4()),
        "X-Gitlab-Event-UUID": str(uuid.uuid4()),
        "Idempotency-Key": key or str(uuid.uuid4()),
    }
    if token is not None:
        headers["X-Gitlab-Token"] = token
    return httpx.post(f"{api.server.url}/hooks/gitlab", json=payload, headers=headers, timeout=30)


def show(api: Api, change_id: str) -> dict[str, Any]:
    r = api.as_("alice").get(f"/changes/{change_id}")
    assert r.status_code == 200, r.text
    doc: dict[str, Any] = r.json()
    return doc


def test_github_push_to_main_files_an_assessed_change_by_the_repository_agent(hooked: Api) -> None:
    r = github(hooked, "push", github_push())
    assert r.status_code == 201, r.text
    answer = r.json()
    assert answer["status"] == "filed" and answer["change_management"] == "enabled"
    doc = show(hooked, answer["change_id"])
    assert (doc["type"], doc["category"]) == ("normal", "deployment")
    assert doc["title"] == "Push to octo-org/web@main: Bump payment client to 4.2.1 (+2 more commits)"
    assert doc["requested_by"] == "github:octo-org/web" and doc["origin"] == "agent"
    assert doc["affected_services"] == ["web", "checkout"]
    assert "Fix rounding of VAT" in doc["description"]
    assert doc["state"] != "pending_assessment" and doc["risk_score"] is not None
    assert doc["state"] != "approved"  # an agent's change at medium risk or above waits for a person


def test_a_redelivery_files_nothing_new(hooked: Api) -> None:
    delivery = str(uuid.uuid4())
    first = github(hooked, "pull_request", github_pull_request(), delivery=delivery)
    assert first.status_code == 201, first.text
    before = counts(hooked)
    again = github(hooked, "pull_request", github_pull_request(), delivery=delivery)
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "duplicate"
    assert again.json()["change_id"] == first.json()["change_id"]
    assert counts(hooked) == before


def test_a_hotfix_push_is_an_emergency_change(hooked: Api) -> None:
    r = github(hooked, "push", github_push("refs/heads/hotfix/INC-2041"))
    assert r.status_code == 201, r.text
    doc = show(hooked, r.json()["change_id"])
    assert (doc["type"], doc["category"], doc["urgency"]) == ("emergency", "deployment", "high")
    assert doc["approval_required"] == "emergency-cab"


def test_github_deployment_to_production(hooked: Api) -> None:
    r = github(hooked, "deployment", github_deployment())
    assert r.status_code == 201, r.text
    doc = show(hooked, r.json()["change_id"])
    assert (doc["environment"], doc["impact"]) == ("production", "high")


def test_gitlab_push_merge_and_deployment(hooked: Api) -> None:
    push = gitlab(hooked, "Push Hook", gitlab_push())
    assert push.status_code == 201, push.text
    assert show(hooked, push.json()["change_id"])["affected_services"] == ["diaspora"]
    merge = gitlab(hooked, "Merge Request Hook", gitlab_merge_request())
    assert merge.status_code == 201, merge.text
    assert merge.json()["title"] == "Merge !1 ms-viewport into mike/diaspora@master: MS-Viewport"
    deploy = gitlab(hooked, "Deployment Hook", gitlab_deployment())
    assert deploy.status_code == 201, deploy.text
    doc = show(hooked, deploy.json()["change_id"])
    assert doc["requested_by"] == "gitlab:root/test-deployment-webhooks"
    assert doc["affected_services"] == ["test-deployment-webhooks"]  # unmapped: its own name
    assert doc["environment"] == "staging"


def test_gitlab_redelivery_by_its_idempotency_key(hooked: Api) -> None:
    key = str(uuid.uuid4())
    first = gitlab(hooked, "Push Hook", gitlab_push(), key=key)
    assert first.status_code == 201, first.text
    before = counts(hooked)
    again = gitlab(hooked, "Push Hook", gitlab_push(), key=key)
    assert (again.status_code, again.json()["change_id"]) == (200, first.json()["change_id"])
    assert counts(hooked) == before


@pytest.mark.parametrize(
    "signature",
    [
        "",
        "sha256=" + "0" * 64,
        github_signature(b"{}"),  # another body's
        github_signature(json.dumps(github_push()).encode(), "not the secret"),
        "sha1=" + "0" * 40,
    ],
)
def test_github_unsigned_or_wrongly_signed_is_401_and_writes_nothing(hooked: Api, signature: str) -> None:
    before = counts(hooked)
    r = github(hooked, "push", github_push(), signature=signature)
    assert r.status_code == 401, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "X-Hub-Signature-256" in r.json()["detail"] and GITHUB_SECRET not in r.text
    assert counts(hooked) == before


@pytest.mark.parametrize("token", [None, "", GITLAB_TOKEN + "x", GITLAB_TOKEN.upper()])
def test_gitlab_without_or_with_a_wrong_token_is_401(hooked: Api, token: str | None) -> None:
    before = counts(hooked)
    r = gitlab(hooked, "Push Hook", gitlab_push(), token=token)
    assert r.status_code == 401, r.text
    assert counts(hooked) == before


@pytest.mark.parametrize(
    ("event", "payload"),
    [
        ("ping", {"zen": "Keep it logically awesome.", "hook_id": 292430182}),
        ("issues", {"action": "opened"}),
        ("deployment_status", {"action": "created"}),
        ("push", github_push("refs/tags/v2.0.0")),
        ("push", github_push("refs/heads/feature/vat")),
        ("push", github_push("refs/heads/release/2026.03")),
        ("pull_request", github_pull_request(merged=False)),
    ],
)
def test_events_that_file_nothing_are_202_and_counted(hooked: Api, event: str, payload: Any) -> None:
    changes_before, events_before, _ = counts(hooked)
    ignored_before = ignored_count(hooked)
    r = github(hooked, event, payload)
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "ignored" and r.json()["reason"]
    assert counts(hooked)[:2] == (changes_before, events_before + 1)
    assert ignored_count(hooked) == ignored_before + 1
    metrics = httpx.get(f"{hooked.server.url}/metrics", timeout=30).text
    assert f'cortex_change_transitions_total{{action="webhook_ignored"}} {ignored_before + 1}.0' in metrics


def test_gitlab_unknown_event_and_other_statuses_are_ignored(hooked: Api) -> None:
    changes_before = counts(hooked)[0]
    assert gitlab(hooked, "Pipeline Hook", {"object_kind": "pipeline"}).status_code == 202
    assert gitlab(hooked, "Deployment Hook", gitlab_deployment("success")).status_code == 202
    assert gitlab(hooked, "Merge Request Hook", gitlab_merge_request(action="open")).status_code == 202
    assert counts(hooked)[0] == changes_before


def test_an_oversized_payload_is_413_and_writes_nothing(hooked: Api) -> None:
    payload = github_push(messages=["x" * (1024 * 1024)])
    before = counts(hooked)
    r = github(hooked, "push", payload)
    assert r.status_code == 413, r.text
    assert counts(hooked) == before


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"{not json", "body: malformed JSON"),
        (b'{"ref": "refs/heads/main"}', "body.repository.full_name"),
        (b"[1, NaN]", "body: NaN"),
        (b"\xff\xfe", "body: is not UTF-8"),
    ],
)
def test_a_signed_but_malformed_known_event_is_422_and_writes_nothing(
    hooked: Api, body: bytes, detail: str
) -> None:
    before = counts(hooked)
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": github_signature(body),
    }
    r = httpx.post(f"{hooked.server.url}/hooks/github", content=body, headers=headers, timeout=30)
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith(detail)
    assert counts(hooked) == before


def test_github_form_encoded_delivery(hooked: Api) -> None:
    from urllib.parse import urlencode

    body = urlencode({"payload": json.dumps(github_deployment("develop", "staging"))}).encode()
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-GitHub-Event": "deployment",
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": github_signature(body),
    }
    r = httpx.post(f"{hooked.server.url}/hooks/github", content=body, headers=headers, timeout=30)
    assert r.status_code == 201, r.text
    assert r.json()["title"].startswith("Deploy octo-org/web@develop")


def test_hooks_without_secrets_are_not_configured(api: Api) -> None:
    """The default configuration: no secret, so nothing is accepted, however it is signed."""
    r = github(api, "push", github_push())
    assert r.status_code == 401 and "not configured" in r.json()["detail"]
    r = gitlab(api, "Push Hook", gitlab_push(), token="")
    assert r.status_code == 401 and "not configured" in r.json()["detail"]
    assert int(query(api.store, "SELECT count(*) FROM changes")[0][0]) == 0


def test_change_management_disabled_records_but_approves_and_gates_nothing(
    store_url: str, tmp_path: Path
) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    toml = f'CHANGE_MGMT_ENABLED = false\nGITHUB_WEBHOOK_SECRET = "{GITHUB_SECRET}"\n'
    with serving(store_url, cwd, toml) as api:
        r = github(api, "push", github_push("refs/heads/hotfix/INC-7"))
        assert r.status_code == 201, r.text
        assert r.json()["change_management"] == "disabled"
        assert r.headers["X-Cortex-Change-Management"].startswith("disabled")
        doc = show(api, r.json()["change_id"])
        assert doc["state"] == "pending_approval"  # EMERGENCY_AUTO_APPROVE, yet a person decides
        # A low-risk documentation change would be auto-approved: not now.
        low = api.create(category="documentation", impact="low", urgency="low")
        assessed = api.as_("alice").post(f"/changes/{low['change_id']}/assess")
        assert assessed.status_code == 200, assessed.text
        body = assessed.json()
        assert (body["approval_required"], body["state"]) == ("technical-lead", "pending_approval")
        assert assessed.headers["X-Cortex-Change-Management"].startswith("disabled")
        gate = api.as_("alice").get("/gate", params={"service": "anything", "environment": "production"})
        assert gate.status_code == 200
        verdict = gate.json()
        assert verdict["allowed"] is True and verdict["change_id"] is None
        assert "change management is DISABLED" in verdict["reasons"][0]
        ready = httpx.get(f"{api.server.url}/readyz", timeout=30)
        assert ready.json()["change_management"] == "disabled"
        assert ready.headers["X-Cortex-Change-Management"].startswith("disabled")
        # and the CLI says so on every command
        res = api.cli("list")
        assert res.code == 0 and "WARNING: change management is DISABLED" in res.err
