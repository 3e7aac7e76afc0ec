"""Prometheus metrics read from the store at scrape time: the /metrics text and the Pushgateway push.

Nothing is counted in process memory: several servers and workers share one database, so every
figure is computed from it when asked (a custom collector on a fresh registry per call).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from http.client import HTTPException

from prometheus_client import CollectorRegistry, generate_latest, push_to_gateway
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from ..domain.errors import ConfigError, StoreError
from ..domain.lifecycle import State
from ..store import telemetry as figures
from ..store.outbox import DEAD, DELIVERED, PENDING
from .context import Context
from .reports import metrics_report

# The classic text format (our names need no escaping); every Prometheus version reads it.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
JOB = "cortex-change"
PREFIX = "cortex_change"
HOUR, DAY = 3600, 86400
# Upper bounds (le) of the approval latency histogram: 1 min, 5 min, 15 min, 1 h, 4 h, 1 day, 1 week.
LATENCY_BUCKETS = (60.0, 300.0, 900.0, 1.0 * HOUR, 4.0 * HOUR, 1.0 * DAY, 7.0 * DAY)
PUSH_TIMEOUT = 10.0


class PushFailed(StoreError):
    """The Pushgateway could not be reached, or refused the push (exit 5, like a store outage)."""


def _gauge(name: str, doc: str, label: str, values: dict[str, int]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(f"{PREFIX}_{name}", doc, labels=[label])
    for key, value in sorted(values.items()):
        family.add_metric([key], value)
    return family


def families(s: figures.Snapshot) -> Iterator[Metric]:
    """The store's figures as metric families (names and labels are documented in docs/metrics.md)."""
    states = {state.value: 0 for state in State} | s.changes_by_state
    yield _gauge("changes", "Changes by lifecycle state.", "state", states)
    transitions = CounterMetricFamily(
        f"{PREFIX}_transitions", "Audit events recorded, by action.", labels=["action"]
    )
    for action, n in sorted(s.events_by_action.items()):
        transitions.add_metric([action], n)
    yield transitions
    lat = s.approval_latency
    buckets = [(repr(float(b)), n) for b, n in zip(lat.bounds, lat.cumulative, strict=True)]
    yield HistogramMetricFamily(
        f"{PREFIX}_approval_latency_seconds",
        "Approval time minus creation time of every change that reached approval.",
        buckets=[*buckets, ("+Inf", lat.count)],
        sum_value=lat.total,
    )
    outbox = dict.fromkeys((PENDING, DELIVERED, DEAD), 0) | s.outbox_by_state
    yield _gauge("outbox_backlog", "Outbox messages by delivery state.", "state", outbox)
    yield GaugeMetricFamily(
        f"{PREFIX}_audit_chain_length", "Events in the hash-chained audit trail.", value=s.chain_length
    )
    yield GaugeMetricFamily(f"{PREFIX}_incidents_open", "Incidents still open.", value=s.incidents_open)


class StoreCollector:
    """Reads the store in one snapshot each time the registry is collected."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def collect(self) -> Iterator[Metric]:
        with self.ctx.db.read() as tx:
            snap = figures.snapshot(tx, LATENCY_BUCKETS)
        yield from families(snap)


class KpiCollector:
    """The KPIs and DORA figures of `metrics today` (those with a value) as one gauge family."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def collect(self) -> Iterator[Metric]:
        report = metrics_report(self.ctx, period_text="today")
        family = GaugeMetricFamily(
            f"{PREFIX}_kpi", "Today's KPIs and DORA figures in the unit `metrics` shows.", labels=["kpi"]
        )
        for kpi in [*report["kpis"], *report["dora"]]:
            if kpi["value"] is not None:
                family.add_metric([kpi["key"]], float(kpi["value"]))
        yield family


def _registry(ctx: Context, *, kpis: bool = False) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)  # nothing is read until collected
    registry.register(StoreCollector(ctx))
    if kpis:
        registry.register(KpiCollector(ctx))
    return registry


def exposition(ctx: Context) -> bytes:
    """The Prometheus text format of the store's figures (served as CONTENT_TYPE)."""
    return generate_latest(_registry(ctx))


def push_target(ctx: Context) -> str:
    """The Pushgateway to push to; ConfigError naming the key when the configuration forbids it."""
    s = ctx.settings
    if not s["METRICS_ENABLED"]:
        raise ConfigError("METRICS_ENABLED", "is false: metrics are not pushed (set it to true)")
    if s["METRICS_BACKEND"] != "prometheus":
        raise ConfigError(
            "METRICS_BACKEND", f"is {s['METRICS_BACKEND']!r}: metrics push needs METRICS_BACKEND=prometheus"
        )
    gateway: str = s["PROMETHEUS_PUSHGATEWAY"]
    if not gateway:
        raise ConfigError("PROMETHEUS_PUSHGATEWAY", "is empty: name the Pushgateway (http://host:9091)")
    return gateway


def push(ctx: Context) -> str:
    """Push the store's figures and today's KPIs to the Pushgateway (job cortex-change, this host).

    Replaces the group's previous push (PUT). Returns a one-line summary; raises ConfigError for
    a configuration that forbids it and PushFailed when the gateway cannot be used.
    """
    gateway = push_target(ctx)
    instance = socket.gethostname()
    registry = _registry(ctx, kpis=True)
    try:
        push_to_gateway(
            gateway, job=JOB, registry=registry, grouping_key={"instance": instance}, timeout=PUSH_TIMEOUT
        )
    except (OSError, ValueError, HTTPException) as exc:  # unreachable, a bad URL, an error answer
        reason = getattr(exc, "reason", None) or exc
        raise PushFailed(f"cannot push metrics to the Pushgateway at {gateway}: {reason}") from None
    return f"pushed metrics to {gateway} (job {JOB}, instance {instance})"
