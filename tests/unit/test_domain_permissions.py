"""SPEC §11's permission table (domain/permissions.py): every action × every kind of holder.

The expected table is written out here, not derived from `PERMISSIONS`, so a changed row fails.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from cortex_change.domain.errors import Forbidden, Refused
from cortex_change.domain.lifecycle import State
from cortex_change.domain.permissions import PERMISSIONS, Act, allowed, describe, require
from cortex_change.domain.policy import Policy

if TYPE_CHECKING:
    from conftest import Kit

POLICY = Policy(
    change_managers=frozenset({"cm-1", "cm-2"}),
    implementers=frozenset({"deployer-1"}),
    admins=frozenset({"admin-1"}),
)
REQUESTER = "alice"
LEASE = "worker:w-7"
# One identity per kind of holder; `approver` holds every approval role but none of this table.
KINDS = {
    "outsider": "eve",
    "approver": "tech-lead",
    "requester": REQUESTER,
    "change_manager": "cm-2",
    "implementer": "deployer-1",
    "lease_holder": LEASE,
    "admin": "admin-1",
}
EVERYONE = frozenset(KINDS)
CARRY_OUT = frozenset({"requester", "implementer", "lease_holder", "change_manager"})
EXPECTED: dict[Act, frozenset[str]] = {
    Act.CREATE: EVERYONE,
    Act.READ: EVERYONE,
    Act.ASSESS: EVERYONE,
    Act.UPDATE: frozenset({"requester", "change_manager"}),
    Act.RESCHEDULE: frozenset({"requester", "change_manager"}),
    Act.IMPLEMENT: CARRY_OUT,
    Act.ROLLBACK: CARRY_OUT,
    Act.REPORT: CARRY_OUT,
    Act.CLOSE: CARRY_OUT,
    Act.CANCEL: frozenset({"requester", "change_manager"}),
    Act.LOWER_ROUTE: frozenset({"change_manager"}),
    Act.MANAGE_TOKENS: frozenset({"admin"}),
    Act.MANAGE_WINDOWS: frozenset({"change_manager"}),
    Act.OBSERVE: frozenset({"implementer", "change_manager"}),
    Act.MANAGE_FEEDS: frozenset({"change_manager", "admin"}),
    Act.HALT: frozenset({"change_manager"}),
}
# How a refusal names each kind of holder (with this policy and change).
NAMED = {
    "requester": "the requester (alice)",
    "change_manager": "CHANGE_MANAGERS (cm-1, cm-2)",
    "implementer": "IMPLEMENTERS (deployer-1)",
    "lease_holder": "the worker holding the lease",
    "admin": "ADMINS (admin-1)",
}
# The words each action reads as in a refusal ("eve may not roll back RFC-…").
VERBS = {
    Act.UPDATE: "update",
    Act.RESCHEDULE: "reschedule",
    Act.IMPLEMENT: "implement",
    Act.ROLLBACK: "roll back",
    Act.REPORT: "report the outcome of",
    Act.CLOSE: "close",
    Act.CANCEL: "cancel",
    Act.LOWER_ROUTE: "lower the approval route of",
    Act.MANAGE_TOKENS: "manage API tokens",
    Act.MANAGE_WINDOWS: "manage freeze and maintenance windows",
    Act.OBSERVE: "report observed changes",
    Act.MANAGE_FEEDS: "manage calendar feeds",
    Act.HALT: "stop or restart all automation (freeze on|off)",
}
CASES = [(act, kind) for act in Act for kind in KINDS]
# A state each action is allowed from, so that only the table decides (the lifecycle is
# test_domain_lifecycle's).
STATE_FOR = {
    Act.IMPLEMENT: State.APPROVED,
    Act.ROLLBACK: State.IMPLEMENTED,
    Act.REPORT: State.IMPLEMENTING,
    Act.CLOSE: State.IMPLEMENTED,
    Act.LOWER_ROUTE: State.PENDING_CAB,
    Act.RESCHEDULE: State.APPROVED,
}


def test_every_action_has_a_row_and_an_expectation() -> None:
    assert set(PERMISSIONS) == set(Act) == set(EXPECTED)


@pytest.mark.parametrize(("act", "kind"), CASES, ids=[f"{a.name}-{k}" for a, k in CASES])
def test_table(kit: Kit, act: Act, kind: str) -> None:
    change = kit.change(requested_by=REQUESTER, state=STATE_FOR.get(act, State.PENDING_APPROVAL))
    actor = KINDS[kind]
    may = kind in EXPECTED[act]
    assert allowed(act, actor, POLICY, change, LEASE) is may
    if may:
        require(act, actor, POLICY, change, LEASE)
        return
    with pytest.raises(Forbidden) as refused:
        require(act, actor, POLICY, change, LEASE)
    message = str(refused.value)
    assert isinstance(refused.value, Refused)  # every door maps it to exit 1 / HTTP 403
    assert "\n" not in message
    assert message.startswith(f"{actor} may not {VERBS[act]} {change.change_id}: allowed to ")
    holders = [NAMED[k] for k in NAMED if k in EXPECTED[act]]
    assert all(h in message for h in holders), message
    assert not [n for k, n in NAMED.items() if k not in EXPECTED[act] and n in message], message


def test_the_lease_counts_only_for_its_holder(kit: Kit) -> None:
    change = kit.change(requested_by=REQUESTER, state=State.APPROVED)
    assert allowed(Act.IMPLEMENT, LEASE, POLICY, change, LEASE)
    assert not allowed(Act.IMPLEMENT, LEASE, POLICY, change, None)  # no lease: just a name
    assert not allowed(Act.IMPLEMENT, LEASE, POLICY, change, "worker:w-8")
    assert not allowed(Act.CANCEL, LEASE, POLICY, change, LEASE)  # holding it allows carrying out only


def test_without_a_change_nobody_is_its_requester() -> None:
    assert not allowed(Act.UPDATE, REQUESTER, POLICY)
    assert allowed(Act.UPDATE, "cm-1", POLICY)
    with pytest.raises(Forbidden, match=r"^alice may not manage API tokens: allowed to ADMINS \(admin-1\)$"):
        require(Act.MANAGE_TOKENS, REQUESTER, POLICY)


def test_an_empty_role_reads_nobody() -> None:
    policy = Policy(admins=frozenset())
    assert describe(Act.MANAGE_TOKENS, policy) == "ADMINS (nobody)"
    assert not allowed(Act.MANAGE_TOKENS, "", policy)
    with pytest.raises(Forbidden, match=r"ADMINS \(nobody\)"):
        require(Act.MANAGE_TOKENS, "root", policy)


def test_default_holders_are_named(kit: Kit) -> None:
    change = kit.change(requested_by=REQUESTER)
    assert describe(Act.CLOSE, Policy(), change) == (
        "the requester (alice), IMPLEMENTERS (cortex-deployer), the worker holding the lease, "
        "CHANGE_MANAGERS (change-manager)"
    )
