"""Benchmark every CLI verb as a real subprocess: wall time per call and each child's peak RSS.

Run with the project's interpreter (the CLI is looked up beside it):

    .venv/bin/python bench/cli.py [--runs N] [--seed-changes N] [--json]

Standard library only in this process, so that it stays small: on Linux a child's ``ru_maxrss``
also counts the RSS of the parent it was spawned from (``vfork`` + ``exec`` records the parent's
high-water mark), so a child's figure is only meaningful above this process's own peak, which is
printed as the "RSS floor".
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

CLI_BUDGET_MS = 40.0
INTEGRATE_BUDGET_MS = 60.0  # `integrate …` one-shot: create + assess + approve + implement + close
CLI_BUDGET_MB = 40.0
USER = "bench"

# Fills a fresh store in one process through the services (the CLI's own code path, minus start-up):
# a mix of states so that show/list/metrics/audit see realistic records.
POPULATE = """
import json, sqlite3, sys
from cortex_change.services import changes as s, implementation as impl
from cortex_change.services.context import open_context
n = int(sys.argv[1])
ctx = open_context()
ids = []
for i in range(n):
    c = s.create_change(ctx, type="normal", category="deployment", title=f"Seed change {i}",
                        description="Roll out build %d to the web tier" % i, requested_by="seeder")
    ids.append(c.change_id)
    stage = i % 20
    if stage == 0:
        continue  # pending_assessment
    s.assess_change(ctx, change_id=c.change_id)
    if stage == 1:
        continue  # pending_approval
    if stage == 2:
        s.cancel_change(ctx, change_id=c.change_id, actor="seeder", reason="superseded")
        continue
    s.approve_change(ctx, change_id=c.change_id, approver="tech-lead", reason="reviewed")
    if stage == 3:
        continue  # approved
    impl.implement_change(ctx, change_id=c.change_id, actor="cortex-deployer")
    if stage == 4:
        continue  # implemented
    s.close_change(ctx, change_id=c.change_id, status="failed" if stage == 5 else "successful",
                   notes="verified", actor="cortex-deployer")
ctx.close()
print(json.dumps({"ids": ids, "sqlite": sqlite3.sqlite_version}))
"""


@dataclass
class Sample:
    ms: float
    rss_kib: int


@dataclass
class Result:
    name: str
    samples: list[Sample] = field(default_factory=list)
    budget_ms: float | None = CLI_BUDGET_MS
    budget_mb: float | None = CLI_BUDGET_MB
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
        fast = self.budget_ms is None or self.median_ms <= self.budget_ms
        small = self.budget_mb is None or self.max_rss_mb <= self.budget_mb
        return fast and small

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
            "ok": self.ok if self.budget_ms is not None else None,
            "note": self.note,
        }


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (p90 of 30 runs is the 27th fastest)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


class CommandFailed(RuntimeError):
    pass


def run_once(cmd: Sequence[str], env: dict[str, str], cwd: str) -> tuple[Sample, str]:
    """One subprocess: wall time from spawn to reaped, and its own rusage via wait4."""
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, env=env, cwd=cwd)
        assert proc.stdout is not None
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        proc.stdout.close()
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            message = err.read().decode(errors="replace").strip()
            raise CommandFailed(f"{' '.join(cmd)} exited {proc.returncode}: {message}")
    return Sample(elapsed * 1000, usage.ru_maxrss), out.decode()


def repeat(result: Result, commands: Sequence[Sequence[str]], env: dict[str, str], cwd: str) -> list[str]:
    """Run each command once, in order, recording one sample each; returns their stdout."""
    outputs = []
    for cmd in commands:
        sample, out = run_once(cmd, env, cwd)
        result.samples.append(sample)
        outputs.append(out)
    return outputs


def clean_env(db: str, pycache: str | None) -> dict[str, str]:
    """The caller's environment without any CORTEX_CHANGE_* setting, plus the bench's own.

    With `pycache`, byte code is cached there (as after any normal install) even if the caller
    set PYTHONDONTWRITEBYTECODE, which would make every call recompile the package (~60 ms).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORTEX_CHANGE_")}
    env.update(CORTEX_CHANGE_DB=db, CORTEX_CHANGE_USER=USER)
    if pycache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = pycache
    return env


def find_cli(python: str) -> str:
    beside = Path(python).parent / "cortex-change"
    if beside.exists():
        return str(beside)
    found = shutil.which("cortex-change")
    if not found:
        raise SystemExit("cortex-change not found beside the interpreter nor on PATH; pass --cli")
    return found


def machine(python: str) -> dict[str, str]:
    """What the figures were taken on."""
    cpu = ""
    try:
        for text in Path("/proc/cpuinfo").read_text().splitlines():
            if text.startswith("model name"):
                cpu = text.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    version = subprocess.run(
        [python, "-c", "import sys; print(sys.version.split()[0])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return {
        "nproc": str(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()),
        "cpu": cpu,
        "python": f"{version} ({python})",
        "platform": platform.platform(),
        "load avg": " ".join(f"{x:.2f}" for x in os.getloadavg()) + " (1/5/15 min, at the end)",
    }


def populate(python: str, env: dict[str, str], cwd: str, n: int) -> tuple[list[str], str]:
    """Seed `n` changes in a separate process (so this one stays small)."""
    done = subprocess.run(
        [python, "-c", POPULATE, str(n)], env=env, cwd=cwd, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"populating the store failed:\n{done.stderr}")
    data = json.loads(done.stdout)
    return list(data["ids"]), str(data["sqlite"])


def lifecycle(cli: str, runs: int, env: dict[str, str], cwd: str) -> list[Result]:
    """create → assess → approve → implement → close, each verb on `runs` fresh changes."""
    create = Result("create")
    ids = [
        out.strip().splitlines()[-1]
        for out in repeat(
            create,
            [
                [cli, "create", "normal", "deployment", f"Bench change {i}", "Deploy build"]
                for i in range(runs)
            ],
            env,
            cwd,
        )
    ]
    steps: list[tuple[str, Callable[[str], list[str]]]] = [
        ("assess", lambda i: [cli, "assess", i]),
        ("approve", lambda i: [cli, "approve", i, "tech-lead", "looks fine"]),
        ("implement", lambda i: [cli, "implement", i]),
        ("close", lambda i: [cli, "close", i, "successful", "deployed and verified"]),
    ]
    results = [create]
    for name, build in steps:
        result = Result(name)
        repeat(result, [build(i) for i in ids], env, cwd)
        results.append(result)
    return results


# The one-shot carries the change out itself (IMPLEMENTATION_DELAY=0) with a one-step runbook, so
# the figure covers create + assess + approve + implement (one real subprocess) + close.
ONE_SHOT_TEMPLATE = """
[integrations.kubernetes.restart_pod]
summary = "Restart a pod (bench: the plan runs `true`)"
type = "standard"
category = "infrastructure"
model = "worker-restart"
impact = "low"
text_field = "target"
title = "Restart {target}"
implementation_plan = { steps = [{ runbook = "bench-true" }] }

# Automatic routes run runbooks only (SPEC §11).
[runbooks.bench-true]
version = 1
run = ["true"]
"""


def integrations(cli: str, runs: int, env: dict[str, str], cwd: str) -> list[Result]:
    """The one-shot standard change: `integrate kubernetes restart_pod`, one new target per call.

    The worker-restart model allows a few restarts of one target per hour (more are reclassified
    as normal changes), so each call names its own worker; each change must end closed
    successful, its plan run.
    """
    config = Path(cwd) / "one-shot.toml"
    config.write_text(ONE_SHOT_TEMPLATE, "utf-8")
    env = {**env, "IMPLEMENTATION_DELAY": "0", "CORTEX_CHANGE_CONFIG": str(config)}
    result = Result("integrate kubernetes restart_pod", budget_ms=INTEGRATE_BUDGET_MS)
    outputs = repeat(
        result,
        [[cli, "integrate", "kubernetes", "restart_pod", f"bench-worker-{i:04d}"] for i in range(runs)],
        env,
        cwd,
    )
    for out in outputs:  # checked after the timed calls, untimed
        change_id = out.strip().splitlines()[-1]
        doc = json.loads(run_once([cli, "show", change_id], env, cwd)[1])
        if (doc.get("type"), doc.get("closure_status")) != ("standard", "successful"):
            raise SystemExit(f"integrate did not run the one-shot standard change: {change_id} {doc}")
    return [result]


def reads(cli: str, runs: int, seeded: Sequence[str], env: dict[str, str], cwd: str) -> list[Result]:
    """show/list/metrics/audit verify on the seeded store (plus what the lifecycle added)."""
    plans: list[tuple[str, Callable[[int], list[str]]]] = [
        ("show", lambda i: [cli, "show", seeded[(i * 7) % len(seeded)]]),
        ("list", lambda i: [cli, "list"]),
        ("list closed", lambda i: [cli, "list", "closed"]),
        ("list pending", lambda i: [cli, "list", "pending"]),
        ("metrics today", lambda i: [cli, "metrics", "today"]),
        ("metrics month", lambda i: [cli, "metrics", "month"]),
        ("audit verify", lambda i: [cli, "audit", "verify"]),
    ]
    results = []
    for name, build in plans:
        result = Result(name)
        repeat(result, [build(i) for i in range(runs)], env, cwd)
        results.append(result)
    return results


# Prints the standard-library modules that importing the CLI's entry module adds to a bare
# interpreter (pseudo-modules without a spec, such as typing.io, left out).
STDLIB_OF_CLI = """
import sys
before = set(sys.modules)
import cortex_change.cli.main
added = set(sys.modules) - before
print(" ".join(sorted(m for m in added if m.split(".")[0] in sys.stdlib_module_names
                      and getattr(sys.modules[m], "__spec__", None) is not None)))
"""


def floors(python: str, runs: int, env: dict[str, str], cwd: str) -> list[Result]:
    """The interpreter's own start-up; plus the standard-library modules the CLI imports; plus
    importing the CLI itself (no work done)."""
    bare = Result("python -c pass", budget_ms=None, budget_mb=None, note="interpreter floor")
    repeat(bare, [[python, "-c", "pass"]] * runs, env, cwd)
    modules = run_once([python, "-c", STDLIB_OF_CLI], env, cwd)[1].split()
    stdlib = Result(
        "python -c 'import <its stdlib>'",
        budget_ms=None,
        budget_mb=None,
        note=f"floor + the {len(modules)} stdlib modules cli.main imports",
    )
    repeat(stdlib, [[python, "-c", "import " + ", ".join(modules)]] * runs, env, cwd)
    imports = Result(
        "python -c 'import cli.main'", budget_ms=None, budget_mb=None, note="floor + imports, no work"
    )
    repeat(imports, [[python, "-c", "import cortex_change.cli.main"]] * runs, env, cwd)
    return [bare, stdlib, imports]


def table(results: Sequence[Result]) -> str:
    head = f"{'verb':<34}{'runs':>5}{'median ms':>11}{'p90 ms':>9}{'max RSS MB':>12}  {'budget':<16}status"
    lines = [head, "-" * len(head)]
    for r in results:
        if r.budget_ms is None:
            budget, status = "-", r.note
        else:
            budget = f"≤{r.budget_ms:g} ms, ≤{r.budget_mb:g} MB"
            status = "ok" if r.ok else "MISSED"
        lines.append(
            f"{r.name:<34}{len(r.samples):>5}{r.median_ms:>11.1f}{r.p90_ms:>9.1f}"
            f"{r.max_rss_mb:>12.1f}  {budget:<16}{status}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=30, help="calls per verb (default 30)")
    parser.add_argument("--seed-changes", type=int, default=200, help="changes in the read store")
    parser.add_argument("--python", default=sys.executable, help="interpreter for the floor and seeding")
    parser.add_argument("--cli", help="the cortex-change executable (default: beside --python)")
    parser.add_argument(
        "--no-bytecode-cache",
        action="store_true",
        help="leave PYTHONDONTWRITEBYTECODE as the caller set it (default: cache .pyc in the temp dir)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary database")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    cli = args.cli or find_cli(args.python)
    workdir = tempfile.mkdtemp(prefix="cortex-change-bench-")
    db = str(Path(workdir) / "bench.db")
    env = clean_env(db, None if args.no_bytecode_cache else str(Path(workdir) / "pycache"))
    try:
        seeded, sqlite_version = populate(args.python, env, workdir, args.seed_changes)
        for cmd in ([args.python, "-c", "pass"], [cli, "list"], [cli, "metrics"]):
            run_once(cmd, env, workdir)  # warm the page cache and write the .pyc files
        results = floors(args.python, args.runs, env, workdir)
        results += lifecycle(cli, args.runs, env, workdir)
        results += integrations(cli, args.runs, env, workdir)
        results += reads(cli, args.runs, seeded, env, workdir)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    info = machine(args.python) | {
        "sqlite": sqlite_version,
        "tmpdir": workdir + (" (kept)" if args.keep else " (removed)"),
        "bytecode": "as the caller's environment says"
        if args.no_bytecode_cache
        else "cached (PYTHONPYCACHEPREFIX in tmpdir)",
        "rss_floor_mb": f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f}",
    }
    if args.json:
        print(json.dumps({"machine": info, "results": [r.as_dict() for r in results]}, indent=2))
    else:
        for key, value in info.items():
            print(f"{key:>13}: {value}")
        print(
            f"{'store':>13}: {args.seed_changes} seeded changes "
            f"+ {args.runs} per lifecycle verb and per integrate\n"
        )
        print(table(results))
        print(
            "\nRSS below the 'rss_floor_mb' above is this process's own peak, not the child's "
            "(Linux counts the parent's high-water mark at exec)."
        )
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
