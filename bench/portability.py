"""Moving a store (issue 18, docs/portability.md): `export --jsonl` end to end at two sizes with its
peak RSS (streaming: memory stays flat as the store grows), and `migrate-store` into a fresh
PostgreSQL database, each timed as a subprocess beside the floor (`python -c pass`), interleaved.

    .venv/bin/python bench/portability.py [--changes 1000000] [--small N] [--pg-url URL] [--no-migrate]
                                          [--keep] [--json]

The stores are scale.py's (built once by build_store.py and cached at
$TMPDIR/cortex-change-scale-N.db): each change's life replayed through the project's domain code
and the rows written directly in bulk (the audit chain hashed as store/audit.py does), so the
export reads what a real store holds. 1 000 000 changes make ~6.9 M events and a ~9 GB file, and
take ~9 minutes to build the first time. Budgets: export of 1 M changes ≤ 60 s with flat memory,
migrate-store of 1 M changes ≤ 5 min.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import common  # noqa: E402  (bench/ on the path first)
import scale  # noqa: E402

EXPORT_SECONDS, MIGRATE_SECONDS = 60.0, 300.0  # at 1 000 000 changes
# Runs one command as its only child: its wall time, and its peak RSS (RUSAGE_CHILDREN's
# ru_maxrss is the largest child's, so each measurement needs a parent of its own).
RUNNER = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"code": done.returncode, "seconds": seconds, "rss_mb": peak / 1024,
                  "err": done.stderr.decode()[-2000:]}))
"""


def measure(argv: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", RUNNER, *argv], env=env, capture_output=True, text=True, check=True
    )
    result: dict[str, Any] = json.loads(out.stdout)
    if result["code"] != 0:
        raise SystemExit(f"{' '.join(argv[:4])} ... failed ({result['code']}): {result['err']}")
    return result


def floor() -> dict[str, Any]:
    return measure([sys.executable, "-c", "pass"])


def store(n: int) -> tuple[Path, dict[str, Any]]:
    """scale.py's cached store of `n` changes, built if missing (its defaults)."""
    db = Path(tempfile.gettempdir()) / f"cortex-change-scale-{n}.db"
    want = {"format": scale.BUILD_FORMAT, "n": n, "per_day": 1000, "services": 500, "seed": 1}
    meta = scale.cached(db, want)
    if meta is None:
        print(f"building {db} ({n:,} changes) ...", file=sys.stderr)
        for suffix in ("", "-wal", "-shm", ".meta.json"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        child = [sys.executable, str(HERE / "scale.py"), "--build-only", "--db", str(db), "--n", str(n)]
        subprocess.run(child, check=True)
        meta = scale.cached(db, want)
        assert meta is not None
    return db, scale.upgrade(db, meta)


def cli_env(db: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORTEX_")}
    return env | {"CORTEX_CHANGE_DB": db}


def time_export(db: Path, work: Path, keep: bool) -> dict[str, Any]:
    out = work / f"{db.stem}.jsonl"
    before = floor()
    run = measure([*common.CLI, "export", "--jsonl", str(out)], cli_env(str(db)))
    after = floor()
    size = out.stat().st_size
    if not keep:
        out.unlink()
    return {"seconds": run["seconds"], "rss_mb": run["rss_mb"], "bytes": size, "floor": [before, after]}


def time_migrate(db: Path, work: Path, pg_url: str) -> dict[str, Any]:
    target = common.fresh_store("postgres", str(work), pg_url, f"move_{os.getpid()}")
    try:
        before = floor()
        run = measure([*common.CLI, "migrate-store", "--to", target.location], cli_env(str(db)))
        after = floor()
    finally:
        target.cleanup()
    return {"seconds": run["seconds"], "rss_mb": run["rss_mb"], "floor": [before, after]}


def line(what: str, n: int, r: dict[str, Any], budget: float | None) -> str:
    fl = sum(f["seconds"] for f in r["floor"]) / len(r["floor"]) * 1000
    extra = f", {r['bytes'] / 2**30:.2f} GiB written" if "bytes" in r else ""
    verdict = ""
    if budget is not None:
        scaled = budget * n / 1_000_000
        ok = "ok" if r["seconds"] <= scaled else "OVER"
        verdict = f"  (budget scaled linearly to this size: {scaled:.1f} s, {ok})"
    return (
        f"{what:<14}{n:>10,} changes  {r['seconds']:8.1f} s  peak RSS {r['rss_mb']:6.1f} MB  "
        f"floor {fl:.0f} ms{extra}{verdict}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--changes", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, help="the second, smaller size (default changes / 10)")
    parser.add_argument("--pg-url", default=common.DEFAULT_PG, help="an admin URL: a database is made there")
    parser.add_argument("--no-migrate", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the JSONL files")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    sizes = sorted({args.small or max(args.changes // 10, 1), args.changes})
    info = common.machine([] if args.no_migrate else ["postgres"], args.pg_url)
    report: dict[str, Any] = {"machine": info, "export": {}, "migrate": {}}
    with tempfile.TemporaryDirectory(prefix="cortex-move-") as tmp:
        work = Path(tmp)
        for n in sizes:
            db, meta = store(n)
            report["export"][n] = time_export(db, work, args.keep) | {"events": meta.get("events")}
            print(line("export", n, report["export"][n], EXPORT_SECONDS), file=sys.stderr)
        if not args.no_migrate:
            db, _ = store(args.changes)
            report["migrate"][args.changes] = time_migrate(db, work, args.pg_url)
            print(
                line("migrate-store", args.changes, report["migrate"][args.changes], MIGRATE_SECONDS),
                file=sys.stderr,
            )
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(common.machine_line(info))
    for n, r in report["export"].items():
        print(line("export", n, r, EXPORT_SECONDS) + f"; {r['events']:,} events")
    for n, r in report["migrate"].items():
        print(line("migrate-store", n, r, MIGRATE_SECONDS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
