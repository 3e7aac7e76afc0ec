"""domain/k8s_events.py: the concatenated-JSON stream split in any pieces, and events mapped to
rollouts, scalings, restarts and crash loops — pure, tables of cases."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from cortex_change.domain import k8s_events as k
from cortex_change.domain.errors import ValidationError


def ev(kind: str, name: str, reason: str, message: str, ns: str = "shop", **more: Any) -> dict[str, Any]:
    return {
        "kind": "Event",
        "metadata": {"uid": "u1", "namespace": ns},
        "involvedObject": {"kind": kind, "name": name, "namespace": ns},
        "reason": reason,
        "message": message,
        "lastTimestamp": "2026-01-15T09:00:00Z",
        **more,
    }


@pytest.mark.parametrize("size", [1, 2, 7, 100, 10_000])
def test_the_stream_gives_whole_objects_whatever_the_pieces(size: int) -> None:
    objects = [ev("Pod", f"p{i}", "Killing", "Stopping container c \u00e9") for i in range(5)]
    text = "".join(json.dumps(o, indent=2) + "\n" for o in objects)
    stream, out = k.JsonStream(), []
    for i in range(0, len(text), size):
        out += stream.feed(text[i : i + size])
    stream.finish()
    assert out == objects


def test_garbage_is_one_error_and_the_stream_goes_on() -> None:
    stream = k.JsonStream()
    with pytest.raises(ValidationError, match="not JSON"):
        stream.feed('error: oops\n{"a": 1}\n')
    assert stream.feed("") == [{"a": 1}]
    stream.feed('{"a": ')
    with pytest.raises(ValidationError, match="ended inside an event"):
        stream.finish()


def test_watch_envelopes_and_lists_are_unwrapped() -> None:
    one = ev("Pod", "p", "Killing", "x")
    assert list(k.events({"type": "ADDED", "object": one})) == [one]
    assert list(k.events({"kind": "List", "items": [one, one]})) == [one, one]
    assert list(k.events(one)) == [one]


@pytest.mark.parametrize(
    ("event", "kind", "workload", "deployment"),
    [
        (
            ev("Deployment", "web", "ScalingReplicaSet", "Scaled up replica set web-5d9c6b8f7 to 1 from 0"),
            "rollout",
            "web",
            "web",
        ),
        (
            ev("Deployment", "web", "ScalingReplicaSet", "Scaled up replica set web-5d9c6b8f7 to 5 from 3"),
            "scaling",
            "web",
            "web",
        ),
        (
            ev("Deployment", "web", "ScalingReplicaSet", "Scaled up replica set web-5d9c6b8f7 to 5"),
            "scaling",
            "web",
            "web",
        ),
        (
            ev("Deployment", "web", "ScalingReplicaSet", "Scaled down replica set web-old to 0 from 1"),
            "rollout",
            "web",
            "web",
        ),
        (ev("Pod", "web-5d9c6b8f7-x2k4q", "Killing", "Stopping container web"), "restart", "web", "web"),
        (ev("Pod", "db-0", "Killing", "Stopping container db"), "restart", "db", None),
        (ev("Pod", "agent-x2k4q", "Killing", "Stopping container a"), "restart", "agent", None),
        (
            ev("Pod", "w-7c9f6d5b8-x2k4q", "BackOff", "Back-off restarting failed container w in pod"),
            "crash_loop",
            "w",
            "w",
        ),
        (ev("Pod", "w-7c9f6d5b8-x2k4q", "BackOff", 'Back-off pulling image "w:1"'), None, None, None),
        (
            ev("Pod", "w-7c9f6d5b8-x2k4q", "Killing", "Container w failed liveness probe, will be restarted"),
            None,
            None,
            None,
        ),
        (ev("Pod", "w-7c9f6d5b8-x2k4q", "Started", "Started container w", count=4), None, None, None),
        (ev("Node", "n1", "Killing", "x"), None, None, None),
        ({"kind": "Event", "reason": "Killing"}, None, None, None),
    ],
)
def test_events_map_to_what_changed(
    event: dict[str, Any], kind: str | None, workload: str | None, deployment: str | None
) -> None:
    seen = k.Tracker().classify(event)
    if kind is None:
        assert seen is None
        return
    assert seen is not None
    assert (seen.kind, seen.workload, seen.deployment, seen.namespace) == (kind, workload, deployment, "shop")
    assert seen.at == datetime(2026, 1, 15, 9, 0, tzinfo=UTC)


def test_the_tracker_tells_a_rollout_from_a_scaling() -> None:
    t = k.Tracker()
    up = "Scaled up replica set web-{} to {}"
    assert t.classify(ev("Deployment", "web", "ScalingReplicaSet", up.format("aaa", 3))).kind == "scaling"  # type: ignore[union-attr]
    assert t.classify(ev("Deployment", "web", "ScalingReplicaSet", up.format("aaa", 5))).kind == "scaling"  # type: ignore[union-attr]
    assert t.classify(ev("Deployment", "web", "ScalingReplicaSet", up.format("bbb", 1))).kind == "rollout"  # type: ignore[union-attr]
    down = "Scaled down replica set web-bbb to 0"  # the current one emptied: scaled to zero
    assert t.classify(ev("Deployment", "web", "ScalingReplicaSet", down)).kind == "scaling"  # type: ignore[union-attr]


def test_a_bad_event_is_refused_and_times_are_read_in_order() -> None:
    with pytest.raises(ValidationError):
        k.Tracker().classify([1, 2])
    event = ev(
        "Pod", "p-x2k4q", "Killing", "Stopping", lastTimestamp=None, eventTime="2026-01-15T10:00:00.123456Z"
    )
    seen = k.Tracker().classify(event)
    assert seen is not None and seen.at == datetime(2026, 1, 15, 10, 0, tzinfo=UTC)
    assert k.Tracker().classify(ev("Pod", "p-x2k4q", "Killing", "x", lastTimestamp="junk")).at is None  # type: ignore[union-attr]
