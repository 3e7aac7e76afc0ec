"""Benchmark the web portal's pages: change detail with 500 audit events, dashboard over N changes.

    .venv/bin/python bench/portal.py [--backend sqlite|postgres|both] [--n 1000000] [--days 0]
                                     [--runs 30] [--warmup 5] [--events 500] [--db PATH] [--rebuild]
                                     [--pg-url URL] [--keep] [--no-bytecode-cache] [--json]

The store: templates filed and taken to their fates through the services, then `--n` copies of
their rows with their own ids and times (created within the dashboard's 12-week window, or over
`--days` days), and one change whose audit trail holds `--events` events. SQLite stores are
cached under $TMPDIR; a PostgreSQL database is created on `--pg-url` and dropped afterwards.

Server time is measured in process: the ASGI app of `cortex-change serve`
(`cortex_change.api.app.create_app`) driven by Starlette's `TestClient` (no socket), signed in
with a portal session (`services.sessions.sign_in`, its secret set as the `cc_session` cookie).
Each GET is timed from the request to the full body. Every page request comes right after a
floor request through the same client (`GET /healthz`, which touches no store), round-robin, so
a noisy second hits both alike; the report gives the raw figures and page minus floor.

Budgets (issue 13): change detail with 500 audit events <= 50 ms; dashboard over 1 000 000
changes <= 300 ms (its figures are SQL aggregates over covering indexes, no record is loaded).
Exit status 1 when a budget is missed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from common import DEFAULT_PG, Store, fresh_store, machine, machine_line, percentile

DETAIL_MS, DASHBOARD_MS = 50.0, 300.0  # issue 13
BUDGET_N = 1_000_000  # the store size the dashboard budget is stated for
BUILD_FORMAT = 1  # bump when the generated data changes, so cached stores are rebuilt
BATCH = 20_000
USER = "alice"  # requester of every change, and the signed-in identity
HOUR = 3600.0
PYCACHE = Path(tempfile.gettempdir()) / "cortex-change-bench-pycache"

# How the changes end (percent): the (state, closure status) of the template whose row a copy
# takes. A kind that cannot reach a fate shares its weight among the fates it can, so the mix in
# the store has more cancelled, rejected and open changes than this (the report shows it).
FATES: dict[str, float] = {
    "closed successful": 80.5,
    "closed failed": 3.5,
    "closed rolled_back": 2.5,
    "cancelled": 3.0,
    "rejected": 2.5,
    "pending_assessment": 1.5,
    "pending_approval": 2.5,
    "approved": 1.5,
    "implemented": 2.5,
}
# The requests templates are filed as: name -> (fields, the fates it is taken to, its weight).
# Fates after approval use requests whose route one identity can approve (tech-lead) or that are
# approved on assessment (low risk: auto-approved; emergency: approved, reviewed by ECAB later).
KINDS: dict[str, tuple[dict[str, Any], tuple[str, ...], float]] = {
    "low": (
        {"type": "normal", "category": "documentation", "impact": "low", "urgency": "low"},
        tuple(f for f in FATES if f not in ("pending_approval", "rejected")),
        20,
    ),
    "medium": (
        {"type": "normal", "category": "deployment", "impact": "medium", "urgency": "medium"},
        tuple(FATES),
        55,
    ),
    "high": (
        {"type": "normal", "category": "deployment", "impact": "critical", "urgency": "critical"},
        ("pending_assessment", "pending_approval", "cancelled", "rejected"),
        10,
    ),
    "critical": (
        {
            "type": "normal",
            "category": "security",
            "impact": "critical",
            "urgency": "critical",
            "affected_services": ["svc-a", "svc-b", "svc-c", "svc-d", "svc-e"],
        },
        ("pending_assessment", "pending_approval", "cancelled", "rejected"),
        5,
    ),
    "emergency": (
        {"type": "emergency", "category": "infrastructure", "impact": "high", "urgency": "critical"},
        tuple(f for f in FATES if f not in ("pending_approval", "rejected")),
        10,
    ),
}


# ----------------------------------------------------------------------------- the cache


def cached(db: Path, want: dict[str, Any]) -> dict[str, Any] | None:
    """The .meta.json beside a cached store if it was built with `want` (scale.py's convention;
    scale.py itself is not imported: it needs cli.py names that cli.py no longer has)."""
    meta_path = Path(f"{db}.meta.json")
    if not db.exists() or not meta_path.exists():
        return None
    meta: dict[str, Any] = json.loads(meta_path.read_text())
    return meta if all(meta.get(k) == v for k, v in want.items()) else None


# ----------------------------------------------------------------------------- byte code


def use_bytecode_cache(enabled: bool) -> str:
    """Before the project is imported: write and read .pyc files under PYCACHE (not in src/),
    although PYTHONDONTWRITEBYTECODE=1, so the modules are compiled once, not on every run."""
    if not enabled:
        return "as the environment says (--no-bytecode-cache)"
    sys.dont_write_bytecode = False
    sys.pycache_prefix = str(PYCACHE)
    return f"written and read under {PYCACHE}"


def bytecode_line() -> str:
    """How many of the project's loaded modules have a current .pyc where this interpreter looks."""
    import importlib.util

    total, current = 0, 0
    for name, module in list(sys.modules.items()):
        source = getattr(module, "__file__", None)
        if not name.startswith("cortex_change") or not source or not source.endswith(".py"):
            continue
        total += 1
        pyc = Path(importlib.util.cache_from_source(source))
        current += pyc.exists() and pyc.stat().st_mtime >= Path(source).stat().st_mtime
    return f"{current} of the {total} cortex_change modules loaded have a current .pyc"


# ----------------------------------------------------------------------------- the data


def env_for(location: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORTEX_CHANGE_")}
    return env | {"CORTEX_CHANGE_DB": location, "CORTEX_CHANGE_USER": "bench", "IMPLEMENTATION_DELAY": "0"}


def file_change(ctx: Any, fields: dict[str, Any], title: str) -> Any:
    from cortex_change.domain.fields import ChangeRequest
    from cortex_change.services import changes as svc

    given = {"title": title, "description": "portal benchmark", "requested_by": USER, **fields}
    return svc.create_change(ctx, ChangeRequest.of(given, svc.limits(ctx.settings)))


def take_to(ctx: Any, change_id: str, fate: str) -> None:
    """Through the services, from pending_assessment to `fate`."""
    from cortex_change.services import changes as svc
    from cortex_change.services import implementation as impl

    if fate == "pending_assessment":
        return
    c = svc.assess_change(ctx, change_id=change_id)
    if fate == "cancelled":
        svc.cancel_change(ctx, change_id=change_id, actor=USER, reason="superseded by another change")
        return
    if fate == "rejected":
        who = "ciso" if "ciso" in c.assessment.route.value else "tech-lead"
        svc.reject_change(ctx, change_id=change_id, rejector=who, reason="not tested in staging")
        return
    if fate == "pending_approval":
        return
    if c.state.value != "approved":
        svc.approve_change(ctx, change_id=change_id, approver="tech-lead", reason="reviewed the plan")
    if fate == "approved":
        return
    impl.implement_change(ctx, change_id=change_id, actor="cortex-deployer")
    if fate == "implemented":
        return
    status = fate.split()[1]
    svc.close_change(ctx, change_id=change_id, status=status, notes="verified", actor="cortex-deployer")


def make_templates(ctx: Any) -> list[tuple[str, str, float]]:
    """One change per (kind, fate) through the real services: (kind/fate, change id, weight)."""
    out = []
    fates_total = sum(FATES.values())
    for kind, (fields, fates, weight) in KINDS.items():
        share = sum(FATES[f] for f in fates)
        for fate in fates:
            c = file_change(ctx, fields, f"Template {kind} {fate}")
            take_to(ctx, c.change_id, fate)
            out.append((f"{kind}/{fate}", c.change_id, weight * FATES[fate] / share * fates_total / 100))
    return out


def detail_change(ctx: Any, events: int) -> tuple[str, int]:
    """A change filed and assessed through the services, then step events appended to its trail
    (store.audit.append, the chain stays valid) until it holds `events`."""
    from cortex_change.domain.events import Event, EventKind
    from cortex_change.services import changes as svc
    from cortex_change.store import audit

    fields = {"type": "normal", "category": "deployment", "impact": "medium", "urgency": "medium"}
    c = file_change(ctx, fields, "Portal benchmark: a change with a long audit trail")
    svc.assess_change(ctx, change_id=c.change_id)
    with ctx.db.read() as tx:
        have = len(audit.for_change(tx, c.change_id))
    more = max(0, events - have)
    with ctx.db.transaction() as tx:
        batch = [
            Event(
                EventKind.STEP_MANUAL,
                "bench",
                {"step": n + 1, "of": more, "text": f"Check node web-{n:03d} answers on /healthz"},
            )
            for n in range(more)
        ]
        audit.append(tx, c.change_id, batch, ctx.clock())
    with ctx.db.read() as tx:
        return c.change_id, len(audit.for_change(tx, c.change_id))


@dataclass
class Plan:
    """What the clones look like: the window they are created in, and their templates' rows."""

    n: int
    start: float  # first creation (epoch s)
    end: float  # last creation, a minute before the build
    columns: list[str]
    templates: list[tuple[dict[str, Any], float]]  # (row by column, weight)
    seed: int


def clones(plan: Plan) -> Iterator[tuple[Any, ...]]:
    """`plan.n` rows, created in time order spread evenly over the window, each a copy of a
    template's row (its state, type, risk, route, closure, compliance, document) with its own id
    and times: approved 1 min-24 h after creation, implemented 5 min-12 h after approval, closed
    10 min-6 h after implementation (cancelled and rejected: 1-48 h after creation), never
    after the build."""
    rng = random.Random(plan.seed)
    rows = [t for t, _ in plan.templates]
    weights = [w for _, w in plan.templates]
    cum = list(itertools.accumulate(weights))
    step = (plan.end - plan.start) / max(1, plan.n)
    cols = plan.columns
    i_id, i_doc = cols.index("change_id"), cols.index("doc")
    i_created, i_approved = cols.index("created_at"), cols.index("approved_at")
    i_implemented, i_closed = cols.index("implemented_at"), cols.index("closed_at")
    i_review = cols.index("review_due_at") if "review_due_at" in cols else None
    picks = rng.choices(range(len(rows)), cum_weights=cum, k=plan.n)
    for k in range(plan.n):
        t = rows[picks[k]]
        created = plan.start + k * step + rng.random() * step
        new_id = f"RFC-{datetime.fromtimestamp(created, UTC):%Y%m%d%H%M%S}-{k:06x}"
        values = [t[c] for c in cols]
        values[i_id] = new_id
        values[i_doc] = t["doc"].replace(t["change_id"], new_id)
        values[i_created] = created
        approved = implemented = closed = None
        if t["approved_at"] is not None:
            approved = min(plan.end, created + rng.uniform(60, 24 * HOUR))
        if t["implemented_at"] is not None and approved is not None:
            implemented = min(plan.end, approved + rng.uniform(300, 12 * HOUR))
        if t["closed_at"] is not None:
            after = implemented if implemented is not None else created
            closed = min(plan.end, after + rng.uniform(600, 6 * HOUR if implemented else 48 * HOUR))
        values[i_approved], values[i_implemented], values[i_closed] = approved, implemented, closed
        if i_review is not None and t["review_due_at"] is not None:
            values[i_review] = (closed or created) + 7 * 24 * HOUR
        yield tuple(values)


def seed_templates(location: str, events: int) -> tuple[list[tuple[str, str, float]], str, int]:
    """Migrations (at open), the templates, and the change for the detail page, all through the
    project's services."""
    from cortex_change.services.context import open_context

    ctx = open_context(env_for(location))
    try:
        templates = make_templates(ctx)
        detail_id, trail = detail_change(ctx, events)
    finally:
        ctx.close()
    return templates, detail_id, trail


def make_plan(
    n: int, days: float, seed: int, templates: list[tuple[str, str, float]], fetch: Any
) -> tuple[Plan, dict[str, str]]:
    columns, by_id = fetch([cid for _, cid, _ in templates])
    now = time.time()
    from cortex_change.services.dashboard import week_start

    if days <= 0:  # the dashboard's window: the current week and the 11 before it
        first = week_start(datetime.now(UTC)) - timedelta(weeks=11)
        start = first.timestamp()
    else:
        start = now - days * 86_400
    plan = Plan(n, start, now - 60, columns, [(by_id[cid], w) for _, cid, w in templates], seed)
    return plan, {name: cid for name, cid, _ in templates}


def build_sqlite(path: Path, n: int, days: float, seed: int, events: int) -> dict[str, Any]:
    """A fresh SQLite store: the project creates it (migrations 1-10), the services file the
    templates and the detail change, then the clones are inserted with the changes table's
    indexes dropped and rebuilt after (from their own CREATE statements)."""
    started = time.perf_counter()
    for suffix in ("", "-wal", "-shm", ".meta.json"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    templates, detail_id, trail = seed_templates(str(path), events)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.row_factory = sqlite3.Row

    def fetch(ids: list[str]) -> tuple[list[str], dict[str, dict[str, Any]]]:
        marks = ",".join("?" * len(ids))
        rows = conn.execute(f"SELECT * FROM changes WHERE change_id IN ({marks})", ids).fetchall()
        return list(rows[0].keys()), {r["change_id"]: dict(r) for r in rows}

    plan, names = make_plan(n, days, seed, templates, fetch)
    conn.row_factory = None
    conn.execute("PRAGMA synchronous=OFF")
    indexes = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type='index' AND tbl_name='changes' AND sql IS NOT NULL"
    ).fetchall()
    for name, _ in indexes:
        conn.execute(f"DROP INDEX {name}")
    sql = f"INSERT INTO changes ({','.join(plan.columns)}) VALUES ({','.join('?' * len(plan.columns))})"
    rows = clones(plan)
    while True:
        batch = list(itertools.islice(rows, BATCH))
        if not batch:
            break
        conn.execute("BEGIN")
        conn.executemany(sql, batch)
        conn.execute("COMMIT")
    for _, create in indexes:
        conn.execute(create)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    total = conn.execute("SELECT count(*) FROM changes").fetchone()[0]
    conn.close()
    return {**built(n, total, plan, names, detail_id, trail, started), "bytes": path.stat().st_size}


def built(
    n: int, total: int, plan: Plan, names: list[str], detail_id: str, trail: int, started: float
) -> dict[str, Any]:
    """What a build made, for the report and the cache's .meta.json."""
    return {
        "n": n,
        "changes": total,
        "window_start": datetime.fromtimestamp(plan.start, UTC).isoformat(timespec="seconds"),
        "templates": names,
        "detail_id": detail_id,
        "detail_events": trail,
        "build_seconds": round(time.perf_counter() - started, 1),
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def build_postgres(url: str, n: int, days: float, seed: int, events: int) -> dict[str, Any]:
    """As build_sqlite, on a fresh PostgreSQL database: COPY with the indexes dropped and rebuilt,
    then VACUUM (ANALYZE), what autovacuum does after a bulk insert. Without the vacuum, the
    visibility map is empty and every index-only scan fetches each row from the heap (measured:
    the dashboard at ~77 000 changes in its window took 2.5x as long)."""
    import psycopg
    from psycopg.rows import dict_row

    started = time.perf_counter()
    templates, detail_id, trail = seed_templates(url, events)
    with psycopg.connect(url, autocommit=True) as conn:

        def fetch(ids: list[str]) -> tuple[list[str], dict[str, dict[str, Any]]]:
            with conn.cursor(row_factory=dict_row) as cur:
                cur.execute("SELECT * FROM changes WHERE change_id = ANY(%s)", (ids,))
                rows = cur.fetchall()
            return list(rows[0].keys()), {r["change_id"]: r for r in rows}

        plan, names = make_plan(n, days, seed, templates, fetch)
        conn.execute("SET synchronous_commit = off")
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'changes' "
            "AND indexname NOT IN (SELECT conname FROM pg_constraint)"
        ).fetchall()
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        with conn.cursor() as cur, cur.copy(f"COPY changes ({','.join(plan.columns)}) FROM STDIN") as copy:
            for row in clones(plan):
                copy.write_row(row)
        for _, create in indexes:
            conn.execute(create)
        conn.execute("VACUUM (ANALYZE) changes")  # the visibility map: index-only scans stay so
        total = conn.execute("SELECT count(*) FROM changes").fetchone()[0]  # type: ignore[index]
    return built(n, total, plan, names, detail_id, trail, started)


# ----------------------------------------------------------------------------- timing


@dataclass
class Row:
    name: str
    path: str
    budget_ms: float | None
    note: str = ""
    ms: list[float] = field(default_factory=list)
    floor_ms: list[float] = field(default_factory=list)  # the floor call made just before each
    cpu_ms: list[float] = field(default_factory=list)
    size: int = 0

    @property
    def diffs(self) -> list[float]:
        return sorted(a - b for a, b in zip(self.ms, self.floor_ms, strict=True))

    @property
    def ok(self) -> bool:
        return self.budget_ms is None or statistics.median(self.ms) <= self.budget_ms

    def as_dict(self) -> dict[str, Any]:
        ms, diffs = sorted(self.ms), (self.diffs if self.floor_ms else [])
        return {
            "name": self.name,
            "path": self.path,
            "runs": len(ms),
            "median_ms": round(statistics.median(ms), 2),
            "p95_ms": round(percentile(ms, 95), 2),
            "max_ms": round(ms[-1], 2),
            "floor_median_ms": round(statistics.median(self.floor_ms), 2) if self.floor_ms else None,
            "minus_floor_median_ms": round(statistics.median(diffs), 2) if self.floor_ms else None,
            "minus_floor_p95_ms": round(percentile(diffs, 95), 2) if self.floor_ms else None,
            "cpu_median_ms": round(statistics.median(self.cpu_ms), 2),
            "bytes": self.size,
            "budget_ms": self.budget_ms,
            "ok": self.ok,
            "note": self.note,
        }


def timed(client: Any, path: str) -> tuple[float, float, int]:
    """One GET, request to full body (TestClient reads it all before returning): wall ms, CPU ms
    of this process (all its threads: the client's, the event loop's, the worker's), body bytes."""
    c0, t0 = time.process_time(), time.perf_counter()
    response = client.get(path)
    body = response.content
    t1, c1 = time.perf_counter(), time.process_time()
    if response.status_code != 200:
        raise SystemExit(f"GET {path}: {response.status_code} {body[:300]!r}")
    return (t1 - t0) * 1000, (c1 - c0) * 1000, len(body)


def measure(location: str, detail_id: str, runs: int, warmup: int, backend: str) -> list[Row]:
    """Round-robin over the pages, a floor call right before each; the floor row holds them all."""
    import warnings

    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

    from cortex_change.api.app import create_app
    from cortex_change.portal.session import COOKIE
    from cortex_change.services import sessions, tokens
    from cortex_change.services.context import open_context

    env = env_for(location)
    ctx = open_context(env)
    try:
        _, token = tokens.create_token(ctx, name=USER)
        secret, _ = sessions.sign_in(ctx, sessions.TokenProvider(), {"identity": USER, "token": token})
    finally:
        ctx.close()
    floor = Row("floor: GET /healthz", "/healthz", None, "no store")
    pages = [
        Row("change detail", f"/changes/{detail_id}", DETAIL_MS),
        Row("dashboard", "/", DASHBOARD_MS),
    ]
    progress = sys.stderr.isatty()
    with TestClient(create_app(env), base_url="http://testserver", raise_server_exceptions=False) as client:
        client.cookies.set(COOKIE, secret)
        for k in range(warmup + runs):
            if progress:
                print(f"{backend}: round {k + 1}/{warmup + runs}", end="\r", file=sys.stderr, flush=True)
            for row in pages:
                base, base_cpu, _ = timed(client, floor.path)
                ms, cpu, size = timed(client, row.path)
                if k >= warmup:
                    floor.ms.append(base)
                    floor.cpu_ms.append(base_cpu)
                    row.ms.append(ms)
                    row.floor_ms.append(base)
                    row.cpu_ms.append(cpu)
                    row.size = size
    if progress:
        print(file=sys.stderr)
    return [floor, *pages]


def dashboard_window(location: str) -> tuple[str, int, dict[str, int]]:
    """The dashboard's window start and the changes it counts in it (its own figures: the
    weekly series' sums)."""
    from cortex_change.services.context import open_context
    from cortex_change.services.dashboard import dashboard

    ctx = open_context(env_for(location))
    try:
        data = dashboard(ctx)
    finally:
        ctx.close()
    return data["window"]["start"], sum(data["created"]), {k: sum(v) for k, v in data["outcomes"].items()}


# ----------------------------------------------------------------------------- one backend


@dataclass
class Outcome:
    backend: str
    store: dict[str, Any]
    rows: list[Row]
    window: str
    in_window: int
    outcomes: dict[str, int]


def run_sqlite(args: argparse.Namespace) -> Outcome:
    default = Path(tempfile.gettempdir()) / f"cortex-change-portal-{args.n}.db"
    db = Path(args.db or default).resolve()
    want = {"format": BUILD_FORMAT, "n": args.n, "days": args.days, "seed": args.seed, "events": args.events}
    meta = None if args.rebuild else cached(db, want)
    if meta is None:
        print(f"building {db} ({args.n:,} changes) ...", file=sys.stderr, flush=True)
        meta = want | build_sqlite(db, args.n, args.days, args.seed, args.events)
        Path(f"{db}.meta.json").write_text(json.dumps(meta, indent=2) + "\n")
        print(f"  built in {meta['build_seconds']} s", file=sys.stderr)
    else:
        print(f"reusing {db} (built {meta['built_at']} in {meta['build_seconds']} s)", file=sys.stderr)
        from cortex_change.store.db import Database

        Database(str(db)).close()  # newer migrations, if any, as the first command would
    meta["bytes"] = db.stat().st_size
    meta["location"] = str(db)
    window, in_window, outcomes = dashboard_window(str(db))
    rows = measure(str(db), meta["detail_id"], args.runs, args.warmup, "sqlite")
    return Outcome("sqlite", meta, rows, window, in_window, outcomes)


def run_postgres(args: argparse.Namespace, tmp: str) -> Outcome:
    store: Store = fresh_store("postgres", tmp, args.pg_url, "portal")
    try:
        print(f"building a PostgreSQL store ({args.n:,} changes) ...", file=sys.stderr, flush=True)
        meta = build_postgres(store.location, args.n, args.days, args.seed, args.events)
        print(f"  built in {meta['build_seconds']} s", file=sys.stderr)
        meta["location"] = "a database created on --pg-url, " + (
            "kept" if args.keep else "dropped afterwards"
        )
        window, in_window, outcomes = dashboard_window(store.location)
        rows = measure(store.location, meta["detail_id"], args.runs, args.warmup, "postgres")
    finally:
        if args.keep:
            print(f"kept the database: {store.location}", file=sys.stderr)
        elif store.cleanup:
            store.cleanup()
    return Outcome("postgres", meta, rows, window, in_window, outcomes)


# ----------------------------------------------------------------------------- report


def report(o: Outcome, args: argparse.Namespace) -> str:
    s = o.store
    size = f", {s['bytes'] / 2**30:.2f} GiB" if "bytes" in s else ""
    lines = [
        f"\n== {o.backend}: {s['changes']:,} changes{size} ({s['location']}), built {s['built_at']} "
        f"in {s['build_seconds']} s",
        f"changes created from {s['window_start']} to the build; the dashboard's window (from "
        f"{o.window}) holds {o.in_window:,} of them: "
        + ", ".join(f"{k} {v:,}" for k, v in o.outcomes.items()),
        f"change detail: {s['detail_id']}, {s['detail_events']} audit events",
    ]
    if s["n"] < BUDGET_N:
        lines.append(
            f"note: the dashboard budget is stated for {BUDGET_N:,} changes; this store has {s['n']:,} "
            f"(rerun with --n {BUDGET_N})"
        )
    head = (
        f"{'page':<22}{'runs':>5}{'median':>9}{'p95':>9}{'floor':>8}{'-floor':>9}{'p95-fl':>9}"
        f"{'cpu':>8}{'kB':>7}  {'budget':<11}status"
    )
    units = f"{'':<27}{'ms':>9}{'ms':>9}{'ms':>8}{'ms':>9}{'ms':>9}{'ms':>8}"
    lines += ["", head, units, "-" * (len(head) + 6)]
    for r in o.rows:
        d = r.as_dict()
        floor, minus = f"{'':>8}", f"{'':>18}"
        if r.floor_ms:
            floor = f"{d['floor_median_ms']:>8.2f}"
            minus = f"{d['minus_floor_median_ms']:>9.2f}{d['minus_floor_p95_ms']:>9.2f}"
        budget = "-" if r.budget_ms is None else f"≤{r.budget_ms:g} ms"
        status = "" if r.budget_ms is None else ("met" if d["ok"] else "MISSED")
        if r.budget_ms is not None and d["p95_ms"] > r.budget_ms:
            status += " (p95 over)"
        lines.append(
            f"{r.name:<22}{d['runs']:>5}{d['median_ms']:>9.2f}{d['p95_ms']:>9.2f}{floor}{minus}"
            f"{d['cpu_median_ms']:>8.2f}{d['bytes'] / 1024:>7.1f}  {budget:<11}{status}"
        )
    return "\n".join(lines)


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="sqlite")
    p.add_argument("--n", type=int, default=BUDGET_N, help=f"changes in the store (default {BUDGET_N:,})")
    p.add_argument(
        "--days",
        type=float,
        default=0,
        help="spread creation over this many days up to now (default 0: the dashboard's 12-week "
        "window, every change in it)",
    )
    p.add_argument("--events", type=int, default=500, help="audit events of the detail page's change")
    p.add_argument("--runs", type=int, default=30, help="measured requests per page (default 30)")
    p.add_argument("--warmup", type=int, default=5, help="unmeasured rounds first (default 5)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--db", help="SQLite store, cached (default: $TMPDIR/cortex-change-portal-N.db)")
    p.add_argument("--rebuild", action="store_true", help="build the SQLite store even if cached")
    p.add_argument("--pg-url", default=DEFAULT_PG, help="admin URL: a database is created and dropped")
    p.add_argument("--keep", action="store_true", help="keep the PostgreSQL database (to look into it)")
    p.add_argument(
        "--no-bytecode-cache",
        action="store_true",
        help="leave PYTHONDONTWRITEBYTECODE and the .pyc location as the caller set them",
    )
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    if a.n < 1 or a.runs < 1 or a.warmup < 0 or a.events < 1:
        p.error("--n, --runs and --events must be at least 1, --warmup at least 0")
    return a


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    bytecode = use_bytecode_cache(not args.no_bytecode_cache)
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    info = machine(backends, args.pg_url)
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="cortex-bench-portal-") as tmp:
        for backend in backends:
            outcomes.append(run_sqlite(args) if backend == "sqlite" else run_postgres(args, tmp))
    info["loadavg_after"] = os.getloadavg()
    info["bytecode"] = f"{bytecode_line()}; .pyc {bytecode}"
    if args.json:
        doc = {
            "machine": info,
            "runs": [
                {
                    "backend": o.backend,
                    "store": o.store,
                    "dashboard_window_start": o.window,
                    "in_window": o.in_window,
                    "rows": [r.as_dict() for r in o.rows],
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
        print(
            f"in process: create_app + starlette TestClient, {args.runs} requests per page after "
            f"{args.warmup} warm-up rounds, each right after a floor request (GET /healthz)",
            flush=True,
        )
        for o in outcomes:
            print(report(o, args))
        print(
            "\n-floor = median (p95-fl: p95) of each request minus the floor request made just before it; "
            "cpu = this process's CPU per request (client and server threads).\nBudget met when the raw "
            "median is within it (the floor's routing and thread hop are server time too)."
        )
    return 0 if all(r.ok for o in outcomes for r in o.rows) else 1


if __name__ == "__main__":
    sys.exit(main())
