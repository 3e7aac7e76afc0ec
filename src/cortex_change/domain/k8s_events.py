"""Kubernetes events → what `k8s watch` does with them (docs/self-healing.md), pure: no clock, no I/O.

`JsonStream` splits what `kubectl get events -A -w -o json` prints — JSON objects one after the
other, with no separator a line reader could trust — into objects (`json.JSONDecoder.raw_decode`
on a buffer). `events(obj)` unwraps watch envelopes (`{"type": "ADDED", "object": …}`) and lists.
`Tracker.classify(event)` maps one core/v1 (or events.k8s.io/v1) Event to a `Seen`:

- a Deployment's `ScalingReplicaSet` bringing a new replica set up (`… from 0`, or another one
  than last seen for the deployment), or emptying an old one: `rollout`;
- a Deployment's `ScalingReplicaSet` of its current replica set: `scaling`;
- a Pod's `Killing` ("Stopping container …": the pod was deleted or restarted): `restart`;
- a Pod's `BackOff` "Back-off restarting failed container" (CrashLoopBackOff): `crash_loop`.

Everything else is nothing. The kubelet restarting a container by itself (a `Started` event
repeated, "failed liveness probe, will be restarted") is a symptom, not a change anyone made: it
is not observed (a crash loop is reported once through `BackOff`). A pod's workload is read from
its name: `NAME-<pod-template-hash>-<5>` is Deployment NAME's pod (`deployment` set), `NAME-<n>` a
StatefulSet's, `NAME-<5>` a DaemonSet's or Job's."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

from .errors import ValidationError
from .values import Frozen

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any, Final

OBJECT_MAX = 1024 * 1024  # one event's JSON text: kubectl's are a few KiB
ROLLOUT, SCALING, RESTART, CRASH_LOOP = "rollout", "scaling", "restart", "crash_loop"
SCALED = re.compile(r"Scaled (up|down) replica set (\S+) to (\d+)(?: from (\d+))?")
# Pod name suffixes: a Deployment's pods are NAME-HASH-XXXXX (the hash 6–10 characters of the
# alphabet Kubernetes uses for them, the suffix 5), a StatefulSet's NAME-N, others NAME-XXXXX.
DEPLOYMENT_POD = re.compile(r"(.+)-([bcdfghjklmnpqrstvwxz2456789]{6,10})-([bcdfghjklmnpqrstvwxz2456789]{5})")
STATEFUL_POD = re.compile(r"(.+)-(\d+)")
OTHER_POD = re.compile(r"(.+)-([bcdfghjklmnpqrstvwxz2456789]{5})")
REFERENCE_MAX = 300


class JsonStream:
    """Concatenated JSON objects, fed as text in any pieces, given back whole."""

    __slots__ = ("buffer", "decoder")

    def __init__(self) -> None:
        self.buffer = ""
        self.decoder = json.JSONDecoder()

    def feed(self, text: str) -> list[Any]:
        """The objects completed by `text`. Text that can never parse (over OBJECT_MAX without an
        object) raises ValidationError once and is dropped up to the next line starting with `{`."""
        self.buffer += text
        out: list[Any] = []
        while True:
            rest = self.buffer.lstrip()
            if not rest:
                self.buffer = ""
                return out
            try:
                obj, end = self.decoder.raw_decode(rest)
            except json.JSONDecodeError:
                self.buffer = rest
                if len(rest) > OBJECT_MAX or not rest.startswith(("{", "[")):
                    self._resync()
                    raise ValidationError(
                        "event", "kubectl printed something that is not JSON; skipped"
                    ) from None
                return out  # incomplete: wait for more
            out.append(obj)
            self.buffer = rest[end:]

    def _resync(self) -> None:
        at = self.buffer.find("\n{", 1)
        self.buffer = "" if at < 0 else self.buffer[at + 1 :]

    def finish(self) -> None:
        """At the end of the stream: anything left is an incomplete object."""
        if self.buffer.strip():
            self.buffer = ""
            raise ValidationError("event", "the stream ended inside an event; it was skipped")


def events(obj: Any) -> Iterator[Any]:
    """The Event objects inside one decoded object: itself, a watch envelope's, a List's items."""
    if isinstance(obj, dict) and isinstance(obj.get("object"), dict) and "type" in obj:
        yield obj["object"]
    elif isinstance(obj, dict) and obj.get("kind") == "List" and isinstance(obj.get("items"), list):
        yield from obj["items"]
    else:
        yield obj


class Seen(Frozen):
    """What an event says changed: `kind` (rollout, scaling, restart, crash_loop) of `workload` in
    `namespace` (`deployment`: a Deployment's name when it is one's), at `at` (UTC, or None)."""

    __slots__ = ("at", "deployment", "kind", "namespace", "object", "reference", "uid", "workload")

    def __init__(
        self,
        kind: str,
        workload: str,
        namespace: str,
        at: datetime | None,
        reference: str,
        uid: str = "",
        deployment: str | None = None,
        object: str = "",
    ) -> None:
        self.kind: Final = kind
        self.workload: Final = workload
        self.namespace: Final = namespace
        self.at: Final = at
        self.reference: Final = reference
        self.uid: Final = uid
        self.deployment: Final = deployment
        self.object: Final = object  # Kind/name of the object the event is about


def workload_of(pod: str) -> tuple[str, str | None]:
    """(the workload a pod belongs to, its Deployment's name when it is a Deployment's pod)."""
    m = DEPLOYMENT_POD.fullmatch(pod)
    if m:
        return m.group(1), m.group(1)
    for pattern in (STATEFUL_POD, OTHER_POD):
        m = pattern.fullmatch(pod)
        if m:
            return m.group(1), None
    return pod, None


class Tracker:
    """Classifies events, remembering each Deployment's current replica set (to tell a rollout,
    which brings a new one, from a scaling of the current one)."""

    __slots__ = ("current",)

    def __init__(self) -> None:
        self.current: dict[tuple[str, str], str] = {}

    def classify(self, event: Any) -> Seen | None:
        """What the event says changed, or None for events that say nothing did."""
        if not isinstance(event, dict):
            raise ValidationError("event", "is not a JSON object")
        subject = event.get("involvedObject") or event.get("regarding")
        if not isinstance(subject, dict):
            return None
        kind, name = _text(subject, "kind"), _text(subject, "name")
        namespace = _text(subject, "namespace") or _text(event.get("metadata"), "namespace") or "default"
        reason = _text(event, "reason")
        message = _text(event, "message") or _text(event, "note")
        if not (kind and name and reason):
            return None
        at = _when(event)
        uid = _text(event.get("metadata"), "uid")
        ref = " ".join(f"{reason} {kind}/{namespace}/{name}: {message}".split())[:REFERENCE_MAX]
        if kind == "Deployment" and reason == "ScalingReplicaSet":
            seen = self._scaling(name, namespace, message)
            if seen is None:
                return None
            return Seen(seen, name, namespace, at, ref, uid, name, f"Deployment/{name}")
        if kind != "Pod":
            return None
        what = _pod_event(reason, message)
        if what is None:
            return None
        workload, deployment = workload_of(name)
        return Seen(what, workload, namespace, at, ref, uid, deployment, f"Pod/{name}")

    def _scaling(self, name: str, namespace: str, message: str) -> str | None:
        m = SCALED.search(message)
        if m is None:
            return None
        direction, rs, to, was = m.group(1), m.group(2), int(m.group(3)), m.group(4)
        key = (namespace, name)
        current = self.current.get(key)
        if direction == "up":
            self.current[key] = rs
            new = was == "0" or (current is not None and current != rs)
            return ROLLOUT if new else SCALING
        if to == 0 and rs != current:  # an old replica set emptied: the end of a rollout
            return ROLLOUT
        return SCALING


def _pod_event(reason: str, message: str) -> str | None:
    if reason == "Killing" and "will be restarted" not in message:
        return RESTART
    crash = "restarting failed container" in message or "CrashLoopBackOff" in message
    if reason == "BackOff" and crash:
        return CRASH_LOOP
    return None


def _text(obj: Any, key: str) -> str:
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, str) else ""


def _when(event: dict[str, Any]) -> datetime | None:
    """The event's last time: lastTimestamp, the series' last, eventTime, firstTimestamp, creation."""
    series = event.get("series") if isinstance(event.get("series"), dict) else {}
    for value in (
        event.get("lastTimestamp"),
        _text(series, "lastObservedTime"),
        event.get("eventTime"),
        event.get("firstTimestamp"),
        _text(event.get("metadata"), "creationTimestamp"),
    ):
        if isinstance(value, str) and value:
            try:
                when = datetime.fromisoformat(value)
            except ValueError:
                continue
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            if 2000 <= when.year <= 9998:
                return when.astimezone(UTC).replace(microsecond=0)
    return None
