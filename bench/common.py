"""What api.py and outbox.py share: a fresh store on either backend, stopping the processes they
start, percentiles, the machine.

Imported as `common` (a script's own folder is on sys.path). cli.py and scale.py keep their own
helpers: cli.py imports only the standard library modules it needs, so that its RSS floor stays low.
"""

from __future__ import annotations

import contextlib
import os
import platform
import signal
import sqlite3
import subprocess
import sys
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CLI = [sys.executable, "-m", "cortex_change"]
DEFAULT_PG = (
    os.environ.get("CORTEX_BENCH_POSTGRES_URL")
    or os.environ.get("CORTEX_TEST_POSTGRES_URL")
    or "postgresql://postgres@127.0.0.1:5432/postgres"
)


# ----------------------------------------------------------------------------- stores


@dataclass
class Store:
    backend: str
    location: str  # the SQLite file or the PostgreSQL URL
    cleanup: Any = None


def fresh_store(backend: str, tmp: str, pg_url: str, label: str) -> Store:
    """A new SQLite file `label`.db in `tmp`, or a new PostgreSQL database on the admin URL `pg_url`
    (`cleanup()` drops it)."""
    if backend == "sqlite":
        return Store(backend, os.path.join(tmp, f"{label}.db"))
    import psycopg

    name = f"cortex_bench_{os.getpid()}_{label}"
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    parts = urllib.parse.urlsplit(pg_url)

    def drop() -> None:
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return Store(backend, urllib.parse.urlunsplit(parts._replace(path=f"/{name}")), drop)


# ----------------------------------------------------------------------------- processes


def stop(procs: Sequence[subprocess.Popen[bytes]], grace: float) -> None:
    """SIGTERM to each that still runs, then SIGKILL to the process group (each was started with
    start_new_session) of any that has not exited `grace` seconds later."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


# ----------------------------------------------------------------------------- measurements


def percentile(sorted_ms: list[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list (0 for an empty one)."""
    if not sorted_ms:
        return 0.0
    rank = max(1, -(-len(sorted_ms) * p // 100))
    return sorted_ms[int(rank) - 1]


# ----------------------------------------------------------------------------- the machine


def machine(backends: list[str], pg_url: str) -> dict[str, Any]:
    """What the figures were taken on (and the PostgreSQL server, when one of `backends`)."""
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    info: dict[str, Any] = {
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu": cpu,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "loadavg_before": os.getloadavg(),
        "commit": _commit(),
    }
    if "postgres" in backends:
        import psycopg

        with psycopg.connect(pg_url, autocommit=True) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            info["postgresql"] = row[0] if row else "?"
            row = conn.execute("SHOW synchronous_commit").fetchone()
            info["postgresql_synchronous_commit"] = row[0] if row else "?"
        info["postgresql_host"] = urllib.parse.urlsplit(pg_url).hostname
    return info


def _commit() -> str:
    here = Path(__file__).resolve().parent.parent  # the repository root: `src` is relative to it
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=here, check=False, capture_output=True, text=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"],
            cwd=here,
            check=False,
            capture_output=True,
            text=True,
        )
    except OSError:
        return "?"
    return sha.stdout.strip() + (" (src/ modified)" if dirty.stdout.strip() else "")


def machine_line(info: dict[str, Any]) -> str:
    """The report's first line: the machine (`info` from `machine`)."""
    pg = f", PostgreSQL {info['postgresql']} on {info['postgresql_host']}" if "postgresql" in info else ""
    return (
        f"machine: nproc {info['nproc']}, CPU {info['cpu']!r}, {info['os']}, Python {info['python']}, "
        f"SQLite {info['sqlite']}{pg}"
    )
