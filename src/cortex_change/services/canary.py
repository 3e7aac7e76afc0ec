"""The statistical rollback decision around its pure rule (domain/canary.py; docs/canary.md): which
metrics a change is judged on, their samples before and after it (Prometheus range queries), and
the audited outcome — close, roll back, extend the period once, or ask a person."""

from __future__ import annotations

from ..domain import canary, verification
from ..domain.codec import fmt_epoch
from ..domain.events import Event, EventKind
from ..runner import checks
from . import unit

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from datetime import datetime
    from typing import Any

    from ..config import Settings
    from ..domain.model import Change
    from ..domain.plan import ValidationSpec
    from .context import Context

# Samples per side at most: the Hodges–Lehmann shift takes every after − before difference
# (200 × 200 = 40 000, ~20 ms); a longer window is sampled with a coarser step.
MAX_POINTS = 200


def rules(spec: ValidationSpec, settings: Settings) -> list[canary.Rule]:
    """The metrics judged: error rate and latency (their queries; higher is worse) and the
    `prometheus.canary` ones, with the change's own direction and tolerance over CANARY_*."""
    prom = spec.prometheus
    if prom is None or not prom.url:
        return []
    alpha = int(settings["CANARY_ALPHA"]) / 100
    tolerance = float(settings["CANARY_TOLERANCE"])
    minimum = int(settings["CANARY_MIN_SAMPLES"])
    builtin = {"error_rate": prom.error_rate_query, "latency": prom.latency_query}
    named = {m.name: m for m in prom.canary}
    out = []
    for name in [*[n for n, q in builtin.items() if q], *[n for n in named if n not in builtin]]:
        m = named.get(name)
        query = (m.query if m is not None else None) or builtin.get(name)
        if not query:  # a built-in's override without the built-in query (refused when filed)
            continue
        worse = (m.worse if m is not None else None) or canary.BUILTIN_WORSE.get(name, "higher")
        tol = tolerance if m is None or m.tolerance is None else m.tolerance
        out.append(canary.Rule(name, query, worse, tol, alpha, minimum))
    return out


def windows(change: Change, now: datetime, interval: float) -> dict[str, float]:
    """The two windows compared, of equal length: before the implementation started, and from when
    it finished until now; one sample every `step` seconds (at most MAX_POINTS a side)."""
    began = (change.timeline.implementation_started_at or now).timestamp()
    done = (change.timeline.implemented_at or now).timestamp()
    length = max(now.timestamp() - done, interval)
    step = max(interval, length / MAX_POINTS, 1.0)
    return {
        "before_start": began - length,
        "before_end": began - step,
        "after_start": done + step,
        "after_end": now.timestamp(),
        "step": step,
    }


def judge(spec: ValidationSpec, rules_: list[canary.Rule], w: dict[str, float]) -> canary.Judgement:
    """Each metric's samples in both windows, judged; a failed query leaves that metric without
    samples (inconclusive, with the error)."""
    assert spec.prometheus is not None
    url = spec.prometheus.url
    out = []
    for rule in rules_:
        try:
            before = checks.query_range(url, rule.query, w["before_start"], w["before_end"], w["step"])
            after = checks.query_range(url, rule.query, w["after_start"], w["after_end"], w["step"])
        except ValueError as exc:
            out.append(canary.judge_metric(rule, [], [], note=str(exc)))
            continue
        out.append(canary.judge_metric(rule, before[-MAX_POINTS:], after[-MAX_POINTS:]))
    return canary.Judgement(tuple(out))


def decide(
    ctx: Context,
    change: Change,
    spec: ValidationSpec,
    verdict: verification.Verdict,
    actor: str,
    now: datetime,
) -> verification.Verdict:
    """A verdict that passed on the fixed thresholds, settled by the statistics (no metric to judge:
    unchanged). Audited: `canary_judged` with every figure, then `validation_extended` or
    `rollback_decision_requested` (which notifies the requester and CHANGE_MANAGERS)."""
    judged_on = rules(spec, ctx.settings)
    if not judged_on:
        return verdict
    w = windows(change, now, spec.interval)
    judgement = judge(spec, judged_on, w)
    settled = verification.settle(verdict, judgement, spec)
    span = {k: fmt_epoch(v) for k, v in w.items() if k != "step"}
    details: dict[str, Any] = {**settled.details, "windows": {**span, "step_seconds": w["step"]}}
    events = [Event(EventKind.CANARY_JUDGED, actor, details)]
    if settled.outcome is verification.Outcome.CONTINUE:
        until = fmt_epoch(settled.state["ends_at"])
        events.append(Event(EventKind.VALIDATION_EXTENDED, actor, {"until": until, "reason": settled.reason}))
    elif settled.outcome is verification.Outcome.ASK:
        events.append(Event(EventKind.ROLLBACK_DECISION_REQUESTED, actor, {"reason": settled.reason}))
    unit.record(ctx, change.change_id, events)
    return settled
