"""Seeded series for the statistical rollback decision (docs/canary.md), shared by its tests and
bench/canary.py: error rates as Poisson error counts per 1 000 requests (in %, many ties) and
log-normal latencies."""

from __future__ import annotations

import math
import random


def poisson(rng: random.Random, lam: float) -> int:
    """A Poisson draw with mean `lam` (Knuth's method: `lam` is small here)."""
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def errors(rng: random.Random, n: int, per_thousand: float) -> list[float]:
    """Error rate in % of 1 000 requests an interval, `per_thousand` errors expected."""
    return [poisson(rng, per_thousand) / 10 for _ in range(n)]


def latencies(rng: random.Random, n: int, median_ms: float, sigma: float = 0.25) -> list[float]:
    return [rng.lognormvariate(math.log(median_ms), sigma) for _ in range(n)]
