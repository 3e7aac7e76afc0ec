"""The Kubernetes admission webhook (POST /k8s/admission) on a real server per backend:
AdmissionReviews shaped as the API server sends them (tests/fixtures/admission/), answered with
the deploy gate's verdict. The server runs on the real clock: windows are set around now."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.conftest import Api

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "admission"
PATH = "/k8s/admission"


def iso(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def fixture(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return doc


def deployment(
    name: str,
    namespace: str = "shop",
    *,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    fixture_name: str = "deployment-create.json",
) -> dict[str, Any]:
    """A review of `fixture_name` for the object `name` in `namespace`, with a fresh uid."""
    review = copy.deepcopy(fixture(fixture_name))
    request = review["request"]
    request |= {"uid": str(uuid.uuid4()), "name": name, "namespace": namespace}
    meta = request["object"]["metadata"]
    meta |= {"name": name, "namespace": namespace, "labels": labels or {}, "annotations": annotations or {}}
    return review


def webhook(api: Api, who: str | None = "ops-lead") -> httpx.Client:
    """A client at the server's root (the webhook is not under /api/v1), with `who`'s token."""
    headers = {"Authorization": f"Bearer {api.tokens[who]}"} if who else {}
    return httpx.Client(base_url=api.server.url, headers=headers, timeout=30)


def ask(api: Api, review: dict[str, Any]) -> dict[str, Any]:
    """The answer to a review: 200, an AdmissionReview with the request's uid."""
    with webhook(api) as client:
        r = client.post(PATH, json=review, params={"timeout": "10s"})  # as the API server calls it
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    answer: dict[str, Any] = r.json()
    assert (answer["apiVersion"], answer["kind"]) == ("admission.k8s.io/v1", "AdmissionReview")
    response: dict[str, Any] = answer["response"]
    assert response["uid"] == review["request"]["uid"]
    return response


def allowed(response: dict[str, Any]) -> None:
    assert response["allowed"] is True and "status" not in response, response


def denied(response: dict[str, Any]) -> str:
    assert response["allowed"] is False, response
    assert response["status"]["code"] == 403
    message: str = response["status"]["message"]
    return message


def problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    body: dict[str, Any] = r.json()
    return body


def filed(api: Api, service: str, start: str | None, end: str | None, env: str = "production") -> str:
    fields: dict[str, Any] = {"impact": "medium", "affected_services": [service], "environment": env}
    if start is not None:
        fields |= {"planned_start": start, "planned_end": end}
    return str(api.create("alice", **fields)["change_id"])


def approved(api: Api, service: str, start: str | None, end: str | None, env: str = "production") -> str:
    cid = filed(api, service, start, end, env)
    assert api.as_("alice").post(f"/changes/{cid}/assess").json()["state"] == "pending_approval"
    r = api.as_("tech-lead").post(f"/changes/{cid}/approve", json={"reason": "ok"})
    assert r.json()["state"] == "approved", r.text
    return cid


def gate_reasons(api: Api, service: str, environment: str, change: str) -> str:
    params = {"service": service, "environment": environment, "change": change}
    verdict = api.as_("ops-lead").get("/gate", params=params).json()
    assert verdict["allowed"] is False
    return "; ".join(verdict["reasons"])


PROD = {"environment": "production"}


# --- an annotated Deployment: the gate's answer --------------------------------------------------


def test_an_approved_change_in_its_window_admits_the_deployment(shared_api: Api) -> None:
    api = shared_api
    cid = approved(api, "adm-a", iso(-HOUR), iso(HOUR))
    allowed(ask(api, deployment("adm-a", labels=PROD, annotations={"cortex-change/id": cid})))
    # an update, the service named by annotation; a StatefulSet
    update = deployment(
        "adm-a-v2",
        labels=PROD,
        annotations={"cortex-change/id": cid, "cortex-change/service": "adm-a"},
        fixture_name="deployment-update.json",
    )
    allowed(ask(api, update))
    sts = deployment(
        "adm-a", "data", annotations={"cortex-change/id": cid, "cortex-change/environment": "production"}
    )
    sts["request"]["kind"]["kind"] = sts["request"]["object"]["kind"] = "StatefulSet"
    allowed(ask(api, sts))
    # a dry run is answered alike
    dry = deployment("adm-a", labels=PROD, annotations={"cortex-change/id": cid})
    dry["request"]["dryRun"] = True
    allowed(ask(api, dry))


def test_outside_its_window_the_gate_reason_is_the_denial(shared_api: Api) -> None:
    api = shared_api
    start, end = iso(DAY), iso(DAY + HOUR)
    cid = approved(api, "adm-b", start, end)
    message = denied(ask(api, deployment("adm-b", labels=PROD, annotations={"cortex-change/id": cid})))
    assert message == f"{cid} is planned for {start} to {end}, not now"
    assert message == gate_reasons(api, "adm-b", "production", cid)


def test_a_change_not_approved_is_denied(shared_api: Api) -> None:
    api = shared_api
    cid = filed(api, "adm-c", iso(-HOUR), iso(HOUR))
    message = denied(ask(api, deployment("adm-c", labels=PROD, annotations={"cortex-change/id": cid})))
    assert message == f"{cid} is pending_assessment, not approved"
    assert message == gate_reasons(api, "adm-c", "production", cid)


def test_a_change_for_another_service_or_environment_is_denied(shared_api: Api) -> None:
    api = shared_api
    cid = approved(api, "adm-d", iso(-HOUR), iso(HOUR))
    message = denied(ask(api, deployment("adm-other", labels=PROD, annotations={"cortex-change/id": cid})))
    assert message == f"{cid} does not name the service 'adm-other' (its services: adm-d)"
    message = denied(ask(api, deployment("adm-d", "staging", annotations={"cortex-change/id": cid})))
    assert message == f"{cid} is for the environment 'production', not 'staging'"


def test_an_unknown_or_malformed_change_id_is_denied_not_an_error(shared_api: Api) -> None:
    api = shared_api
    unknown = "RFC-20260101000000-abcdef"
    message = denied(ask(api, deployment("adm-e", labels=PROD, annotations={"cortex-change/id": unknown})))
    assert message == f"annotation cortex-change/id: no change {unknown!r}"
    message = denied(ask(api, deployment("adm-e", labels=PROD, annotations={"cortex-change/id": "RFC-1"})))
    assert message.startswith("annotation cortex-change/id: 'RFC-1' is not a change id")


# --- without an annotation -----------------------------------------------------------------------


def test_production_without_a_change_id_is_denied(shared_api: Api) -> None:
    api = shared_api
    approved(api, "adm-f", iso(-HOUR), iso(HOUR))  # an approved change does not count unnamed
    for labels, namespace in ((PROD, "shop"), ({"env": "prod"}, "shop"), ({}, "production")):
        message = denied(ask(api, deployment("adm-f", namespace, labels=labels)))
        assert message == "production needs an approved change: annotate cortex-change/id"


def test_staging_without_a_change_id_is_allowed(shared_api: Api) -> None:
    allowed(ask(shared_api, deployment("adm-g", "staging")))
    allowed(ask(shared_api, deployment("adm-g", "shop", labels={"environment": "qa"})))


def test_a_freeze_in_force_denies_an_unannotated_deploy_in_its_scope(api: Api) -> None:
    review = deployment("adm-h", "staging")
    allowed(ask(api, review))
    cid = approved(api, "adm-h", iso(-HOUR), iso(HOUR), env="staging")  # before the freeze
    annotated = deployment("adm-h", "staging", annotations={"cortex-change/id": cid})
    allowed(ask(api, annotated))
    res = api.cli(
        "windows", "add", "freeze", iso(-HOUR), iso(HOUR),
        "--scope", "environment:staging", "--reason", "x", "--as", "change-manager",
    )  # fmt: skip
    assert res.code == 0, res.err
    window = api.as_("alice").get("/windows").json()[0]["window_id"]
    message = denied(ask(api, deployment("adm-h", "staging")))
    assert message.startswith(f"a deploy of 'adm-h' to 'staging' may not go ahead now: freeze {window} ")
    assert "environment staging" in message and ": x)" in message
    allowed(ask(api, deployment("adm-h", "qa")))  # another environment
    # a freeze on a service reaches it wherever it runs; a future freeze does not stop it now, nor
    # a tier freeze a service unknown to the (empty) CMDB does not reach
    scopes = (
        ("service:adm-i", iso(-HOUR), iso(HOUR)),
        ("all", iso(DAY), iso(DAY + HOUR)),
        ("tier:3", iso(-HOUR), iso(HOUR)),
    )
    for scope, start, end in scopes:
        res = api.cli(
            "windows",
            "add",
            "freeze",
            start,
            end,
            "--scope",
            scope,
            "--reason",
            "y",
            "--as",
            "change-manager",
        )
        assert res.code == 0, res.err
    assert "service adm-i" in denied(ask(api, deployment("adm-i", "qa")))
    allowed(ask(api, deployment("adm-j", "qa")))
    # an approved change in its window is stopped by the freeze too (the gate's reason)
    message = denied(ask(api, annotated))
    assert message.startswith(f"{cid} may not be carried out now: freeze {window}")


# --- what is not gated ---------------------------------------------------------------------------


def test_a_delete_and_other_resources_are_allowed(shared_api: Api) -> None:
    api = shared_api
    gone = fixture("deployment-delete.json")  # production, no change id: a DELETE is not gated
    allowed(ask(api, gone))
    allowed(ask(api, fixture("service-create.json")))


# --- the door --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "request": {}}, "apiVersion"),
        ({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}, "request"),
        ([1, 2], "body"),
    ],
)
def test_a_malformed_review_is_a_422_problem(shared_api: Api, body: Any, named: str) -> None:
    with webhook(shared_api) as client:
        detail = problem(client.post(PATH, json=body), 422)["detail"]
    assert named in detail


def test_a_review_missing_its_uid_or_object_is_422(shared_api: Api) -> None:
    no_uid = deployment("adm-k")
    del no_uid["request"]["uid"]
    no_object = deployment("adm-k")
    no_object["request"]["object"] = None
    with webhook(shared_api) as client:
        assert problem(client.post(PATH, json=no_uid), 422)["detail"] == "request.uid: is missing"
        assert problem(client.post(PATH, json=no_object), 422)["detail"].startswith("request.object: ")
        not_json = client.post(PATH, content=b"{", headers={"Content-Type": "application/json"})
        problem(not_json, 422)
        problem(client.post(PATH, json=deployment("adm-k"), params={"dry": "1"}), 422)


def test_the_webhook_needs_a_token(shared_api: Api) -> None:
    review = deployment("adm-l", "staging")
    with webhook(shared_api, None) as anonymous:
        r = anonymous.post(PATH, json=review)
        problem(r, 401)
        assert r.headers["www-authenticate"] == "Bearer"
        revoked = {"Authorization": f"Bearer {shared_api.revoked}"}
        problem(anonymous.post(PATH, json=review, headers=revoked), 401)
    allowed(ask(shared_api, review))  # any valid token may ask: ops-lead holds no role for it


def test_the_webhook_is_in_the_openapi_document(shared_api: Api) -> None:
    with webhook(shared_api, None) as client:
        paths = client.get("/openapi.json").json()["paths"]
    operation = paths[PATH]["post"]
    assert set(operation["responses"]) >= {"200", "401", "422"}
    assert [p["name"] for p in operation["parameters"]] == ["timeout"]
