"""`policy simulate` (docs/simulation.md): replay a period's changes through the assessment under
the running configuration and under a candidate one, and set the two side by side. One read
transaction; nothing is written."""

from __future__ import annotations

from datetime import timedelta

from ..config import Settings, rules_snapshot
from ..domain import agents, simulation, workflow
from ..domain.errors import Refused, ValidationError
from ..domain.features import Facts
from ..domain.period import Period
from ..domain.prediction import Learned
from ..store import changes, risk
from ..store.db import Tx
from .changes import freezes_over, maintenance_windows, standard_decision
from .cmdb import change_radius
from .context import Context

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any

    from ..domain.model import Change
    from ..domain.prediction import Model


class _Door:
    """One configuration's view for replays: its context and the model it would predict with."""

    __slots__ = ("ctx", "model")

    def __init__(self, ctx: Context, tx: Tx) -> None:
        self.ctx = ctx
        self.model: Model | None = risk.active(tx) if ctx.settings.predicts() else None

    def learned(self, recorded: Change) -> Learned | None:
        """The features the change recorded at its assessment (none recorded: no prediction)."""
        a = recorded.assessment
        if a is None or a.features is None:
            return None
        s = self.ctx.settings
        return Learned(
            Facts(), self.model, s["RISK_MODEL"] == "blend", int(s["ML_BLEND_THRESHOLD"]) / 100, a.features
        )


def simulate(
    ctx: Context, candidate: Settings, period: Period, minutes: dict[str, int], source: str
) -> dict[str, Any]:
    """Every change filed in `period` that was assessed, replayed at the moment of its assessment
    under the running configuration (`ctx`) and under `candidate` (read from `source`)."""
    proposed = Context(candidate, ctx.db, ctx.clock)
    base: list[simulation.Replay] = []
    other: list[simulation.Replay] = []
    unassessed = drift = 0
    with ctx.db.read() as tx:
        doors = _Door(ctx, tx), _Door(proposed, tx)
        for change_id in changes.filed_between(tx, period.start.timestamp(), period.end.timestamp()):
            recorded = changes.get(tx, change_id)
            if recorded.assessment is None:
                unassessed += 1
                continue
            base.append(_replay(doors[0], tx, recorded, minutes))
            other.append(_replay(doors[1], tx, recorded, minutes))
            drift += simulation.drifted(recorded, base[-1])
    now, then = rules_snapshot(ctx.settings), rules_snapshot(candidate)
    return {
        "period": {"label": period.label, "from": period.start.isoformat(), "to": period.end.isoformat()},
        "config": source,
        "replayed": len(base),
        "not_assessed": unassessed,
        "unlike_recorded": drift,
        "differences": {
            k: {"current": now.get(k), "candidate": v} for k, v in then.items() if now.get(k) != v
        },
        "minutes_per_approval": minutes,
        "current": simulation.Tally(base).document(ctx.policy),
        "candidate": simulation.Tally(other).document(proposed.policy),
        "moved": simulation.moved(base, other),
    }


def _replay(door: _Door, tx: Tx, recorded: Change, minutes: dict[str, int]) -> simulation.Replay:
    """The change assessed again, as filed, at the moment of its recorded assessment: comparables
    and the requester's record closed before then, the CMDB, windows and catalog as they are now,
    the staging evidence and features it recorded; the kill switch off (not a policy). What the
    configuration refuses at filing or assessment comes back refused, with the rule's words."""
    ctx, a = door.ctx, recorded.assessment
    assert a is not None
    change, now = simulation.as_filed(recorded), a.assessed_at
    since = now - timedelta(days=ctx.policy.history_window_days)
    history = changes.history(tx, change.category, change.affected_services, since, change.change_id, now)
    record = None
    if change.origin == agents.AGENT:
        record = changes.track_record(tx, change.requested_by, since, change.change_id, now)
    try:
        workflow.created(change, ctx.policy)  # its categories, whether emergencies may be filed
        radius = change_radius(ctx, tx, change)
        workflow.assess(
            change,
            ctx.policy,
            history,
            now,
            standard=standard_decision(ctx, tx, change),
            staging=a.staging_evidence,
            radius=radius,
            frozen=freezes_over(ctx, tx, change, radius),
            freeze_policy=ctx.settings["FREEZE_POLICY"],
            maintenance=maintenance_windows(ctx, tx, now, radius),
            more=workflow.Circumstances(None, record, door.learned(recorded)),
        )
    except (Refused, ValidationError) as exc:
        return simulation.refused(recorded, str(exc))
    return simulation.replayed(recorded, change, ctx.policy, minutes)
