"""Benchmark every CLI verb as a real subprocess, each call beside a call of the floor script.

Run with the project's interpreter:

    .venv/bin/python bench/cli.py [--runs N] [--seed-changes N] [--in-place] [--ref REV] [--json]

By default the project is installed as a user gets it: a wheel built from a copy of the working
tree (or of `--ref`), `pip install --no-deps` into a fresh venv, `python -m compileall`; that venv's
`cortex-change` and `python` are measured. `--in-place` measures the current venv's executable.

The budgets (DESIGN.md "Performance budgets", issue 12) are relative to the *floor*: a Python
script in the same venv that imports sqlite3 and json, opens the store, reads one change and prints
it. Every verb call is preceded by a floor call, so machine noise hits both alike; a verb's figure
is its median minus the median of the floor calls made just before it.

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

REPO = Path(__file__).resolve().parent.parent
RSS_BUDGET_MB = 40.0
# Over the floor's median, per the issue: reads, lifecycle writes, `implement` with a text plan,
# and the one-shot `integrate` (create + assess + pre-approve + implement + close in one command).
READ_MS = 10.0
WRITE_MS = 20.0
IMPLEMENT_MS = 30.0
ONE_SHOT_MS = 40.0
USER = "bench"
TEXT_PLAN = json.dumps({"steps": ["Deploy the build with the usual script", "Check the dashboards"]})
ROLLBACK_PLAN = json.dumps({"steps": ["Redeploy the previous build"]})

# The floor (DESIGN.md): in the same venv, a script that imports sqlite3 and json, opens the store,
# reads one change's document (the `doc` column of `changes`, as `show` does) and prints it as JSON.
FLOOR_SCRIPT = '''\
"""The floor: open the store, read one change, print it as JSON."""
import json
import os
import sqlite3
import sys

conn = sqlite3.connect(os.environ["CORTEX_CHANGE_DB"])
row = conn.execute("SELECT doc FROM changes WHERE change_id=?", (sys.argv[1],)).fetchone()
conn.close()
if row is None:
    sys.exit(f"{sys.argv[1]}: not found")
print(json.dumps(json.loads(row[0]), ensure_ascii=False, indent=2))
'''

# Fills a fresh store in one process through the services (the CLI's own code path, minus start-up):
# a mix of states so that show/list/metrics/audit see realistic records; then changes left pending
# approval for `reject`.
POPULATE = """
import json, sqlite3, sys
from cortex_change.domain.fields import ChangeRequest
from cortex_change.services import changes as s, implementation as impl
from cortex_change.services.context import open_context
n, pending = int(sys.argv[1]), int(sys.argv[2])
ctx = open_context()
ids = []
for i in range(n):
    c = s.create_change(ctx, ChangeRequest.of(dict(
        type="normal", category="deployment", title=f"Seed change {i}",
        description="Roll out build %d to the web tier" % i, requested_by="seeder")))
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
to_reject = []
for i in range(pending):
    c = s.create_change(ctx, ChangeRequest.of(dict(
        type="normal", category="deployment", title=f"Change to reject {i}",
        description="Roll out an untested build", requested_by="seeder")))
    s.assess_change(ctx, change_id=c.change_id)
    to_reject.append(c.change_id)
ctx.close()
print(json.dumps({"ids": ids, "to_reject": to_reject, "sqlite": sqlite3.sqlite_version}))
"""

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

# Runs one CLI command in process (argv[2:]) and, at exit, writes to argv[1] which of the modules
# it loaded have a current .pyc where this interpreter looks for one (PYTHONPYCACHEPREFIX
# included): the magic number, then the source's mtime and size (or a hash-based .pyc).
BYTECODE_CHECK = """
import atexit, importlib.util, json, os, sys

def report(path=sys.argv[1]):
    checked, stale = [], []
    for name, module in sorted(sys.modules.items()):
        spec = getattr(module, "__spec__", None)
        origin, cached = getattr(spec, "origin", None), getattr(spec, "cached", None)
        if not (origin and cached and origin.endswith(".py")):
            continue
        checked.append(name)
        try:
            with open(cached, "rb") as f:
                head = f.read(16)
            st = os.stat(origin)
            ok = head[:4] == importlib.util.MAGIC_NUMBER and (
                int.from_bytes(head[4:8], "little") != 0
                or (int.from_bytes(head[8:12], "little") == int(st.st_mtime) & 0xFFFFFFFF
                    and int.from_bytes(head[12:16], "little") == st.st_size & 0xFFFFFFFF))
        except OSError:
            ok = False
        if not ok:
            stale.append(name)
    import cortex_change
    with open(path, "w") as f:
        json.dump({"checked": checked, "stale": stale, "package": os.path.dirname(cortex_change.__file__),
                   "dont_write_bytecode": sys.dont_write_bytecode, "pycache_prefix": sys.pycache_prefix}, f)

atexit.register(report)
sys.argv = ["cortex-change", *sys.argv[2:]]
from cortex_change.cli.main import main
sys.exit(main())
"""

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


@dataclass
class Sample:
    ms: float
    rss_kib: int


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (p90 of 30 runs is the 27th fastest)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Verb:
    """One row: a command per round (round index → argv), its samples and the floor call before each."""

    name: str
    argv: Callable[[int], list[str]]
    over_floor_ms: float | None = None  # None: a reference row, not judged
    env: dict[str, str] | None = None  # None: the bench's common environment
    note: str = ""
    outputs: list[str] = field(default_factory=list)  # stdout of every round, warm-up included
    samples: list[Sample] = field(default_factory=list)
    floors: list[Sample] = field(default_factory=list)

    @property
    def median_ms(self) -> float:
        return statistics.median(s.ms for s in self.samples)

    @property
    def p90_ms(self) -> float:
        return percentile([s.ms for s in self.samples], 90)

    @property
    def floor_ms(self) -> float:
        return statistics.median(s.ms for s in self.floors)

    @property
    def diff_ms(self) -> float:
        return self.median_ms - self.floor_ms

    @property
    def max_rss_mb(self) -> float:
        return max(s.rss_kib for s in self.samples) / 1024

    @property
    def fast(self) -> bool:
        return self.over_floor_ms is None or self.diff_ms <= self.over_floor_ms

    @property
    def small(self) -> bool:
        return self.over_floor_ms is None or self.max_rss_mb <= RSS_BUDGET_MB

    @property
    def ok(self) -> bool:
        return self.fast and self.small

    @property
    def status(self) -> str:
        if self.over_floor_ms is None:
            return self.note
        if self.ok:
            return "met"
        return "MISSED" + ("" if self.small else " (RSS)" if self.fast else " (time, RSS)")

    def as_dict(self) -> dict[str, object]:
        judged = self.over_floor_ms is not None
        return {
            "name": self.name,
            "runs": len(self.samples),
            "median_ms": round(self.median_ms, 2),
            "p90_ms": round(self.p90_ms, 2),
            "min_ms": round(min(s.ms for s in self.samples), 2),
            "floor_median_ms": round(self.floor_ms, 2),
            "over_floor_ms": round(self.diff_ms, 2),
            "budget_over_floor_ms": self.over_floor_ms,
            "max_rss_mb": round(self.max_rss_mb, 1),
            "budget_mb": RSS_BUDGET_MB if judged else None,
            "ok": self.ok if judged else None,
            "note": self.note,
        }


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


def step(cmd: Sequence[str], what: str, cwd: str | None = None) -> str:
    """An untimed set-up command; its stdout, or exit naming `what` with its stderr."""
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{what} failed ({' '.join(cmd)}):\n{done.stdout}{done.stderr}")
    return done.stdout


# ----------------------------------------------------------------------------- the install


@dataclass
class Install:
    python: str
    cli: str
    how: str
    pycache: str | None = None  # PYTHONPYCACHEPREFIX for the children (in place only)


def source_state(ref: str | None) -> str:
    """The commit measured, and whether the working tree's src/ differs from it."""
    rev = step(["git", "rev-parse", "--short", ref or "HEAD"], "git rev-parse", str(REPO)).strip()
    if ref:
        return f"{ref} = {rev}"
    dirty = step(["git", "status", "--porcelain", "--", "src", "pyproject.toml"], "git status", str(REPO))
    return rev + (" + uncommitted changes in src/" if dirty.strip() else " (src/ clean)")


def copy_source(ref: str | None, dest: Path) -> None:
    """What the wheel is built from: pyproject.toml, README.md and src/, copied so the build writes
    its `build/` and `*.egg-info` there and not into the working tree."""
    dest.mkdir()
    parts = ["pyproject.toml", "README.md", "src"]
    if ref:  # `git archive | tar -x`, not tarfile: this process stays small (see the RSS floor)
        archive = subprocess.Popen(["git", "archive", ref, *parts], cwd=REPO, stdout=subprocess.PIPE)
        untar = subprocess.run(["tar", "-x", "-C", str(dest)], stdin=archive.stdout, check=False)
        assert archive.stdout is not None
        archive.stdout.close()
        if archive.wait() != 0 or untar.returncode != 0:
            raise SystemExit(f"git archive {ref} | tar -x failed")
        return
    for part in parts:
        if (REPO / part).is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
            shutil.copytree(REPO / part, dest / part, ignore=ignore)
        else:
            shutil.copy2(REPO / part, dest / part)


def install_wheel(python: str, workdir: Path, ref: str | None) -> Install:
    """Build a wheel of the project, install it alone into a fresh venv, compile its byte code."""
    started = time.perf_counter()
    source, dist, venv = workdir / "source", workdir / "dist", workdir / "venv"
    copy_source(ref, source)
    step(
        [python, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(source)], "building the wheel"
    )
    wheels = sorted(dist.glob("cortex_change-*.whl"))
    if len(wheels) != 1:
        raise SystemExit(f"expected one cortex_change wheel in {dist}, found {wheels}")
    step([python, "-m", "venv", str(venv)], "python -m venv")
    vpy = str(venv / "bin" / "python")
    install = [vpy, "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheels[0])]
    step(install, "installing the wheel")
    package = step(
        [vpy, "-c", "import cortex_change, os; print(os.path.dirname(cortex_change.__file__))"], "import"
    )
    step([vpy, "-m", "compileall", "-q", package.strip()], "compileall")
    seconds = time.perf_counter() - started
    how = f"{wheels[0].name} from {source_state(ref)}, pip install --no-deps into a fresh venv, compileall"
    return Install(vpy, str(venv / "bin" / "cortex-change"), f"{how} ({seconds:.1f} s)")


def install_in_place(python: str, cli: str | None, workdir: Path, bytecode_cache: bool) -> Install:
    """The current venv's executable (an editable install reads src/ directly)."""
    if cli is None:
        beside = Path(python).parent / "cortex-change"
        found = str(beside) if beside.exists() else shutil.which("cortex-change")
        if not found:
            raise SystemExit("cortex-change not found beside the interpreter nor on PATH; pass --cli")
        cli = found
    pycache = str(workdir / "pycache") if bytecode_cache else None
    return Install(python, cli, f"in place: {cli} ({source_state(None)})", pycache)


def child_env(db: str, install: Install, bytecode_cache: bool, in_place: bool) -> dict[str, str]:
    """The caller's environment without any CORTEX_CHANGE_* setting, plus the bench's own.

    PYTHONDONTWRITEBYTECODE is dropped (unless --no-bytecode-cache) so that a module without a
    .pyc is compiled once, in the warm-up round, as on a user's machine, and not on every call. In
    place, .pyc files go under PYTHONPYCACHEPREFIX in the temporary directory, not into src/.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORTEX_CHANGE_")}
    if not in_place:  # the fresh venv alone, as a user has it
        for name in ("PYTHONPATH", "PYTHONHOME", "PYTHONPYCACHEPREFIX"):
            env.pop(name, None)
    if bytecode_cache:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    if install.pycache is not None:
        env["PYTHONPYCACHEPREFIX"] = install.pycache
    env.update(CORTEX_CHANGE_DB=db, CORTEX_CHANGE_USER=USER)
    return env


# ----------------------------------------------------------------------------- the verbs


def last_line(out: str) -> str:
    return out.strip().splitlines()[-1]


def verbs(
    cli: str,
    python: str,
    seeded: Sequence[str],
    to_reject: Sequence[str],
    stdlib: str,
    one_shot_env: dict[str, str],
) -> list[Verb]:
    """Every row, in the order they run within a round (a round's lifecycle is one new change)."""
    create = Verb(
        "create",
        lambda k: [
            cli,
            "create",
            "normal",
            "deployment",
            f"Bench change {k}",
            "Deploy build",
            "--implementation-plan",
            TEXT_PLAN,
            "--rollback-plan",
            ROLLBACK_PLAN,
        ],
        WRITE_MS,
    )

    def created(k: int) -> str:
        return last_line(create.outputs[k])

    def show(k: int) -> list[str]:
        return [cli, "show", seeded[(k * 7) % len(seeded)]]

    return [
        Verb("python -c pass", lambda k: [python, "-c", "pass"], note="interpreter start-up"),
        Verb(
            "python -c 'import <its stdlib>'",
            lambda k: [python, "-c", "import " + stdlib],
            note=f"+ the {len(stdlib.split(','))} stdlib modules cli.main imports",
        ),
        Verb(
            "python -c 'import cli.main'",
            lambda k: [python, "-c", "import cortex_change.cli.main"],
            note="+ the CLI's imports, no work",
        ),
        create,
        Verb("assess", lambda k: [cli, "assess", created(k)], WRITE_MS),
        Verb("approve", lambda k: [cli, "approve", created(k), "tech-lead", "looks fine"], WRITE_MS),
        Verb("implement (text plan)", lambda k: [cli, "implement", created(k)], IMPLEMENT_MS),
        Verb("close", lambda k: [cli, "close", created(k), "successful", "deployed and verified"], WRITE_MS),
        Verb("reject", lambda k: [cli, "reject", to_reject[k], "tech-lead", "not tested"], WRITE_MS),
        Verb(
            "integrate kubernetes restart_pod",
            lambda k: [cli, "integrate", "kubernetes", "restart_pod", f"bench-worker-{k:04d}"],
            ONE_SHOT_MS,
            env=one_shot_env,
        ),
        Verb("show", show, READ_MS),
        Verb("list", lambda k: [cli, "list"], READ_MS),
        Verb("list closed", lambda k: [cli, "list", "closed"], READ_MS),
        Verb("list pending", lambda k: [cli, "list", "pending"], READ_MS),
        Verb("metrics today", lambda k: [cli, "metrics", "today"], READ_MS),
        Verb("metrics month", lambda k: [cli, "metrics", "month"], READ_MS),
        Verb("audit verify", lambda k: [cli, "audit", "verify"], READ_MS),
    ]


def measure(
    rows: Sequence[Verb],
    floor: Callable[[int, int], list[str]],
    env: dict[str, str],
    cwd: str,
    runs: int,
    warmup: int,
) -> Verb:
    """Round-robin: in every round, each row's call right after a floor call. Returns the floor row
    (every floor sample of the measured rounds)."""
    progress = sys.stderr.isatty()
    everything = Verb("floor: read one change", lambda k: [], note="python + sqlite3 + json: one change")
    for k in range(warmup + runs):
        if progress:
            print(f"round {k + 1}/{warmup + runs}", end="\r", file=sys.stderr, flush=True)
        for i, row in enumerate(rows):
            base, _ = run_once(floor(k, i), env, cwd)
            sample, out = run_once(row.argv(k), row.env or env, cwd)
            row.outputs.append(out)
            if k >= warmup:
                row.floors.append(base)
                row.samples.append(sample)
                everything.samples.append(base)
                everything.floors.append(base)
    if progress:
        print(file=sys.stderr)
    return everything


def bytecode_report(
    python: str, checks: Sequence[tuple[str, list[str], dict[str, str]]], cwd: str
) -> dict[str, str]:
    """Run a few verbs in process after the measured rounds (untimed) and say whether every module
    they loaded, the project's and the standard library's, had a current .pyc."""
    checked: set[str] = set()
    stale: set[str] = set()
    out = Path(cwd) / "bytecode.json"
    for _, cmd, env in checks:
        run_once([python, "-c", BYTECODE_CHECK, str(out), *cmd], env, cwd)
        found = json.loads(out.read_text("utf-8"))
        checked.update(found["checked"])
        stale.update(found["stale"])
    verbs = ", ".join(label for label, _, _ in checks)
    summary = (
        f"{len(checked) - len(stale)} of the {len(checked)} modules loaded by {verbs} have a current .pyc"
        + (f" (not: {', '.join(sorted(stale))})" if stale else "")
        + f"; children run with PYTHONDONTWRITEBYTECODE {'set' if found['dont_write_bytecode'] else 'unset'}"
        + (f", PYTHONPYCACHEPREFIX {found['pycache_prefix']}" if found["pycache_prefix"] else "")
    )
    return {"package": str(found["package"]), "summary": summary}


def check_one_shots(row: Verb, cli: str, env: dict[str, str], cwd: str) -> None:
    """After the timed calls, untimed: every `integrate` made a standard change, closed successful."""
    for out in row.outputs:
        change_id = last_line(out)
        doc = json.loads(run_once([cli, "show", change_id], env, cwd)[1])
        if (doc.get("type"), doc.get("closure_status")) != ("standard", "successful"):
            raise SystemExit(f"integrate did not run the one-shot standard change: {change_id} {doc}")


# ----------------------------------------------------------------------------- the report


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
    version = step([python, "-c", "import sys; print(sys.version.split()[0])"], "python --version").strip()
    nproc = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "machine": f"nproc {nproc}, CPU {cpu!r}, {platform.system()} {platform.release()}, Python {version}",
        "load avg": " ".join(f"{x:.2f}" for x in os.getloadavg()) + " (1/5/15 min, at the end)",
    }


def table(rows: Sequence[Verb]) -> str:
    head = (
        f"{'verb':<33}{'runs':>5}{'median':>8}{'floor':>7}{'diff':>7}  {'budget':<22}"
        f"{'p90':>7}{'max RSS':>9}  status"
    )
    units = f"{'':<38}{'ms':>8}{'ms':>7}{'ms':>7}  {'':<22}{'ms':>7}{'MB':>9}"
    lines = [head, units, "-" * (len(head) + 12)]
    for r in rows:
        judged = r.over_floor_ms is not None
        budget = f"floor+{r.over_floor_ms:g} ms, ≤{RSS_BUDGET_MB:g} MB" if judged else "-"
        floor = f"{r.floor_ms:>7.1f}{r.diff_ms:>+7.1f}" if r.name != "floor: read one change" else f"{'':>14}"
        lines.append(
            f"{r.name:<33}{len(r.samples):>5}{r.median_ms:>8.1f}{floor}  {budget:<22}"
            f"{r.p90_ms:>7.1f}{r.max_rss_mb:>9.1f}  {r.status}"
        )
    return "\n".join(lines)


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=30, help="measured rounds: calls per verb (default 30)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default 1)")
    parser.add_argument("--seed-changes", type=int, default=200, help="changes in the read store")
    parser.add_argument(
        "--python", default=sys.executable, help="interpreter that builds the venv (or, in place, runs)"
    )
    parser.add_argument(
        "--in-place",
        action="store_true",
        help="measure the current venv's cortex-change instead of a fresh install",
    )
    parser.add_argument(
        "--cli", help="the cortex-change executable (implies --in-place; default: beside --python)"
    )
    parser.add_argument("--ref", help="build the wheel from this git revision instead of the working tree")
    parser.add_argument(
        "--no-bytecode-cache",
        action="store_true",
        help="leave PYTHONDONTWRITEBYTECODE (and, in place, the .pyc location) as the caller set it",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (store, venv)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    args.in_place = args.in_place or args.cli is not None
    if args.in_place and args.ref:
        parser.error("--ref builds a wheel; it does not go with --in-place or --cli")
    if args.runs < 1 or args.warmup < 0 or args.seed_changes < 1:
        parser.error("--runs and --seed-changes must be at least 1, --warmup at least 0")
    return args


def run(args: argparse.Namespace, workdir: Path) -> tuple[list[Verb], dict[str, str]]:
    """Install, seed, measure; the rows (floor first) and what to print above them."""
    cache = not args.no_bytecode_cache
    if args.in_place:
        install = install_in_place(args.python, args.cli, workdir, cache)
    else:
        install = install_wheel(args.python, workdir, args.ref)
    db, cwd = str(workdir / "bench.db"), str(workdir)
    env = child_env(db, install, cache, args.in_place)
    rounds = args.warmup + args.runs
    done = subprocess.run(
        [install.python, "-c", POPULATE, str(args.seed_changes), str(rounds)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"populating the store failed:\n{done.stderr}")
    seeded = json.loads(done.stdout)
    floor_script = workdir / "floor.py"
    floor_script.write_text(FLOOR_SCRIPT, "utf-8")
    ids: list[str] = seeded["ids"]

    def floor(k: int, i: int) -> list[str]:
        return [install.python, str(floor_script), ids[(k * 31 + i) % len(ids)]]

    config = workdir / "one-shot.toml"
    config.write_text(ONE_SHOT_TEMPLATE, "utf-8")
    one_shot_env = {**env, "IMPLEMENTATION_DELAY": "0", "CORTEX_CHANGE_CONFIG": str(config)}
    stdlib = ", ".join(run_once([install.python, "-c", STDLIB_OF_CLI], env, cwd)[1].split())
    rows = verbs(install.cli, install.python, ids, seeded["to_reject"], stdlib, one_shot_env)
    floor_row = measure(rows, floor, env, cwd, args.runs, args.warmup)
    check_one_shots(next(r for r in rows if r.env is one_shot_env), install.cli, one_shot_env, cwd)
    checks = [
        ("integrate", ["integrate", "kubernetes", "restart_pod", "bench-worker-bytecode"], one_shot_env),
        ("show", ["show", ids[0]], env),
        ("list", ["list"], env),
        ("metrics month", ["metrics", "month"], env),
        ("audit verify", ["audit", "verify"], env),
    ]
    bytecode = bytecode_report(install.python, checks, cwd)
    info = machine(install.python) | {
        "install": install.how,
        "package": bytecode["package"],
        "bytecode": bytecode["summary"],
        "sqlite": str(seeded["sqlite"]),
        "store": f"{args.seed_changes} seeded changes + {rounds} to reject; each round adds a lifecycle "
        "change and a one-shot",
        "rss_floor_mb": f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f}",
    }
    return [floor_row, *rows], info


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    workdir = Path(tempfile.mkdtemp(prefix="cortex-change-bench-"))
    try:
        rows, info = run(args, workdir)
    except CommandFailed as exc:
        raise SystemExit(str(exc)) from None
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    info["tmpdir"] = f"{workdir} ({'kept' if args.keep else 'removed'})"
    if args.json:
        print(json.dumps({"info": info, "results": [r.as_dict() for r in rows]}, indent=2))
    else:
        for key, value in info.items():
            print(f"{key:>12}: {value}")
        print(
            f"{'rounds':>12}: {args.runs} measured after {args.warmup} warm-up, "
            "every call right after a floor call\n"
        )
        print(table(rows))
        print(
            "\ndiff = median - the median of the floor calls made just before that verb's calls; "
            "budget met when diff <= N\nand max RSS <= 40 MB. RSS at or below 'rss_floor_mb' is this "
            "process's own peak, not the child's\n(Linux counts the parent's high-water mark at exec)."
        )
    return 0 if all(r.ok for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
