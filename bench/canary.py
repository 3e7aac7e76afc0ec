"""How often the statistical rollback decision (docs/canary.md) calls pass, fail or inconclusive on
generated series with a known shift: detection (a real rise fails) and false alarms (noise fails).

Error rates: Poisson error counts per 1 000 requests an interval (~1 %, in %, many ties).
Latency: log-normal around 100 ms (sigma 0.25). Seeded: every run prints the same figures.

    .venv/bin/python bench/canary.py [TRIALS]
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

from cortex_change.domain.canary import Call, Rule, judge_metric

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import series as seeded


def errors(rng: random.Random, n: int, factor: float) -> list[float]:
    return seeded.errors(rng, n, 10 * factor)


def latency(rng: random.Random, n: int, factor: float) -> list[float]:
    return seeded.latencies(rng, n, 100 * factor)


def rates(series: str, n: int, factor: float, trials: int) -> dict[Call, float]:
    make = errors if series == "error_rate" else latency
    rule = Rule(series, "q")
    counts = dict.fromkeys(Call, 0)
    for seed in range(trials):
        rng = random.Random(seed)
        before, after = make(rng, n, 1.0), make(rng, n, factor)
        counts[judge_metric(rule, before, after).call] += 1
    return {c: v / trials for c, v in counts.items()}


def main() -> None:
    trials = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    print(f"{trials} seeded series per row; alpha 5 %, tolerance 20 %, min 10 samples a side")
    print(f"{'metric':<11}{'n/side':>7}{'shift':>8}{'fail':>9}{'inconcl.':>10}{'pass':>8}")
    began = time.perf_counter()
    for series in ("error_rate", "latency"):
        for n in (10, 30, 60):
            for factor in (1.0, 1.1, 1.25, 1.5, 2.0):
                r = rates(series, n, factor, trials)
                shift = "noise" if factor == 1.0 else f"x{factor:g}"
                row = f"{r[Call.FAIL]:>9.1%}{r[Call.INCONCLUSIVE]:>10.1%}{r[Call.PASS]:>8.1%}"
                print(f"{series:<11}{n:>7}{shift:>8}{row}")
    print(f"({time.perf_counter() - began:.1f} s)")


if __name__ == "__main__":
    main()
