"""`k8s watch` (docs/self-healing.md): `kubectl get events -A -w -o json` as a subprocess (never a
shell); rollouts, scalings and restarts recorded as observations (matched to the change being
carried out, or unauthorized: services/observations.py), and for a crash-looping Deployment pod the
worker-restart standard change proposed — filed, not assessed nor approved — once per workload per
the model's window."""

from __future__ import annotations

import codecs
import subprocess
import threading
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import IO, Any

from ..domain import k8s_events, permissions
from ..domain.errors import CortexError, Refused, StoreError
from ..domain.k8s_events import Seen, Tracker
from ..store import changes
from .context import Context

SOURCE = "kubernetes"
MODEL = "worker-restart"
RUNBOOK, ROLLBACK = "kubectl-rollout-restart", "kubectl-rollout-undo"
QUIET = timedelta(minutes=5)  # one observation per workload and kind this often (events repeat)
CHUNK = 65536
Say = Callable[[str], None]


class KubectlFailed(StoreError):
    """kubectl could not be run, or ended with an error (exit 5: what the command relies on)."""


class Watch:
    """What one `k8s watch` has seen: the replica-set tracker and what it recently reported."""

    def __init__(self, ctx: Context, actor: str, since: datetime, say: Say, warn: Say) -> None:
        self.ctx, self.actor, self.since, self.say, self.warn = ctx, actor, since, say, warn
        self.tracker = Tracker()
        self.reported: dict[tuple[str, str, str], datetime] = {}
        self.proposed: dict[tuple[str, str], datetime] = {}

    def handle(self, event: Any) -> None:
        """One Event object: classified, then observed or proposed (errors are one line, go on)."""
        try:
            seen = self.tracker.classify(event)
            if seen is None:
                return
            if seen.at is not None and seen.at < self.since:
                return  # from before the watch (a previous watch saw it): --since takes it in
            if seen.kind == k8s_events.CRASH_LOOP:
                self._propose(seen)
            else:
                self._observe(seen)
        except CortexError as exc:
            if isinstance(exc, StoreError):
                raise
            self.warn(f"k8s watch: {exc}")

    def _observe(self, seen: Seen) -> None:
        from .observations import observe

        at = seen.at or self.ctx.clock()
        service = seen.workload.lower()
        if self._recent(service, seen.namespace, seen.kind, at):
            return
        done = observe(
            self.ctx,
            service=service,
            environment=None,
            at=at.isoformat(),
            source=SOURCE,
            reference=seen.reference,
            actor=self.actor,
        )
        where = f"{seen.kind} of {service} in {seen.namespace}"
        if done["authorized"]:
            self.say(f"{done['observation_id']}: {where} authorized by {done['change_id']}")
        else:
            self.say(f"{done['observation_id']}: UNAUTHORIZED {where} (audited, notified)")

    def _recent(self, service: str, namespace: str, kind: str, at: datetime) -> bool:
        """Whether this was reported lately; a pod restart within a rollout or scaling of its
        workload is that rollout's, already reported."""
        kinds = [kind] + ([k8s_events.ROLLOUT, k8s_events.SCALING] if kind == k8s_events.RESTART else [])
        for k in kinds:
            last = self.reported.get((namespace, service, k))
            if last is not None and abs((at - last).total_seconds()) < QUIET.total_seconds():
                return True
        self.reported[(namespace, service, kind)] = at
        return False

    def _propose(self, seen: Seen) -> None:
        """File (only) the worker-restart standard change for a crash-looping Deployment's pods."""
        if seen.deployment is None:
            where = f"{seen.object} in {seen.namespace}"
            self.warn(f"k8s watch: {where} is crash-looping; not a Deployment's pod: nothing proposed")
            return
        key = (seen.namespace, seen.deployment)
        now = self.ctx.clock()
        from ..catalog.loader import load_catalog

        model = load_catalog(self.ctx.settings).models.get(MODEL)
        if model is None:
            self.warn(f"k8s watch: {seen.object} is crash-looping; no {MODEL} model: nothing proposed")
            return
        window = timedelta(seconds=model.condition.window_seconds)
        last = self.proposed.get(key)
        if last is not None and now - last < window:
            return
        if self._filed_lately(model, seen.deployment, now, window):
            return
        change = self._file(seen)
        self.proposed[key] = now
        self.say(
            f"{change.change_id}: proposed restart of deployment {seen.deployment} in {seen.namespace} "
            f"({seen.object} is crash-looping); assess and approve it to carry it out"
        )

    def _filed_lately(self, model: Any, target: str, now: datetime, window: timedelta) -> bool:
        key = model.rate_key({"target": target})
        with self.ctx.db.read() as tx:
            n = changes.recent_model_requests(tx, model.name, key, "target", target, now - window, now, "")
        return n > 0

    def _file(self, seen: Seen) -> Any:
        from ..domain.fields import ChangeRequest
        from .changes import create_change, limits

        assert seen.deployment is not None
        params = {"deployment": seen.deployment, "namespace": seen.namespace}
        fields = {
            "type": "standard",
            "category": "infrastructure",
            "title": f"Restart {seen.deployment} (crash loop)"[:200],
            "description": f"k8s watch: {seen.object} in {seen.namespace} is crash-looping "
            f"({seen.reference})",
            "requested_by": self.actor,
            "impact": "low",
            "urgency": "high",
            "affected_services": [seen.deployment],
            "standard_model": MODEL,
            "parameters": {"target": seen.deployment, "namespace": seen.namespace},
            "implementation_plan": {"steps": [{"runbook": RUNBOOK, "params": params}]},
            "rollback_plan": {"automated": True, "steps": [{"runbook": ROLLBACK, "params": params}]},
        }
        return create_change(self.ctx, ChangeRequest.of(fields, limits(self.ctx.settings)))


def command(kubectl: str, context: str | None) -> list[str]:
    """The argv run: an argument list, never a shell line."""
    return [kubectl, *(["--context", context] if context else []), "get", "events", "-A", "-w", "-o", "json"]


def watch(
    ctx: Context,
    *,
    kubectl: str,
    context: str | None,
    actor: str,
    since: timedelta,
    say: Say,
    warn: Say,
) -> None:
    """Run kubectl's event watch until it ends (EOF) or Ctrl-C; KubectlFailed when kubectl cannot
    run or exits with an error (its last line of stderr said)."""
    if not ctx.settings["K8S_EVENT_INTEGRATION"]:
        raise Refused("k8s watch is off (K8S_EVENT_INTEGRATION=false): nothing was watched")
    permissions.require(permissions.Act.OBSERVE, actor, ctx.policy)
    argv = command(kubectl, context)
    try:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
    except OSError as exc:
        raise KubectlFailed(f"cannot run {kubectl}: {exc.strerror or exc}") from None
    assert proc.stdout is not None and proc.stderr is not None
    errors: deque[str] = deque(maxlen=5)
    drain = threading.Thread(target=_drain, args=(proc.stderr, errors), daemon=True)
    drain.start()
    state = Watch(ctx, actor, ctx.clock() - since, say, warn)
    try:
        _read(proc.stdout, state)
    except KeyboardInterrupt:
        _stop(proc)
        say("k8s watch: stopped")
        return
    except BaseException:
        _stop(proc)
        raise
    code = proc.wait()
    drain.join(timeout=5)
    if code != 0:
        last = next((line for line in reversed(errors) if line.strip()), "no message")
        raise KubectlFailed(f"{kubectl} exited {code}: {' '.join(last.split())[:300]}")
    say("k8s watch: the event stream ended")


def _read(stdout: IO[bytes], state: Watch) -> None:
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    stream = k8s_events.JsonStream()
    while True:
        chunk = stdout.read1(CHUNK)  # type: ignore[attr-defined]
        text = decoder.decode(chunk, final=not chunk)
        for obj in _objects(stream, text, state.warn):
            for event in k8s_events.events(obj):
                state.handle(event)
        if not chunk:
            try:
                stream.finish()
            except CortexError as exc:
                state.warn(f"k8s watch: {exc}")
            return


def _objects(stream: k8s_events.JsonStream, text: str, warn: Say) -> list[Any]:
    try:
        return stream.feed(text)
    except CortexError as exc:
        warn(f"k8s watch: {exc}")
        return stream.feed("")


def _drain(stderr: IO[bytes], lines: deque[str]) -> None:
    for raw in stderr:
        lines.append(raw.decode("utf-8", "replace"))


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
