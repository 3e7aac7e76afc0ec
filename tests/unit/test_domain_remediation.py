"""domain/remediation.py: remediation tables, Alertmanager's webhook, matching, templating, the
dedupe key and the storm bound — pure, tables of cases."""

from __future__ import annotations

from typing import Any

import pytest

from cortex_change.domain import remediation as r
from cortex_change.domain.errors import ConfigError, ValidationError
from cortex_change.domain.model import ChangeType
from cortex_change.domain.runbooks import define as runbook
from cortex_change.domain.standard import Condition, StandardModel

MODELS = {
    "worker-restart": StandardModel(
        "worker-restart",
        "",
        True,
        Condition("rate", "target", limit=3, window_seconds=3600),
        ChangeType.NORMAL,
    ),
    "autoscale": StandardModel(
        "autoscale", "", True, Condition("range", "replicas", minimum=1, maximum=10), ChangeType.NORMAL
    ),
}
RUNBOOKS = {
    "restart": runbook(
        "restart",
        {
            "version": 1,
            "run": ["kubectl", "rollout", "restart", "deployment/{deployment}", "-n", "{namespace}"],
            "params": {"deployment": "[a-z0-9-]{1,40}", "namespace": "[a-z0-9-]{1,40}"},
            "defaults": {"namespace": "default"},
        },
    ),
}
TABLE: dict[str, Any] = {
    "match": {"alertname": "WorkerDown", "severity": "critical"},
    "model": "worker-restart",
    "runbook": "restart",
    "parameters": {"target": "{{ labels.deployment }}", "deployment": "{{labels.deployment}}"},
}


def define(**changes: Any) -> r.Remediation:
    return r.define("worker-down", {**TABLE, **changes}, MODELS, RUNBOOKS)


def alert(**labels: str) -> r.Alert:
    base = {"alertname": "WorkerDown", "severity": "critical", "deployment": "worker-7"}
    return r.Alert("firing", {**base, **labels}, "2026-01-15T09:00:00Z", "c0ffee")


def test_a_table_is_checked_against_the_catalog() -> None:
    rem = define()
    assert rem.match == (("alertname", "WorkerDown"), ("severity", "critical"))
    assert rem.runbook_params == ("deployment",) and rem.services == ("{{ labels.deployment }}",)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"model": "ghost"}, "model: unknown standard model 'ghost'"),
        ({"runbook": "ghost"}, "runbook: unknown runbook 'ghost'"),
        ({"match": {}}, "match: needs labels"),
        ({"match": {"bad-label": "x"}}, "is not a Prometheus label name"),
        ({"parameters": {"deployment": "{{ labels.d }}"}}, "judges the parameter 'target'"),
        ({"parameters": {"target": "{{ labels.d }}"}}, "runbook restart needs the parameter 'deployment'"),
        ({"parameters": {"target": "{{ annotations.x }}", "deployment": "x"}}, "the only template slot"),
        ({"impact": "huge"}, "impact: 'huge' is not allowed"),
        ({"page_every": "soon"}, "page_every: 'soon' is not a duration"),
        ({"limit": 0}, "limit: 0 is not a whole number"),
        ({"colour": "red"}, "unknown key 'colour'"),
    ],
)
def test_bad_tables_name_the_key(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=r"remediations\.worker-down") as err:
        define(**changes)
    assert message in str(err.value)


def test_matching_takes_the_most_specific_remediation() -> None:
    loose = r.define("any-worker", {**TABLE, "match": {"alertname": "WorkerDown"}}, MODELS, RUNBOOKS)
    tight = define()
    assert r.matching([loose, tight], alert()) is tight
    assert r.matching([loose, tight], alert(severity="warning")) is loose
    assert r.matching([loose, tight], alert(alertname="DiskFull")) is None


def test_the_request_is_filled_from_labels_only_with_safe_values() -> None:
    fields = r.request_fields(define(), alert(), "alertmanager")
    assert fields["parameters"] == {"deployment": "worker-7", "target": "worker-7"}
    assert fields["implementation_plan"] == {
        "steps": [{"runbook": "restart", "params": {"deployment": "worker-7"}}]
    }
    assert fields["type"] == "standard" and fields["standard_model"] == "worker-restart"
    assert fields["affected_services"] == ["worker-7"] and fields["requested_by"] == "alertmanager"
    for bad in ("worker 7", "w;rm -rf /", "a\nb", "x\u200by", "$(id)", "", "a" * 254):
        with pytest.raises(ValidationError, match=r"labels\.deployment"):
            r.request_fields(define(), alert(deployment=bad), "alertmanager")
    missing = r.Alert("firing", {"alertname": "WorkerDown"}, "t", "f")
    with pytest.raises(ValidationError, match="no such label"):
        r.request_fields(define(), missing, "alertmanager")


def test_the_storm_bound_is_the_models_rate_or_lower() -> None:
    assert r.bound(define(), MODELS["worker-restart"]) == (3, 3600)
    assert r.bound(define(limit=1), MODELS["worker-restart"]) == (1, 3600)
    assert r.bound(define(limit=9, window="1d"), MODELS["worker-restart"]) == (3, 86400)
    assert r.bound(define(), MODELS["autoscale"]) == (1, 3600)  # no rate: one an hour
    assert r.bound(define(limit=4, window="10m"), MODELS["autoscale"]) == (4, 600)


def test_the_webhook_is_read_and_keyed_by_fingerprint_and_start() -> None:
    hook = r.parse_webhook(
        {
            "version": "4",
            "status": "firing",
            "receiver": "cc",
            "alerts": [
                {"status": "firing", "labels": {"a": "1"}, "startsAt": "T1", "fingerprint": "abc"},
                {"status": "resolved", "labels": {"a": "1"}, "startsAt": "T1"},  # no fingerprint
            ],
        }
    )
    first, second = hook.alerts
    assert first.key == "abc@T1"
    assert second.key == f"{r.fingerprint_of({'a': '1'})}@T1" and len(second.fingerprint) == 16


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], "body"),
        ({"version": "3", "alerts": []}, "version"),
        ({"alerts": {}}, "alerts"),
        ({"alerts": [{"status": "pending", "labels": {}, "startsAt": "t"}]}, "alerts[0].status"),
        ({"alerts": [{"status": "firing", "labels": {"a": 1}, "startsAt": "t"}]}, "alerts[0].labels"),
        ({"alerts": [{"status": "firing", "labels": {}}]}, "alerts[0].startsAt"),
        ({"alerts": [{"status": "firing", "labels": {}, "startsAt": "t", "fingerprint": 5}]}, "fingerprint"),
    ],
)
def test_a_malformed_webhook_names_the_field(body: Any, field: str) -> None:
    with pytest.raises(ValidationError, match=field.replace("[", r"\[").replace("]", r"\]")):
        r.parse_webhook(body)
