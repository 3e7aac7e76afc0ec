"""The Kubernetes admission webhook's rules (docs/admission.md), pure: an `AdmissionReview`
(admission.k8s.io/v1) as the API server sends it → what to ask (`Request`), the answers that need
no store (`local_verdict`), and the `AdmissionReview` answered (`respond`).

A malformed review is refused (`ValidationError` naming the field, e.g. `request.uid`); an object
whose annotations name a bad service, environment or change id is *denied* with the reason, so
the person running `kubectl apply` reads it."""

from __future__ import annotations

from . import validation as v
from .errors import ValidationError
from .values import Frozen

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any, Final

API_VERSION = "admission.k8s.io/v1"
REVIEW = "AdmissionReview"
GROUP = "apps"  # Deployments and StatefulSets are apps/v1
KINDS = ("Deployment", "StatefulSet")
OPERATIONS = ("CREATE", "UPDATE", "DELETE", "CONNECT")
GATED = ("CREATE", "UPDATE")
PRODUCTION = ("production", "prod")
ANNOTATION_ID = "cortex-change/id"
ANNOTATION_SERVICE = "cortex-change/service"
ANNOTATION_ENVIRONMENT = "cortex-change/environment"
ENVIRONMENT_LABELS = ("environment", "env")
UID_MAX = 128  # the API server sends a UUID (36 characters)
NEEDS_CHANGE = f"production needs an approved change: annotate {ANNOTATION_ID}"


class Request(Frozen):
    """What an admission review asks: the object, and the service, environment and change its
    annotations, labels and namespace name (None where nothing does)."""

    __slots__ = (
        "change_id",
        "dry_run",
        "environment",
        "group",
        "kind",
        "name",
        "namespace",
        "operation",
        "service",
        "service_from",
        "uid",
    )

    def __init__(
        self,
        uid: str,
        group: str,
        kind: str,
        operation: str,
        namespace: str | None = None,
        name: str | None = None,
        service: str | None = None,
        environment: str | None = None,
        change_id: str | None = None,
        dry_run: bool = False,
        service_from: str = "metadata.name",
    ) -> None:
        self.uid: Final = uid
        self.group: Final = group
        self.kind: Final = kind
        self.operation: Final = operation
        self.namespace: Final = namespace
        self.name: Final = name
        self.service: Final = service
        self.environment: Final = environment
        self.change_id: Final = change_id
        self.dry_run: Final = dry_run
        self.service_from: Final = service_from  # where the service name came from, for messages

    @property
    def gated(self) -> bool:
        """A Deployment or StatefulSet (apps) created or updated: the only requests decided."""
        return self.group == GROUP and self.kind in KINDS and self.operation in GATED

    @property
    def production(self) -> bool:
        return self.environment is not None and self.environment.strip().lower() in PRODUCTION

    def describe(self) -> str:
        """e.g. `Deployment shop/web`."""
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name or '(unnamed)'}"


class Verdict(Frozen):
    """allowed or not, with the reason (the denial's `status.message`)."""

    __slots__ = ("allowed", "reason")

    def __init__(self, allowed: bool, reason: str) -> None:
        self.allowed: Final = allowed
        self.reason: Final = reason


def parse(review: Any) -> Request:
    """The AdmissionReview's request; ValidationError naming what is malformed."""
    if not isinstance(review, dict):
        raise ValidationError("body", f"must be an {REVIEW} object, not {_type(review)}")
    if review.get("apiVersion") != API_VERSION:
        raise ValidationError(
            "apiVersion",
            f"{review.get('apiVersion')!r} is not allowed; allowed: {API_VERSION} "
            '(set admissionReviewVersions: ["v1"])',
        )
    if review.get("kind") != REVIEW:
        raise ValidationError("kind", f"{review.get('kind')!r} is not allowed; allowed: {REVIEW}")
    request = review.get("request")
    if not isinstance(request, dict):
        raise ValidationError("request", f"must be an object, not {_type(request)}")
    uid = _text(request, "uid", "request.uid", required=True, max_len=UID_MAX)
    assert uid is not None
    kind = request.get("kind")
    if not isinstance(kind, dict):
        raise ValidationError("request.kind", f"must be an object (group, version, kind), not {_type(kind)}")
    group = _text(kind, "group", "request.kind.group", required=False, empty=True) or ""
    what = _text(kind, "kind", "request.kind.kind", required=True)
    assert what is not None
    operation = request.get("operation")
    if operation not in OPERATIONS:
        raise ValidationError(
            "request.operation", f"{operation!r} is not allowed; allowed: {', '.join(OPERATIONS)}"
        )
    namespace = _text(request, "namespace", "request.namespace", required=False, empty=True) or None
    name = _text(request, "name", "request.name", required=False, empty=True) or None
    dry_run = request.get("dryRun", False)
    if dry_run is None:
        dry_run = False
    if not isinstance(dry_run, bool):
        raise ValidationError("request.dryRun", f"must be true or false, not {_type(dry_run)}")
    asked = Request(uid, group, what, operation, namespace, name, dry_run=dry_run)
    if not asked.gated:
        return asked  # nothing of the object is read: it is allowed whatever it holds
    return _gated(request, asked)


def _gated(request: dict[str, Any], asked: Request) -> Request:
    """A Deployment or StatefulSet created or updated: its metadata names what to ask."""
    obj = request.get("object")
    if not isinstance(obj, dict):
        raise ValidationError(
            "request.object", f"must be the {asked.kind} (an object) on {asked.operation}, not {_type(obj)}"
        )
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict):
        raise ValidationError("request.object.metadata", f"must be an object, not {_type(metadata)}")
    annotations = _labels(metadata, "annotations")
    labels = _labels(metadata, "labels")
    name = _text(metadata, "name", "request.object.metadata.name", required=False, empty=True) or asked.name
    namespace = (
        _text(metadata, "namespace", "request.object.metadata.namespace", required=False, empty=True)
        or asked.namespace
    )
    service, service_from = name, "metadata.name"
    if ANNOTATION_SERVICE in annotations:
        service, service_from = annotations[ANNOTATION_SERVICE], f"annotation {ANNOTATION_SERVICE}"
    environment = annotations.get(ANNOTATION_ENVIRONMENT) or None  # empty: as absent
    for label in ENVIRONMENT_LABELS:
        environment = environment or labels.get(label) or None
    environment = environment or namespace
    return asked.copy_with(
        namespace=namespace,
        name=name,
        service=service,
        environment=environment,
        change_id=annotations.get(ANNOTATION_ID),
        service_from=service_from,
    )


def local_verdict(asked: Request) -> Verdict | None:
    """The answers that need no store: what is not gated is allowed, bad annotations and
    production without a change id are denied. None: ask the store (the gate, or the freezes)."""
    if not asked.gated:
        if asked.group == GROUP and asked.kind in KINDS:
            return Verdict(True, f"{asked.operation} is not gated (only {' and '.join(GATED)} are)")
        return Verdict(True, f"{_article(asked.kind)} is not gated (only Deployments and StatefulSets are)")
    if asked.service is None:
        return Verdict(False, f"{asked.describe()} has no name: annotate {ANNOTATION_SERVICE}")
    bad = problem(asked)
    if bad is not None:
        return Verdict(False, bad)
    if asked.change_id is None and asked.production:
        return Verdict(False, NEEDS_CHANGE)
    return None


def problem(asked: Request) -> str | None:
    """What is wrong with the service, environment or change id the object names, if anything."""
    try:
        if asked.service is not None:
            v.name(asked.service_from, asked.service)
        if asked.environment is not None:
            v.name("environment", asked.environment)
        if asked.change_id is not None:
            try:
                v.change_id(asked.change_id)
            except ValidationError as exc:
                raise ValidationError(f"annotation {ANNOTATION_ID}", str(exc).split(": ", 1)[1]) from None
    except ValidationError as exc:
        return str(exc)
    return None


def respond(uid: str, verdict: Verdict) -> dict[str, Any]:
    """The AdmissionReview the API server expects back: the request's uid, allowed or not; a
    denial carries 403 and its reason (what `kubectl` prints)."""
    response: dict[str, Any] = {"uid": uid, "allowed": verdict.allowed}
    if not verdict.allowed:
        response["status"] = {"code": 403, "message": verdict.reason}
    return {"apiVersion": API_VERSION, "kind": REVIEW, "response": response}


def _text(
    holder: dict[str, Any], key: str, field: str, *, required: bool, empty: bool = False, max_len: int = 253
) -> str | None:
    """A string field: absent (or null) is None unless required; one line, at most `max_len`."""
    value = holder.get(key)
    if value is None:
        if required:
            raise ValidationError(field, "is missing")
        return None
    if not isinstance(value, str):
        raise ValidationError(field, f"must be a string, not {_type(value)}")
    if value == "" and (empty and not required):
        return value
    return v.name(field, value, max_len)


def _labels(metadata: dict[str, Any], key: str) -> dict[str, str]:
    """metadata.labels or metadata.annotations: names to strings (absent or null: none)."""
    found = metadata.get(key)
    if found is None:
        return {}
    field = f"request.object.metadata.{key}"
    if not isinstance(found, dict) or not all(isinstance(x, str) for x in found.values()):
        raise ValidationError(field, "must map names to strings")
    return found


def _article(kind: str) -> str:
    return f"{'an' if kind[:1] in 'AEIOU' else 'a'} {kind}"


def _type(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), f"a {type(value).__name__}")
