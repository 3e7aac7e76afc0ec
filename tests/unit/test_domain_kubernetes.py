"""Issue 14: kubectl's `-o json` listing → the CMDB import document (domain/kubernetes.py)."""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

import pytest

from cortex_change.domain import kubernetes
from cortex_change.domain.errors import ValidationError
from cortex_change.domain.kubernetes import cmdb_document

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "kubernetes"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def listing(*items: object) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": list(items)}


def meta(name: str, namespace: str | None, labels: Any = None, annotations: Any = None) -> dict[str, Any]:
    m: dict[str, Any] = {"name": name, "uid": f"uid-{name}", "resourceVersion": "1"}
    if namespace is not None:
        m["namespace"] = namespace
    if labels is not None:
        m["labels"] = labels
    if annotations is not None:
        m["annotations"] = annotations
    return m


def workload(
    name: str,
    namespace: str | None = "prod",
    labels: dict[str, str] | None = None,
    kind: str = "Deployment",
    images: tuple[str, ...] = ("nginx:1.27",),
    annotations: dict[str, str] | None = None,
    meta_labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": meta(name, namespace, meta_labels, annotations),
        "spec": {
            "replicas": 2,
            "template": {
                "metadata": {"labels": {"app": name} if labels is None else labels},
                "spec": {"containers": [{"name": f"c{i}", "image": im} for i, im in enumerate(images)]},
            },
        },
        "status": {"replicas": 2},
    }


def service(
    name: str, selector: dict[str, str] | None, namespace: str = "prod", ports: tuple[int, ...] = (80,)
) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": "ClusterIP", "ports": [{"port": p, "protocol": "TCP"} for p in ports]}
    if selector is not None:
        spec["selector"] = selector
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta(name, namespace), "spec": spec}


def ingress(name: str, spec: dict[str, Any], namespace: str = "prod") -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": meta(name, namespace),
        "spec": spec,
    }


def path(service_name: str, at: str = "/") -> dict[str, Any]:
    return {
        "path": at,
        "pathType": "Prefix",
        "backend": {"service": {"name": service_name, "port": {"number": 80}}},
    }


def by_name(doc: dict[str, list[dict[str, object]]]) -> dict[str, dict[str, object]]:
    return {str(ci["name"]): ci for ci in doc["cis"]}


def refused(value: object) -> str:
    with pytest.raises(ValidationError) as caught:
        cmdb_document(value)
    return str(caught.value)


# --- the seed's platform, exactly ------------------------------------------------------------


def ns(name: str) -> dict[str, object]:
    return {
        "name": f"ns/{name}",
        "type": "cluster",
        "tier": 3,
        "data": "none",
        "depends_on": [],
        "runs_on": [],
        "part_of": [],
        "kind": "Namespace",
    }


def ci(
    name: str,
    type_: str,
    tier: int,
    owner: str | None,
    data: str,
    depends_on: list[str],
    **attributes: object,
) -> dict[str, object]:
    kind, namespace, _ = name.split("/")
    result: dict[str, object] = {"name": name, "type": type_, "tier": tier}
    if owner is not None:
        result["owner"] = owner
        result["environment"] = "production"
    result.update({"data": data, "depends_on": depends_on, "runs_on": [], "part_of": [f"ns/{namespace}"]})
    kinds = {"deploy": "Deployment", "sts": "StatefulSet", "svc": "Service", "ing": "Ingress"}
    result.update({"kind": kinds[kind], "namespace": namespace})
    result.update(attributes)
    return result


PLATFORM = [
    ci(
        "deploy/cortex/cortex-chat",
        "service",
        1,
        "chat-oncall",
        "none",
        [],
        replicas=3,
        images=["ghcr.io/cortex/cortex-chat:2.14.1", "otel/opentelemetry-collector-contrib:0.98.0"],
    ),
    ci(
        "deploy/cortex/cortex-workers",
        "service",
        3,
        "platform",
        "none",
        [],
        replicas=4,
        images=["ghcr.io/cortex/cortex-workers:2.14.1"],
    ),
    ci(
        "deploy/cortex/youtube-ingestion",
        "service",
        2,
        "ingestion",
        "pii",
        [],
        replicas=2,
        images=["ghcr.io/cortex/youtube-ingestion:1.8.0"],
    ),
    ci(
        "deploy/monitoring/grafana",
        "service",
        2,
        "sre",
        "none",
        [],
        replicas=1,
        images=["docker.io/grafana/grafana:10.4.2"],
    ),
    ci(
        "ing/cortex/cortex-public",
        "network",
        1,
        "chat",
        "none",
        ["svc/cortex/cortex-chat"],
        hosts=["chat.cortex.example"],
        missing_backends=["legacy-api"],
    ),
    ns("cortex"),
    ns("default"),
    ns("monitoring"),
    ci(
        "sts/cortex/postgres-main",
        "service",
        0,
        "dba",
        "phi",
        [],
        replicas=1,
        images=["docker.io/library/postgres:16.3", "quay.io/prometheuscommunity/postgres-exporter:v0.15.0"],
    ),
    ci(
        "sts/cortex/redis",
        "service",
        1,
        "platform",
        "none",
        [],
        replicas=1,
        images=["docker.io/library/redis:7.2.5-alpine"],
    ),
    ci(
        "svc/cortex/cortex-chat",
        "network",
        1,
        "chat",
        "none",
        ["deploy/cortex/cortex-chat"],
        ports=[80, 9464],
    ),
    ci(
        "svc/cortex/cortex-workers",
        "network",
        3,
        "platform",
        "none",
        ["deploy/cortex/cortex-workers", "deploy/cortex/youtube-ingestion"],
        ports=[9100],
    ),
    ci(
        "svc/cortex/postgres-main",
        "network",
        0,
        "dba",
        "phi",
        ["sts/cortex/postgres-main"],
        ports=[5432, 9187],
    ),
    ci("svc/cortex/redis", "network", 1, "platform", "none", ["sts/cortex/redis"], ports=[6379]),
    ci(
        "svc/cortex/youtube-ingestion",
        "network",
        2,
        "ingestion",
        "pii",
        ["deploy/cortex/youtube-ingestion"],
        ports=[8080],
    ),
    ci("svc/default/kubernetes", "network", 3, None, "none", [], ports=[443]),
    ci("svc/monitoring/grafana", "network", 2, "sre", "none", ["deploy/monitoring/grafana"], ports=[80]),
]


def test_the_platform_listing_becomes_the_exact_document() -> None:
    doc = cmdb_document(fixture("cortex-platform.json"))
    assert list(doc) == ["cis"]
    assert [c["name"] for c in doc["cis"]] == [c["name"] for c in PLATFORM]
    for got, want in zip(doc["cis"], PLATFORM, strict=True):
        assert got == want, want["name"]
    assert json.dumps(doc) == json.dumps({"cis": PLATFORM})  # key order too


def test_the_youtube_ingestion_environment_comes_from_the_env_label() -> None:
    raw = fixture("cortex-platform.json")
    [item] = [
        i for i in raw["items"] if i["metadata"]["name"] == "youtube-ingestion" and i["kind"] == "Deployment"
    ]
    assert "environment" not in item["metadata"]["labels"]
    assert item["metadata"]["labels"]["env"] == "production"


def test_a_lone_deployment_is_accepted() -> None:
    doc = cmdb_document(fixture("single-deployment.json"))
    assert doc == {
        "cis": [
            {
                "name": "deploy/prod/api",
                "type": "service",
                "tier": 1,
                "owner": "payments",
                "environment": "production",
                "data": "pci",
                "depends_on": [],
                "runs_on": [],
                "part_of": ["ns/prod"],
                "kind": "Deployment",
                "namespace": "prod",
                "replicas": 2,
                "images": ["registry.example.com/payments/api:3.2.0"],
            },
            ns("prod"),
        ]
    }


def test_an_empty_list_gives_no_cis() -> None:
    assert cmdb_document(listing()) == {"cis": []}


# --- determinism ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_shuffled_items_give_the_same_document(seed: int) -> None:
    raw = fixture("cortex-platform.json")
    expected = json.dumps(cmdb_document(raw))
    shuffled = copy.deepcopy(raw)
    random.Random(seed).shuffle(shuffled["items"])
    for item in shuffled["items"]:  # label and container order does not matter either
        spec = item["spec"].get("template", {}).get("spec")
        if spec:
            spec["containers"].reverse()
        if item["kind"] == "Service":
            item["spec"]["ports"].reverse()
            item["spec"]["selector"] = dict(reversed(list(item["spec"].get("selector", {}).items())))
    assert json.dumps(cmdb_document(shuffled)) == expected
    assert json.dumps(cmdb_document(raw)) == expected


def test_the_input_is_not_modified() -> None:
    raw = fixture("cortex-platform.json")
    before = copy.deepcopy(raw)
    cmdb_document(raw)
    assert raw == before


# --- selectors -----------------------------------------------------------------------------


def test_a_service_selects_every_matching_workload_of_its_namespace() -> None:
    doc = by_name(
        cmdb_document(
            listing(
                workload("api", labels={"app": "shop", "tier": "web"}),
                workload("db", labels={"app": "shop", "tier": "db"}, kind="StatefulSet"),
                workload("other", labels={"app": "shop", "tier": "web"}, namespace="staging"),
                workload("batch", labels={"app": "batch"}),
                service("shop", {"app": "shop"}),
                service("web", {"app": "shop", "tier": "web"}),
            )
        )
    )
    assert doc["svc/prod/shop"]["depends_on"] == ["deploy/prod/api", "sts/prod/db"]
    assert doc["svc/prod/web"]["depends_on"] == ["deploy/prod/api"]  # not staging's, not db
    assert doc["svc/prod/shop"]["part_of"] == ["ns/prod"]
    assert doc["svc/prod/shop"]["ports"] == [80]


def test_a_label_mismatch_selects_nothing() -> None:
    doc = by_name(
        cmdb_document(
            listing(
                workload("api", labels={"app": "api", "track": "stable"}),
                service("api", {"app": "api", "track": "canary"}),
                service("api-v2", {"app": "API"}),  # values compare exactly
                service("name", {"name": "api"}),  # object name and metadata labels are not template labels
            )
        )
    )
    assert doc["svc/prod/api"]["depends_on"] == []
    assert doc["svc/prod/api-v2"]["depends_on"] == []
    assert doc["svc/prod/name"]["depends_on"] == []


def test_metadata_labels_are_not_selected_only_template_labels() -> None:
    doc = by_name(
        cmdb_document(
            listing(
                workload("api", labels={"app": "inner"}, meta_labels={"app": "outer"}),
                service("outer", {"app": "outer"}),
                service("inner", {"app": "inner"}),
            )
        )
    )
    assert doc["svc/prod/outer"]["depends_on"] == []
    assert doc["svc/prod/inner"]["depends_on"] == ["deploy/prod/api"]


@pytest.mark.parametrize("selector", [None, {}])
def test_a_service_without_a_selector_depends_on_nothing(selector: dict[str, str] | None) -> None:
    doc = by_name(
        cmdb_document(listing(workload("api"), service("external", selector, ports=(443, 80, 443))))
    )
    assert doc["svc/prod/external"]["depends_on"] == []
    assert doc["svc/prod/external"]["ports"] == [80, 443]


def test_workload_attributes() -> None:
    item = workload("api", images=("b:2", "a:1", "b:2"))
    del item["spec"]["replicas"]
    doc = by_name(cmdb_document(item))
    assert doc["deploy/prod/api"]["images"] == ["a:1", "b:2"]
    assert "replicas" not in doc["deploy/prod/api"]
    sts = by_name(cmdb_document(workload("db", kind="StatefulSet")))["sts/prod/db"]
    assert (sts["type"], sts["kind"], sts["replicas"], sts["part_of"]) == (
        "service",
        "StatefulSet",
        2,
        ["ns/prod"],
    )


# --- ingress backends ------------------------------------------------------------------------


def test_ingress_depends_on_its_backends_and_lists_the_missing_ones() -> None:
    spec = {
        "ingressClassName": "nginx",
        "defaultBackend": {"service": {"name": "fallback", "port": {"number": 80}}},
        "rules": [
            {
                "host": "www.example.com",
                "http": {"paths": [path("web"), path("api", "/api"), path("gone", "/x")]},
            },
            {"host": "api.example.com", "http": {"paths": [path("api"), path("zombie")]}},
            {"http": {"paths": [path("web")]}},  # no host
            {"host": "static.example.com"},  # no http
            {
                "host": "api.example.com",
                "http": {
                    "paths": [{"path": "/b", "backend": {"resource": {"kind": "StorageBucket", "name": "b"}}}]
                },
            },
        ],
    }
    doc = by_name(
        cmdb_document(
            listing(
                service("web", {"app": "web"}),
                service("api", {"app": "api"}),
                service("fallback", None),
                service("gone", None, namespace="other"),  # same name, another namespace: still missing
                ingress("public", spec),
            )
        )
    )
    ing = doc["ing/prod/public"]
    assert ing["type"] == "network"
    assert ing["depends_on"] == ["svc/prod/api", "svc/prod/fallback", "svc/prod/web"]
    assert ing["missing_backends"] == ["gone", "zombie"]
    assert ing["hosts"] == ["api.example.com", "static.example.com", "www.example.com"]
    assert ing["part_of"] == ["ns/prod"]
    assert ing["kind"] == "Ingress"


def test_an_ingress_with_every_backend_present_has_no_missing_backends() -> None:
    doc = by_name(
        cmdb_document(
            listing(service("web", None), ingress("i", {"rules": [{"http": {"paths": [path("web")]}}]}))
        )
    )
    assert doc["ing/prod/i"]["depends_on"] == ["svc/prod/web"]
    assert doc["ing/prod/i"]["hosts"] == []
    assert "missing_backends" not in doc["ing/prod/i"]


# --- annotations and labels ----------------------------------------------------------------


def annotated(annotations: dict[str, str], labels: dict[str, str] | None = None) -> dict[str, object]:
    return by_name(cmdb_document(workload("api", annotations=annotations, meta_labels=labels)))[
        "deploy/prod/api"
    ]


def test_defaults_without_annotations_or_labels() -> None:
    got = annotated({})
    assert (got["tier"], got["data"]) == (3, "none")
    assert "owner" not in got
    assert "environment" not in got


@pytest.mark.parametrize("tier", [0, 1, 2, 3])
def test_the_tier_annotation(tier: int) -> None:
    assert annotated({"cortex-change.dev/tier": str(tier)})["tier"] == tier


@pytest.mark.parametrize("data", ["none", "pii", "phi", "pci"])
def test_the_data_annotation(data: str) -> None:
    assert annotated({"cortex-change.dev/data": data})["data"] == data


def test_owner_annotation_wins_over_team_label_and_environment_over_env() -> None:
    got = annotated(
        {"cortex-change.dev/owner": "payments-oncall"},
        {"team": "payments", "environment": "prod", "env": "x"},
    )
    assert (got["owner"], got["environment"]) == ("payments-oncall", "prod")
    got = annotated({}, {"team": "payments", "env": "staging"})
    assert (got["owner"], got["environment"]) == ("payments", "staging")


@pytest.mark.parametrize("value", ["x", "4", "-1", "01", " 1", "", "one"])
def test_a_bad_tier_is_refused_naming_the_object(value: str) -> None:
    message = refused(workload("api", annotations={"cortex-change.dev/tier": value}))
    assert (
        message
        == f"deploy/prod/api: annotation cortex-change.dev/tier {value!r} is not a tier (0, 1, 2 or 3)"
    )


@pytest.mark.parametrize("value", ["secret", "PHI", "", "pii,phi"])
def test_a_bad_data_class_is_refused_naming_the_object(value: str) -> None:
    message = refused(workload("api", annotations={"cortex-change.dev/data": value}))
    assert message == (
        f"deploy/prod/api: annotation cortex-change.dev/data {value!r} "
        "is not a data class (none, pii, phi or pci)"
    )


def test_annotations_on_services_and_ingresses_are_read_too() -> None:
    svc = service("db", None)
    svc["metadata"]["annotations"] = {"cortex-change.dev/tier": "0", "cortex-change.dev/data": "phi"}
    ing = ingress("i", {})
    ing["metadata"]["annotations"] = {"cortex-change.dev/tier": "9"}
    doc = by_name(cmdb_document(svc))
    assert (doc["svc/prod/db"]["tier"], doc["svc/prod/db"]["data"]) == (0, "phi")
    assert refused(ing) == "ing/prod/i: annotation cortex-change.dev/tier '9' is not a tier (0, 1, 2 or 3)"


# --- namespaces ------------------------------------------------------------------------------


def namespace(name: str, labels: Any = None, annotations: Any = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": meta(name, None, labels, annotations),
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


def test_namespace_objects_carry_their_annotations() -> None:
    doc = by_name(
        cmdb_document(
            listing(
                workload("api"),
                namespace(
                    "prod",
                    {"kubernetes.io/metadata.name": "prod", "team": "platform", "environment": "production"},
                    {"cortex-change.dev/tier": "1", "cortex-change.dev/data": "pci"},
                ),
                namespace("empty"),
            )
        )
    )
    assert sorted(doc) == ["deploy/prod/api", "ns/empty", "ns/prod"]
    assert doc["ns/prod"] == {
        "name": "ns/prod",
        "type": "cluster",
        "tier": 1,
        "owner": "platform",
        "environment": "production",
        "data": "pci",
        "depends_on": [],
        "runs_on": [],
        "part_of": [],
        "kind": "Namespace",
    }
    assert doc["ns/empty"] == ns("empty")
    # the namespace object's place in the listing does not matter
    later = listing(namespace("prod", None, {"cortex-change.dev/tier": "1"}), workload("api"))
    assert by_name(cmdb_document(later))["ns/prod"]["tier"] == 1


def test_a_bad_namespace_annotation_is_refused() -> None:
    message = refused(listing(namespace("prod", None, {"cortex-change.dev/data": "secret"})))
    assert (
        message
        == "ns/prod: annotation cortex-change.dev/data 'secret' is not a data class (none, pii, phi or pci)"
    )


def test_other_kinds_are_ignored() -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": meta("api-7f9c", "elsewhere"), "spec": {}}
    crd = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    doc = cmdb_document(listing(pod, crd, workload("api")))
    assert [c["name"] for c in doc["cis"]] == ["deploy/prod/api", "ns/prod"]
    assert cmdb_document(pod) == {"cis": []}


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([], "listing: must be a JSON object (kubectl's -o json: a List or one object), not list"),
        ("text", "listing: must be a JSON object (kubectl's -o json: a List or one object), not str"),
        (None, "listing: must be a JSON object (kubectl's -o json: a List or one object), not NoneType"),
        ({"kind": "List"}, "items: must be a list of Kubernetes objects, not NoneType"),
        ({"kind": "List", "items": {}}, "items: must be a list of Kubernetes objects, not dict"),
        (listing(workload("a"), 3), "items[1]: must be a JSON object, not int"),
        (
            listing({"metadata": {"name": "a"}}),
            "items[0]: has no kind (every object needs kind and metadata.name)",
        ),
        (
            listing({"kind": "", "metadata": {"name": "a"}}),
            "items[0]: has no kind (every object needs kind and metadata.name)",
        ),
        (
            listing(workload("a"), {"kind": "Deployment", "metadata": {"namespace": "prod"}}),
            "items[1]: has no metadata.name (every object needs kind and metadata.name)",
        ),
        (
            listing({"kind": "ConfigMap", "metadata": {"namespace": "prod"}}),
            "items[0]: has no metadata.name (every object needs kind and metadata.name)",
        ),
        ({"kind": "Service"}, "object: has no metadata.name (every object needs kind and metadata.name)"),
        ({"kind": "Service", "metadata": []}, "object: metadata must be a JSON object, not list"),
        (
            listing(workload("a", namespace=None)),
            "items[0]: Deployment 'a' has no metadata.namespace (a Deployment is namespaced)",
        ),
        (
            listing(workload("Api")),
            "items[0]: metadata.name 'Api' is not a Kubernetes name "
            "(lower-case letters, digits, '-' and '.', at most 253 characters)",
        ),
        (
            listing(workload("a/b")),
            "items[0]: metadata.name 'a/b' is not a Kubernetes name "
            "(lower-case letters, digits, '-' and '.', at most 253 characters)",
        ),
        (
            listing(workload("a", namespace="Prod")),
            "items[0]: metadata.namespace 'Prod' is not a Kubernetes name "
            "(lower-case letters, digits and '-', at most 63 characters)",
        ),
        (
            listing(workload("a", namespace="a.b")),
            "items[0]: metadata.namespace 'a.b' is not a Kubernetes name "
            "(lower-case letters, digits and '-', at most 63 characters)",
        ),
        (
            listing(workload("a"), workload("b"), workload("a")),
            "items[2]: deploy/prod/a appears twice (first at items[0])",
        ),
        (
            listing(namespace("prod"), namespace("prod")),
            "items[1]: ns/prod appears twice (first at items[0])",
        ),
    ],
)
def test_bad_input_is_refused_naming_the_item(value: object, message: str) -> None:
    assert refused(value) == message


def test_a_deployment_and_a_statefulset_may_share_a_name() -> None:
    doc = cmdb_document(listing(workload("db"), workload("db", kind="StatefulSet")))
    assert [c["name"] for c in doc["cis"]] == ["deploy/prod/db", "ns/prod", "sts/prod/db"]


def bad_field(item: dict[str, Any], where: list[str], value: object) -> str:
    target = item
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = value
    return refused(item)


@pytest.mark.parametrize(
    ("where", "value", "message"),
    [
        (["spec"], "x", "deploy/prod/api: spec must be a JSON object, not str"),
        (["spec", "replicas"], "3", "deploy/prod/api: spec.replicas '3' is not a whole number"),
        (["spec", "replicas"], True, "deploy/prod/api: spec.replicas True is not a whole number"),
        (["spec", "template"], [], "deploy/prod/api: spec.template must be a JSON object, not list"),
        (
            ["spec", "template", "spec", "containers"],
            {},
            "deploy/prod/api: spec.template.spec.containers must be a list, not dict",
        ),
        (
            ["spec", "template", "spec", "containers"],
            [{"image": 5}],
            "deploy/prod/api: spec.template.spec.containers[0].image must be text, not int",
        ),
        (
            ["spec", "template", "metadata", "labels"],
            {"app": 1},
            "deploy/prod/api: spec.template.metadata.labels['app'] must be text, not int",
        ),
        (
            ["metadata", "labels"],
            ["team"],
            "deploy/prod/api: metadata.labels must be a JSON object, not list",
        ),
        (
            ["metadata", "annotations"],
            {"cortex-change.dev/tier": 1},
            "deploy/prod/api: metadata.annotations['cortex-change.dev/tier'] must be text, not int",
        ),
    ],
)
def test_wrongly_typed_workload_fields_are_refused(where: list[str], value: object, message: str) -> None:
    assert bad_field(workload("api"), where, value) == message


def test_wrongly_typed_service_and_ingress_fields_are_refused() -> None:
    assert bad_field(service("s", None), ["spec", "selector"], "app=x") == (
        "svc/prod/s: spec.selector must be a JSON object, not str"
    )
    assert bad_field(service("s", None), ["spec", "ports"], [{"port": "http"}]) == (
        "svc/prod/s: spec.ports[0].port 'http' is not a port number"
    )
    assert bad_field(ingress("i", {}), ["spec", "rules"], [{"host": 1}]) == (
        "ing/prod/i: spec.rules[0].host must be text, not int"
    )
    assert bad_field(ingress("i", {}), ["spec", "defaultBackend"], {"service": {"name": ["a"]}}) == (
        "ing/prod/i: spec.defaultBackend.service.name must be text, not list"
    )


def test_a_ci_name_longer_than_the_cmdb_allows_is_refused() -> None:
    name = "a" * 250
    assert (
        refused(workload(name))
        == f"object: deploy/prod/{name} is longer than a CI name may be (200 characters)"
    )


# --- bounds ----------------------------------------------------------------------------------


def test_at_most_max_items() -> None:
    item = {"kind": "ConfigMap", "metadata": {"name": "c", "namespace": "prod"}}
    assert cmdb_document(listing(*[item] * kubernetes.MAX_ITEMS)) == {"cis": []}  # ignored kind: cheap
    message = refused({"kind": "List", "items": [None] * (kubernetes.MAX_ITEMS + 1)})
    assert message == "items: holds 100001 objects; at most 100000 are allowed"


def test_selector_work_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kubernetes, "MAX_SELECTOR_WORK", 10)
    workloads = [workload(f"w{i}", labels={"app": "x"}) for i in range(4)]
    within = listing(*workloads, service("a", {"app": "x"}), service("b", {"app": "x"}))
    assert by_name(cmdb_document(within))["svc/prod/b"]["depends_on"] == [
        f"deploy/prod/w{i}" for i in range(4)
    ]
    over = listing(*workloads, *(service(s, {"app": "x"}) for s in "abc"))
    assert refused(over) == (
        "svc/prod/c: the services' selectors examine more than 10 workloads in all; "
        "import the listing a namespace at a time"
    )
