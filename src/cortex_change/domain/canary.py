"""Statistical rollback decisions (AUTO_ROLLBACK_DECISION; docs/canary.md), pure.

After the validation period, each metric's samples after the change are compared with the same
metric's samples before it (the baseline window), as canary-analysis tools do: a Mann–Whitney U
test (normal approximation, tie and continuity corrections) in the metric's harmful direction, and
the Hodges–Lehmann shift (the median of all after − before differences) as the effect size.

The rule, per metric: fewer than `min_samples` on either side → inconclusive; significant
(p < alpha) and the harmful effect above `tolerance` % of the baseline median → fail; the effect
above the tolerance but not significant → inconclusive; otherwise → pass. Over metrics: any fail
fails, else any inconclusive is inconclusive, else pass.

`forecast` turns earlier changes' recorded judgements into the expected change in error rate and
latency at assessment. Standard library only (`math`); no I/O.
"""

from __future__ import annotations

import math
from enum import StrEnum

from .values import Frozen

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any, Final

ALPHA = 0.05  # CANARY_ALPHA's default (5 %): one-sided, in the harmful direction
TOLERANCE = 20.0  # CANARY_TOLERANCE's default: % of the baseline median
MIN_SAMPLES = 10  # CANARY_MIN_SAMPLES's default, per side
WORSE = ("higher", "lower", "either")  # which direction of change harms
BUILTIN_WORSE = {"error_rate": "higher", "latency": "higher"}
# The forecast: the last changes of the service it reads, and the interval it gives (10th–90th
# percentile of their measured effects: 80 % of them fell inside).
FORECAST_LAST = 20
FORECAST_LOW, FORECAST_HIGH = 0.10, 0.90


class Call(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


class Rule(Frozen):
    """How one metric is judged: its PromQL, which direction harms, the tolerated harmful effect
    (% of the baseline median), the significance level and the samples needed per side."""

    __slots__ = ("alpha", "min_samples", "name", "query", "tolerance", "worse")

    def __init__(
        self,
        name: str,
        query: str,
        worse: str = "higher",
        tolerance: float = TOLERANCE,
        alpha: float = ALPHA,
        min_samples: int = MIN_SAMPLES,
    ) -> None:
        self.name: Final = name
        self.query: Final = query
        self.worse: Final = worse
        self.tolerance: Final = tolerance
        self.alpha: Final = alpha
        self.min_samples: Final = min_samples


class Test(Frozen):
    """A Mann–Whitney U test: U of the after-samples (pairs where after > before, ties half), z, p."""

    __slots__ = ("p", "u", "z")

    def __init__(self, u: float, z: float, p: float) -> None:
        self.u: Final = u
        self.z: Final = z
        self.p: Final = p


def median(values: Sequence[float]) -> float:
    """The median (the mean of the middle two for an even count); raises on no values."""
    ordered = sorted(values)
    n = len(ordered)
    if not n:
        raise ValueError("median of no values")
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def quantile(values: Sequence[float], q: float) -> float:
    """The q-quantile by linear interpolation between order statistics (numpy's default)."""
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def _midranks(values: Sequence[float]) -> tuple[list[float], float]:
    """Each value's rank (ties share the mean of their ranks), and the tie term Σ(t³ − t)."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    ties = 0.0
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        rank = (i + j) / 2 + 1
        for k in range(i, j + 1):
            ranks[order[k]] = rank
        t = j - i + 1
        ties += t**3 - t
        i = j + 1
    return ranks, ties


def _upper(z: float) -> float:
    """P(Z ≥ z) for a standard normal Z."""
    return 0.5 * math.erfc(z / math.sqrt(2))


def mann_whitney(before: Sequence[float], after: Sequence[float], worse: str = "higher") -> Test:
    """Mann–Whitney U of `after` against `before`, normal approximation with tie and continuity
    corrections; p one-sided in the harmful direction (`worse` higher or lower) or two-sided
    (`either`). All values tied: no evidence (z 0, p 1)."""
    n1, n2 = len(before), len(after)
    n = n1 + n2
    ranks, ties = _midranks([*before, *after])
    u = sum(ranks[n1:]) - n2 * (n2 + 1) / 2
    mu = n1 * n2 / 2
    variance = n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1))) if n > 1 else 0.0
    if variance <= 0:
        return Test(u, 0.0, 1.0)
    sigma = math.sqrt(variance)
    if worse == "higher":
        z = (u - mu - 0.5) / sigma
        return Test(u, z, _upper(z))
    if worse == "lower":
        z = (u - mu + 0.5) / sigma
        return Test(u, z, _upper(-z))
    z = (abs(u - mu) - 0.5) / sigma
    return Test(u, z, min(1.0, 2 * _upper(z)))


def hodges_lehmann(before: Sequence[float], after: Sequence[float]) -> float:
    """The Hodges–Lehmann shift: the median of every after − before difference (n1 × n2 of them:
    the caller bounds the samples per side)."""
    return median([a - b for a in after for b in before])


class Figures(Frozen):
    """One metric's judgement with every figure behind it (the audit trail keeps `document()`)."""

    __slots__ = ("after", "before", "call", "reason", "rule", "shift", "test")

    def __init__(
        self,
        rule: Rule,
        call: Call,
        reason: str,
        before: tuple[float, ...],
        after: tuple[float, ...],
        test: Test | None = None,
        shift: float | None = None,
    ) -> None:
        self.rule: Final = rule
        self.call: Final = call
        self.reason: Final = reason
        self.before: Final = before
        self.after: Final = after
        self.test: Final = test
        self.shift: Final = shift

    @property
    def baseline_median(self) -> float | None:
        return median(self.before) if self.before else None

    @property
    def change_pct(self) -> float | None:
        """The shift as a signed % of the baseline median (None when that is 0 or unknown)."""
        base = self.baseline_median
        if self.shift is None or not base:
            return None
        return 100 * self.shift / abs(base)

    def document(self) -> dict[str, Any]:
        r, t = self.rule, self.test
        return {
            "metric": r.name,
            "call": self.call.value,
            "reason": self.reason,
            "worse": r.worse,
            "n_before": len(self.before),
            "n_after": len(self.after),
            "median_before": _round(self.baseline_median),
            "median_after": _round(median(self.after)) if self.after else None,
            "shift": _round(self.shift),
            "change_pct": _round(self.change_pct),
            "u": None if t is None else _round(t.u),
            "z": None if t is None else _round(t.z),
            "p": None if t is None else _round(t.p),
            "alpha": r.alpha,
            "tolerance_pct": r.tolerance,
        }


def _round(value: float | None) -> float | None:
    """Six significant figures for the trail (JSON has no infinities: none reach here)."""
    return None if value is None else float(f"{value:.6g}")


def harm_pct(rule: Rule, shift: float, base: float) -> float:
    """The harmful effect as % of the baseline median: the shift in the harmful direction (either
    direction for `either`); a harmful shift from a zero baseline is unbounded (inf)."""
    harmful = {"higher": shift, "lower": -shift}.get(rule.worse, abs(shift))
    if base == 0:
        return math.inf if harmful > 0 else 0.0
    return 100 * harmful / abs(base)


def judge_metric(rule: Rule, before: Sequence[float], after: Sequence[float], note: str = "") -> Figures:
    """One metric's call by the rule in the module's docstring (`note`: why samples are missing)."""
    b, a = tuple(before), tuple(after)
    if len(b) < rule.min_samples or len(a) < rule.min_samples:
        why = f"too few samples ({len(b)} before, {len(a)} after; {rule.min_samples} needed per side)"
        return Figures(rule, Call.INCONCLUSIVE, f"{why}: {note}" if note else why, b, a)
    test = mann_whitney(b, a, rule.worse)
    shift = hodges_lehmann(b, a)
    harm = harm_pct(rule, shift, median(b))
    significant = test.p < rule.alpha
    size = "unbounded (baseline median 0)" if math.isinf(harm) else f"{harm:.1f} %"
    said = f"harmful effect {size}, tolerance {rule.tolerance:g} %; p={test.p:.3g}, alpha {rule.alpha:g}"
    if harm > rule.tolerance and significant:
        return Figures(rule, Call.FAIL, f"worse: {said}", b, a, test, shift)
    if harm > rule.tolerance:
        return Figures(rule, Call.INCONCLUSIVE, f"looks worse, not significant: {said}", b, a, test, shift)
    return Figures(rule, Call.PASS, f"within tolerance: {said}", b, a, test, shift)


class Judgement(Frozen):
    """Every metric's figures and the call over them: any fail fails, else any inconclusive."""

    __slots__ = ("metrics",)

    def __init__(self, metrics: tuple[Figures, ...]) -> None:
        self.metrics: Final = metrics

    @property
    def call(self) -> Call:
        calls = {f.call for f in self.metrics}
        for call in (Call.FAIL, Call.INCONCLUSIVE):
            if call in calls:
                return call
        return Call.PASS

    @property
    def summary(self) -> str:
        """One line: each metric's call and reason."""
        return "; ".join(f"{f.rule.name} {f.call.value} ({f.reason})" for f in self.metrics)

    def document(self) -> dict[str, Any]:
        return {"call": self.call.value, "metrics": [f.document() for f in self.metrics]}


# --- the performance impact forecast (at assessment) ---------------------------------------------

# What the forecast reads of each metric's recorded figures, and how it says it: error rates are
# already percentages, often 0 before a change (no relative change then): their absolute shift in
# points; latency scales with the service: its change in % of the baseline.
FORECAST_FIGURE = {"error_rate": ("shift", "points"), "latency": ("change_pct", "%")}


def forecast(judged: Sequence[tuple[str, Mapping[str, Any]]], minimum: int) -> dict[str, Any]:
    """The expected change in error rate and latency, from earlier changes' judgements
    (`(change_id, document)`, newest first, one per change): per metric the median of their
    measured effects and the 10th–90th percentile (80 % of them fell inside), or no history with
    fewer than `minimum`."""
    used = list(judged)[:FORECAST_LAST]
    out: dict[str, Any] = {"basis": [cid for cid, _ in used], "minimum": minimum}
    parts = []
    for metric, (field, unit) in FORECAST_FIGURE.items():
        values = [
            float(m[field])
            for _, doc in used
            for m in doc.get("metrics", [])
            if m.get("metric") == metric and isinstance(m.get(field), (int, float))
        ]
        if len(values) < minimum:
            out[metric] = None
            continue
        low, mid, high = (quantile(values, q) for q in (FORECAST_LOW, 0.5, FORECAST_HIGH))
        out[metric] = {
            "unit": unit,
            "median": _round(mid),
            "low": _round(low),
            "high": _round(high),
            "n": len(values),
        }
        between = f"80 %: {_signed(low, unit)} to {_signed(high, unit)}; n={len(values)}"
        parts.append(f"{metric.replace('_', ' ')} {_signed(mid, unit)} ({between})")
    if parts:
        out["summary"] = "; ".join(parts)
    else:
        out["summary"] = (
            f"no history ({len(used)} earlier judged change(s) of these services; {minimum} needed)"
        )
    return out


def _signed(value: float, unit: str) -> str:
    return f"{value:+.2f} points" if unit == "points" else f"{value:+.1f} %"
