"""Kubernetes objects → the CMDB import document (issue 14), pure: no clock, no I/O.

`cmdb_document(listing)` reads what `kubectl get deploy,sts,svc,ingress -A -o json` prints — a
`{"kind": "List", "items": [...]}` — or one such object on its own, and returns
`{"cis": [...]}`, the document the CMDB import takes. The mapping:

- A namespace — any mapped object's `metadata.namespace`, or a `Namespace` object — becomes
  `ns/<ns>`, type `cluster`, attribute `kind: "Namespace"`.
- A Deployment becomes `deploy/<ns>/<name>`, a StatefulSet `sts/<ns>/<name>`: type `service`,
  `part_of: [ns/<ns>]`; attributes `kind`, `namespace`, `replicas` (`spec.replicas`, when present)
  and `images` (the containers' images — `spec.template.spec.containers[].image` — sorted, once each).
- A Service becomes `svc/<ns>/<name>`: type `network`, `part_of: [ns/<ns>]`, `depends_on` every
  Deployment and StatefulSet of the same namespace whose `spec.template.metadata.labels` hold every
  pair of the service's `spec.selector` (a service without a selector depends on nothing);
  attributes `kind`, `namespace`, `ports` (`spec.ports[].port`, sorted, once each).
- An Ingress (`networking.k8s.io/v1`) becomes `ing/<ns>/<name>`: type `network`,
  `part_of: [ns/<ns>]`, `depends_on` the `svc/<ns>/<name>` of every backend service
  (`spec.defaultBackend.service.name`, `spec.rules[].http.paths[].backend.service.name`) the listing
  holds; attributes `kind`, `namespace`, `hosts` (`spec.rules[].host`, sorted, once each) and, when
  some backend names a service the listing lacks, `missing_backends` (those names, sorted).

On every CI, from its object's metadata: `tier` is the annotation `cortex-change.dev/tier` ("0" to "3",
default 3); `owner` the annotation `cortex-change.dev/owner`, else the label `team` (else omitted);
`data` the annotation `cortex-change.dev/data` (none, pii, phi or pci; default none); `environment`
the label `environment`, else `env` (else omitted). A namespace known only from its objects has tier
3, data none and no owner or environment; a `Namespace` object's annotations and labels give them.
`runs_on` is always empty (a listing does not say which cluster or nodes it came from).

Objects of any other kind (Pod, ConfigMap, a nested List...) are ignored entirely — they add no CI
and no namespace — though each still needs a `kind` and a `metadata.name`. Ingress backends that
name a resource rather than a service add nothing. Every relationship list is sorted and holds each
name once, and `cis` is sorted by name: the same objects in any order give the same document.

Refused (`ValidationError`, naming the item — `items[3]`, or `object` for a lone object — or, once
known, its CI name): a listing that is not a JSON object, `items` that is not a list, more than
`MAX_ITEMS` items, an item without `kind` or `metadata.name`, a Deployment, StatefulSet, Service or
Ingress without `metadata.namespace`, a name Kubernetes would not accept, a CI name over
`CI_NAME_MAX` characters (the CMDB's limit), the same object twice, a field of the wrong JSON type,
a tier or data annotation outside its values, and selectors that together would examine more than
`MAX_SELECTOR_WORK` workloads (the work stays bounded).
"""

from __future__ import annotations

import re

from .errors import ValidationError

MAX_ITEMS = 100_000
MAX_SELECTOR_WORK = 2_000_000  # workloads examined by all services' selectors together
CI_NAME_MAX = 200  # the CMDB's limit on a CI name
TIER_ANNOTATION = "cortex-change.dev/tier"
OWNER_ANNOTATION = "cortex-change.dev/owner"
DATA_ANNOTATION = "cortex-change.dev/data"
TIERS = {"0": 0, "1": 1, "2": 2, "3": 3}
DATA_CLASSES = ("none", "pii", "phi", "pci")
DEFAULT_TIER = 3
WORKLOADS = {"Deployment": "deploy", "StatefulSet": "sts"}
NAMESPACED = {**WORKLOADS, "Service": "svc", "Ingress": "ing"}
# DNS-1123: a subdomain for objects, a label for namespaces (lower case, as Kubernetes requires)
OBJECT_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?", re.ASCII)
NAMESPACE_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", re.ASCII)

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from collections.abc import Iterator

    Json = dict[str, object]


class _Object:
    """One mapped item of the listing: where it was, what it is, its metadata and spec."""

    __slots__ = ("annotations", "ci", "kind", "labels", "name", "namespace", "spec")

    def __init__(
        self,
        kind: str,
        name: str,
        namespace: str,
        ci: str,
        labels: dict[str, str],
        annotations: dict[str, str],
        spec: Json,
    ) -> None:
        self.kind = kind
        self.name = name
        self.namespace = namespace
        self.ci = ci
        self.labels = labels
        self.annotations = annotations
        self.spec = spec


def _show(value: object) -> str:
    """A value for a message: its repr, cut short."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _mapping(value: object, where: str, path: str) -> Json:
    """`value` as a JSON object (absent → empty), else refused naming `path`."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationError(where, f"{path} must be a JSON object, not {type(value).__name__}")
    return value


def _list(value: object, where: str, path: str) -> list[object]:
    """`value` as a JSON list (absent → empty), else refused naming `path`."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValidationError(where, f"{path} must be a list, not {type(value).__name__}")
    return value


def _text(value: object, where: str, path: str) -> str | None:
    """`value` as text (absent → None), else refused naming `path`."""
    if value is None or isinstance(value, str):
        return value
    raise ValidationError(where, f"{path} must be text, not {type(value).__name__}")


def _strings(value: object, where: str, path: str) -> dict[str, str]:
    """A labels, annotations or selector map: text to text."""
    result: dict[str, str] = {}
    for key, item in _mapping(value, where, path).items():
        text = _text(item, where, f"{path}[{key!r}]")
        result[key] = "" if text is None else text
    return result


def _items(listing: object) -> Iterator[tuple[str, Json]]:
    """Each item of a List (named by its index), or the lone object (named `object`)."""
    if not isinstance(listing, dict):
        raise ValidationError(
            "listing",
            f"must be a JSON object (kubectl's -o json: a List or one object), not {type(listing).__name__}",
        )
    if listing.get("kind") != "List":
        yield "object", listing
        return
    items = listing.get("items")
    if not isinstance(items, list):
        raise ValidationError("items", f"must be a list of Kubernetes objects, not {type(items).__name__}")
    if len(items) > MAX_ITEMS:
        raise ValidationError("items", f"holds {len(items)} objects; at most {MAX_ITEMS} are allowed")
    for index, item in enumerate(items):
        where = f"items[{index}]"
        if not isinstance(item, dict):
            raise ValidationError(where, f"must be a JSON object, not {type(item).__name__}")
        yield where, item


def _name(value: object, pattern: re.Pattern[str], where: str, path: str, allowed: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValidationError(where, f"has no {path} (every object needs kind and metadata.name)")
    if not pattern.fullmatch(value):
        raise ValidationError(where, f"{path} {_show(value)} is not a Kubernetes name ({allowed})")
    return value


OBJECT_ALLOWED = "lower-case letters, digits, '-' and '.', at most 253 characters"
NAMESPACE_ALLOWED = "lower-case letters, digits and '-', at most 63 characters"


def _read(where: str, item: Json) -> _Object | None:
    """The item's identity and metadata, checked; None for a kind this module ignores."""
    kind = item.get("kind")
    if not isinstance(kind, str) or not kind:
        raise ValidationError(where, "has no kind (every object needs kind and metadata.name)")
    metadata = _mapping(item.get("metadata"), where, "metadata")
    if kind != "Namespace" and kind not in NAMESPACED:
        if not isinstance(metadata.get("name"), str) or not metadata["name"]:
            raise ValidationError(where, "has no metadata.name (every object needs kind and metadata.name)")
        return None
    if kind == "Namespace":
        name = _name(metadata.get("name"), NAMESPACE_NAME, where, "metadata.name", NAMESPACE_ALLOWED)
        namespace, ci = name, f"ns/{name}"
    else:
        name = _name(metadata.get("name"), OBJECT_NAME, where, "metadata.name", OBJECT_ALLOWED)
        if metadata.get("namespace") is None:
            raise ValidationError(
                where, f"{kind} {name!r} has no metadata.namespace (a {kind} is namespaced)"
            )
        namespace = _name(
            metadata["namespace"], NAMESPACE_NAME, where, "metadata.namespace", NAMESPACE_ALLOWED
        )
        ci = f"{NAMESPACED[kind]}/{namespace}/{name}"
        if len(ci) > CI_NAME_MAX:
            raise ValidationError(where, f"{ci} is longer than a CI name may be ({CI_NAME_MAX} characters)")
    return _Object(
        kind,
        name,
        namespace,
        ci,
        _strings(metadata.get("labels"), ci, "metadata.labels"),
        _strings(metadata.get("annotations"), ci, "metadata.annotations"),
        _mapping(item.get("spec"), ci, "spec"),
    )


def _base(name: str, kind: str, obj: _Object | None) -> dict[str, object]:
    """A CI's name, type and the fields its object's annotations and labels give, in document order."""
    labels = obj.labels if obj else {}
    annotations = obj.annotations if obj else {}
    ci: dict[str, object] = {"name": name, "type": kind}
    tier = annotations.get(TIER_ANNOTATION)
    if tier is not None and tier not in TIERS:
        raise ValidationError(
            name, f"annotation {TIER_ANNOTATION} {_show(tier)} is not a tier (0, 1, 2 or 3)"
        )
    ci["tier"] = DEFAULT_TIER if tier is None else TIERS[tier]
    owner = annotations.get(OWNER_ANNOTATION) or labels.get("team")
    if owner:
        ci["owner"] = owner
    environment = labels.get("environment") or labels.get("env")
    if environment:
        ci["environment"] = environment
    data = annotations.get(DATA_ANNOTATION, "none")
    if data not in DATA_CLASSES:
        raise ValidationError(
            name, f"annotation {DATA_ANNOTATION} {_show(data)} is not a data class (none, pii, phi or pci)"
        )
    ci["data"] = data
    return ci


def _ci(
    base: dict[str, object], obj: _Object, depends_on: set[str], attributes: dict[str, object]
) -> dict[str, object]:
    base["depends_on"] = sorted(depends_on)
    base["runs_on"] = []
    base["part_of"] = [f"ns/{obj.namespace}"]
    base["kind"] = obj.kind
    base["namespace"] = obj.namespace
    base.update(attributes)
    return base


def _template_labels(obj: _Object) -> dict[str, str]:
    template = _mapping(obj.spec.get("template"), obj.ci, "spec.template")
    metadata = _mapping(template.get("metadata"), obj.ci, "spec.template.metadata")
    return _strings(metadata.get("labels"), obj.ci, "spec.template.metadata.labels")


def _workload(obj: _Object) -> dict[str, object]:
    attributes: dict[str, object] = {}
    replicas = obj.spec.get("replicas")
    if replicas is not None:
        if not isinstance(replicas, int) or isinstance(replicas, bool):
            raise ValidationError(obj.ci, f"spec.replicas {_show(replicas)} is not a whole number")
        attributes["replicas"] = replicas
    template = _mapping(obj.spec.get("template"), obj.ci, "spec.template")
    pod = _mapping(template.get("spec"), obj.ci, "spec.template.spec")
    images: set[str] = set()
    for index, container in enumerate(_list(pod.get("containers"), obj.ci, "spec.template.spec.containers")):
        path = f"spec.template.spec.containers[{index}]"
        image = _text(_mapping(container, obj.ci, path).get("image"), obj.ci, f"{path}.image")
        if image:
            images.add(image)
    attributes["images"] = sorted(images)
    return _ci(_base(obj.ci, "service", obj), obj, set(), attributes)


class _Selectors:
    """The workloads of each namespace indexed by template label, so a selector reads few of them."""

    def __init__(self, workloads: list[_Object]) -> None:
        self.labels: dict[str, dict[str, str]] = {}
        self.index: dict[tuple[str, str, str], list[str]] = {}
        self.work = 0
        for obj in workloads:
            labels = _template_labels(obj)
            self.labels[obj.ci] = labels
            for key, value in labels.items():
                self.index.setdefault((obj.namespace, key, value), []).append(obj.ci)

    def select(self, service: _Object, selector: dict[str, str]) -> set[str]:
        if not selector:
            return set()
        postings = [self.index.get((service.namespace, k, v), []) for k, v in sorted(selector.items())]
        fewest = min(postings, key=len)
        self.work += len(fewest)
        if self.work > MAX_SELECTOR_WORK:
            raise ValidationError(
                service.ci,
                f"the services' selectors examine more than {MAX_SELECTOR_WORK} workloads in all; "
                "import the listing a namespace at a time",
            )
        return {ci for ci in fewest if all(self.labels[ci].get(k) == v for k, v in selector.items())}


def _service(obj: _Object, selectors: _Selectors) -> dict[str, object]:
    selector = _strings(obj.spec.get("selector"), obj.ci, "spec.selector")
    ports: set[int] = set()
    for index, entry in enumerate(_list(obj.spec.get("ports"), obj.ci, "spec.ports")):
        port = _mapping(entry, obj.ci, f"spec.ports[{index}]").get("port")
        if not isinstance(port, int) or isinstance(port, bool):
            raise ValidationError(obj.ci, f"spec.ports[{index}].port {_show(port)} is not a port number")
        ports.add(port)
    depends_on = selectors.select(obj, selector)
    return _ci(_base(obj.ci, "network", obj), obj, depends_on, {"ports": sorted(ports)})


def _backend(value: object, where: str, path: str) -> str | None:
    """The service a backend names, if it names one."""
    service = _mapping(_mapping(value, where, path).get("service"), where, f"{path}.service")
    return _text(service.get("name"), where, f"{path}.service.name") or None


def _backends(obj: _Object) -> tuple[set[str], set[str]]:
    """An Ingress's hosts and the service names its backends route to."""
    names: set[str] = set()
    hosts: set[str] = set()
    default = _backend(obj.spec.get("defaultBackend"), obj.ci, "spec.defaultBackend")
    if default:
        names.add(default)
    for r, rule in enumerate(_list(obj.spec.get("rules"), obj.ci, "spec.rules")):
        where = f"spec.rules[{r}]"
        rule_map = _mapping(rule, obj.ci, where)
        host = _text(rule_map.get("host"), obj.ci, f"{where}.host")
        if host:
            hosts.add(host)
        http = _mapping(rule_map.get("http"), obj.ci, f"{where}.http")
        for p, entry in enumerate(_list(http.get("paths"), obj.ci, f"{where}.http.paths")):
            path = f"{where}.http.paths[{p}]"
            name = _backend(_mapping(entry, obj.ci, path).get("backend"), obj.ci, f"{path}.backend")
            if name:
                names.add(name)
    return hosts, names


def _ingress(obj: _Object, services: set[str]) -> dict[str, object]:
    hosts, names = _backends(obj)
    depends_on = {f"svc/{obj.namespace}/{n}" for n in names} & services
    attributes: dict[str, object] = {"hosts": sorted(hosts)}
    missing = sorted(n for n in names if f"svc/{obj.namespace}/{n}" not in services)
    if missing:
        attributes["missing_backends"] = missing
    return _ci(_base(obj.ci, "network", obj), obj, depends_on, attributes)


def cmdb_document(listing: object) -> dict[str, list[dict[str, object]]]:
    """kubectl's `-o json` output (a List, or one object) → `{"cis": [...]}` (see the module's doc)."""
    objects: dict[str, _Object] = {}
    seen_at: dict[str, str] = {}
    namespaces: dict[str, _Object | None] = {}
    for where, item in _items(listing):
        obj = _read(where, item)
        if obj is None:
            continue
        if obj.ci in seen_at:
            raise ValidationError(where, f"{obj.ci} appears twice (first at {seen_at[obj.ci]})")
        seen_at[obj.ci] = where
        if obj.kind == "Namespace":
            namespaces[obj.namespace] = obj
        else:
            objects[obj.ci] = obj
            namespaces.setdefault(obj.namespace, None)
    ordered = [objects[ci] for ci in sorted(objects)]
    selectors = _Selectors([o for o in ordered if o.kind in WORKLOADS])
    services = {o.ci for o in ordered if o.kind == "Service"}
    cis: list[dict[str, object]] = []
    for name, namespace in namespaces.items():
        ci = _base(f"ns/{name}", "cluster", namespace)
        ci.update({"depends_on": [], "runs_on": [], "part_of": [], "kind": "Namespace"})
        cis.append(ci)
    for obj in ordered:
        if obj.kind in WORKLOADS:
            cis.append(_workload(obj))
        elif obj.kind == "Service":
            cis.append(_service(obj, selectors))
        else:
            cis.append(_ingress(obj, services))
    cis.sort(key=lambda ci: str(ci["name"]))
    return {"cis": cis}
