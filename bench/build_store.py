"""Build a store of N changes by replaying each change's life through the project's domain code.

Used by scale.py (in a child process). Changes are created at `per_day` a day up to now; every
later step (assess, votes, implement, close, cancel, reject, review, a refused attempt now and
then) is scheduled on a simulated clock and all steps of all changes run in time order, so the
audit chain interleaves changes as a real store's does and `assess` sees the history (closed
comparable changes of the last 90 days) it would see. Each step goes through what
services.unit.apply does: the domain decides, a refusal is recorded without saving, a save
bumps the version and re-evaluates compliance. Rows are those store.changes and store.audit
would write; only the transactions are batched, and indexes are built once at the end.
"""

from __future__ import annotations

import heapq
import json
import multiprocessing
import pickle
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from cortex_change import config
from cortex_change.config import rules_snapshot
from cortex_change.domain import compliance, routing, workflow
from cortex_change.domain.codec import fmt_time
from cortex_change.domain.errors import InvalidTransition, Refused
from cortex_change.domain.events import Event, EventKind
from cortex_change.domain.fields import ChangeRequest
from cortex_change.domain.lifecycle import State
from cortex_change.domain.model import Change, ChangeType, ClosureStatus, ReviewOutcome, Timeline
from cortex_change.domain.risk import PastChange
from cortex_change.store import audit
from cortex_change.store import changes as repo
from cortex_change.store.db import Tx, migrate

DAY = 86_400.0
HOUR = 3_600.0
BATCH = 20_000
LEVELS = ["low", "medium", "high", "critical"]
# Roughly how often each category is used, in the policy's category order.
CATEGORY_WEIGHTS = [12, 8, 30, 12, 2, 10, 8, 10, 5, 3]
# What happens to a change after it is filed (percent).
FATES = {"proceed": 92, "unauthorized": 0.5, "abandon": 1, "cancel": 3, "reject": 2.5, "stall": 1}
OUTCOMES = {"successful": 93, "failed": 4, "rolled_back": 3}
Op = Callable[[Change], list[Event]]


@dataclass
class Flight:
    """A change between two of its steps, with what the services would know about it."""

    index: int
    change: Change
    actions: list[str]
    fate: str
    close_as: ClosureStatus
    saved_at: datetime | None = None  # the last successful save, when compliance was evaluated
    saved_actions: int = 0  # how many of `actions` existed at that save


@dataclass
class Builder:
    """Replays the lives of one shard's changes (some categories) in time order through the domain.

    History (the risk score's comparable changes) is per category, so shards are independent; the
    parent merges their event streams by time and chains them.
    """

    shard: int
    shards: int
    categories: list[str]
    category_weights: list[int]
    n: int
    span: float
    horizon: float
    services: int
    rng: random.Random
    send_events: Callable[[list[tuple[Any, ...]]], None]
    send_changes: Callable[[list[tuple[Any, ...]]], None]
    heap: list[tuple[float, int, Flight, str]] = field(default_factory=list)
    ticket: int = 0
    events: int = 0
    pending_events: list[tuple[Any, ...]] = field(default_factory=list)
    pending_changes: list[tuple[Any, ...]] = field(default_factory=list)
    finished: dict[int, tuple[Any, ...]] = field(default_factory=dict)
    next_out: int = 0
    closed: dict[tuple[str, str], deque[tuple[float, str, str]]] = field(default_factory=dict)
    second: str = ""
    ids_this_second: set[str] = field(default_factory=set)
    counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.policy = config.load({}).policy()
        self.frameworks = self.policy.frameworks or ("soc2",)
        self.service_names = [f"svc-{i:04d}" for i in range(self.services)]
        self.people = [f"dev-{i:03d}" for i in range(60)]

    # -- ids and output

    def new_id(self, now: datetime) -> str:
        """services.new_change_id's format; each shard draws its own residue, so ids never clash."""
        stamp = f"{now:%Y%m%d%H%M%S}"
        if stamp != self.second:
            self.second, self.ids_this_second = stamp, set()
        while True:
            suffix = self.rng.randrange(0, 1 << 24, self.shards) + self.shard
            change_id = f"RFC-{stamp}-{suffix:06x}"
            if change_id not in self.ids_this_second:  # what create_change's exists() loop ensures
                self.ids_this_second.add(change_id)
                return change_id

    def chain(self, change_id: str, events: Sequence[Event], now: datetime) -> None:
        """What store.audit.append writes, less seq, event id and hashes (added by the parent)."""
        stamp = fmt_time(now) or ""
        t = now.timestamp()
        for event in events:
            self.events += 1
            details = audit.canonical(event.details)
            self.pending_events.append(
                (t, self.shard, self.events, change_id, stamp, event.action, event.actor, details)
            )
        if len(self.pending_events) >= BATCH:
            self.send_events(self.pending_events)
            self.pending_events = []

    def finish(self, f: Flight) -> None:
        """The record as its last successful save left it, sent in creation order."""
        c = f.change
        compliant = False
        if f.saved_at is not None:  # services._compliant, as the last save computed it
            actions = f.actions[: f.saved_actions]
            results = compliance.evaluate(c, self.policy, self.frameworks, actions, f.saved_at)
            compliant = compliance.complete(results)
        created = c.timeline.created_at.timestamp()
        self.finished[f.index] = (created, self.shard, f.index, repo._row(c, compliant), c.affected_services)
        self.counts[c.state.value] = self.counts.get(c.state.value, 0) + 1
        while self.next_out in self.finished:
            self.pending_changes.append(self.finished.pop(self.next_out))
            self.next_out += 1
        if len(self.pending_changes) >= BATCH // 5:
            self.send_changes(self.pending_changes)
            self.pending_changes = []

    # -- the simulated clock

    def schedule(self, f: Flight, t: float, step: str) -> None:
        if t > self.horizon:  # has not happened yet: the record stays as it is now
            self.finish(f)
            return
        self.ticket += 1
        heapq.heappush(self.heap, (float(int(t)), self.ticket, f, step))

    def run(self) -> None:
        t = self.horizon - self.span
        for index in range(self.n):
            t += self.rng.expovariate(self.n / self.span)
            created = float(int(min(t, self.horizon)))
            while self.heap and self.heap[0][0] <= created:
                when, _, f, name = heapq.heappop(self.heap)
                self.step(f, when, name)
            self.create(index, created)
        while self.heap:
            when, _, f, name = heapq.heappop(self.heap)
            self.step(f, when, name)
        assert not self.finished and self.next_out == self.n
        for rows, send in (
            (self.pending_events, self.send_events),
            (self.pending_changes, self.send_changes),
        ):
            if rows:
                send(rows)

    # -- one change's life

    def plan(self, steps: int, what: str) -> dict[str, Any]:
        return {"steps": [f"{what} step {i + 1}" for i in range(steps)]}

    def create(self, index: int, t: float) -> None:
        """services.create_change with a varied request."""
        rng = self.rng
        now = datetime.fromtimestamp(t, UTC)
        category = rng.choices(self.categories, self.category_weights)[0]
        documented = rng.random() < 0.9
        request = ChangeRequest.of(
            {
                "type": rng.choices(list(ChangeType), [8, 88, 4])[0].value,
                "category": category,
                "title": f"{category.title()} change {index}: release {rng.randrange(1, 999)}",
                "description": (
                    f"Change {index} for the {category} area: apply the release, watch the dashboards "
                    "for thirty minutes, then report the outcome."
                ),
                "requested_by": rng.choice(self.people),
                "impact": rng.choices(LEVELS, [30, 45, 20, 5])[0],
                "urgency": rng.choices(LEVELS, [25, 50, 20, 5])[0],
                "affected_services": rng.sample(self.service_names, rng.choice([0, 1, 1, 1, 2, 2, 3])),
                "affected_cis": [f"ci-{rng.randrange(5000):04d}"] if rng.random() < 0.5 else [],
                "implementation_plan": self.plan(rng.randint(2, 6), "deploy") if documented else None,
                "rollback_plan": self.plan(rng.randint(1, 3), "revert") if documented else None,
                "test_plan": self.plan(rng.randint(1, 4), "check") if rng.random() < 0.7 else None,
                "environment": rng.choice(["production", "production", "staging"]),
            }
        )
        change = Change(change_id=self.new_id(now), timeline=Timeline(created_at=now), **request.to_fields())
        events = workflow.created(change, self.policy)
        change.version = 1  # what changes.insert sets
        fate = rng.choices(list(FATES), list(FATES.values()))[0]
        close_as = ClosureStatus(rng.choices(list(OUTCOMES), list(OUTCOMES.values()))[0])
        f = Flight(index, change, [e.action for e in events], fate, close_as)
        self.chain(change.change_id, events, now)
        if fate == "abandon":
            self.finish(f)
        elif fate == "unauthorized":
            self.schedule(f, t + rng.uniform(60, 600), "unauthorized")
        else:
            self.schedule(f, t + rng.uniform(120, HOUR), "assess")

    def history(self, change: Change, t: float) -> list[PastChange]:
        """What store.changes.history finds: closed changes of the category on any of the services."""
        since = t - self.policy.history_window_days * DAY
        found: set[tuple[str, str]] = set()
        for service in change.affected_services:
            closed = self.closed.get((change.category, service))
            while closed and closed[0][0] < since:
                closed.popleft()
            if closed:
                found.update((cid, status) for _, cid, status in closed)
        return [PastChange(cid, ClosureStatus(st)) for cid, st in sorted(found) if cid != change.change_id]

    def apply(self, f: Flight, now: datetime, actor: str, op: Op) -> bool:
        """services.unit.apply: the domain decides; a refusal is recorded, not saved."""
        try:
            events = op(f.change)
        except Refused as refusal:
            invalid = isinstance(refusal, InvalidTransition)
            action = EventKind.UNAUTHORIZED_ATTEMPT if invalid else EventKind.REFUSED
            self.chain(f.change.change_id, [Event(action, actor, {"error": str(refusal)})], now)
            f.actions.append(action)
            return False
        f.actions.extend(e.action for e in events)
        f.saved_at, f.saved_actions = now, len(f.actions)  # compliance is evaluated in finish()
        f.change.version += 1
        self.chain(f.change.change_id, events, now)
        return True

    def voter(self, change: Change) -> tuple[str, str] | None:
        """The next person an outstanding requirement of the route needs, and the role."""
        assert change.assessment is not None
        decided = {a.approver for a in change.approvals}
        for req in routing.requirements(change.assessment.route, self.policy):
            if sum(1 for a in change.active_approvals if a.role == req.role) >= req.count:
                continue
            free = sorted(p for p in req.members if p not in decided and p != change.requested_by)
            if free:
                return self.rng.choice(free), req.role
        return None

    def step(self, f: Flight, t: float, name: str) -> None:
        now = datetime.fromtimestamp(t, UTC)
        handler = getattr(self, f"do_{name}")
        nxt: tuple[float, str] | None = handler(f, now)
        if nxt is None:
            self.finish(f)
        else:
            self.schedule(f, t + nxt[0], nxt[1])

    def do_unauthorized(self, f: Flight, now: datetime) -> tuple[float, str] | None:
        """Someone starts the implementation before approval (refused and recorded)."""
        self.apply(f, now, f.change.requested_by, lambda x: workflow.start_implementation(x, "dev-999", now))
        return self.rng.uniform(120, HOUR), "assess"

    def do_assess(self, f: Flight, now: datetime) -> tuple[float, str] | None:
        c, rng = f.change, self.rng
        history = self.history(c, now.timestamp())
        self.apply(f, now, workflow.RISK_ENGINE, lambda x: workflow.assess(x, self.policy, history, now))
        if c.state is State.APPROVED:
            fast = c.type is ChangeType.EMERGENCY
            return (rng.uniform(600, 2 * HOUR) if fast else rng.uniform(HOUR, 2 * DAY)), "implement"
        if f.fate == "cancel":
            return rng.uniform(HOUR, 3 * DAY), "cancel"
        if f.fate == "reject":
            return rng.uniform(0.5 * HOUR, 8 * HOUR), "reject"
        if f.fate == "stall":
            return None
        return rng.uniform(0.5 * HOUR, 8 * HOUR), "vote"

    def do_vote(self, f: Flight, now: datetime) -> tuple[float, str] | None:
        c, rng = f.change, self.rng
        who = self.voter(c)
        if who is None:
            return None
        person, role = who
        reason = "reviewed the plans"
        ok = self.apply(
            f, now, person, lambda x: workflow.approve(x, person, reason, self.policy, now, role=role)
        )
        if c.state is State.APPROVED:
            return rng.uniform(HOUR, 2 * DAY), "implement"
        if not ok:  # e.g. high risk without plans: the requester gives up
            return DAY, "cancel"
        return rng.uniform(0.25 * HOUR, 8 * HOUR), "vote"

    def do_reject(self, f: Flight, now: datetime) -> tuple[float, str] | None:
        who = self.voter(f.change)
        if who is not None:
            person = who[0]
            self.apply(
                f, now, person, lambda x: workflow.reject(x, person, "too risky this week", self.policy, now)
            )
        return None

    def do_cancel(self, f: Flight, now: datetime) -> tuple[float, str] | None:
        who = f.change.requested_by
        self.apply(f, now, who, lambda x: workflow.cancel(x, who, "superseded", now))
        return None

    def do_implement(self, f: Flight, now: datetime) -> tuple[float, str] | None:
        who = f.change.requested_by
        summary = "plan steps are carried out by people; report the outcome with close"

        def implement(x: Change) -> list[Event]:
            started = workflow.start_implementation(x, who, now)
            return started + workflow.finish_implementation(x, who, now, summary)

        self.apply(f, now, who, implement)
        return self.rng.uniform(600, 4 * HOUR), "close"

    def do_close(self, f: Flight, now: datetime) -> tuple[float, str] | None:
        c, who, status = f.change, f.change.requested_by, f.close_as
        if self.apply(f, now, who, lambda x: workflow.close(x, status, "verified", who, now)):
            for service in c.affected_services:
                entry = (now.timestamp(), c.change_id, status.value)
                self.closed.setdefault((c.category, service), deque()).append(entry)
        if c.type is ChangeType.EMERGENCY and self.rng.random() < 0.85:
            return self.rng.uniform(HOUR, 30 * HOUR), "review"
        return None

    def do_review(self, f: Flight, now: datetime) -> tuple[float, str] | None:
        rng = self.rng
        reviewer = rng.choice(sorted(self.policy.ecab_members | self.policy.cab_members))
        outcome = ReviewOutcome.ACCEPTED if rng.random() < 0.9 else ReviewOutcome.CONCERNS
        self.apply(
            f, now, reviewer, lambda x: workflow.review(x, reviewer, outcome, "fine", self.policy, now)
        )
        return None


def split(categories: dict[str, int], shards: int) -> list[dict[str, int]]:
    """Categories into `shards` groups of about equal use (largest first, into the lightest)."""
    groups: list[dict[str, int]] = [{} for _ in range(shards)]
    for name, weight in sorted(categories.items(), key=lambda kv: -kv[1]):
        min(groups, key=lambda g: sum(g.values()))[name] = weight
    return [g for g in groups if g]


def simulate(
    shard: int,
    shards: int,
    categories: dict[str, int],
    n: int,
    span: float,
    horizon: float,
    services: int,
    seed: int,
    events_out: Connection,
    changes_file: str,
) -> None:
    """A worker: one shard's lives; events stream to the parent, records go to a file."""
    with open(changes_file, "wb") as out:
        builder = Builder(
            shard,
            shards,
            list(categories),
            list(categories.values()),
            n,
            span,
            horizon,
            services,
            random.Random(seed * 1000 + shard),
            events_out.send,
            lambda rows: pickle.dump(rows, out, protocol=pickle.HIGHEST_PROTOCOL),
        )
        builder.run()
    events_out.send(None)
    events_out.send(builder.counts)
    events_out.close()


def received(conn: Connection) -> Iterator[tuple[Any, ...]]:
    while (batch := conn.recv()) is not None:
        yield from batch


def read_batches(path: str) -> Iterator[tuple[Any, ...]]:
    with open(path, "rb") as fh:
        while True:
            try:
                rows = pickle.load(fh)
            except EOFError:
                return
            yield from rows


class Writer:
    """The parent: numbers, identifies and hashes the merged events, and inserts everything."""

    def __init__(self, conn: sqlite3.Connection, seed: int) -> None:
        self.conn = conn
        self.rng = random.Random(seed)
        self.seq = 0
        self.prev_hash = audit.GENESIS

    def events(self, merged: Iterator[tuple[Any, ...]], progress: Callable[[int], None]) -> None:
        sql = f"INSERT INTO audit_events ({audit.EVENT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)"
        rows: list[tuple[Any, ...]] = []
        event_hash, prev, seq, bits = audit.event_hash, self.prev_hash, self.seq, self.rng.getrandbits
        for _, _, _, change_id, stamp, action, actor, details in merged:
            seq += 1
            event_id = f"{bits(128):032x}"  # the shape of secrets.token_hex(16)
            digest = event_hash(prev, seq, event_id, stamp, change_id, action, actor, details)
            rows.append((seq, event_id, stamp, change_id, action, actor, details, prev, digest))
            prev = digest
            if len(rows) >= BATCH:
                self.conn.executemany(sql, rows)
                rows = []
                if seq % 1_000_000 < BATCH:
                    progress(seq)
        self.conn.executemany(sql, rows)
        self.seq, self.prev_hash = seq, prev
        self.conn.execute("UPDATE audit_head SET seq=?, hash=? WHERE id=1", (seq, prev))

    def changes(self, merged: Iterator[tuple[Any, ...]]) -> None:
        marks = ",".join("?" * len(repo.COLUMNS))
        sql = f"INSERT INTO changes ({','.join(repo.COLUMNS)}) VALUES ({marks})"
        service_sql = "INSERT INTO change_services (service, change_id) VALUES (?, ?)"
        rows: list[tuple[Any, ...]] = []
        services: list[tuple[str, str]] = []
        for _, _, _, row, names in merged:
            rows.append(row)
            services.extend((s, row[0]) for s in names)
            if len(rows) >= BATCH:
                self.conn.executemany(sql, rows)
                self.conn.executemany(service_sql, services)
                rows, services = [], []
        self.conn.executemany(sql, rows)
        self.conn.executemany(service_sql, services)


def start_workers(
    where: Path,
    groups: list[dict[str, int]],
    sizes: list[int],
    span: float,
    horizon: float,
    services: int,
    seed: int,
) -> tuple[list[Connection], list[Any], list[str]]:
    """One simulating process per category group: their event pipes, processes and record files."""
    mp = multiprocessing.get_context("fork")
    tmp = tempfile.mkdtemp(prefix="cortex-change-build-", dir=where)
    pipes: list[Connection] = []
    procs: list[Any] = []
    files: list[str] = []
    for shard, (group, size) in enumerate(zip(groups, sizes, strict=True)):
        receive, send = mp.Pipe(duplex=False)
        files.append(str(Path(tmp) / f"changes-{shard}.pickle"))
        args = (shard, len(groups), group, size, span, horizon, services, seed, send, files[-1])
        procs.append(mp.Process(target=simulate, args=args, daemon=True))
        procs[-1].start()
        send.close()
        pipes.append(receive)
    return pipes, procs, files


def build(
    path: Path, n: int, per_day: int, services: int, seed: int, meta: dict[str, Any], workers: int
) -> dict[str, Any]:
    """Create the store at `path` (through a temporary name, so a cache is never half-built)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".building")
    for leftover in (partial, Path(f"{partial}-wal"), Path(f"{partial}-shm")):
        leftover.unlink(missing_ok=True)
    started = time.perf_counter()
    settings = config.load({})
    groups = split(settings.policy().category_weights, workers)
    total = sum(sum(g.values()) for g in groups)
    sizes = [n * sum(g.values()) // total for g in groups]
    sizes[0] += n - sum(sizes)
    horizon, span = float(int(time.time())), n / per_day * DAY
    pipes, procs, files = start_workers(path.parent, groups, sizes, span, horizon, services, seed)

    def progress(done: int) -> None:
        rate = done / max(time.perf_counter() - started, 1e-9)
        print(f"  {done:>11,} events chained ({rate:,.0f}/s)", file=sys.stderr)

    conn = sqlite3.connect(partial, isolation_level=None)
    conn.execute("PRAGMA journal_mode=OFF")  # a bulk load into a file nobody else sees yet
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-1000000")
    migrate(conn)
    indexes = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type='index' AND sql IS NOT NULL"
    ).fetchall()
    for name, _ in indexes:  # built once at the end: much faster than maintained row by row
        conn.execute(f"DROP INDEX {name}")
    writer = Writer(conn, seed)
    conn.execute("BEGIN")
    writer.events(heapq.merge(*(received(p) for p in pipes)), progress)
    counts: dict[str, int] = {}
    for pipe, proc in zip(pipes, procs, strict=True):
        for state, count in pipe.recv().items():
            counts[state] = counts.get(state, 0) + count
        proc.join()
        if proc.exitcode != 0:
            raise SystemExit(f"a build worker failed (exit {proc.exitcode})")
    writer.changes(heapq.merge(*(read_batches(f) for f in files)))
    audit.save_config_snapshot(Tx(conn), rules_snapshot(settings))  # what the first write leaves
    conn.execute("COMMIT")
    shutil.rmtree(Path(files[0]).parent, ignore_errors=True)
    simulated = time.perf_counter() - started
    print(f"  {n:,} changes, {writer.seq:,} events in {simulated:.0f} s; indexing", file=sys.stderr)
    for _, sql in indexes:
        conn.execute(sql)
    conn.execute("PRAGMA journal_mode=WAL")  # as Database leaves every store
    conn.close()
    partial.rename(path)
    meta = meta | {
        "events": writer.seq,
        "states": dict(sorted(counts.items())),
        "built_at": datetime.fromtimestamp(horizon, UTC).isoformat(),
        "workers": len(groups),
        "simulate_seconds": round(simulated, 1),
        "build_seconds": round(time.perf_counter() - started, 1),
        "bytes": path.stat().st_size,
    }
    Path(f"{path}.meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta
