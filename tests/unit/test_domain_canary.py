"""The statistical rollback decision (domain/canary.py; docs/canary.md) on generated series.

Series are seeded, so every figure here is reproducible: error rates are Poisson error counts per
1 000 requests (in %, so ties abound), latencies log-normal."""

from __future__ import annotations

import math
import random

import pytest

from cortex_change.domain import canary, plan, verification
from cortex_change.domain.canary import Call, Rule, judge_metric, mann_whitney
from cortex_change.domain.errors import ValidationError
from cortex_change.domain.plan import ValidationSpec
from series import errors, latencies

TRIALS = 200
N = 30  # the defaults' samples per side: a 30 min period, one sample a minute


def _calls(rule: Rule, factor: float, n: int = N, trials: int = TRIALS) -> dict[Call, float]:
    """The share of each call over `trials` seeded error-rate series multiplied by `factor`."""
    counts = dict.fromkeys(Call, 0)
    for seed in range(trials):
        rng = random.Random(seed)
        before, after = errors(rng, n, 10), errors(rng, n, 10 * factor)
        counts[judge_metric(rule, before, after).call] += 1
    return {call: count / trials for call, count in counts.items()}


ERROR_RATE = Rule("error_rate", "q", "higher")


# --- detection and false alarms ----------------------------------------------------------------


def test_detects_a_doubled_error_rate() -> None:
    assert _calls(ERROR_RATE, 2.0)[Call.FAIL] == 1.0  # measured: 200 of 200
    assert _calls(ERROR_RATE, 2.0, n=10)[Call.FAIL] >= 0.99  # even with the fewest samples allowed


def test_does_not_trip_on_noise() -> None:
    calls = _calls(ERROR_RATE, 1.0)
    assert calls[Call.FAIL] <= ERROR_RATE.alpha  # measured: 0.025
    assert calls[Call.PASS] >= 0.9  # measured: 0.97


def test_the_test_alone_holds_its_level_on_noise() -> None:
    """Tolerance 0: every significant harmful shift fails, so false fails are the test's own rate."""
    calls = _calls(Rule("error_rate", "q", "higher", tolerance=0.0), 1.0)
    assert calls[Call.FAIL] <= ERROR_RATE.alpha + 0.01  # measured: 0.045


def test_an_improvement_never_fails_a_higher_is_worse_metric() -> None:
    assert _calls(ERROR_RATE, 0.5)[Call.FAIL] == 0.0


def test_a_significant_but_tiny_shift_passes() -> None:
    """5 % slower on 200 samples a side is certain (p ~ 1e-9) but within the 20 % tolerance."""
    rng = random.Random(7)
    before, after = latencies(rng, 200, 100.0, 0.05), latencies(rng, 200, 105.0, 0.05)
    f = judge_metric(Rule("latency", "q"), before, after)
    assert f.test is not None and f.test.p < 1e-6
    assert f.call is Call.PASS
    assert f.change_pct is not None and 3 < f.change_pct < 7


def test_latency_doubling_fails_and_a_noisy_rise_is_inconclusive() -> None:
    rng = random.Random(3)
    slow = judge_metric(Rule("latency", "q"), latencies(rng, N, 100.0), latencies(rng, N, 200.0))
    assert slow.call is Call.FAIL
    # 30 % slower on 4 very noisy samples a side would be a guess: not enough to decide
    rng = random.Random(11)
    few = Rule("latency", "q", min_samples=4)
    noisy = judge_metric(few, latencies(rng, 4, 100.0, 0.8), latencies(rng, 4, 130.0, 0.8))
    assert noisy.call is Call.INCONCLUSIVE
    assert "not significant" in noisy.reason


def test_lower_is_worse_for_throughput() -> None:
    rng = random.Random(5)
    before = [rng.gauss(1000, 50) for _ in range(N)]
    dropped = [rng.gauss(600, 50) for _ in range(N)]
    risen = [rng.gauss(1400, 50) for _ in range(N)]
    throughput = Rule("throughput", "q", worse="lower")
    assert judge_metric(throughput, before, dropped).call is Call.FAIL
    assert judge_metric(throughput, before, risen).call is Call.PASS
    either = Rule("throughput", "q", worse="either")
    assert judge_metric(either, before, risen).call is Call.FAIL


# --- too few samples, ties, zero baselines -------------------------------------------------------


def test_too_few_samples_is_inconclusive_whatever_they_say() -> None:
    f = judge_metric(ERROR_RATE, [1.0] * 9, [50.0] * 30, note="")
    assert f.call is Call.INCONCLUSIVE
    assert f.reason == "too few samples (9 before, 30 after; 10 needed per side)"
    assert f.test is None and f.document()["p"] is None
    missing = judge_metric(ERROR_RATE, [], [], note="request failed: refused")
    assert missing.call is Call.INCONCLUSIVE and missing.reason.endswith(": request failed: refused")


def test_all_values_tied_is_no_evidence() -> None:
    t = mann_whitney([2.0] * 12, [2.0] * 12)
    assert (t.u, t.z, t.p) == (72.0, 0.0, 1.0)
    assert judge_metric(ERROR_RATE, [2.0] * 12, [2.0] * 12).call is Call.PASS


def test_zero_baseline_error_rate() -> None:
    zeros = [0.0] * 20
    assert judge_metric(ERROR_RATE, zeros, zeros).call is Call.PASS
    assert judge_metric(ERROR_RATE, zeros, [0.0] * 17 + [0.1] * 3).call is Call.PASS  # median shift 0
    f = judge_metric(ERROR_RATE, zeros, [0.5] * 20)
    assert f.call is Call.FAIL
    assert "unbounded" in f.reason
    assert f.document()["change_pct"] is None  # no relative change from 0; the shift is kept
    assert f.document()["shift"] == 0.5


def test_mann_whitney_by_hand_with_ties() -> None:
    # before 1 2 2 3, after 2 3 4 5: U(after) counts after > before pairs, ties half
    t = mann_whitney([1, 2, 2, 3], [2, 3, 4, 5])
    pairs = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a in [2, 3, 4, 5] for b in [1, 2, 2, 3])
    assert t.u == pairs == 13.5
    ties = (3**3 - 3) + (2**3 - 2)  # three 2s, two 3s
    sigma = math.sqrt(4 * 4 / 12 * (9 - ties / (8 * 7)))
    assert t.z == pytest.approx((13.5 - 8 - 0.5) / sigma)
    assert t.p == pytest.approx(0.5 * math.erfc(t.z / math.sqrt(2)))


@pytest.mark.parametrize(
    ("worse", "alternative"), [("higher", "greater"), ("lower", "less"), ("either", "two-sided")]
)
def test_mann_whitney_agrees_with_scipy(worse: str, alternative: str) -> None:
    stats = pytest.importorskip("scipy.stats")
    rng = random.Random(1)
    for _ in range(50):
        before, after = errors(rng, 25, 10), errors(rng, 25, 12)
        mine = mann_whitney(before, after, worse)
        ref = stats.mannwhitneyu(
            after, before, alternative=alternative, method="asymptotic", use_continuity=True
        )
        assert mine.u == ref.statistic
        assert mine.p == pytest.approx(ref.pvalue, abs=1e-12)


def test_hodges_lehmann_and_quantiles() -> None:
    assert canary.hodges_lehmann([1, 2, 3], [11, 12, 13]) == 10
    assert canary.median([3, 1, 2, 4]) == 2.5
    assert canary.quantile([1, 2, 3, 4, 5], 0.1) == pytest.approx(1.4)
    with pytest.raises(ValueError):
        canary.median([])


# --- the judgement over metrics, its document ----------------------------------------------------


def test_any_fail_fails_else_any_inconclusive() -> None:
    rng = random.Random(2)
    ok = judge_metric(ERROR_RATE, errors(rng, N, 10), errors(rng, N, 10))
    bad = judge_metric(Rule("latency", "q"), latencies(rng, N, 100), latencies(rng, N, 300))
    unsure = judge_metric(Rule("latency", "q"), [], [])
    assert canary.Judgement((ok,)).call is Call.PASS
    assert canary.Judgement((ok, unsure)).call is Call.INCONCLUSIVE
    assert canary.Judgement((unsure, bad, ok)).call is Call.FAIL
    doc = canary.Judgement((ok, bad)).document()
    assert doc["call"] == "fail"
    figures = doc["metrics"][1]
    assert set(figures) == {
        "metric", "call", "reason", "worse", "n_before", "n_after", "median_before", "median_after",
        "shift", "change_pct", "u", "z", "p", "alpha", "tolerance_pct",
    }  # fmt: skip
    assert (figures["metric"], figures["call"], figures["n_before"], figures["n_after"]) == (
        "latency",
        "fail",
        N,
        N,
    )
    assert figures["change_pct"] > 100


# --- the forecast ---------------------------------------------------------------------------------


def _history(n: int, seed: int = 4) -> list[tuple[str, dict[str, object]]]:
    """Judgements of `n` earlier changes (newest first): error rate up ~0.2 points, latency ~+5 %."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        before_e, after_e = errors(rng, N, 10), errors(rng, N, 12)
        before_l, after_l = latencies(rng, N, 100), latencies(rng, N, 105)
        j = canary.Judgement(
            (
                judge_metric(ERROR_RATE, before_e, after_e),
                judge_metric(Rule("latency", "q"), before_l, after_l),
            )
        )
        out.append((f"RFC-{i:03d}", j.document()))
    return out


def test_forecast_from_a_generated_history() -> None:
    f = canary.forecast(_history(12), minimum=5)
    assert f["basis"] == [f"RFC-{i:03d}" for i in range(12)]
    e, lat = f["error_rate"], f["latency"]
    assert e["unit"] == "points" and lat["unit"] == "%" and e["n"] == lat["n"] == 12
    assert e["low"] <= e["median"] <= e["high"]
    assert 0.05 < e["median"] < 0.4  # generated: +0.2 points
    assert 0 < lat["median"] < 12  # generated: +5 %
    assert f["summary"].startswith("error rate +") and "; latency +" in f["summary"]
    assert "80 %:" in f["summary"]


def test_forecast_reads_the_last_changes_only_and_says_no_history_below_the_minimum() -> None:
    assert len(canary.forecast(_history(30), minimum=5)["basis"]) == canary.FORECAST_LAST
    few = canary.forecast(_history(3), minimum=5)
    assert few["error_rate"] is None and few["latency"] is None
    assert few["summary"] == "no history (3 earlier judged change(s) of these services; 5 needed)"
    nothing = canary.forecast([], minimum=5)
    assert nothing["basis"] == [] and nothing["summary"].startswith("no history (0 ")


def test_forecast_skips_figures_it_cannot_use() -> None:
    zero_base = {
        "metrics": [{"metric": "latency", "change_pct": None}, {"metric": "error_rate", "shift": 0.5}]
    }
    f = canary.forecast([(f"RFC-{i}", zero_base) for i in range(6)], minimum=5)
    assert f["latency"] is None  # no relative change from a zero baseline
    assert f["error_rate"]["median"] == 0.5 and f["error_rate"]["n"] == 6


# --- the verdict at the period's end (domain/verification.py `settle`) ---------------------------


def _settled(call_factor: float | None, extended: bool = False) -> verification.Verdict:
    from datetime import UTC, datetime

    spec = ValidationSpec(period=600.0, interval=60.0)
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    state = {**verification.start(spec, {}, t0), **({"extended": True} if extended else {})}
    passed = verification.next_round(state, [], spec, datetime.fromtimestamp(state["ends_at"], UTC))
    assert passed.outcome is verification.Outcome.PASS
    rng = random.Random(9)
    if call_factor is None:
        metric = judge_metric(ERROR_RATE, [], [])
    else:
        metric = judge_metric(ERROR_RATE, errors(rng, N, 10), errors(rng, N, 10 * call_factor))
    return verification.settle(passed, canary.Judgement((metric,)), spec)


def test_settle_fail_trips_pass_closes_with_the_figures() -> None:
    failed = _settled(2.0)
    assert failed.outcome is verification.Outcome.TRIP and failed.done
    assert failed.reason.startswith("statistical validation failed: error_rate fail (worse: harmful effect")
    assert (failed.details["call"], failed.details["then"]) == ("fail", "roll back")
    passed = _settled(1.0)
    assert passed.outcome is verification.Outcome.PASS
    assert passed.reason.startswith("validation passed: 1 round(s) over 600s")
    assert "; statistical validation passed: error_rate pass (within tolerance" in passed.reason


def test_settle_inconclusive_extends_once_then_asks() -> None:
    first = _settled(None)
    assert first.outcome is verification.Outcome.CONTINUE and not first.done
    assert first.state["extended"] is True
    assert first.details["then"] == "extend"
    second = _settled(None, extended=True)
    assert second.outcome is verification.Outcome.ASK and second.done
    assert second.details["then"] == "ask a person"
    assert "keep it (close ID successful) or roll it back (rollback ID REASON)?" in second.reason


# --- the validation block's `prometheus.canary` (domain/plan.py) ---------------------------------


def test_canary_metrics_in_the_validation_block() -> None:
    raw = {
        "prometheus": {
            "url": "http://prom:9090",
            "latency_query": "p99",
            "canary": {
                "latency": {"tolerance": 10},
                "throughput": {"query": "sum(rate(x[1m]))", "worse": "lower"},
            },
        }
    }
    spec = plan.validation_spec(raw, plan.Defaults())
    assert spec.prometheus is not None
    assert spec.prometheus.canary == (
        plan.CanaryMetric("latency", None, None, 10.0),
        plan.CanaryMetric("throughput", "sum(rate(x[1m]))", "lower", None),
    )
    only_custom = {"prometheus": {"url": "http://prom:9090", "canary": {"queue": {"query": "q"}}}}
    assert plan.check_validation(only_custom) == only_custom  # a custom metric is enough


@pytest.mark.parametrize(
    ("canary_block", "message"),
    [
        ([], "must map up to 20 metric names"),
        ({"Bad Name": {"query": "q"}}, "names are lowercase"),
        ({"error_rate": {}}, "is needed (only error_rate and latency have their own query)"),
        ({"queue": {}}, "is needed"),
        ({"queue": {"query": " "}}, "must be a PromQL expression"),
        ({"latency": {"worse": "up"}}, "'up' is not higher, lower or either"),
        ({"latency": {"tolerance": -1}}, "is not a percentage 0–10000"),
        ({"latency": {"tolerance": True}}, "is not a percentage"),
        ({"latency": {"alpha": 0.1}}, "unknown key 'alpha'"),
    ],
)
def test_bad_canary_blocks_are_refused_naming_the_field(canary_block: object, message: str) -> None:
    raw = {"prometheus": {"url": "http://prom:9090", "latency_query": "p99", "canary": canary_block}}
    with pytest.raises(ValidationError, match="validation prometheus canary") as err:
        plan.check_validation(raw)
    assert message in str(err.value)
