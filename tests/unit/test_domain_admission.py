"""Issue 15: the Kubernetes admission webhook's rules (domain/admission.py): AdmissionReviews as
the API server sends them (tests/fixtures/admission/) → what to ask; the answers needing no
store; the AdmissionReview answered."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from cortex_change.domain import admission
from cortex_change.domain.admission import Request, Verdict, local_verdict, parse, respond
from cortex_change.domain.errors import ValidationError

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "admission"


def fixture(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return doc


def with_object(review: dict[str, Any], **metadata: Any) -> dict[str, Any]:
    """A copy of the review whose object's metadata has these keys replaced (None: removed)."""
    out = copy.deepcopy(review)
    meta = out["request"]["object"]["metadata"]
    for key, value in metadata.items():
        if value is None:
            meta.pop(key, None)
        else:
            meta[key] = value
    return out


# --- parsing real reviews ------------------------------------------------------------------------


def test_a_deployment_created_names_its_change_service_and_environment() -> None:
    asked = parse(fixture("deployment-create.json"))
    assert asked == Request(
        uid="705ab4f5-6393-11e8-b7cc-42010a800002",
        group="apps",
        kind="Deployment",
        operation="CREATE",
        namespace="shop",
        name="web",
        service="web",
        environment="production",  # the label `environment`
        change_id="RFC-20261201210000-1a2b3c",
    )
    assert asked.gated and asked.production
    assert asked.describe() == "Deployment shop/web"


def test_an_update_takes_the_service_annotation_and_the_namespace_as_environment() -> None:
    asked = parse(fixture("deployment-update.json"))
    assert (asked.operation, asked.service, asked.service_from) == (
        "UPDATE",
        "checkout-api",
        "annotation cortex-change/service",
    )
    assert (asked.environment, asked.change_id, asked.gated, asked.production) == (
        "staging",
        None,
        True,
        False,
    )


def test_a_statefulset_environment_annotation_wins_over_the_label() -> None:
    asked = parse(fixture("statefulset-create.json"))
    assert (asked.kind, asked.service, asked.environment, asked.change_id) == (
        "StatefulSet",
        "ledger-db",
        "production",
        "RFC-20261201210000-4d5e6f",
    )
    assert asked.gated


@pytest.mark.parametrize(
    ("labels", "annotations", "expected"),
    [
        ({"environment": "qa", "env": "dev"}, {}, "qa"),
        ({"env": "dev"}, {}, "dev"),
        ({}, {}, "shop"),  # the namespace
        ({"environment": ""}, {"cortex-change/environment": ""}, "shop"),  # empty values: as absent
        ({"env": "dev"}, {"cortex-change/environment": "prod"}, "prod"),
    ],
)
def test_where_the_environment_comes_from(
    labels: dict[str, str], annotations: dict[str, str], expected: str
) -> None:
    review = with_object(fixture("deployment-create.json"), labels=labels, annotations=annotations)
    assert parse(review).environment == expected


def test_labels_and_annotations_may_be_absent_or_null() -> None:
    review = with_object(fixture("deployment-create.json"), labels=None, annotations=None)
    asked = parse(review)
    assert (asked.service, asked.environment, asked.change_id) == ("web", "shop", None)
    review["request"]["object"]["metadata"] |= {"labels": None, "annotations": None}
    assert parse(review) == asked


def test_a_name_generated_at_creation_falls_back_to_the_request_then_to_none() -> None:
    review = with_object(fixture("deployment-create.json"), name=None, generateName="web-")
    assert parse(review).service == "web"  # request.name
    review["request"]["name"] = ""
    asked = parse(review)
    assert (asked.name, asked.service) == (None, None)
    assert local_verdict(asked) == Verdict(
        False, "Deployment shop/(unnamed) has no name: annotate cortex-change/service"
    )


def test_a_delete_and_a_service_are_not_gated_whatever_their_object() -> None:
    deleted = parse(fixture("deployment-delete.json"))
    assert (deleted.operation, deleted.gated, deleted.name) == ("DELETE", False, "web")
    assert local_verdict(deleted) == Verdict(True, "DELETE is not gated (only CREATE and UPDATE are)")
    service = parse(fixture("service-create.json"))
    assert (service.group, service.kind, service.gated) == ("", "Service", False)
    assert local_verdict(service) == Verdict(
        True, "a Service is not gated (only Deployments and StatefulSets are)"
    )
    # a scale subresource is an autoscaling/v1 Scale: not gated either
    scale = fixture("deployment-update.json")
    scale["request"]["kind"] = {"group": "autoscaling", "version": "v1", "kind": "Scale"}
    scale["request"]["object"] = {"apiVersion": "autoscaling/v1", "kind": "Scale", "spec": {"replicas": 5}}
    assert local_verdict(parse(scale)) == Verdict(
        True, "a Scale is not gated (only Deployments and StatefulSets are)"
    )


def test_a_dry_run_is_read() -> None:
    review = fixture("deployment-update.json")
    review["request"]["dryRun"] = True
    assert parse(review).dry_run is True


# --- malformed reviews ---------------------------------------------------------------------------


def broken(change: Any) -> dict[str, Any]:
    review = fixture("deployment-create.json")
    change(review)
    return review


@pytest.mark.parametrize(
    ("review", "field"),
    [
        ([], "body"),
        ("AdmissionReview", "body"),
        (broken(lambda r: r.update(apiVersion="admission.k8s.io/v1beta1")), "apiVersion"),
        (broken(lambda r: r.pop("apiVersion")), "apiVersion"),
        (broken(lambda r: r.update(kind="AdmissionRequest")), "kind"),
        (broken(lambda r: r.pop("request")), "request"),
        (broken(lambda r: r.update(request=[])), "request"),
        (broken(lambda r: r["request"].pop("uid")), "request.uid"),
        (broken(lambda r: r["request"].update(uid="")), "request.uid"),
        (broken(lambda r: r["request"].update(uid=42)), "request.uid"),
        (broken(lambda r: r["request"].update(uid="a\nb")), "request.uid"),
        (broken(lambda r: r["request"].update(uid="u" * 129)), "request.uid"),
        (broken(lambda r: r["request"].pop("kind")), "request.kind"),
        (broken(lambda r: r["request"].update(kind="Deployment")), "request.kind"),
        (broken(lambda r: r["request"]["kind"].pop("kind")), "request.kind.kind"),
        (broken(lambda r: r["request"]["kind"].update(group=1)), "request.kind.group"),
        (broken(lambda r: r["request"].update(operation="PATCH")), "request.operation"),
        (broken(lambda r: r["request"].pop("operation")), "request.operation"),
        (broken(lambda r: r["request"].update(namespace=["shop"])), "request.namespace"),
        (broken(lambda r: r["request"].update(dryRun="yes")), "request.dryRun"),
        (broken(lambda r: r["request"].update(object=None)), "request.object"),
        (broken(lambda r: r["request"]["object"].pop("metadata")), "request.object.metadata"),
        (
            broken(lambda r: r["request"]["object"]["metadata"].update(labels=["a"])),
            "request.object.metadata.labels",
        ),
        (
            broken(lambda r: r["request"]["object"]["metadata"]["annotations"].update(x=1)),
            "request.object.metadata.annotations",
        ),
        (broken(lambda r: r["request"]["object"]["metadata"].update(name=7)), "request.object.metadata.name"),
    ],
)
def test_a_malformed_review_is_refused_naming_what_is_wrong(review: Any, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse(review)
    assert caught.value.field == field


def test_what_is_not_gated_is_not_read_further() -> None:
    """A DELETE's object is null and its oldObject is not needed: nothing of it is checked."""
    review = fixture("deployment-delete.json")
    review["request"]["oldObject"] = "anything"
    assert parse(review).operation == "DELETE"


# --- the answers needing no store ----------------------------------------------------------------


def test_production_without_a_change_id_is_denied_and_anything_else_goes_to_the_store() -> None:
    prod = parse(with_object(fixture("deployment-create.json"), annotations={}))
    assert local_verdict(prod) == Verdict(
        False, "production needs an approved change: annotate cortex-change/id"
    )
    for env in ("prod", "Production"):
        asked = prod.copy_with(environment=env)
        assert local_verdict(asked) == Verdict(False, admission.NEEDS_CHANGE)
    assert local_verdict(parse(fixture("deployment-create.json"))) is None  # the gate decides
    assert local_verdict(parse(fixture("deployment-update.json"))) is None  # freezes decide


@pytest.mark.parametrize(
    ("annotations", "words"),
    [
        ({"cortex-change/id": "RFC-1"}, "annotation cortex-change/id: 'RFC-1' is not a change id"),
        ({"cortex-change/id": ""}, "annotation cortex-change/id: '' is not a change id"),
        ({"cortex-change/service": ""}, "annotation cortex-change/service: must not be empty"),
        ({"cortex-change/service": "a\tb"}, "annotation cortex-change/service: must be one line"),
        ({"cortex-change/environment": "x" * 201}, "environment: is 201 characters"),
    ],
)
def test_bad_annotations_are_denied_with_the_reason(annotations: dict[str, str], words: str) -> None:
    asked = parse(with_object(fixture("deployment-create.json"), annotations=annotations))
    verdict = local_verdict(asked)
    assert verdict is not None and not verdict.allowed
    assert verdict.reason.startswith(words), verdict.reason


# --- the answer ----------------------------------------------------------------------------------


def test_the_answer_carries_the_uid_and_a_denial_its_reason() -> None:
    assert respond("u-1", Verdict(True, "fine")) == {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {"uid": "u-1", "allowed": True},
    }
    assert respond("u-2", Verdict(False, "no")) == {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {"uid": "u-2", "allowed": False, "status": {"code": 403, "message": "no"}},
    }
