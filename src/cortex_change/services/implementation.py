"""Carrying out a change (SPEC §7): run the plan under a lease, verify, roll back on failure."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping

from ..domain import permissions, plan, runbooks, validation, verification, workflow
from ..domain.codec import fmt_epoch
from ..domain.errors import Conflict, Forbidden, Refused, ValidationError
from ..domain.events import Event, EventKind
from ..domain.lifecycle import State
from ..domain.model import Change, ClosureStatus
from ..domain.plan import HttpStep, RunbookStep, RunStep, Step, TextStep
from ..domain.values import Value
from ..runner import checks
from ..runner.execute import Secrets, StepResult, http_request, run_command, step_environment
from ..store import audit, changes, incidents, leases
from ..store.db import Tx
from . import followups, unit
from .context import Context

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from datetime import datetime
    from typing import Any

    from ..domain.windows import Window

# progress(step number, of, what, elapsed seconds of the plan) — the CLI prints it on a terminal.
Progress = Callable[[int, int, str, float], None]


class Run(Value):
    """One carrying-out of a change by one lease holder."""

    __slots__ = ("_renewed", "change_id", "ctx", "cwd", "env", "holder", "pausable", "progress")

    def __init__(
        self,
        ctx: Context,
        change_id: str,
        holder: str,
        env: Mapping[str, str],
        progress: Progress | None = None,
        cwd: str | None = None,
        _renewed: float = 0.0,
        pausable: bool = False,
    ) -> None:
        self.ctx = ctx
        # Automation (a worker, an agent, an integration's carry-on): the kill switch pauses it
        # between steps (services/automation.py); a person's own run goes on.
        self.pausable = pausable
        self.change_id = change_id
        self.holder = holder
        self.env = env
        self.progress = progress
        self.cwd = cwd
        self._renewed = _renewed

    @property
    def ttl(self) -> int:
        return int(self.ctx.settings["LEASE_TTL"])

    def heartbeat(self) -> None:
        """Renew the lease a third of its life at a time (called while steps run)."""
        if time.monotonic() - self._renewed < self.ttl / 3:
            return
        self._renewed = time.monotonic()
        with self.ctx.db.transaction() as tx:
            if not leases.renew(tx, self.change_id, self.holder, self.ctx.clock().timestamp(), self.ttl):
                raise Conflict(f"{self.change_id}: the lease of {self.holder} was lost (expired and flagged)")

    def record(self, events: list[Event]) -> None:
        """Audit events of the run that move no state (a step's start and result)."""
        unit.record(self.ctx, self.change_id, events)


def _take_lease(run: Run, takeover: bool = False) -> Callable[[Tx, Change], list[Event]]:
    """Take the lease in the caller's transaction; a live lease of another holder refuses it,
    unless `takeover` (an operator's resume or rollback, checked before). Taking over from
    another holder is audited."""

    def take(tx: Tx, change: Change) -> list[Event]:
        now = run.ctx.clock().timestamp()
        before = leases.get(tx, run.change_id, lock=True)
        other = leases.take(tx, run.change_id, run.holder, now, run.ttl)
        if other is not None and not takeover:
            raise Conflict(
                f"{run.change_id} is being carried out by {other.holder} "
                f"(lease until {fmt_epoch(other.expires_at)}); "
                "nothing was written"
            )
        run._renewed = time.monotonic()
        if before is None or before.holder == run.holder:
            return []
        return [Event(EventKind.LEASE_TAKEN_OVER, run.holder, {"from": before.holder, "to": run.holder})]

    return take


def _release(run: Run) -> Callable[[Tx, Change], list[Event]]:
    def release(tx: Tx, change: Change) -> list[Event]:
        leases.release(tx, run.change_id)
        return []

    return release


def _freezes_now(ctx: Context, now: datetime) -> list[Window]:
    """The freeze windows in force now (any scope: the decision filters them for the change)."""
    from .windows import in_force

    with ctx.db.read() as tx:
        return in_force(ctx, tx, now.timestamp())


class Paused(Exception):
    """The kill switch stopped a run between two steps (audited; a worker resumes it later)."""


def begin(
    run: Run,
    actor: str,
    baseline: dict[str, float] | None = None,
    if_version: int | None = None,
    trusted: bool = False,
    text_only: bool = False,
) -> Change:
    """approved -> implementing, taking the lease in the same transaction (a second taker is refused).

    `trusted`: the worker carrying out a change queued for it (the permission was checked when it
    was queued or approved); any other caller must be allowed to implement (SPEC §11).
    `text_only`: the caller (the API) runs no steps; a plan with executable steps is refused.
    Automation (`run.pausable`) is refused while the kill switch is on, but for emergency changes
    an ECAB member approved.
    """
    now = run.ctx.clock()
    active = _freezes_now(run.ctx, now)

    def op(change: Change) -> list[Event]:
        if active:
            from ..domain.windows import implementation_frozen

            implementation_frozen(change, active, run.ctx.settings["FREEZE_POLICY"], now)
        if text_only and plan.has_executable_steps(change.implementation_plan):
            raise Conflict(
                f"{change.change_id}'s plan has executable steps (it changed since it was read); "
                "nothing was written — implement it again to queue it for the workers"
            )
        if not trusted:
            permissions.require(permissions.Act.IMPLEMENT, actor, run.ctx.policy, change)
        events = workflow.start_implementation(change, actor, now)
        if baseline:
            events.append(Event(EventKind.BASELINE_MEASURED, actor, {"baseline": baseline}))
        return events

    with unit.work(run.ctx, run.change_id, actor, if_version) as w:
        run.pausable = run.pausable or run.ctx.who(w.tx, actor).agent  # an agent is automation
        if run.pausable:
            _not_halted(w.tx, w.change)
        w.decide(op)
        w.add(_take_lease(run)(w.tx, w.change))
    return w.change


def _not_halted(tx: Tx, change: Change) -> None:
    from .automation import held

    reason = held(tx, change)
    if reason is not None:
        raise Refused(
            f"automation halted (freeze on: {reason}): {change.change_id} is not carried out "
            "automatically until freeze off (emergency changes an ECAB member approved go ahead)"
        )


def implement_change(
    ctx: Context,
    *,
    change_id: str,
    actor: str,
    wait: bool = False,
    resume: bool = False,
    progress: Progress | None = None,
    env: Mapping[str, str] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    if_version: int | None = None,
    holder: str | None = None,
    trusted: bool = False,
    text_only: bool = False,
    automated: bool = False,
) -> Change:
    """Run the implementation plan; then verify the change (now with `wait`, else in the worker).

    `holder` names the lease holder (default `cli:ACTOR`; the worker passes its own name and
    `trusted`, see `begin`; the API passes `text_only`). The steps run are those of the record
    the implementation began on, never of an earlier read. The worker (`trusted`), an
    integration's carry-on (`automated`) and agents are automation: the kill switch holds them.
    """
    validation.identity("actor", actor)
    env = os.environ if env is None else env
    run = Run(ctx, change_id, holder or f"cli:{actor}", env, progress, pausable=trusted or automated)
    spec = verification_spec(ctx, unit.load(ctx, change_id))
    start = 0
    if resume:
        change, start = _resume(run, actor, trusted)
    else:
        baseline = checks.baseline(spec) if spec.has_checks else None
        change = begin(run, actor, baseline, if_version, trusted, text_only)
    steps = plan.steps("implementation_plan", change.implementation_plan)
    spec = verification_spec(ctx, change)
    try:
        failure = run_steps(run, steps, actor, start)
    except Paused:
        return unit.load(ctx, change_id)
    if failure:
        return fail_change(ctx, change_id=change_id, actor=actor, reason=failure, run=run)
    return _finished(run, actor, steps, spec, wait, sleep)


def _finished(
    run: Run,
    actor: str,
    steps: list[Step],
    spec: plan.ValidationSpec,
    wait: bool,
    sleep: Callable[[float], None],
) -> Change:
    ctx, now = run.ctx, run.ctx.clock()
    automated = plan.is_automated(steps)
    summary = (
        f"{len(steps)} executable step(s) completed"
        if automated
        else "plan steps done by people: report the outcome (close, or worker report_success/report_failure)"
    )
    change = unit.apply(
        ctx,
        run.change_id,
        actor,
        lambda c: workflow.finish_implementation(c, actor, now, summary),
        extra=_release(run),
    )
    if not automated:
        return change
    if not spec.has_checks:
        notes = f"{summary}; no validation checks configured"
        return unit.apply(
            ctx,
            run.change_id,
            actor,
            lambda c: workflow.close(c, ClosureStatus.SUCCESSFUL, notes, actor, now),
        )
    state = start_verification(ctx, change, spec)
    if not wait:
        with ctx.db.transaction() as tx:
            followups.schedule(tx, followups.VERIFY, run.change_id, now.timestamp() + spec.interval, state)
        return change
    while True:
        done, state = verification_round(ctx, run.change_id, state, actor, run.holder)
        if done:
            return unit.load(ctx, run.change_id)
        sleep(spec.interval)


def run_steps(run: Run, steps: list[Step], actor: str, start: int = 0, deadline: float | None = None) -> str:
    """Carry out steps[start:] in order; returns why one failed ("" when all succeeded)."""
    secrets = _secrets(run)
    began = time.monotonic()
    total = len(steps)
    for n, step in enumerate(steps[start:], start + 1):
        if run.pausable and deadline is None and n > start + 1:
            _pause_if_halted(run, actor, n - 1, total)
        what = _describe(step)
        if run.progress:
            run.progress(n, total, what, time.monotonic() - began)
        if isinstance(step, TextStep):
            run.record([Event(EventKind.STEP_MANUAL, actor, {"step": n, "of": total, "text": step.text})])
            continue
        ready, tags = _ready(run, step)
        run.record([Event(EventKind.STEP_STARTED, actor, {"step": n, "of": total, "what": what, **tags})])
        if isinstance(ready, str):
            result = StepResult(False, 0.0, error=ready)
        else:
            result = _execute(run, ready, secrets, deadline)
        details = {"step": n, "of": total, "what": what, **tags, **result.details()}
        run.record([Event(EventKind.STEP_SUCCEEDED if result.ok else EventKind.STEP_FAILED, actor, details)])
        if not result.ok:
            return f"step {n}/{total} ({what}) failed: {result.error}"
        run.heartbeat()
    return ""


def _pause_if_halted(run: Run, actor: str, done: int, total: int) -> None:
    """Between two steps of automation: stop here while the kill switch is on (not a rollback's:
    `run_steps` asks only without a deadline)."""
    from . import automation

    with run.ctx.db.read() as tx:
        reason = automation.halted(tx)
        change = None if reason is None else changes.get(tx, run.change_id)
    if reason is None or change is None or automation.exempt(change):
        return
    automation.paused(run.ctx, run.change_id, actor, done, total, reason)
    raise Paused(reason)


def _secrets(run: Run) -> Secrets:
    """`${env:NAME}` for the PLAN_SECRETS names; the server's own secrets (SECRET_KEYS, the store's
    password, the API token) are redacted from output tails, errors and the audit trail too."""
    from urllib.parse import urlsplit

    from ..config import SECRET_KEYS

    settings = run.ctx.settings
    hidden = [str(settings[key]) for key in sorted(SECRET_KEYS)]
    hidden += [urlsplit(settings.database()).password or "", run.env.get("CORTEX_CHANGE_TOKEN", "")]
    return Secrets(run.env, settings["PLAN_SECRETS"], hidden)


def _ready(
    run: Run, step: RunStep | HttpStep | RunbookStep
) -> tuple[RunStep | HttpStep | str, dict[str, Any]]:
    """The step to execute and what its audit events add. A runbook step is expanded from the
    catalog now; gone, or at another version than the one stamped when the change was filed
    (and approved), it comes back as the reason it fails, and nothing runs."""
    if not isinstance(step, RunbookStep):
        return step, {}
    from ..catalog.loader import load_catalog

    tags: dict[str, Any] = {"runbook": step.name, "runbook_version": step.version}
    try:
        ready = runbooks.approved(load_catalog(run.ctx.settings).runbooks, step)
    except ValidationError as exc:
        return str(exc), tags
    return ready, {**tags, "expanded": ready.describe()}


def _execute(run: Run, step: RunStep | HttpStep, secrets: Secrets, deadline: float | None) -> StepResult:
    """Run one executable step within its timeout (and the rollback's `deadline`, if any)."""
    timeout = min(step.timeout, float(run.ctx.settings["STEP_TIMEOUT_MAX"]))  # filed before a lower max
    limit = timeout if deadline is None else max(0.0, min(timeout, deadline - time.monotonic()))
    if limit <= 0:
        return StepResult(False, 0.0, error="no time left (ROLLBACK_TIMEOUT)")
    if isinstance(step, RunStep):
        env = step_environment(run.env, run.ctx.settings["RUNNER_ENV_PASSTHROUGH"])
        result = run_command(step, secrets, limit, run.cwd, run.heartbeat, env)
    else:
        run.heartbeat()
        result = http_request(step, secrets, limit, run.ctx.settings["HTTP_STEP_ALLOWED_HOSTS"])
    if not result.ok and deadline is not None and limit < timeout and "timed out" in result.error:
        result = result.copy_with(error=f"{result.error} (the rollback's time limit ran out)")
    return result


def _describe(step: Step) -> str:
    return step.text if isinstance(step, TextStep) else step.describe()


def fail_change(
    ctx: Context,
    *,
    change_id: str,
    actor: str,
    reason: str,
    run: Run | None = None,
    allowed: Callable[[Change], None] | None = None,
) -> Change:
    """The failure path: rollback (AUTO_ROLLBACK_ENABLED) within ROLLBACK_TIMEOUT, else close failed.

    `allowed` checks, in the same read as the decision, that a person asking for it may (SPEC §11).
    """
    run = run or Run(ctx, change_id, f"cli:{actor}", os.environ)
    now = ctx.clock()
    auto = bool(ctx.settings["AUTO_ROLLBACK_ENABLED"])

    def op(c: Change) -> list[Event]:
        if allowed is not None:
            allowed(c)
        return workflow.fail(c, reason, actor, now, auto_rollback=auto)

    change = unit.apply(
        ctx,
        change_id,
        actor,
        op,
        extra=_take_lease(run, takeover=True) if auto else _release(run),
    )
    if change.state is not State.ROLLING_BACK:
        return change
    return _roll_back(run, change, actor, reason)


def _roll_back(run: Run, change: Change, actor: str, reason: str) -> Change:
    ctx = run.ctx
    steps = plan.steps("rollback_plan", change.rollback_plan)
    limit = float(ctx.settings["ROLLBACK_TIMEOUT"])
    if change.rollback_plan and "max_duration" in change.rollback_plan:
        limit = min(limit, plan.duration("max_duration", change.rollback_plan["max_duration"]))
    if not plan.is_automated(steps):
        why = (
            "the rollback plan has no executable steps"
            if not steps
            else "the rollback plan has steps for people"
        )
        failure = f"{why}: roll back by hand"
    else:
        failure = run_steps(run, steps, actor, deadline=time.monotonic() + limit)
    ok = not failure
    notes = (
        f"{reason}; rolled back: {len(steps)} rollback step(s) succeeded"
        if ok
        else f"{reason}; rollback failed: {failure}"
    )
    now = ctx.clock()

    def finish(tx: Tx, c: Change) -> list[Event]:
        leases.release(tx, run.change_id)
        if ok:
            return []
        incident_id = f"INC-{now:%Y%m%d%H%M%S}-{os.urandom(3).hex()}"
        title = f"Rollback of {c.change_id} failed: {c.title}"[:300]
        details = {"reason": reason, "rollback_failure": failure, "services": c.affected_services}
        incidents.insert(tx, incident_id, c.change_id, now.timestamp(), actor, title, details)
        return [Event(EventKind.INCIDENT_OPENED, actor, {"incident_id": incident_id, "title": title})]

    return unit.apply(
        ctx,
        run.change_id,
        actor,
        lambda c: workflow.rollback_finished(c, ok, notes, actor, now),
        extra=finish,
    )


def verification_spec(ctx: Context, change: Change) -> plan.ValidationSpec:
    """How the change is verified after its plan ran: its `validation` block over the configuration
    defaults and its services' default health checks."""
    s = ctx.settings
    defaults = plan.Defaults(
        period=float(s["VALIDATION_PERIOD"]),
        interval=float(s["HEALTH_CHECK_INTERVAL"]),
        failures_to_trip=int(s["VALIDATION_FAILURES_TO_TRIP"]),
        error_rate_threshold=float(s["ERROR_RATE_THRESHOLD"]),
        latency_threshold=float(s["LATENCY_THRESHOLD"]),
        prometheus_url=s["PROMETHEUS_URL"],
        health_checks=_service_checks(ctx, change.affected_services),
    )
    return plan.validation_spec(change.validation, defaults)


def _service_checks(ctx: Context, services: list[str]) -> tuple[plan.HealthCheck, ...]:
    """Health checks configured for the change's services ([services.NAME] health_checks in TOML)."""
    table = ctx.settings.extra.get("services", {})
    raw: list[Any] = []
    for name in services:
        entry = table.get(name)
        if isinstance(entry, dict):
            raw += list(entry.get("health_checks", []))
    return plan.health_checks("[services] health_checks", raw)


def start_verification(ctx: Context, change: Change, spec: plan.ValidationSpec) -> dict[str, Any]:
    """The state a verification carries from round to round (stored in its timers), with the
    baseline measured when the implementation began."""
    baseline: dict[str, float] = {}
    with ctx.db.read() as tx:
        for e in audit.for_change(tx, change.change_id):
            if e["action"] == EventKind.BASELINE_MEASURED:
                baseline = dict(e["details"]["baseline"])
    return verification.start(spec, baseline, ctx.clock())


def verification_round(
    ctx: Context, change_id: str, state: dict[str, Any], actor: str, holder: str | None = None
) -> tuple[bool, dict[str, Any]]:
    """One round of checks, audited; trips the rollback or closes the change as the verdict says
    (`verification.next_round`). Returns whether verification is over, and the state for the next."""
    change = unit.load(ctx, change_id)
    if change.state is not State.IMPLEMENTED:
        return True, state  # closed, reported or rolled back meanwhile: nothing left to verify
    spec = verification_spec(ctx, change)
    results = checks.run_round(spec, verification.baseline(state))
    now = ctx.clock()
    verdict = verification.next_round(state, results, spec, now)
    Run(ctx, change_id, actor, os.environ).record(
        [Event(EventKind.VERIFICATION_CHECK, actor, verdict.details)]
    )
    if verdict.outcome is verification.Outcome.PASS and ctx.settings["AUTO_ROLLBACK_DECISION"]:
        from .canary import decide  # the statistics too (docs/canary.md); may extend or ask a person

        verdict = decide(ctx, change, spec, verdict, actor, now)
    if verdict.outcome is verification.Outcome.TRIP:
        run = Run(ctx, change_id, holder or f"cli:{actor}", os.environ)
        fail_change(ctx, change_id=change_id, actor=actor, reason=verdict.reason, run=run)
    elif verdict.outcome is verification.Outcome.PASS:
        notes = verdict.reason
        unit.apply(
            ctx, change_id, actor, lambda c: workflow.close(c, ClosureStatus.SUCCESSFUL, notes, actor, now)
        )
    return verdict.done, verdict.state


def _resume(run: Run, actor: str, trusted: bool = False) -> tuple[Change, int]:
    """Take over an implementing change whose lease expired; continue after its last good step."""
    now = run.ctx.clock()
    with run.ctx.db.read() as tx:
        lease = leases.get(tx, run.change_id)
        trail = audit.for_change(tx, run.change_id)
    if lease is not None and lease.holder != run.holder and lease.live(now.timestamp()):
        raise Conflict(f"{run.change_id} is being carried out by {lease.holder}; its lease has not expired")
    started = max((e["seq"] for e in trail if e["action"] == EventKind.IMPLEMENTATION_STARTED), default=0)
    done = [
        e["details"]["step"]
        for e in trail
        if e["seq"] > started and e["action"] in (EventKind.STEP_SUCCEEDED, EventKind.STEP_MANUAL)
    ]
    start = max(done, default=0)

    def op(change: Change) -> list[Event]:
        if change.state is not State.IMPLEMENTING:
            raise Refused(
                f"{run.change_id} is {change.state.value}; only an implementing change can be resumed"
            )
        if not trusted and not permissions.allowed(permissions.Act.IMPLEMENT, actor, run.ctx.policy, change):
            who = permissions.describe(permissions.Act.IMPLEMENT, run.ctx.policy, change)
            raise Forbidden(f"{actor} may not resume {run.change_id}: allowed to {who}")
        return [Event(EventKind.IMPLEMENTATION_RESUMED, actor, {"from_step": start + 1})]

    with unit.work(run.ctx, run.change_id, actor) as w:
        w.decide(op)
        run.pausable = run.pausable or run.ctx.who(w.tx, actor).agent
        if run.pausable:
            _not_halted(w.tx, w.change)
        w.add(_take_lease(run, takeover=True)(w.tx, w.change))
    return w.change, start
