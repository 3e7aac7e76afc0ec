"""The statistical rollback decision end to end (AUTO_ROLLBACK_DECISION; docs/canary.md).

A local fake Prometheus answers instant and range queries from seeded series, with or without a
shift from the moment the change is carried out; the worker runs the validation rounds on a clock
the test moves, on SQLite and PostgreSQL (`store_url`). Nothing sleeps.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from worker_support import actions, emergency, outbox_rows

from cortex_change.services import changes, queries, worker
from cortex_change.services.context import Context
from cortex_change.services.implementation import implement_change
from series import poisson
from support import (
    FakeClock,
    HttpReceiver,
    HttpServer,
    Received,
    Reply,
    file_change,
    prometheus_vector,
    query,
)

PERIOD, INTERVAL = 1200, 60  # 20 samples a side at the period's end


class Prometheus(HttpServer):
    """`errors` (error rate %, ~1 before) and `p99` (ms, ~100 before) as Prometheus answers them:
    the same seeded value for the same query and second, multiplied by `factor[query]` from
    `shift_at` on. Instant queries read `clock`; range queries are kept in `ranges`."""

    def __init__(self, clock: Callable[[], Any]) -> None:
        self.clock = clock
        self.shift_at = math.inf
        self.factor: dict[str, float] = {}
        self.ranges: list[dict[str, str]] = []
        self.sigma = 0.2  # the latency's spread (log-normal)
        super().__init__()

    def value(self, promql: str, t: float) -> float:
        rng = random.Random(f"{promql}:{int(t)}")
        after = self.factor.get(promql, 1.0) if t >= self.shift_at else 1.0
        if promql == "errors":
            return poisson(rng, 10 * after) / 10
        return rng.lognormvariate(math.log(100 * after), self.sigma)

    def answer(self, request: Received) -> Reply:
        url = urlsplit(request.path)
        args = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/api/v1/query":
            return Reply(body=prometheus_vector(self.value(args["query"], self.clock().timestamp())))
        if url.path == "/api/v1/query_range":
            self.ranges.append(args)
            start, end, step = float(args["start"]), float(args["end"]), float(args["step"])
            points = [start + k * step for k in range(int((end - start) / step + 1e-9) + 1)]
            values = [[t, str(self.value(args["query"], t))] for t in points]
            result = [{"metric": {}, "values": values}]
            body = {"status": "success", "data": {"resultType": "matrix", "result": result}}
            return Reply(body=json.dumps(body).encode())
        return Reply(404, b"not found")


@pytest.fixture
def clock() -> FakeClock:
    """A fixed moment (the series are seeded by query and second: every run sees the same ones),
    in the past (a person's CLI, on real time, acts after the worker's rounds)."""
    return FakeClock(datetime(2025, 3, 3, 9, 0, tzinfo=UTC))


@pytest.fixture
def prometheus(clock: Any) -> Iterator[Prometheus]:
    with Prometheus(clock) as srv:
        yield srv


def _validation(prom: Prometheus, **extra: Any) -> dict[str, Any]:
    return {
        "prometheus": {"url": prom.origin, "error_rate_query": "errors", "latency_query": "p99", **extra},
        "period": f"{PERIOD}s",
        "interval": f"{INTERVAL}s",
    }


def _carried_out(ctx: Context, prom: Prometheus, clock: Any, **extra: Any) -> str:
    """An emergency change on `chat` with the validation above, carried out now (the shift, if
    any, starts now); its first validation round is the worker's timer."""
    change_id = emergency(ctx, affected_services=["chat"], validation=_validation(prom, **extra))
    prom.shift_at = clock().timestamp()
    implement_change(ctx, change_id=change_id, actor="oncall")
    assert _doc(ctx, change_id)["state"] == "implemented"
    return change_id


def _rounds(ctx: Context, clock: Any, n: int) -> None:
    for _ in range(n):
        clock.advance(seconds=INTERVAL)
        worker.tick(ctx, "w1")


def _doc(ctx: Context, change_id: str) -> dict[str, Any]:
    return queries.get_change(ctx, change_id=change_id)


def _events(store_url: str, change_id: str, action: str) -> list[dict[str, Any]]:
    rows = query(
        store_url,
        "SELECT details FROM audit_events WHERE change_id=? AND action=? ORDER BY seq",
        (change_id, action),
    )
    return [json.loads(r[0]) for r in rows]


def test_no_shift_passes_with_the_figures_in_the_trail(
    make_ctx: Callable[..., Context], clock: Any, prometheus: Prometheus, store_url: str
) -> None:
    ctx = make_ctx()
    change_id = _carried_out(ctx, prometheus, clock)
    _rounds(ctx, clock, PERIOD // INTERVAL)
    doc = _doc(ctx, change_id)
    assert (doc["state"], doc["closure_status"]) == ("closed", "successful")
    assert "statistical validation passed: error_rate pass" in doc["closure_notes"]
    (judged,) = _events(store_url, change_id, "canary_judged")
    assert (judged["call"], judged["then"]) == ("pass", "close")
    assert [m["metric"] for m in judged["metrics"]] == ["error_rate", "latency"]
    for m in judged["metrics"]:
        assert (m["n_before"], m["n_after"], m["call"]) == (20, 20, "pass")
        assert m["u"] is not None and 0 <= m["p"] <= 1 and m["alpha"] == 0.05 and m["tolerance_pct"] == 20
    assert judged["windows"]["step_seconds"] == INTERVAL
    # the baseline window ends before the change began, the other starts after it finished
    implemented = doc["metrics"]["implemented_at"]
    assert judged["windows"]["before_end"] < implemented < judged["windows"]["after_start"]
    assert len(prometheus.ranges) == 4  # two metrics, two windows


def test_a_doubled_error_rate_rolls_back_though_the_fixed_threshold_holds(
    make_ctx: Callable[..., Context], clock: Any, prometheus: Prometheus, store_url: str
) -> None:
    ctx = make_ctx()  # ERROR_RATE_THRESHOLD 5 %: ~2 % after the change never breaches it
    prometheus.factor["errors"] = 2.0
    change_id = _carried_out(ctx, prometheus, clock)
    _rounds(ctx, clock, PERIOD // INTERVAL)
    checks = _events(store_url, change_id, "validation_check")
    assert len(checks) == PERIOD // INTERVAL
    assert all(r["ok"] for c in checks for r in c["results"])  # the fixed thresholds pass
    doc = _doc(ctx, change_id)
    assert doc["closure_status"] == "rolled_back"
    (judged,) = _events(store_url, change_id, "canary_judged")
    errors, latency = judged["metrics"]
    assert (judged["call"], judged["then"], errors["call"], latency["call"]) == (
        "fail",
        "roll back",
        "fail",
        "pass",
    )
    assert errors["p"] < 0.001 and errors["median_after"] > errors["median_before"]
    (started,) = _events(store_url, change_id, "rollback_started")
    assert started["reason"].startswith("statistical validation failed: error_rate fail (worse:")


def test_with_the_decision_off_the_fixed_thresholds_alone_decide(
    make_ctx: Callable[..., Context], clock: Any, prometheus: Prometheus, store_url: str
) -> None:
    ctx = make_ctx(AUTO_ROLLBACK_DECISION="false")
    prometheus.factor["errors"] = 2.0
    change_id = _carried_out(ctx, prometheus, clock)
    _rounds(ctx, clock, PERIOD // INTERVAL)
    assert _doc(ctx, change_id)["closure_status"] == "successful"
    assert "canary_judged" not in actions(store_url, change_id)
    assert prometheus.ranges == []


def test_a_fixed_threshold_breach_still_fails_first(
    make_ctx: Callable[..., Context], clock: Any, prometheus: Prometheus, store_url: str
) -> None:
    ctx = make_ctx(ERROR_RATE_THRESHOLD="1")  # ~1 % before: a doubled rate breaches it at once
    prometheus.factor["errors"] = 2.0
    change_id = _carried_out(ctx, prometheus, clock)
    _rounds(ctx, clock, 3)  # failures_to_trip: 3 rounds in a row
    assert _doc(ctx, change_id)["closure_status"] == "rolled_back"
    assert "canary_judged" not in actions(store_url, change_id)


def test_inconclusive_extends_the_period_once_then_decides(
    make_ctx: Callable[..., Context], clock: Any, prometheus: Prometheus, store_url: str
) -> None:
    ctx = make_ctx(CANARY_MIN_SAMPLES="30")  # 20 a side at the period's end, 40 after the extension
    change_id = _carried_out(ctx, prometheus, clock)
    _rounds(ctx, clock, PERIOD // INTERVAL)
    assert _doc(ctx, change_id)["state"] == "implemented"
    (judged,) = _events(store_url, change_id, "canary_judged")
    assert (judged["call"], judged["then"]) == ("inconclusive", "extend")
    assert judged["metrics"][0]["reason"].startswith("too few samples (20 before, 20 after; 30 needed")
    (extended,) = _events(store_url, change_id, "validation_extended")
    assert "extended once by 1200s" in extended["reason"]
    _rounds(ctx, clock, PERIOD // INTERVAL)
    doc = _doc(ctx, change_id)
    assert doc["closure_status"] == "successful"
    _, second = _events(store_url, change_id, "canary_judged")
    assert (second["call"], second["metrics"][0]["n_before"], second["metrics"][0]["n_after"]) == (
        "pass",
        40,
        40,
    )


def test_inconclusive_twice_asks_a_person_who_decides_with_the_cli(
    make_ctx: Callable[..., Context],
    clock: Any,
    prometheus: Prometheus,
    store_url: str,
    receiver: HttpReceiver,
    quiet_cli: Any,
    tmp_path: Path,
) -> None:
    quiet_cli.env["CORTEX_CHANGE_CONFIG"] = str(tmp_path / "cortex-change.toml")  # the noop runbook
    ctx = make_ctx(CANARY_MIN_SAMPLES="100", WEBHOOK_URL=receiver.url())
    change_id = _carried_out(ctx, prometheus, clock)
    _rounds(ctx, clock, 2 * PERIOD // INTERVAL)
    doc = _doc(ctx, change_id)
    assert doc["state"] == "implemented"  # waits for a person, not rolled back, not closed
    calls = [(j["call"], j["then"]) for j in _events(store_url, change_id, "canary_judged")]
    assert calls == [("inconclusive", "extend"), ("inconclusive", "ask a person")]
    (asked,) = _events(store_url, change_id, "rollback_decision_requested")
    assert "keep it (close ID successful) or roll it back (rollback ID REASON)" in asked["reason"]
    (message,) = [r for r in outbox_rows(store_url, change_id=change_id) if r["kind"] == "rollback_decision"]
    assert message["payload"]["recipients"] == ["oncall", "change-manager"]  # requester, CHANGE_MANAGERS
    _rounds(ctx, clock, 3)
    assert _doc(ctx, change_id)["state"] == "implemented"  # no more rounds: the person decides
    out = quiet_cli.ok("rollback", change_id, "error budget at risk", "--as", "change-manager")
    assert out.endswith("closed rolled_back: rolled back by change-manager: error budget at risk; "
                        "rolled back: 1 rollback step(s) succeeded\n")  # fmt: skip
    assert _doc(ctx, change_id)["closure_status"] == "rolled_back"


def test_the_forecast_reads_earlier_judgements_of_the_service_never_later_ones(
    make_ctx: Callable[..., Context], clock: Any, prometheus: Prometheus, store_url: str
) -> None:
    ctx = make_ctx(HISTORY_MIN_SAMPLES="2")
    before_any = clock()
    prometheus.factor["p99"] = 1.1  # each change makes chat ~10 % slower: within the tolerance
    prometheus.sigma = 0.05
    judged = []
    for _ in range(3):
        judged.append(_carried_out(ctx, prometheus, clock))
        _rounds(ctx, clock, PERIOD // INTERVAL)
        prometheus.shift_at = math.inf
    assert all(_doc(ctx, c)["closure_status"] == "successful" for c in judged)
    clock.advance(seconds=1)  # a judgement written in the very second of an assessment is not read

    new = file_change(ctx, title="Deploy chat 2.0", category="deployment", type="normal", requested_by="bob",
                      affected_services=["chat"])  # fmt: skip
    assessed = changes.assess_change(ctx, change_id=new.change_id)
    forecast = assessed.assessment.forecast
    assert forecast["basis"] == judged[::-1]  # newest first
    latency = forecast["latency"]
    assert latency["unit"] == "%" and latency["n"] == 3 and 3 < latency["median"] < 20
    assert latency["low"] <= latency["median"] <= latency["high"]
    assert forecast["error_rate"]["unit"] == "points"
    assert _doc(ctx, new.change_id)["assessment"]["forecast"] == forecast

    # another service's changes say nothing about this one
    other = file_change(ctx, title="Deploy search", category="deployment", type="normal", requested_by="bob",
                        affected_services=["search"])  # fmt: skip
    got = changes.assess_change(ctx, change_id=other.change_id).assessment.forecast
    assert got["basis"] == [] and got["summary"].startswith("no history")

    # assessed at a moment before the judgements were written: they are not read (no future)
    clock.set(before_any)
    early = file_change(ctx, title="Chat 1.9", category="deployment", type="normal", requested_by="bob",
                        affected_services=["chat"])  # fmt: skip
    got = changes.assess_change(ctx, change_id=early.change_id).assessment.forecast
    assert got["basis"] == [] and got["latency"] is None


# --- the pieces: range queries, the rules from spec and configuration -----------------------------


def test_range_queries_read_the_first_series_and_drop_nan(prometheus: Prometheus) -> None:
    from cortex_change.runner import checks

    values = checks.query_range(prometheus.origin, "p99", 1000.0, 1600.0, 60.0)
    assert len(values) == 11 and all(v > 0 for v in values)
    assert prometheus.ranges[-1] == {"query": "p99", "start": "1000.000", "end": "1600.000", "step": "60"}

    class Nan(HttpServer):
        def answer(self, request: Received) -> Reply:
            if urlsplit(request.path).path != "/api/v1/query_range":
                return Reply(body=b"ok")
            values = [[1, "NaN"], [2, "0.5"], [3, "+Inf"]]
            body = {"status": "success", "data": {"result": [{"metric": {}, "values": values}]}}
            return Reply(body=json.dumps(body).encode())

    with Nan() as nan:
        assert checks.query_range(nan.origin, "x", 1, 3, 1) == [0.5]
        with pytest.raises(ValueError, match="no range answer"):
            checks.query_range(nan.origin + "/not-prometheus", "x", 1, 3, 1)


def test_rules_from_the_spec_over_the_configuration() -> None:
    from cortex_change.config import load
    from cortex_change.domain import plan
    from cortex_change.services.canary import rules

    settings = load({"CANARY_ALPHA": "1", "CANARY_TOLERANCE": "50", "CANARY_MIN_SAMPLES": "12"})
    raw = {
        "prometheus": {
            "url": "http://prom:9090",
            "error_rate_query": "errors",
            "latency_query": "p99",
            "canary": {
                "latency": {"tolerance": 10, "worse": "either"},
                "rps": {"query": "rps", "worse": "lower"},
            },
        }
    }
    got = rules(plan.validation_spec(raw, plan.Defaults()), settings)
    assert [(r.name, r.query, r.worse, r.tolerance, r.alpha, r.min_samples) for r in got] == [
        ("error_rate", "errors", "higher", 50.0, 0.01, 12),
        ("latency", "p99", "either", 10.0, 0.01, 12),
        ("rps", "rps", "lower", 50.0, 0.01, 12),
    ]
    assert (
        rules(plan.validation_spec({"health_checks": ["http://svc/health"]}, plan.Defaults()), settings) == []
    )
