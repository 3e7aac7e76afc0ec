"""Scale benchmark: a store with N changes, then show/list/metrics/audit verify against the budgets.

    .venv/bin/python bench/scale.py [--n 200000] [--db PATH] [--runs 30] [--rebuild] [--json]

The budgets are stated for 1 000 000 changes (``--n 1000000``); building that store takes about
nine minutes on 2 cores (then it is cached), so the default is 200 000 (about two minutes).

The store is built by replaying each change's life through the project's own domain code
(validation, workflow, risk, routing, compliance) with a simulated clock, in time order across
all changes, and writing exactly the rows the services would write (``store.changes._row``, the
audit chain with ``store.audit.event_hash``); only the transactions are batched (see
build_store.py). It is cached at
``--db`` (with a ``.meta.json`` beside it) so reruns skip the build.

Order of work keeps the figures honest: the build runs in a child process; the CLI subprocess
timings run next, while this process has imported nothing of the project (a child's peak RSS
includes its parent's); the in-process timings come last.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cli import RSS_BUDGET_MB, Sample, child_env, install_in_place, machine, percentile, run_once

SHOW_MS, LIST_MS, METRICS_MS, VERIFY_PER_S = 5.0, 20.0, 500.0, 100_000
BUDGET_N = 1_000_000  # the store size the budgets are stated for
DEFAULT_N = 200_000  # builds in ~2 min on 2 cores; 1 000 000 takes ~9 min (then cached)
BUILD_FORMAT = 1  # bump when the generated data changes, so cached stores are rebuilt
CLI_MS = 40.0  # a CLI call on the big store, start-up included (absolute: no floor calls here)


# Opens the store once through the project (which applies any newer migration, as the first
# command after an upgrade would) and reports the schema versions before and after, with the time.
UPGRADE = """
import json, sqlite3, sys, time
from cortex_change.store.db import Database, _current
path = sys.argv[1]
probe = sqlite3.connect(path)
before = _current(probe)
probe.close()
start = time.perf_counter()
Database(path).close()
seconds = time.perf_counter() - start
probe = sqlite3.connect(path)
after = _current(probe)
probe.close()
print(json.dumps({"from": before, "to": after, "seconds": round(seconds, 1)}))
"""


def upgrade(db: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """Bring a cached store to the current schema (in a child, so this process stays small).

    A cache built by an older version keeps its rows (the migrations add columns, tables and
    indexes); an upgrade and its time are recorded in the ``.meta.json``.
    """
    done = subprocess.run(
        [sys.executable, "-c", UPGRADE, str(db)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"opening {db} with the current code failed:\n{done.stderr}")
    step = json.loads(done.stdout)
    if step["from"] != step["to"]:
        print(f"  schema v{step['from']} -> v{step['to']} in {step['seconds']} s", file=sys.stderr)
        step["at"] = datetime.now(UTC).isoformat(timespec="seconds")
        meta = meta | {"upgrades": [*meta.get("upgrades", []), step], "bytes": db.stat().st_size}
    if meta.get("schema") != step["to"]:
        meta = meta | {"schema": step["to"]}
    Path(f"{db}.meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def cached(db: Path, want: dict[str, int]) -> dict[str, Any] | None:
    meta_path = Path(f"{db}.meta.json")
    if not db.exists() or not meta_path.exists():
        return None
    meta: dict[str, Any] = json.loads(meta_path.read_text())
    return meta if all(meta.get(k) == v for k, v in want.items()) else None


# --- timing ------------------------------------------------------------------------------------


def sample_ids(db: Path, count: int, seed: int) -> list[str]:
    """Change ids spread over the whole store (read with plain sqlite3, not the project)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        total = conn.execute("SELECT max(rowid) FROM changes").fetchone()[0]
        rng = random.Random(seed)
        rowids = [rng.randint(1, total) for _ in range(count)]
        marks = ",".join("?" * len(rowids))
        found = [
            r[0] for r in conn.execute(f"SELECT change_id FROM changes WHERE rowid IN ({marks})", rowids)
        ]
    finally:
        conn.close()
    rng.shuffle(found)
    return found


@dataclass
class CliRow:
    """One CLI subprocess row: its calls' samples against absolute budgets (cli.Verb's budgets are
    over a floor call made before each call; this bench makes none)."""

    name: str
    samples: list[Sample] = field(default_factory=list)
    budget_ms: float = CLI_MS
    budget_mb: float = RSS_BUDGET_MB
    note: str = ""

    @property
    def median_ms(self) -> float:
        return statistics.median(s.ms for s in self.samples)

    @property
    def p90_ms(self) -> float:
        return percentile([s.ms for s in self.samples], 90)

    @property
    def max_rss_mb(self) -> float:
        return max(s.rss_kib for s in self.samples) / 1024

    @property
    def ok(self) -> bool:
        return self.median_ms <= self.budget_ms and self.max_rss_mb <= self.budget_mb

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "runs": len(self.samples),
            "median_ms": round(self.median_ms, 2),
            "p90_ms": round(self.p90_ms, 2),
            "min_ms": round(min(s.ms for s in self.samples), 2),
            "max_rss_mb": round(self.max_rss_mb, 1),
            "budget_ms": self.budget_ms,
            "budget_mb": self.budget_mb,
            "ok": self.ok,
            "note": self.note,
        }


def cli_timings(db: Path, runs: int, ids: Sequence[str], python: str) -> list[CliRow]:
    """The real CLI (the current venv's) as a subprocess on the big store."""
    workdir = tempfile.mkdtemp(prefix="cortex-change-scale-")
    results = []
    try:
        # .pyc files under PYTHONPYCACHEPREFIX in workdir, even where PYTHONDONTWRITEBYTECODE is set
        install = install_in_place(python, None, Path(workdir), bytecode_cache=True)
        env = child_env(str(db), install, bytecode_cache=True, in_place=True)
        cli = install.cli
        for cmd in ([cli, "list"], [cli, "show", ids[0]], [cli, "metrics", "month"]):
            run_once(cmd, env, workdir)  # write .pyc files
        plans: list[tuple[str, Callable[[int], list[str]]]] = [
            ("cli show", lambda i: [cli, "show", ids[i % len(ids)]]),
            ("cli list", lambda i: [cli, "list"]),
            ("cli list closed", lambda i: [cli, "list", "closed"]),
            ("cli list pending_approval", lambda i: [cli, "list", "pending_approval"]),
            ("cli list pending (group)", lambda i: [cli, "list", "pending"]),
            ("cli metrics month", lambda i: [cli, "metrics", "month"]),
        ]
        for name, make in plans:
            row = CliRow(name)
            count = max(3, runs // 6) if "metrics" in name else runs  # seconds per call at 1M
            for i in range(count):
                row.samples.append(run_once(make(i), env, workdir)[0])
            results.append(row)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return results


@dataclass
class Timed:
    name: str
    ms: list[float]
    budget_ms: float | None
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.ms)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "runs": len(self.ms),
            "median_ms": round(self.median, 3),
            "p90_ms": round(percentile(self.ms, 90), 3),
            "max_ms": round(max(self.ms), 3),
            "budget_ms": self.budget_ms,
            "ok": None if self.budget_ms is None else self.median <= self.budget_ms,
            "note": self.note,
        }


def clock(call: Callable[[], Any], runs: int) -> tuple[list[float], Any]:
    ms, value = [], None
    for _ in range(runs):
        start = time.perf_counter()
        value = call()
        ms.append((time.perf_counter() - start) * 1000)
    return ms, value


def traced(conn: sqlite3.Connection, call: Callable[[], Any]) -> list[str]:
    """The SQL statements a call runs (SELECTs only), as SQLite expanded them."""
    seen: list[str] = []
    conn.set_trace_callback(seen.append)
    try:
        call()
    finally:
        conn.set_trace_callback(None)
    return [s for s in seen if s.lstrip().upper().startswith("SELECT")]


def plans(conn: sqlite3.Connection, statements: Sequence[str]) -> list[str]:
    out = []
    for sql in dict.fromkeys(statements):
        steps = conn.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall()
        out.append(" ".join(sql.split()) + "\n    " + "\n    ".join(str(s[3]) for s in steps))
    return out


def in_process(db: Path, runs: int, ids: Sequence[str]) -> tuple[list[Timed], dict[str, Any]]:
    """The services the CLI calls, timed without interpreter start-up."""
    from cortex_change.services import audit as audit_service
    from cortex_change.services import queries, reports
    from cortex_change.services.context import open_context
    from cortex_change.store import audit as audit_store
    from cortex_change.store import changes as repo

    ctx = open_context({"CORTEX_CHANGE_DB": str(db), "CORTEX_CHANGE_USER": "bench"})
    conn = ctx.db.conn
    out: list[Timed] = []
    extra: dict[str, Any] = {"plans": {}}
    it = itertools.cycle(ids)
    ms, doc = clock(lambda: queries.get_change(ctx, change_id=next(it)), runs)
    out.append(Timed("show (get_change)", ms, SHOW_MS, f"{len(doc['audit_trail'])} events in the last one"))
    extra["plans"]["show"] = plans(conn, traced(conn, lambda: queries.get_change(ctx, change_id=ids[0])))
    for state in (None, "closed", "pending_approval", "cancelled", "pending", "implemented"):
        label = state or "(all)"
        kind = " (group)" if state in ("pending", "implemented") else ""
        call = functools.partial(queries.list_changes, ctx, state=state)
        ms, rows = clock(call, runs)
        out.append(Timed(f"list {label}{kind}", ms, LIST_MS, f"{len(rows)} rows"))
        extra["plans"][f"list {label}"] = plans(conn, traced(conn, call))
    metric_runs = max(3, runs // 6)
    ms, report = clock(lambda: reports.metrics_report(ctx, period_text="month"), metric_runs)
    out.append(
        Timed("metrics month", ms, METRICS_MS, f"{report['changes_created']:,} changes created in period")
    )
    extra["plans"]["metrics month"] = plans(
        conn, traced(conn, lambda: reports.metrics_report(ctx, period_text="month"))
    )
    first = datetime.fromtimestamp(conn.execute("SELECT min(created_at) FROM changes").fetchone()[0], UTC)
    everything = f"{first:%Y-%m-%d} to {ctx.clock():%Y-%m-%d}"
    ms, report = clock(lambda: reports.metrics_report(ctx, period_text=everything), 2)
    out.append(Timed("metrics (whole store)", ms, None, f"{report['changes_created']:,} changes in period"))
    out += history_timing(ctx, repo, runs, ids, extra)
    with ctx.db.read() as tx:  # first, so the chain is in the page cache for verify as well
        start = time.perf_counter()
        fetched = sum(1 for _ in audit_store.rows(tx))
        fetch_seconds = time.perf_counter() - start
    start = time.perf_counter()
    verdict = audit_service.verify(ctx)
    seconds = time.perf_counter() - start
    extra["verify"] = {
        "ok": verdict.ok,
        "events": verdict.checked,
        "seconds": round(seconds, 2),
        "events_per_s": round(verdict.checked / seconds),
        "fetch_only_events_per_s": round(fetched / fetch_seconds),
        "budget_events_per_s": VERIFY_PER_S,
    }
    ctx.close()
    return out, extra


def history_timing(ctx: Any, repo: Any, runs: int, ids: Sequence[str], extra: dict[str, Any]) -> list[Timed]:
    """The query assess/update run before scoring (comparable closed changes, 90 days).

    Each call reads every change ever linked to the named services (a few thousand rows per
    service at 1 000 000), so it depends on what the page cache holds: the same changes are timed
    twice, first as they come, then again with those pages cached.
    """
    with ctx.db.read() as tx:
        picked = [repo.get(tx, i) for i in ids[: max(runs, 1)]]
    picked = [c for c in picked if c.affected_services] or picked
    since = ctx.clock() - timedelta(days=ctx.policy.history_window_days)
    it = itertools.cycle(picked)
    found: list[int] = []

    def one() -> None:
        c = next(it)
        with ctx.db.read() as tx:
            found.append(len(repo.history(tx, c.category, c.affected_services, since, c.change_id)))

    first, _ = clock(one, runs)
    again, _ = clock(one, runs)
    c = picked[0]

    def once() -> None:
        with ctx.db.read() as tx:
            repo.history(tx, c.category, c.affected_services, since, c.change_id)

    extra["plans"]["assess history"] = plans(ctx.db.conn, traced(ctx.db.conn, once))
    note = f"median {statistics.median(found):.0f} comparable changes"
    return [
        Timed("assess history query", first, None, note + "; first pass"),
        Timed("assess history query (again)", again, None, "same changes, pages now cached"),
    ]


# --- report ------------------------------------------------------------------------------------


def report(
    meta: dict[str, Any], info: dict[str, str], cli: list[CliRow], inproc: list[Timed], extra: dict[str, Any]
) -> str:
    lines = [f"{k:>13}: {v}" for k, v in info.items()]
    lines.append(
        f"{'store':>13}: {meta['n']:,} changes, {meta['events']:,} audit events, "
        f"{meta['bytes'] / 2**30:.2f} GiB, built {meta['built_at']} in {meta['build_seconds']} s"
    )
    lines.append(f"{'states':>13}: " + ", ".join(f"{k} {v:,}" for k, v in meta["states"].items()))
    schema = f"{'schema':>13}: version {meta.get('schema', '?')}"
    for step in meta.get("upgrades", []):
        schema += f"; upgraded v{step['from']} -> v{step['to']} in {step['seconds']} s ({step['at']})"
    lines.append(schema)
    if meta["n"] < BUDGET_N:
        lines.append(
            f"{'note':>13}: the budgets are stated for {BUDGET_N:,} changes; full scans grow with the store "
            f"(rerun with --n {BUDGET_N})"
        )
    head = f"\n{'in-process (services)':<34}{'runs':>5}{'median ms':>11}{'p90 ms':>9}{'max ms':>9}  budget"
    lines += [head, "-" * (len(head) + 20)]
    for t in inproc:
        d = t.as_dict()
        budget = "-" if t.budget_ms is None else f"≤{t.budget_ms:g} ms"
        status = "" if d["ok"] is None else ("ok" if d["ok"] else "MISSED")
        lines.append(
            f"{t.name:<34}{d['runs']:>5}{d['median_ms']:>11.2f}{d['p90_ms']:>9.2f}{d['max_ms']:>9.2f}"
            f"  {budget:<10}{status:<7}{t.note}"
        )
    v = extra["verify"]
    status = "ok" if v["events_per_s"] >= VERIFY_PER_S else "MISSED"
    lines.append(
        f"{'audit verify':<34}{1:>5}  {v['events']:,} events in {v['seconds']} s = {v['events_per_s']:,}/s "
        f"(budget ≥{VERIFY_PER_S:,}/s) {status}; fetching alone {v['fetch_only_events_per_s']:,}/s; "
        f"chain {'intact' if v['ok'] else 'BROKEN'}"
    )
    head = f"\n{'CLI subprocess':<34}{'runs':>5}{'median ms':>11}{'p90 ms':>9}{'max RSS MB':>12}  budget"
    lines += [head, "-" * (len(head) + 16)]
    for r in cli:
        status = "ok" if r.ok else "MISSED"
        lines.append(
            f"{r.name:<34}{len(r.samples):>5}{r.median_ms:>11.1f}{r.p90_ms:>9.1f}{r.max_rss_mb:>12.1f}"
            f"  ≤{r.budget_ms:g} ms, ≤{r.budget_mb:g} MB  {status}"
        )
    lines.append("\nquery plans (EXPLAIN QUERY PLAN; the store was never ANALYZEd, as in real use):")
    for name, items in extra["plans"].items():
        for item in items:
            lines.append(f"  [{name}] {item}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--n",
        type=int,
        default=DEFAULT_N,
        help=f"changes in the store (default {DEFAULT_N:,}: building 1 000 000 takes ~9 min on 2 cores)",
    )
    parser.add_argument("--per-day", type=int, default=1000, help="changes created per day (sets the span)")
    parser.add_argument("--services", type=int, default=500, help="size of the service catalogue")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--workers",
        type=int,
        default=len(os.sched_getaffinity(0)),
        help="simulating processes (default: cores)",
    )
    parser.add_argument("--db", help="cached store (default: $TMPDIR/cortex-change-scale-N.db)")
    parser.add_argument("--rebuild", action="store_true", help="build even if a matching cache exists")
    parser.add_argument("--runs", type=int, default=30, help="calls per measurement (default 30)")
    parser.add_argument("--no-cli", action="store_true", help="skip the CLI subprocess timings")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    db = Path(args.db or Path(tempfile.gettempdir()) / f"cortex-change-scale-{args.n}.db").resolve()
    want = {"format": BUILD_FORMAT, "n": args.n, "per_day": args.per_day, "services": args.services}
    want["seed"] = args.seed
    if args.build_only:
        from build_store import build  # imports the project: only ever in this child process

        build(db, args.n, args.per_day, args.services, args.seed, want, args.workers)
        return 0
    meta = None if args.rebuild else cached(db, want)
    if meta is None:
        print(f"building {db} ({args.n:,} changes) ...", file=sys.stderr)
        for suffix in ("", "-wal", "-shm", ".meta.json"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        child = [sys.executable, __file__, "--build-only", "--db", str(db)]
        child += ["--n", str(args.n), "--per-day", str(args.per_day), "--services", str(args.services)]
        child += ["--workers", str(args.workers)]
        subprocess.run([*child, "--seed", str(args.seed)], check=True)
        meta = cached(db, want)
        assert meta is not None
    meta = upgrade(db, meta)
    print(f"store {db}: {meta['n']:,} changes (build took {meta['build_seconds']} s)", file=sys.stderr)
    ids = sample_ids(db, max(args.runs, 50), args.seed)
    cli = [] if args.no_cli else cli_timings(db, args.runs, ids, sys.executable)
    inproc, extra = in_process(db, args.runs, ids)
    info = machine(sys.executable) | {"sqlite": sqlite3.sqlite_version, "db": str(db)}
    if args.json:
        print(
            json.dumps(
                {
                    "machine": info,
                    "store": meta,
                    "in_process": [t.as_dict() for t in inproc],
                    "audit_verify": extra["verify"],
                    "cli": [r.as_dict() for r in cli],
                    "plans": extra["plans"],
                },
                indent=2,
            )
        )
    else:
        print(report(meta, info, cli, inproc, extra))
    return 0


if __name__ == "__main__":
    sys.exit(main())
