"""Benchmark the CMDB (issue 14): import a 100 000-CI graph, blast radii, assess with it on and off.

    .venv/bin/python bench/cmdb.py [--backend sqlite|postgres|both] [--cis 100000] [--edges 300000]
                                   [--seed 1] [--per-kind 5] [--runs 5] [--assess-runs 15]
                                   [--warmup 2] [--pg-url URL] [--keep] [--no-bytecode-cache] [--json]

The graph (seeded, deterministic): `--cis` CIs in layers, bottom up: clusters; hosts (part_of a
cluster); databases (runs_on one or two hosts of their domain) and queues (runs_on a cluster);
SaaS and certificates (nothing below them); services in domains of ~100 (runs_on their
domain's cluster, depends_on a database of their domain or, one in ten, a shared one, maybe a
queue or a SaaS, a few lower services of their domain and maybe a platform "core" service);
ingresses on top (type network: depends_on one to three services, runs_on a cluster, maybe a
certificate). Cluster, shared database and core service picks are skewed (a few are popular).
Tiers are skewed too (about 2 % tier 0). Service edges are added or dropped until the file holds
exactly `--edges` relationships; a few of them point upwards inside a domain (cycles).

Per backend, on a fresh store (a SQLite file in a temporary directory, or a database created on
`--pg-url` and dropped afterwards): `cortex-change cmdb import FILE` as a real subprocess, then
the same file again (nothing changes); PostgreSQL is then vacuumed and analysed, as autovacuum
would after a bulk load. Blast radii in process: `services.cmdb.impact(ctx, names=[one CI])`
with CMDB_MAX_DEPTH at its default (10), `--per-kind` CIs of each kind, `--runs` times each
after one unmeasured call; each answer's size is checked against a breadth-first walk of the
generated graph. Assessment: `cortex-change assess ID` as a subprocess on fresh changes touching
one service, with the CMDB on and with CMDB_ENABLED=false, interleaved (and, on SQLite, the
floor script of bench/cli.py before them: the CLI budget is relative to it).

Budgets (issue 14): blast radius of one CI <= 20 ms; `cmdb import` of 100 000 CIs and 300 000
relationships <= 30 s; assess with the CMDB on within the CLI budget (floor + 20 ms, judged on
SQLite where the floor is defined). Exit status 1 when a budget is missed.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import CLI, DEFAULT_PG, fresh_store, machine, machine_line, percentile

from cli import FLOOR_SCRIPT, WRITE_MS, run_once
from portal import PYCACHE, bytecode_line, env_for, file_change, use_bytecode_cache

RADIUS_MS, IMPORT_S = 20.0, 30.0  # issue 14
ASSESS_OVER_FLOOR_MS = WRITE_MS  # the CLI budget for assess (bench/cli.py)
DOMAIN = 100  # services per domain
RELATIONS = ("depends_on", "runs_on", "part_of")
TIER_WEIGHTS = (2, 10, 30, 58)  # percent of tier 0, 1, 2, 3
# What a CI of each kind is, by share of the CIs (services take the rest).
SHARES = {"cluster": 0.002, "host": 0.12, "database": 0.05, "queue": 0.02, "saas": 0.008, "other": 0.01}
INGRESS_SHARE = 0.19
CORE_SHARE = 0.0035  # of the services: the platform's (auth, config, ...), used across domains
SHARED_DB_SHARE = 0.01  # of the databases


# ----------------------------------------------------------------------------- the graph


@dataclass
class Graph:
    cis: list[dict[str, Any]]
    kinds: dict[str, list[str]]  # the benchmark's kinds of CI -> names
    edges: int


def _skewed(rng: random.Random, names: Sequence[str], k: int = 1) -> list[str]:
    """Picks where the i-th name is ~1/(i+1) as likely: a few are popular."""
    weights = [1 / (i + 1) for i in range(len(names))]
    return rng.choices(names, weights=weights, k=k)


class Builder:
    """The graph, layer by layer (one seeded generator: the same arguments give the same file)."""

    def __init__(self, n: int, seed: int) -> None:
        self.rng = random.Random(seed)
        count = {k: max(1, round(n * s)) for k, s in SHARES.items()}
        count["network"] = max(1, round(n * INGRESS_SHARE))
        count["service"] = n - sum(count.values())
        self.count = count
        self.n_core = max(1, round(count["service"] * CORE_SHARE))
        self.domains = max(1, (count["service"] - self.n_core) // DOMAIN)
        self.cis: dict[str, dict[str, Any]] = {}
        self.kinds: dict[str, list[str]] = {}
        self.downward: list[tuple[str, str]] = []  # (service, lower service) of a domain, for later
        self.cycles: list[tuple[str, str]] = []  # (service, higher service): a few upward edges

    def add(self, name: str, typ: str, domain: int | None, **rel: list[str]) -> None:
        rng = self.rng
        tier = rng.choices(range(4), weights=TIER_WEIGHTS)[0]
        ci: dict[str, Any] = {"name": name, "type": typ, "tier": tier, "environment": "production"}
        ci["owner"] = f"team-{domain:03d}" if domain is not None else "platform-team"
        if typ == "database":
            ci["data"] = rng.choices(("none", "pii", "phi", "pci"), weights=(75, 20, 3, 2))[0]
        ci.update({k: sorted(set(v)) for k, v in rel.items() if v})
        self.cis[name] = ci

    def per_domain(self, total: int, prefix: str) -> dict[int, list[str]]:
        """`total` names spread evenly over the domains."""
        n = self.domains
        return {
            d: [f"{prefix}-d{d:03d}-{i:03d}" for i in range(total // n + (d < total % n))] for d in range(n)
        }

    def bottom(self) -> None:
        """Clusters, hosts (part_of a cluster), databases (runs_on hosts), queues, SaaS, certificates."""
        rng, count = self.rng, self.count
        self.clusters = [f"cluster-{i:03d}" for i in range(count["cluster"])]
        for c in self.clusters:
            self.add(c, "cluster", None)
        self.dom_cluster = [_skewed(rng, self.clusters)[0] for _ in range(self.domains)]
        self.hosts = self.per_domain(count["host"], "host")
        for d, names in self.hosts.items():
            for h in names:
                home = self.dom_cluster[d] if rng.random() < 0.8 else _skewed(rng, self.clusters)[0]
                self.add(h, "host", d, part_of=[home])
        shared = max(1, round(count["database"] * SHARED_DB_SHARE))
        self.shared_dbs = [f"db-shared-{i:02d}" for i in range(shared)]
        for db in self.shared_dbs:
            self.add(db, "database", None, runs_on=rng.sample(self.hosts[rng.randrange(self.domains)], 2))
        self.dbs = self.per_domain(count["database"] - shared, "db")
        for d, names in self.dbs.items():
            for db in names:
                self.add(db, "database", d, runs_on=rng.sample(self.hosts[d], 2 if rng.random() < 0.2 else 1))
        self.queues = self.per_domain(count["queue"], "mq")
        for d, names in self.queues.items():
            for q in names:
                self.add(q, "queue", d, runs_on=[rng.choice(self.hosts[d])])
        self.saas = [f"saas-{i:03d}" for i in range(count["saas"])]
        self.certs = [f"cert-{i:04d}" for i in range(count["other"])]
        for s in self.saas:
            self.add(s, "saas", None)
        for c in self.certs:
            self.add(c, "other", None)

    def middle(self) -> None:
        """Services: the platform's core ones, then ~100 per domain relying on its stores."""
        rng = self.rng
        self.core = [f"svc-core-{i:03d}" for i in range(self.n_core)]
        self.services = self.per_domain(self.count["service"] - self.n_core, "svc")
        for i, s in enumerate(self.core):
            lower = self.core[:i]
            deps = rng.sample(lower, min(len(lower), rng.choice((0, 1, 1, 2))))
            deps.append(_skewed(rng, self.shared_dbs)[0])
            self.add(s, "service", None, runs_on=[self.clusters[0]], depends_on=deps)
        for d, names in self.services.items():
            for i, s in enumerate(names):
                deps = [rng.choice(self.dbs[d]) if rng.random() < 0.9 else _skewed(rng, self.shared_dbs)[0]]
                if rng.random() < 0.4:
                    deps.append(rng.choice(self.queues[d]))
                if rng.random() < 0.05:
                    deps.append(_skewed(rng, self.saas)[0])
                if rng.random() < 0.15:
                    deps.append(_skewed(rng, self.core)[0])
                runs_on = self.dom_cluster[d] if rng.random() < 0.9 else rng.choice(self.hosts[d])  # or a VM
                self.add(s, "service", d, runs_on=[runs_on], depends_on=deps)
                self.downward += [(s, t) for t in rng.sample(names[:i], min(i, rng.choice((0, 1, 1, 2, 3))))]

    def top(self) -> None:
        """Ingresses (type network) on the services of their domain; then a few cycles."""
        rng = self.rng
        self.ingresses = self.per_domain(self.count["network"], "ing")
        for d, names in self.ingresses.items():
            for g in names:
                deps = rng.sample(self.services[d], rng.choice((1, 1, 1, 2, 3)))
                if rng.random() < 0.3:
                    deps.append(_skewed(rng, self.certs)[0])
                self.add(g, "network", d, runs_on=[self.dom_cluster[d]], depends_on=deps)
        for d in rng.sample(range(self.domains), min(self.domains, 20)):
            svc = self.services[d]
            self.cycles.append((svc[rng.randrange(5)], svc[rng.randrange(len(svc) // 2, len(svc))]))

    def fill(self, n_edges: int) -> int:
        """Service edges until there are `n_edges` (the cycles first, then downward ones, shuffled;
        more are made if needed): the total."""
        rng = self.rng
        base = sum(len(v) for ci in self.cis.values() for k, v in ci.items() if k in RELATIONS)
        rng.shuffle(self.downward)
        want = max(0, n_edges - base)
        extra = [*self.cycles, *self.downward]
        while len(extra) < want:  # more service edges inside domains, downwards
            svc = self.services[rng.randrange(self.domains)]
            i = rng.randrange(1, len(svc))
            extra.append((svc[i], svc[rng.randrange(i)]))
        added = 0
        for s, t in extra:
            if added >= want:
                break
            deps = self.cis[s]["depends_on"]
            if t not in deps:
                deps.append(t)
                added += 1
        for ci in self.cis.values():
            if "depends_on" in ci:
                ci["depends_on"].sort()
        return base + added


def make_graph(n: int, n_edges: int, seed: int) -> Graph:
    b = Builder(n, seed)
    b.bottom()
    b.middle()
    b.top()
    total = b.fill(n_edges)
    flat = lambda by_domain: [n for names in by_domain.values() for n in names]  # noqa: E731
    kinds = {
        "ingress (top)": flat(b.ingresses),
        "service": flat(b.services),
        "core service": b.core,
        "queue": flat(b.queues),
        "database": flat(b.dbs),
        "shared database": b.shared_dbs,
        "host": flat(b.hosts),
        "cluster (bottom)": b.clusters,
    }
    return Graph(list(b.cis.values()), kinds, total)


def reverse_edges(graph: Graph) -> dict[str, list[str]]:
    rev: dict[str, list[str]] = {}
    for ci in graph.cis:
        for kind in RELATIONS:
            for target in ci.get(kind, ()):
                rev.setdefault(target, []).append(ci["name"])
    return rev


def radius_size(rev: dict[str, list[str]], start: str, depth: int) -> int:
    """The blast radius's size by a plain breadth-first walk of the generated graph."""
    seen = {start}
    frontier = deque([(start, 0)])
    while frontier:
        name, d = frontier.popleft()
        if d == depth:
            continue
        for source in rev.get(name, ()):
            if source not in seen:
                seen.add(source)
                frontier.append((source, d + 1))
    return len(seen)


def pick(
    graph: Graph, rev: dict[str, list[str]], per_kind: int, depth: int, seed: int
) -> dict[str, list[tuple[str, int]]]:
    """`per_kind` CIs of each kind (random, seeded; the most relied-on cluster and core service
    among them) with their radius sizes."""
    rng = random.Random(seed + 1)
    out: dict[str, list[tuple[str, int]]] = {}
    for kind, names in graph.kinds.items():
        chosen = rng.sample(names, min(per_kind, len(names)))
        if kind in ("cluster (bottom)", "core service", "shared database") and names[0] not in chosen:
            chosen[-1] = names[0]  # the most popular of a skewed pick
        out[kind] = [(n, radius_size(rev, n, depth)) for n in chosen]
    return out


# ----------------------------------------------------------------------------- measuring


def child_env(location: str, bytecode: bool, **extra: str) -> dict[str, str]:
    """portal.env_for, with byte code compiled once under PYCACHE although PYTHONDONTWRITEBYTECODE
    is set (as bench/cli.py's children), unless --no-bytecode-cache."""
    env = env_for(location)
    if bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    return {k: v for k, v in env.items() if not k.startswith("CMDB_")} | extra


@dataclass
class Timing:
    name: str
    budget_ms: float | None
    ms: list[float] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    note: str = ""
    judged_ms: float | None = None  # what the budget is compared with (default: the median)
    per_ci: list[tuple[str, int, float]] = field(default_factory=list)  # radii: (CI, size, median ms)

    @property
    def median(self) -> float:
        return statistics.median(self.ms) if self.ms else 0.0

    @property
    def ok(self) -> bool:
        """Within the budget: the median (or `judged_ms`); for radii, every CI's own median."""
        if self.budget_ms is None:
            return True
        if self.per_ci:
            return all(ms <= self.budget_ms for _, _, ms in self.per_ci)
        return (self.median if self.judged_ms is None else self.judged_ms) <= self.budget_ms

    def as_dict(self) -> dict[str, Any]:
        ms = sorted(self.ms)
        return {
            "name": self.name,
            "runs": len(ms),
            "median_ms": round(self.median, 2),
            "p95_ms": round(percentile(ms, 95), 2),
            "max_ms": round(ms[-1], 2) if ms else 0.0,
            "sizes": self.sizes,
            "budget_ms": self.budget_ms,
            "judged_ms": None if self.judged_ms is None else round(self.judged_ms, 2),
            "per_ci": [{"name": n, "size": size, "median_ms": round(ms, 2)} for n, size, ms in self.per_ci],
            "ok": self.ok,
            "note": self.note,
        }


def import_cli(path: Path, location: str, bytecode: bool, cwd: str) -> tuple[float, str]:
    sample, out = run_once([*CLI, "cmdb", "import", str(path)], child_env(location, bytecode), cwd)
    return sample.ms / 1000, out.strip().splitlines()[-1]


def analyse_postgres(url: str) -> float:
    import psycopg

    t0 = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) cis")
        conn.execute("VACUUM (ANALYZE) ci_relations")
    return time.perf_counter() - t0


def radii(location: str, picks: dict[str, list[tuple[str, int]]], runs: int) -> list[Timing]:
    from cortex_change.services import cmdb
    from cortex_change.services.context import open_context

    ctx = open_context(env_for(location))
    rows = []
    try:
        depth = ctx.settings["CMDB_MAX_DEPTH"]
        for kind, chosen in picks.items():
            row = Timing(kind, RADIUS_MS, note=f"CMDB_MAX_DEPTH {depth}")
            for name, size in chosen:
                got = len(cmdb.impact(ctx, names=[name]))  # unmeasured: warms the caches
                if got != size:
                    raise SystemExit(f"impact({name}) gave {got} CIs; the generated graph says {size}")
                row.sizes.append(size)
                mine = []
                for _ in range(runs):
                    t0 = time.perf_counter()
                    cmdb.impact(ctx, names=[name])
                    mine.append((time.perf_counter() - t0) * 1000)
                row.ms += mine
                row.per_ci.append((name, size, statistics.median(mine)))
            rows.append(row)
    finally:
        ctx.close()
    return rows


def assess_rows(
    backend: str,
    location: str,
    services: dict[str, tuple[str, int]],
    runs: int,
    warmup: int,
    bytecode: bool,
    tmp: str,
) -> list[Timing]:
    """Per service: fresh changes touching it, `assess` on each with the CMDB on and off in turn
    (the order alternating by round), after the floor script on SQLite."""
    from cortex_change.services.context import open_context

    fields = {"type": "normal", "category": "deployment", "impact": "medium", "urgency": "medium"}
    ctx = open_context(env_for(location))
    try:
        ids = {
            label: [
                file_change(ctx, {**fields, "affected_services": [name]}, f"CMDB bench {label} {k}").change_id
                for k in range(2 * (runs + warmup))
            ]
            for label, (name, _) in services.items()
        }
    finally:
        ctx.close()
    floor_py = Path(tmp) / "floor.py"
    floor_py.write_text(FLOOR_SCRIPT, "utf-8")
    on, off = child_env(location, bytecode), child_env(location, bytecode, CMDB_ENABLED="false")
    rows: list[Timing] = []
    floor = Timing("floor (bench/cli.py)", None, note="python + sqlite3 + json: one change")
    for label, (name, size) in services.items():
        r_on = Timing(f"assess, CMDB on: {label}", None, note=f"{name}, radius {size:,}")
        r_off = Timing(f"assess, CMDB_ENABLED=false: {label}", None, note=name)
        diffs: list[float] = []
        for k in range(runs + warmup):
            if backend == "sqlite":
                base, _ = run_once([sys.executable, str(floor_py), ids[label][0]], env_for(location), tmp)
            pair = [(r_on, on, ids[label][2 * k]), (r_off, off, ids[label][2 * k + 1])]
            got = {}
            for row, env, cid in pair if k % 2 else reversed(pair):
                sample, _ = run_once([*CLI, "assess", cid], env, tmp)
                got[row.name] = sample.ms
            if k >= warmup:
                r_on.ms.append(got[r_on.name])
                r_off.ms.append(got[r_off.name])
                diffs.append(got[r_on.name] - got[r_off.name])
                if backend == "sqlite":
                    floor.ms.append(base.ms)
        cost = Timing(
            f"  CMDB's cost (on - off): {label}", None, diffs, note="median of the paired differences"
        )
        if backend == "sqlite":
            r_on.budget_ms = ASSESS_OVER_FLOOR_MS
            r_on.note += f"; budget on its median - the floor's ({ASSESS_OVER_FLOOR_MS:g} ms)"
        rows += [r_off, r_on, cost]
    if backend == "sqlite":
        for row in rows:
            if row.budget_ms is not None:
                row.judged_ms = row.median - floor.median
        rows.insert(0, floor)
    return rows


# ----------------------------------------------------------------------------- one backend


@dataclass
class Outcome:
    backend: str
    imports: list[tuple[str, float, str]]  # (what, seconds, the CLI's last line)
    analyse_s: float | None
    radii: list[Timing]
    assess: list[Timing]

    @property
    def import_ok(self) -> bool:
        return self.imports[0][1] <= IMPORT_S

    @property
    def ok(self) -> bool:
        return self.import_ok and all(r.ok for r in [*self.radii, *self.assess])


def run_backend(
    backend: str, args: argparse.Namespace, tmp: str, path: Path, graph: Graph, picks: Any
) -> Outcome:
    store = fresh_store(backend, tmp, args.pg_url, "cmdb")
    try:
        from cortex_change.services.context import open_context

        open_context(env_for(store.location)).close()  # a fresh store: migrations run here, untimed
        print(f"{backend}: cmdb import ...", file=sys.stderr, flush=True)
        first = import_cli(path, store.location, not args.no_bytecode_cache, tmp)
        again = import_cli(path, store.location, not args.no_bytecode_cache, tmp)
        imports = [("cmdb import FILE (fresh store)", *first), ("cmdb import FILE again (no change)", *again)]
        analyse = analyse_postgres(store.location) if backend == "postgres" else None
        print(f"{backend}: blast radii ...", file=sys.stderr, flush=True)
        rows = radii(store.location, picks, args.runs)
        services = {
            "typical service": _median_pick(picks["service"]),
            "core service": max(picks["core service"], key=lambda p: p[1]),
        }
        print(f"{backend}: assess ...", file=sys.stderr, flush=True)
        assess = assess_rows(
            backend, store.location, services, args.assess_runs, args.warmup, not args.no_bytecode_cache, tmp
        )
    finally:
        if args.keep and backend == "postgres":
            print(f"kept the database: {store.location}", file=sys.stderr)
        elif store.cleanup:
            store.cleanup()
    return Outcome(backend, imports, analyse, rows, assess)


def _median_pick(chosen: list[tuple[str, int]]) -> tuple[str, int]:
    return sorted(chosen, key=lambda p: (p[1], p[0]))[len(chosen) // 2]


# ----------------------------------------------------------------------------- report


def report(o: Outcome) -> str:
    lines = [
        f"\n== {o.backend}",
        "",
        f"{'import (CLI subprocess, spawn to exit)':<40}{'s':>8}  {'budget':<9}status",
    ]
    for k, (what, secs, last) in enumerate(o.imports):
        judged = k == 0
        status = ("met" if o.import_ok else "MISSED") if judged else ""
        lines.append(f"{what:<40}{secs:>8.2f}  {f'≤{IMPORT_S:g} s' if judged else '-':<9}{status:<8}{last}")
    if o.analyse_s is not None:
        lines.append(
            f"{'(then VACUUM (ANALYZE) cis, ci_relations)':<40}{o.analyse_s:>8.2f}  untimed otherwise"
        )
    head = (
        f"{'blast radius (impact, in process)':<36}{'runs':>5}{'median':>9}{'p95':>9}{'max':>9}  "
        f"{'CIs within':<11}{'budget':<9}status"
    )
    lines += ["", head, f"{'':<41}{'ms':>9}{'ms':>9}{'ms':>9}", "-" * len(head)]
    for r in o.radii:
        d = r.as_dict()
        within = sum(ms <= RADIUS_MS for _, _, ms in r.per_ci)
        status = "met" if r.ok else "MISSED"
        lines.append(
            f"{r.name:<36}{d['runs']:>5}{d['median_ms']:>9.2f}{d['p95_ms']:>9.2f}{d['max_ms']:>9.2f}  "
            f"{f'{within} of {len(r.per_ci)}':<11}{f'≤{RADIUS_MS:g} ms':<9}{status}"
        )
        each = sorted(r.per_ci, key=lambda p: p[1])
        lines.append(
            "    radius size: median ms  " + ", ".join(f"{size:,}: {ms:.2f}" for _, size, ms in each)
        )
    head = f"{'assess (CLI subprocess, interleaved)':<44}{'runs':>5}{'median':>9}{'p95':>9}  {'budget':<22}"
    head += "status"
    lines += ["", head, f"{'':<49}{'ms':>9}{'ms':>9}", "-" * len(head)]
    for r in o.assess:
        d = r.as_dict()
        budget, status = "-", ""
        if r.budget_ms is not None:
            budget = f"floor+{r.budget_ms:g}: {d['judged_ms']:+.1f}"
            status = "met" if r.ok else "MISSED"
        lines.append(
            f"{r.name:<44}{d['runs']:>5}{d['median_ms']:>9.1f}{d['p95_ms']:>9.1f}  {budget:<22}"
            f"{status:<7}{r.note}"
        )
    return "\n".join(lines)


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="sqlite")
    p.add_argument("--cis", type=int, default=100_000, help="CIs in the graph (default 100 000)")
    p.add_argument("--edges", type=int, default=300_000, help="relationships (default 300 000)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--per-kind", type=int, default=5, help="CIs of each kind whose radius is timed")
    p.add_argument("--runs", type=int, default=5, help="timed radii per CI (after one untimed)")
    p.add_argument("--assess-runs", type=int, default=15, help="timed assess pairs per service")
    p.add_argument("--warmup", type=int, default=2, help="unmeasured assess rounds first")
    p.add_argument("--pg-url", default=DEFAULT_PG, help="admin URL: a database is created and dropped")
    p.add_argument("--keep", action="store_true", help="keep the PostgreSQL database")
    p.add_argument(
        "--no-bytecode-cache",
        action="store_true",
        help="leave PYTHONDONTWRITEBYTECODE and the .pyc location as the caller set them",
    )
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    if a.cis < 2_000 or a.edges < 1 or a.per_kind < 1 or a.runs < 1 or a.assess_runs < 1 or a.warmup < 0:
        p.error("--cis at least 2000; --edges, --per-kind, --runs, --assess-runs at least 1")
    return a


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    bytecode = use_bytecode_cache(not args.no_bytecode_cache)
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    info = machine(backends, args.pg_url)
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="cortex-bench-cmdb-") as tmp:
        t0 = time.perf_counter()
        graph = make_graph(args.cis, args.edges, args.seed)
        path = Path(tmp) / "cmdb.json"
        path.write_text('{"cis": [\n' + ",\n".join(json.dumps(c) for c in graph.cis) + "\n]}\n", "utf-8")
        rev = reverse_edges(graph)
        picks = pick(graph, rev, args.per_kind, 10, args.seed)
        made = time.perf_counter() - t0
        types = Counter(c["type"] for c in graph.cis)
        rels = Counter(
            k for c in graph.cis for k in ("depends_on", "runs_on", "part_of") for _ in c.get(k, ())
        )
        tiers = Counter(c["tier"] for c in graph.cis)
        summary = {
            "cis": len(graph.cis),
            "edges": graph.edges,
            "bytes": path.stat().st_size,
            "seconds": round(made, 1),
            "types": dict(types.most_common()),
            "relations": dict(rels.most_common()),
            "tiers": dict(sorted(tiers.items())),
            "most_dependents": max(len(v) for v in rev.values()),
        }
        del rev
        gc.collect()
        for backend in backends:
            outcomes.append(run_backend(backend, args, tmp, path, graph, picks))
    info["loadavg_after"] = os.getloadavg()
    info["bytecode"] = f"{bytecode_line()}; .pyc {bytecode} (children: PYTHONPYCACHEPREFIX there too)"
    if args.json:
        doc = {
            "machine": info,
            "graph": summary,
            "runs": [
                {
                    "backend": o.backend,
                    "imports": [
                        {"what": w, "seconds": round(s, 2), "output": last} for w, s, last in o.imports
                    ],
                    "import_ok": o.import_ok,
                    "analyse_seconds": o.analyse_s,
                    "radii": [r.as_dict() for r in o.radii],
                    "assess": [r.as_dict() for r in o.assess],
                }
                for o in outcomes
            ],
        }
        print(json.dumps(doc, indent=2))
    else:
        print(machine_line(info))
        print(
            f"code at {info['commit']}; load average {info['loadavg_before'][0]:.2f} before, "
            f"{info['loadavg_after'][0]:.2f} after; {info['bytecode']}"
        )
        s = summary
        print(
            f"graph: {s['cis']:,} CIs, {s['edges']:,} relationships, {s['bytes'] / 2**20:.1f} MiB of JSON, "
            f"made in {s['seconds']} s (seed {args.seed}); types "
            + ", ".join(f"{k} {v:,}" for k, v in s["types"].items())
            + "; "
            + ", ".join(f"{k} {v:,}" for k, v in s["relations"].items())
            + "; tiers "
            + ", ".join(f"{k}: {v:,}" for k, v in s["tiers"].items())
            + f"; most direct dependents of one CI: {s['most_dependents']:,}"
        )
        for o in outcomes:
            print(report(o))
        print(
            "\nradius sizes count the CI itself; a kind's median/p95/max pool its CIs' runs, its budget is "
            "met when every CI's own median is within it.\nassess: each round "
            "runs both on fresh changes,\nthe order alternating; on SQLite the floor script runs first and "
            "the budget is on (median - the floor's median)."
        )
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
