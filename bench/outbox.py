"""Benchmark the outbox: delivery throughput, and the lag from commit to delivery under load.

Run with the project's interpreter (PostgreSQL needs the `postgres` extra, agendas the `worker` one):

    .venv/bin/python bench/outbox.py [--backend sqlite|postgres|both] [--rate 50] [--seconds 10]
                                     [--workers 2] [--producers 1] [--drain 2000] [--pg-url URL] [--json]

For each backend it makes a fresh store (a SQLite file in a temporary directory, or a new
PostgreSQL database created on `--pg-url` and dropped afterwards) and starts a local webhook
receiver (`ThreadingHTTPServer`, answers 200, records the arrival time of every
`X-Cortex-Event-Id`). With `WEBHOOK_URL` pointing at it:

1. **Under load.** `--workers` processes run `cortex-change worker run` (`WORKER_POLL_INTERVAL=1`,
   its minimum) while `--producers` processes file and assess normal deployments through the
   services at `--rate` changes/s in total for `--seconds`. Each assessment routes to a technical
   lead and commits one `approval_requested` webhook row with its event. A producer notes the wall
   time right after each commit returns (the store keeps whole seconds, too coarse for a lag); the
   event id comes from the outbox row afterwards. The report gives messages delivered (and any
   duplicate or missing), the throughput over the delivery window (first to last arrival), and
   the commit-to-arrival lag p50/p95/p99/max.
2. **Drain.** With the workers stopped, `--drain` rows (default 2 000) are queued in one
   transaction, then one `cortex-change worker run --once` is timed from spawn to exit (its
   start-up included) and the arrivals' window is given beside it; then the same with
   `--workers` passes started at once.

Exit status 2 when a message is missing or delivered twice, else 0.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from common import CLI, DEFAULT_PG, Store, fresh_store, machine, machine_line, percentile, stop

# No CAB agenda during the run (29 February, no lead), and no timer firing: only the load's messages.
QUIET = {"CAB_MEETING_SCHEDULE": "0 0 29 2 *", "CAB_AGENDA_LEAD": "0", "AUTO_IMPLEMENT": "false"}


# ----------------------------------------------------------------------------- the receiver


class Receiver:
    """A webhook receiver on 127.0.0.1: answers 200 and records when each event id arrived."""

    def __init__(self) -> None:
        self.arrivals: dict[str, list[float]] = {}
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                now = time.time()
                event = self.headers.get("X-Cortex-Event-Id", "")
                with owner.lock:
                    owner.arrivals.setdefault(event, []).append(now)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def snapshot(self) -> dict[str, list[float]]:
        with self.lock:
            return {k: list(v) for k, v in self.arrivals.items()}

    def reset(self) -> None:
        with self.lock:
            self.arrivals.clear()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# ----------------------------------------------------------------------------- stores


def query(store: Store, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if store.backend == "postgres":
        import psycopg

        with psycopg.connect(store.location, autocommit=True) as conn:
            return list(conn.execute(sql.replace("?", "%s"), params).fetchall())
    conn = sqlite3.connect(store.location)
    try:
        return list(conn.execute(sql, params).fetchall())
    finally:
        conn.close()


def environment(store: Store, webhook: str, poll: int) -> dict[str, str]:
    """The caller's environment without any cortex-change setting, plus the bench's own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CORTEX_CHANGE_", "WEBHOOK_"))}
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        env.pop(name, None)  # the receiver is on 127.0.0.1
    env.update(QUIET, CORTEX_CHANGE_DB=store.location, WEBHOOK_URL=webhook, WORKER_POLL_INTERVAL=str(poll))
    return env


# ----------------------------------------------------------------------------- producer and workers


def producer(
    env: dict[str, str], rate: float, seconds: float, offset: float, ready: Any, start: Any, out: Any
) -> None:
    """File and assess changes at `rate`/s for `seconds` from the start signal; report commit times."""
    from cortex_change.domain.fields import ChangeRequest
    from cortex_change.services import changes
    from cortex_change.services.context import open_context

    ctx = open_context(env=env)
    ready.put(os.getpid())
    while start.value == 0.0:
        time.sleep(0.005)
    start_at = start.value
    done: list[tuple[str, float]] = []
    behind = 0.0
    n = 0
    while True:
        due = start_at + (n + offset) / rate
        if due >= start_at + seconds:
            break
        wait = due - time.time()
        if wait > 0:
            time.sleep(wait)
        else:
            behind = max(behind, -wait)
        request = {
            "type": "normal",
            "category": "deployment",
            "title": f"Bench deploy {os.getpid()}-{n}",
            "description": "outbox benchmark",
            "requested_by": "bench",
        }
        change = changes.create_change(ctx, ChangeRequest.of(request))
        changes.assess_change(ctx, change_id=change.change_id)
        done.append((change.change_id, time.time()))
        n += 1
    ctx.close()
    out.put({"committed": done, "max_behind_s": behind})


def start_workers(
    n: int, env: dict[str, str], tmp: str, label: str
) -> list[tuple[subprocess.Popen[bytes], Path]]:
    started = []
    for i in range(n):
        log = Path(tmp) / f"worker-{label}-{i}.log"
        with log.open("wb") as sink:
            proc = subprocess.Popen(
                [*CLI, "worker", "run", "--name", f"bench-{label}-{i}"],
                env=env,
                cwd=tmp,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started.append((proc, log))
    return started


def stop_workers(workers: list[tuple[subprocess.Popen[bytes], Path]]) -> None:
    stop([proc for proc, _ in workers], grace=30)


# ----------------------------------------------------------------------------- measurements


@dataclass
class Load:
    target_rate: float
    seconds: float
    producers: int
    workers: int
    committed: int = 0
    achieved_rate: float = 0.0
    producer_max_behind_s: float = 0.0
    delivered: int = 0
    duplicates: int = 0
    missing: int = 0
    failed_attempts: int = 0
    window_s: float = 0.0
    throughput: float = 0.0
    lag_ms: dict[str, float] = field(default_factory=dict)
    by_worker: dict[str, int] = field(default_factory=dict)


@dataclass
class Drain:
    messages: int
    workers: int
    wall_s: float = 0.0
    per_s: float = 0.0
    window_s: float = 0.0
    window_per_s: float = 0.0
    delivered: int = 0
    duplicates: int = 0


@dataclass
class Result:
    backend: str
    load: Load
    drains: list[Drain] = field(default_factory=list)
    worker_log_tail: str = ""


def run_load(a: argparse.Namespace, store: Store, receiver: Receiver, tmp: str) -> Load:
    env = environment(store, receiver.url, 1)
    load = Load(a.rate, a.seconds, a.producers, a.workers)
    # Create the store (migrations) before anyone starts, so workers and producers do not race to.
    subprocess.run([*CLI, "outbox", "list"], env=env, cwd=tmp, check=True, capture_output=True)
    workers = start_workers(a.workers, env, tmp, "load")
    try:
        time.sleep(1.5)  # the workers are up and polling before the first commit
        ctx = mp.get_context("spawn")
        ready, out = ctx.Queue(), ctx.Queue()
        start = ctx.Value("d", 0.0)
        per = a.rate / a.producers
        procs = [
            ctx.Process(target=producer, args=(env, per, a.seconds, i / a.producers, ready, start, out))
            for i in range(a.producers)
        ]
        for p in procs:
            p.start()
        for _ in procs:
            ready.get(timeout=120)
        start.value = time.time() + 0.2
        parts = [out.get(timeout=a.seconds + 300) for _ in procs]
        for p in procs:
            p.join(timeout=30)
        committed = dict(c for part in parts for c in part["committed"])
        load.committed = len(committed)
        load.achieved_rate = len(committed) / a.seconds
        load.producer_max_behind_s = max(part["max_behind_s"] for part in parts)
        events = dict(query(store, "SELECT change_id, event_id FROM outbox WHERE kind='approval_requested'"))
        deadline = time.time() + 120
        while time.time() < deadline and len(receiver.snapshot().keys() & events.values()) < len(events):
            time.sleep(0.2)
    finally:
        stop_workers(workers)
    arrivals = receiver.snapshot()
    lags = sorted(
        (arrivals[events[cid]][0] - t) * 1000 for cid, t in committed.items() if events.get(cid) in arrivals
    )
    times = sorted(t for e in events.values() for t in arrivals.get(e, [])[:1])
    load.delivered = len(lags)
    load.missing = len(committed) - len(lags)
    load.duplicates = sum(len(v) - 1 for v in arrivals.values())
    load.window_s = times[-1] - times[0] if len(times) > 1 else 0.0
    load.throughput = len(times) / load.window_s if load.window_s else 0.0
    load.lag_ms = {
        "p50": percentile(lags, 50),
        "p95": percentile(lags, 95),
        "p99": percentile(lags, 99),
        "max": lags[-1] if lags else 0.0,
        "min": lags[0] if lags else 0.0,
    }
    rows = query(store, "SELECT claimed_by, count(*), sum(attempts) FROM outbox GROUP BY claimed_by")
    load.by_worker = {str(w): int(n) for w, n, _ in rows}
    load.failed_attempts = sum(int(s or 0) for _, _, s in rows) - sum(int(n) for _, n, _ in rows)
    return load


def queue_messages(store: Store, n: int, tag: str) -> list[str]:
    """`n` webhook rows in one transaction, each with its own event id."""
    from cortex_change.notify.message import Message
    from cortex_change.services.context import open_context
    from cortex_change.store import outbox

    ctx = open_context(env={"CORTEX_CHANGE_DB": store.location})
    now = float(int(time.time()) - 1)  # the worker's clock keeps whole seconds: due at once
    rows: list[outbox.NewMessage] = []
    for i in range(n):
        event = f"{tag}{i:028x}"
        message = Message(event, "approval_requested", None, f"[cortex-change] drain {i}", "drain", "")
        rows.append(
            (os.urandom(12).hex(), event, "webhook", message.kind, None, json.dumps(message.to_json()), now)
        )
    with ctx.db.transaction() as tx:
        outbox.enqueue(tx, rows)
    ctx.close()
    return [r[1] for r in rows]


def run_drain(store: Store, receiver: Receiver, tmp: str, messages: int, workers: int, tag: str) -> Drain:
    env = environment(store, receiver.url, 1)
    receiver.reset()
    events = queue_messages(store, messages, tag)
    drain = Drain(messages, workers)
    started = time.perf_counter()
    procs = [
        subprocess.Popen(
            [*CLI, "worker", "run", "--once", "--name", f"drain-{tag}-{i}"],
            env=env,
            cwd=tmp,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i in range(workers)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        if proc.returncode != 0:
            raise RuntimeError(f"worker run --once exited {proc.returncode}: {err.decode()[-2000:]}")
    drain.wall_s = time.perf_counter() - started
    arrivals = receiver.snapshot()
    firsts = sorted(arrivals[e][0] for e in events if e in arrivals)
    drain.delivered = len(firsts)
    drain.duplicates = sum(len(arrivals[e]) - 1 for e in events if e in arrivals)
    drain.per_s = drain.delivered / drain.wall_s
    drain.window_s = firsts[-1] - firsts[0] if len(firsts) > 1 else 0.0
    drain.window_per_s = drain.delivered / drain.window_s if drain.window_s else 0.0
    return drain


def run_backend(a: argparse.Namespace, backend: str, tmp: str) -> Result:
    store = fresh_store(backend, tmp, a.pg_url, "outbox")
    receiver = Receiver()
    try:
        result = Result(backend, run_load(a, store, receiver, tmp))
        if a.drain:
            result.drains.append(run_drain(store, receiver, tmp, a.drain, 1, "a"))
            if a.workers > 1:
                result.drains.append(run_drain(store, receiver, tmp, a.drain, a.workers, "b"))
        logs = sorted(Path(tmp).glob("worker-load-*.log"))
        result.worker_log_tail = "\n".join(
            line for log in logs for line in log.read_text(errors="replace").splitlines()[-2:]
        )
        return result
    finally:
        receiver.close()
        if store.cleanup:
            store.cleanup()


# ----------------------------------------------------------------------------- report


def print_machine(info: dict[str, Any]) -> None:
    print(machine_line(info))
    print(f"code at {info['commit']}; load average before {info['loadavg_before'][0]:.2f}")
    print(
        "note: producers, workers, the receiver (and PostgreSQL, when local) share the cores; "
        "workers poll every WORKER_POLL_INTERVAL=1 s, which bounds the lag from below."
    )


def print_result(r: Result) -> None:
    ld = r.load
    print()
    print(f"== {r.backend}: {ld.workers} worker(s), {ld.producers} producer(s), WORKER_POLL_INTERVAL=1")
    print(
        f"load: {ld.committed} changes filed and assessed in {ld.seconds:g} s: {ld.achieved_rate:.1f}/s "
        f"(target {ld.target_rate:g}/s; producers at most {ld.producer_max_behind_s:.2f} s behind schedule)"
    )
    print(
        f"delivered: {ld.delivered} of {ld.committed} approval requests ({ld.duplicates} duplicate, "
        f"{ld.missing} missing, {ld.failed_attempts} failed attempt(s)); by worker: "
        + ", ".join(f"{w} {n}" for w, n in sorted(ld.by_worker.items()))
    )
    print(f"throughput: {ld.throughput:.1f} messages/s over the delivery window ({ld.window_s:.2f} s)")
    lag = ld.lag_ms
    print(
        f"lag commit -> receipt: p50 {lag['p50']:.1f} ms, p95 {lag['p95']:.1f} ms, p99 {lag['p99']:.1f} ms, "
        f"max {lag['max']:.1f} ms (min {lag['min']:.1f} ms)"
    )
    for d in r.drains:
        print(
            f"drain: {d.messages} queued, {d.workers} `worker run --once` at once: {d.wall_s:.2f} s spawn to "
            f"exit -> {d.per_s:.0f} messages/s ({d.window_s:.2f} s first to last receipt -> "
            f"{d.window_per_s:.0f}/s); {d.delivered} delivered, {d.duplicates} duplicate"
        )


# ----------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="sqlite")
    p.add_argument("--rate", type=float, default=50.0, help="changes filed and assessed per second, in total")
    p.add_argument("--seconds", type=float, default=10.0, help="how long the producers run")
    p.add_argument("--workers", type=int, default=2, help="`worker run` processes")
    p.add_argument("--producers", type=int, default=1, help="producer processes sharing --rate")
    p.add_argument("--drain", type=int, default=2000, help="messages pre-queued for the drain test (0: skip)")
    p.add_argument(
        "--pg-url", default=DEFAULT_PG, help="an admin URL: a database is created and dropped on it"
    )
    p.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    a = p.parse_args(argv)
    if not 0 < a.rate <= 10_000 or not 0 < a.seconds <= 600:
        p.error("--rate must be in (0, 10000] and --seconds in (0, 600]")
    if a.workers < 1 or a.producers < 1 or a.drain < 0:
        p.error("--workers and --producers must be at least 1, --drain at least 0")
    return a


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    backends = ["sqlite", "postgres"] if a.backend == "both" else [a.backend]
    info = machine(backends, a.pg_url)
    if not a.json:
        print_machine(info)
    results = []
    with tempfile.TemporaryDirectory(prefix="cortex-bench-outbox-") as tmp:
        for backend in backends:
            where = os.path.join(tmp, backend)
            os.mkdir(where)
            result = run_backend(a, backend, where)
            results.append(result)
            if not a.json:
                print_result(result)
                sys.stdout.flush()
    if a.json:
        print(json.dumps({"machine": info, "runs": [asdict(r) for r in results]}, indent=2))
    bad = any(r.load.missing or r.load.duplicates or any(d.duplicates for d in r.drains) for r in results)
    bad = bad or any(d.delivered != d.messages for r in results for d in r.drains)
    return 2 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
