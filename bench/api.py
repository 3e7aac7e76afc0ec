"""Benchmark the REST API: full change lifecycles over HTTP against a real `cortex-change serve`.

Run with the project's interpreter (it needs the `server` extra, and `postgres` for PostgreSQL):

    .venv/bin/python bench/api.py [--backend sqlite|postgres|both] [--clients N[,N…]]
                                  [--workers W[,W…]] [--seconds T] [--warmup S] [--json]

For each backend and each (workers, clients) pair it makes a fresh store (a SQLite file in a
temporary directory, or a new PostgreSQL database created on `--pg-url` and dropped afterwards),
creates tokens for a requester (alice) and an approver (tech-lead) with `cortex-change token
create`, starts `cortex-change serve --no-access-log --workers W` on a free loopback port and
drives N keep-alive clients, each looping over one lifecycle at a time: create a normal
deployment → assess (medium risk → technical-lead) → approve as tech-lead → implement → close
successful, each write carrying the ETag it read as If-Match. Every one of those five calls is a
state transition; the report gives transitions/s and latency per call type, errors by status,
the CPU each party used, then runs `cortex-change audit verify` on the store.

The load generator (standard library `http.client`, in `--client-procs` processes) runs on the
same cores as the server, and so does PostgreSQL when it is local: the report says how much CPU
each used. Exit status 1 when a backend's best run misses a budget, 2 when a run had errors or
the audit chain did not verify.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import common
from common import CLI, DEFAULT_PG, Store, fresh_store, machine_line, percentile, stop

BUDGETS = {"sqlite": 1500.0, "postgres": 1000.0}  # transitions/s, DESIGN.md "Performance budgets"
P99_BUDGET_MS = 50.0
KINDS = ("create", "assess", "approve", "implement", "close")
CREATE_BODY = {
    "type": "normal",
    "category": "deployment",
    "title": "Deploy build to the web tier",
    "description": "API benchmark lifecycle",
    "impact": "medium",
    "urgency": "medium",
}
MAX_ERRORS_PER_CLIENT = 200  # a client that keeps failing stops early instead of spinning

Call = tuple[str, float, float, int]  # kind, start (monotonic s), latency ms, status (0: connection)


# ----------------------------------------------------------------------------- load generator


class Client:
    """One keep-alive HTTP/1.1 connection driving lifecycles one call at a time."""

    def __init__(self, port: int, tokens: dict[str, str]) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.auth = {name: {"Authorization": f"Bearer {tok}"} for name, tok in tokens.items()}
        self.calls: list[Call] = []
        self.routes: Counter[str] = Counter()
        self.errors = 0

    def call(self, kind: str, path: str, who: str, body: Any = None, etag: str | None = None) -> Any:
        """One request; returns (status, headers, body bytes), or None after a connection error."""
        headers = dict(self.auth[who])
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if etag:
            headers["If-Match"] = etag
        start = time.monotonic()
        t0 = time.perf_counter()
        try:
            self.conn.request("POST", path, payload, headers)
            resp = self.conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException):
            self.calls.append((kind, start, (time.perf_counter() - t0) * 1000, 0))
            self.errors += 1
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            return None
        self.calls.append((kind, start, (time.perf_counter() - t0) * 1000, resp.status))
        if resp.status >= 300:
            self.errors += 1
            return None
        return resp, data

    def lifecycle(self) -> None:
        """create → assess → approve (unless auto-approved) → implement → close; stops at an error."""
        got = self.call("create", "/api/v1/changes", "alice", CREATE_BODY)
        if got is None:
            return
        path = got[0].getheader("Location")
        got = self.call("assess", f"{path}/assess", "alice", None, got[0].getheader("ETag"))
        if got is None:
            return
        doc = json.loads(got[1])
        self.routes[str(doc.get("approval_required"))] += 1
        if doc.get("state") != "approved":
            got = self.call(
                "approve", f"{path}/approve", "tech-lead", {"reason": "bench"}, got[0].getheader("ETag")
            )
            if got is None:
                return
        got = self.call("implement", f"{path}/implement", "alice", None, got[0].getheader("ETag"))
        if got is None:
            return
        closing = {"status": "successful", "notes": "bench"}
        self.call("close", f"{path}/close", "alice", closing, got[0].getheader("ETag"))


def _client_thread(client: Client, go: threading.Event, end: list[float]) -> None:
    go.wait()
    while time.monotonic() < end[0] and client.errors < MAX_ERRORS_PER_CLIENT:
        client.lifecycle()
    client.conn.close()


def client_process(
    port: int, tokens: dict[str, str], threads: int, ready: Any, start: Any, out: Any, seconds: float
) -> None:
    """A load-generator process: `threads` clients released together, CPU sampled over the window."""
    clients = [Client(port, tokens) for _ in range(threads)]
    go = threading.Event()
    end = [0.0]
    workers = [threading.Thread(target=_client_thread, args=(c, go, end), daemon=True) for c in clients]
    for w in workers:
        w.start()
    ready.put(os.getpid())
    while start.value == 0.0:
        time.sleep(0.005)
    measure_from, end[0] = start.value, start.value + seconds
    go.set()
    time.sleep(max(0.0, measure_from - time.monotonic()))
    cpu0 = time.process_time()
    time.sleep(max(0.0, end[0] - time.monotonic()))
    cpu1 = time.process_time()
    for w in workers:
        w.join(timeout=60)
    routes: Counter[str] = Counter()
    calls: list[Call] = []
    for c in clients:
        routes.update(c.routes)
        calls.extend(c.calls)
    out.put({"calls": calls, "routes": dict(routes), "cpu_s": cpu1 - cpu0})


# ----------------------------------------------------------------------------- measurements


def latency_row(ms: list[float], seconds: float) -> dict[str, float]:
    ms = sorted(ms)
    return {
        "count": len(ms),
        "per_s": len(ms) / seconds,
        "p50_ms": percentile(ms, 50),
        "p90_ms": percentile(ms, 90),
        "p99_ms": percentile(ms, 99),
        "max_ms": ms[-1] if ms else 0.0,
    }


def proc_tree_cpu(root: int) -> float:
    """CPU seconds (user + system) used so far by `root` and its descendants (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        fields = text[text.rfind(")") + 2 :].split()
        stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    tree, total = {root}, 0.0
    changed = True
    while changed:
        changed = False
        for pid, (ppid, _) in stats.items():
            if ppid in tree and pid not in tree:
                tree.add(pid)
                changed = True
    for pid in tree:
        total += stats.get(pid, (0, 0.0))[1]
    return total


def machine_cpu() -> tuple[float, float]:
    """(busy, idle) CPU seconds of the whole machine so far, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / tick, idle / tick


def wait_for_idle(limit_s: float, busy_cores: float = 0.3) -> float:
    """Wait (at most `limit_s`) for a second in which the machine uses < `busy_cores` of CPU.

    Returns the busy cores of the last second sampled, so the report can say how quiet it was.
    """
    deadline = time.monotonic() + limit_s
    while True:
        b0, _ = machine_cpu()
        time.sleep(1.0)
        b1, _ = machine_cpu()
        if b1 - b0 < busy_cores or time.monotonic() >= deadline:
            return b1 - b0


# ----------------------------------------------------------------------------- the CLI and the server


def cli(store: Store, *args: str, cwd: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CORTEX_CHANGE_DB": store.location}
    env.pop("CORTEX_CHANGE_CONFIG", None)
    return subprocess.run(
        [*CLI, "--db", store.location, *args],
        env=env,
        cwd=cwd,
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_server(store: Store, workers: int, cwd: str) -> tuple[subprocess.Popen[bytes], int, Path]:
    port = free_port()
    log = Path(cwd) / f"serve-{port}.log"
    env = {**os.environ, "CORTEX_CHANGE_DB": store.location}
    env.pop("CORTEX_CHANGE_CONFIG", None)
    # Throughput, not the per-identity limit (RATE_LIMIT_PER_MINUTE, default 600 a minute): the
    # benchmark's few tokens make thousands of requests a minute.
    env["RATE_LIMIT_PER_MINUTE"] = "0"
    cmd = [*CLI, "--db", store.location, "serve", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--workers", str(workers), "--no-access-log", "--log-level", "warning"]
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            cmd, env=env, cwd=cwd, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited ({proc.returncode}): {log.read_text()[-2000:]}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                conn.close()
                return proc, port, log
        time.sleep(0.1)
    stop_server(proc)
    raise RuntimeError(f"the server was not ready within 60 s: {log.read_text()[-2000:]}")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (uvicorn shuts its workers down), then SIGKILL to its own process group."""
    stop([proc], grace=20)


# ----------------------------------------------------------------------------- one run


@dataclass
class Config:
    backend: str
    workers: int
    clients: int
    client_procs: int
    seconds: float
    warmup: float


@dataclass
class Result:
    config: Config
    calls: dict[str, dict[str, float]] = field(default_factory=dict)
    transitions: dict[str, float] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    lifecycles_closed: int = 0
    routes: dict[str, int] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    audit: dict[str, Any] = field(default_factory=dict)
    budget: dict[str, Any] = field(default_factory=dict)
    busy_cores_before: float = 0.0
    server_log_tail: str = ""


def run_one(cfg: Config, pg_url: str, tmp: str, label: str, idle_wait: float) -> Result:
    store = fresh_store(cfg.backend, tmp, pg_url, label)
    try:
        tokens = {}
        for name in ("alice", "tech-lead"):
            done = cli(store, "token", "create", name, cwd=tmp)
            if done.returncode != 0:
                raise RuntimeError(f"token create {name} failed: {done.stderr.strip()}")
            tokens[name] = done.stdout.strip()
        proc, port, log = start_server(store, cfg.workers, tmp)
        try:
            busy = wait_for_idle(idle_wait)
            result = drive(cfg, port, tokens, proc.pid)
            result.busy_cores_before = busy
        finally:
            stop_server(proc)
        result.server_log_tail = "\n".join(log.read_text(errors="replace").splitlines()[-5:])
        started = time.perf_counter()
        done = cli(store, "audit", "verify", cwd=tmp)
        result.audit = {
            "exit": done.returncode,
            "ok": done.returncode == 0,
            "output": (done.stdout + done.stderr).strip(),
            "seconds": time.perf_counter() - started,
        }
        return result
    finally:
        if store.cleanup:
            store.cleanup()


def drive(cfg: Config, port: int, tokens: dict[str, str], server_pid: int) -> Result:
    ctx = mp.get_context("spawn")
    ready, out = ctx.Queue(), ctx.Queue()
    start = ctx.Value("d", 0.0)
    per_proc = [
        cfg.clients // cfg.client_procs + (i < cfg.clients % cfg.client_procs)
        for i in range(cfg.client_procs)
    ]
    procs = [
        ctx.Process(target=client_process, args=(port, tokens, n, ready, start, out, cfg.seconds))
        for n in per_proc
        if n
    ]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=60)
    t0 = time.monotonic() + 0.2
    measure_from, measure_to = t0 + cfg.warmup, t0 + cfg.warmup + cfg.seconds
    start.value = measure_from  # clients start at once; calls before measure_from are warm-up
    time.sleep(max(0.0, measure_from - time.monotonic()))
    srv0, (busy0, idle0) = proc_tree_cpu(server_pid), machine_cpu()
    time.sleep(max(0.0, measure_to - time.monotonic()))
    srv1, (busy1, idle1) = proc_tree_cpu(server_pid), machine_cpu()
    parts = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    result = summarise(cfg, parts, measure_from, measure_to)
    client_cpu = sum(part["cpu_s"] for part in parts)
    result.cpu = {
        "window_s": cfg.seconds,
        "cores": float(os.cpu_count() or 1),
        "server_s": srv1 - srv0,
        "load_generator_s": client_cpu,
        "other_s": max(0.0, (busy1 - busy0) - (srv1 - srv0) - client_cpu),
        "idle_s": idle1 - idle0,
    }
    return result


def summarise(cfg: Config, parts: list[dict[str, Any]], t0: float, t1: float) -> Result:
    result = Result(cfg)
    by_kind: dict[str, list[float]] = {k: [] for k in KINDS}
    errors: Counter[str] = Counter()
    closed = 0
    for part in parts:
        for kind, start, ms, status in part["calls"]:
            if not t0 <= start < t1:
                continue
            if 200 <= status < 300:
                by_kind[kind].append(ms)
                closed += kind == "close"
            else:
                errors[_error_class(status)] += 1
        for route, n in part["routes"].items():
            result.routes[route] = result.routes.get(route, 0) + n
    result.calls = {k: latency_row(v, cfg.seconds) for k, v in by_kind.items()}
    result.transitions = latency_row([ms for v in by_kind.values() for ms in v], cfg.seconds)
    result.errors = {k: errors.get(k, 0) for k in ("409", "412", "other 4xx", "5xx", "connection")}
    result.lifecycles_closed = closed
    rate_budget = BUDGETS[cfg.backend]
    result.budget = {
        "per_s": rate_budget,
        "p99_ms": P99_BUDGET_MS,
        "rate_met": result.transitions["per_s"] >= rate_budget,
        "p99_met": result.transitions["p99_ms"] <= P99_BUDGET_MS,
    }
    return result


def _error_class(status: int) -> str:
    if status == 0:
        return "connection"
    if status in (409, 412):
        return str(status)
    return "5xx" if status >= 500 else "other 4xx"


# ----------------------------------------------------------------------------- report


def machine(backends: list[str], pg_url: str) -> dict[str, Any]:
    """common.machine, plus the uvicorn the server runs on."""
    info = common.machine(backends, pg_url)
    with contextlib.suppress(ImportError):
        import uvicorn

        info["uvicorn"] = uvicorn.__version__
        info["uvicorn_loop_http"] = _uvicorn_impl()
    return info


def _uvicorn_impl() -> str:
    found = []
    for module in ("uvloop", "httptools"):
        try:
            __import__(module)
            found.append(module)
        except ImportError:
            pass
    return ", ".join(found) or "asyncio + h11 (no uvloop, no httptools)"


def print_machine(info: dict[str, Any]) -> None:
    print(machine_line(info))
    print(
        f"server: uvicorn {info.get('uvicorn', '?')} ({info.get('uvicorn_loop_http', '?')}); code at "
        f"{info['commit']}; load average before {info['loadavg_before'][0]:.2f}"
    )
    print(
        "note: the load generator (and PostgreSQL, when local) runs on the same cores as the API "
        "server; the CPU line of each run says who used what."
    )
    print(
        f"budgets (DESIGN.md): SQLite >= {BUDGETS['sqlite']:,.0f} transitions/s, PostgreSQL >= "
        f"{BUDGETS['postgres']:,.0f} /s, p99 <= {P99_BUDGET_MS:.0f} ms (2 cores)"
    )


def print_result(r: Result) -> None:
    c = r.config
    print()
    print(
        f"== {c.backend}: --workers {c.workers}, {c.clients} clients in {c.client_procs} process(es), "
        f"{c.seconds:g} s measured after {c.warmup:g} s warm-up"
    )
    print(f"{'call':<18}{'count':>8}{'/s':>9}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    rows = [*r.calls.items(), ("all transitions", r.transitions)]
    for kind, row in rows:
        print(
            f"{kind:<18}{row['count']:>8.0f}{row['per_s']:>9.1f}{row['p50_ms']:>9.1f}{row['p90_ms']:>9.1f}"
            f"{row['p99_ms']:>9.1f}{row['max_ms']:>9.1f}"
        )
    errs = ", ".join(f"{k}: {v}" for k, v in r.errors.items())
    routes = ", ".join(f"{k} {v}" for k, v in sorted(r.routes.items()))
    print(f"errors: {errs}")
    print(f"lifecycles closed in the window: {r.lifecycles_closed}; routes after assess: {routes}")
    u = r.cpu
    print(
        f"CPU over {u['window_s']:g} s x {u['cores']:.0f} cores: server {u['server_s']:.1f} s, "
        f"load generator {u['load_generator_s']:.1f} s, others (PostgreSQL, …) {u['other_s']:.1f} s, "
        f"idle {u['idle_s']:.1f} s (machine busy {r.busy_cores_before:.2f} cores just before)"
    )
    b = r.budget
    rate = "met" if b["rate_met"] else "MISSED"
    p99 = "met" if b["p99_met"] else "MISSED"
    print(
        f"budget: >= {b['per_s']:,.0f} /s: {r.transitions['per_s']:,.1f} /s {rate}; "
        f"p99 <= {b['p99_ms']:.0f} ms: {r.transitions['p99_ms']:.1f} ms {p99}"
    )
    verdict = "ok" if r.audit.get("ok") else f"FAILED (exit {r.audit.get('exit')})"
    print(f"audit verify: {verdict} in {r.audit.get('seconds', 0):.2f} s: {r.audit.get('output', '')}")


def best_of(results: list[Result]) -> Result:
    """The fastest run without errors whose p99 is within budget, else the fastest run."""

    def clean(r: Result) -> bool:
        return not any(r.errors.values()) and r.budget["p99_met"] and r.audit.get("ok", False)

    pool = [r for r in results if clean(r)] or results
    return max(pool, key=lambda r: r.transitions["per_s"])


def print_summary(results: list[Result]) -> None:
    print()
    print("summary (best: fastest run without errors whose p99 is within budget)")
    print(f"{'backend':<10}{'workers':>8}{'clients':>8}{'trans/s':>10}{'p99 ms':>9}{'errors':>8}  budget")
    for r in results:
        c, b = r.config, r.budget
        ok = "met" if b["rate_met"] and b["p99_met"] else "MISSED"
        print(
            f"{c.backend:<10}{c.workers:>8}{c.clients:>8}{r.transitions['per_s']:>10.1f}"
            f"{r.transitions['p99_ms']:>9.1f}{sum(r.errors.values()):>8}  {ok}"
        )
    for backend in dict.fromkeys(r.config.backend for r in results):
        best = best_of([r for r in results if r.config.backend == backend])
        c = best.config
        print(
            f"best {backend}: {best.transitions['per_s']:,.1f} transitions/s, p99 "
            f"{best.transitions['p99_ms']:.1f} ms with --workers {c.workers} --clients {c.clients}"
        )


# ----------------------------------------------------------------------------- main


def _ints(text: str) -> list[int]:
    values = [int(v) for v in text.split(",") if v.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("one or more positive whole numbers, comma-separated")
    return values


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="sqlite")
    p.add_argument("--clients", type=_ints, default=[4], help="concurrent clients; a list runs each")
    p.add_argument("--workers", type=_ints, default=[1], help="server processes; a list runs each")
    p.add_argument("--seconds", type=float, default=20.0, help="measured window per run")
    p.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds before the window")
    p.add_argument("--client-procs", type=int, default=0, help="load-generator processes (default: nproc)")
    p.add_argument(
        "--pg-url", default=DEFAULT_PG, help="an admin URL: a database is created and dropped on it"
    )
    p.add_argument(
        "--idle-wait",
        type=float,
        default=60.0,
        help="wait up to this long for an idle machine before each run",
    )
    p.add_argument("--json", action="store_true", help="print one JSON document instead of tables")
    a = p.parse_args(argv)
    if not 0 < a.seconds <= 600 or not 0 <= a.warmup <= 60:
        p.error("--seconds must be in (0, 600] and --warmup in [0, 60]")
    return a


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    backends = ["sqlite", "postgres"] if a.backend == "both" else [a.backend]
    info = machine(backends, a.pg_url)
    if not a.json:
        print_machine(info)
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="cortex-bench-api-") as tmp:
        for backend in backends:
            for workers in a.workers:
                for clients in a.clients:
                    procs = min(clients, a.client_procs or info["nproc"] or 1)
                    cfg = Config(backend, workers, clients, procs, a.seconds, a.warmup)
                    label = f"w{workers}c{clients}_{len(results)}"
                    result = run_one(cfg, a.pg_url, tmp, label, a.idle_wait)
                    results.append(result)
                    if not a.json:
                        print_result(result)
                        sys.stdout.flush()
    if a.json:
        print(json.dumps({"machine": info, "runs": [asdict(r) for r in results]}, indent=2))
    elif len(results) > 1:
        print_summary(results)
    if any(any(r.errors.values()) or not r.audit.get("ok") for r in results):
        return 2
    bests = [best_of([r for r in results if r.config.backend == b]) for b in backends]
    return 0 if all(r.budget["rate_met"] and r.budget["p99_met"] for r in bests) else 1


if __name__ == "__main__":
    sys.exit(main())
