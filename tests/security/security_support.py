"""SPEC §11 attacks through both doors: a live server with real tokens, and the local CLI.

A `World` is one store (SQLite or PostgreSQL) with a `cortex-change.toml` in its working
directory, a real `cortex-change serve` on it, and a token per identity made by the real CLI
(`token create NAME`). A `Door` is how an identity reaches it: `ApiDoor` (bearer tokens over
HTTP) or `CliDoor` (the console script as a subprocess, `--as NAME`). Every attack is written
once against `Door` and runs through both doors on both backends.

`World.refused` is the check every attack ends with: the refusal's code (exit 1 / HTTP 403), the
change's state, version and document unchanged, nothing written but one audit event — `refused`,
by the attacker, carrying the message the attacker was shown.

(A module of its own, not conftest.py: test folders share the module name `conftest`.)
"""

from __future__ import annotations

import json
import re
import shlex
import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import httpx

from api.conftest import Server, make_token, run_cli
from support import query

PROBLEM = "application/problem+json"
ID = re.compile(r"RFC-\d{14}-[0-9a-f]{6}")

# The configuration every world runs with (the server and every CLI run read the same file, so no
# `config_changed` event is ever written between them).
CONFIG = """\
# Worker passes carry out an approved standard or emergency change at once (AUTO_IMPLEMENT).
AUTO_IMPLEMENT = true
IMPLEMENTATION_DELAY = 0
EMERGENCY_AUTO_APPROVE = true
# A change manager who is also a technical lead and an ECAB member: an author of a change must
# not approve or review it, whatever roles they hold.
TECH_LEADS = ["tech-lead", "coordinator-master", "change-manager"]
ECAB_MEMBERS = ["tech-lead-oncall", "security-oncall", "change-manager"]
"""
# Everyone with a token. `eve` holds no role at all; the others hold the defaults' roles.
IDENTITIES = (
    "alice",
    "eve",
    "tech-lead",
    "coordinator-master",
    "ops-lead",
    "security-lead",
    "ciso",
    "cto",
    "change-manager",
    "cortex-deployer",
    "tech-lead-oncall",
    "security-oncall",
)
# Tables a refusal must leave alone (audit_events gets exactly the refusal).
TABLES = ("changes", "change_services", "outbox", "timers", "leases", "incidents", "api_tokens")


class Outcome(NamedTuple):
    """What one request got: exit status (CLI) or HTTP status (API), and the one-line error."""

    code: int
    message: str


class Record(NamedTuple):
    """A change as stored: version, state column, document text."""

    version: int
    state: str
    doc: str


class Event(NamedTuple):
    action: str
    actor: str
    details: dict[str, Any]


def run_plan(marker: Path) -> dict[str, Any]:
    """An implementation plan with one ad-hoc executable step that creates `marker`."""
    return {"steps": [{"run": ["sh", "-c", f"touch {shlex.quote(str(marker))}"]}]}


TEXT_PLANS: dict[str, Any] = {
    "implementation_plan": {"steps": ["deploy the new build"]},
    "rollback_plan": {"steps": ["redeploy the previous build"]},
}


class World:
    """A store, its configuration, a live server on it and a token per identity."""

    def __init__(self, store: str, root: Path) -> None:
        self.store = store
        self.root = root
        self.cwd = root / "cwd"
        self.cwd.mkdir(parents=True)
        (self.cwd / "cortex-change.toml").write_text(CONFIG)
        self.markers = root / "markers"
        self.markers.mkdir()
        self.tokens = {name: make_token(store, self.cwd, name) for name in IDENTITIES}
        self.server = Server(store, self.cwd).start()

    def close(self) -> None:
        self.server.stop()

    # --- the store, read directly ---------------------------------------------------------------

    def record(self, change_id: str) -> Record:
        rows = query(self.store, "SELECT version, state, doc FROM changes WHERE change_id=?", (change_id,))
        assert rows, change_id
        return Record(int(rows[0][0]), str(rows[0][1]), str(rows[0][2]))

    def doc(self, change_id: str) -> dict[str, Any]:
        """The stored document (SPEC §1 fields, `authors`, `route_floor`, `version`)."""
        doc: dict[str, Any] = json.loads(self.record(change_id).doc)
        return doc

    def route(self, change_id: str) -> tuple[str, str, str]:
        """(type, approval_required, state) of a change."""
        doc = self.doc(change_id)
        return doc["type"], doc["approval_required"], doc["state"]

    def events(self, change_id: str) -> list[Event]:
        rows = query(
            self.store,
            "SELECT action, actor, details FROM audit_events WHERE change_id=? ORDER BY seq",
            (change_id,),
        )
        return [Event(str(r[0]), str(r[1]), json.loads(r[2])) for r in rows]

    def actions(self, change_id: str) -> list[str]:
        return [e.action for e in self.events(change_id)]

    def overwrite(self, change_id: str, doc: str) -> None:
        """Replace a change's stored document behind the program's back (a record written by hand)."""
        sql = "UPDATE changes SET doc=? WHERE change_id=?"
        if self.store.startswith("postgresql://"):
            import psycopg

            with psycopg.connect(self.store, autocommit=True) as pg:
                assert pg.execute(sql.replace("?", "%s"), (doc, change_id)).rowcount == 1
            return
        conn = sqlite3.connect(self.store)
        try:
            with conn:
                assert conn.execute(sql, (doc, change_id)).rowcount == 1
        finally:
            conn.close()

    def counts(self) -> dict[str, int]:
        return {
            t: int(query(self.store, f"SELECT count(*) FROM {t}")[0][0]) for t in (*TABLES, "audit_events")
        }

    # --- helpers ----------------------------------------------------------------------------------

    def marker(self) -> Path:
        """A path an executable step may create; nothing else ever does."""
        return self.markers / f"ran-{uuid.uuid4().hex[:10]}"

    def cli(self, *args: str) -> tuple[int, str, str]:
        res = run_cli(self.store, self.cwd, *args)
        return res.code, res.out, res.err

    def worker_pass(self) -> None:
        """One `worker run --once`: fires due timers (AUTO_IMPLEMENT, queued implementations)."""
        code, _, err = self.cli("worker", "run", "--once", "--name", "security-test")
        assert code == 0, err

    def refused(
        self,
        change_id: str,
        attacker: str,
        attempt: Callable[[], Outcome],
        code: int,
        action: str = "refused",
    ) -> str:
        """Run `attempt`; it must be refused with `code` and write nothing but the refusal's event.

        Returns the message the attacker saw.
        """
        before, counts = self.record(change_id), self.counts()
        out = attempt()
        assert out.code == code, out
        assert self.record(change_id) == before, "a refusal changed the record"
        assert self.counts() == {**counts, "audit_events": counts["audit_events"] + 1}
        last = self.events(change_id)[-1]
        assert (last.action, last.actor) == (action, attacker), last
        assert last.details["error"] == out.message
        return out.message


class Door:
    """How an identity reaches the world; every method acts as `who`."""

    name = ""
    OK = 0
    REFUSED = 1  # a rule refused: Forbidden, segregation of duties, ...
    WRONG_STATE = 1  # the state does not allow the action (an `unauthorized_attempt`)

    def __init__(self, world: World) -> None:
        self.world = world

    def create(self, who: str, type_: str, category: str, title: str, **fields: Any) -> str:
        raise NotImplementedError

    def assess(
        self, who: str, change_id: str, *, reassess: bool = False, reason: str | None = None
    ) -> Outcome:
        raise NotImplementedError

    def update(self, who: str, change_id: str, **fields: Any) -> Outcome:
        raise NotImplementedError

    def approve(self, who: str, change_id: str, reason: str = "reviewed") -> Outcome:
        raise NotImplementedError

    def implement(self, who: str, change_id: str) -> Outcome:
        raise NotImplementedError

    def close(self, who: str, change_id: str, status: str = "successful") -> Outcome:
        raise NotImplementedError

    def cancel(self, who: str, change_id: str, reason: str = "not needed") -> Outcome:
        raise NotImplementedError

    def review(
        self, who: str, change_id: str, outcome: str = "accepted", notes: str = "justified"
    ) -> Outcome:
        raise NotImplementedError

    def integrate(self, who: str, component: str, action: str, details: dict[str, Any]) -> str:
        raise NotImplementedError

    def ok(self, out: Outcome) -> None:
        assert out.code == self.OK, out

    def implemented(self, who: str, change_id: str) -> None:
        """`who` carries the change out, wherever its steps run (here, or a worker's next pass)."""
        self.ok(self.implement(who, change_id))
        self.world.worker_pass()


class ApiDoor(Door):
    """The REST API of the live server, with each identity's bearer token."""

    name = "api"
    OK = 200
    REFUSED = 403
    WRONG_STATE = 409

    def __init__(self, world: World) -> None:
        super().__init__(world)
        self.clients: dict[str, httpx.Client] = {}

    def close_clients(self) -> None:
        for client in self.clients.values():
            client.close()

    def client(self, who: str) -> httpx.Client:
        if who not in self.clients:
            self.clients[who] = httpx.Client(
                base_url=f"{self.world.server.url}/api/v1",
                headers={"Authorization": f"Bearer {self.world.tokens[who]}"},
                timeout=60,
            )
        return self.clients[who]

    def call(self, who: str, method: str, path: str, body: dict[str, Any] | None = None) -> Outcome:
        r = self.client(who).request(method, path, json=body)
        if r.is_success:
            return Outcome(r.status_code, "")
        assert r.headers["content-type"] == PROBLEM, r.text
        problem: dict[str, Any] = r.json()
        assert problem["status"] == r.status_code
        return Outcome(r.status_code, str(problem["detail"]))

    def create(self, who: str, type_: str, category: str, title: str, **fields: Any) -> str:
        body = {"type": type_, "category": category, "title": title, **fields}
        r = self.client(who).post("/changes", json=body)
        assert r.status_code == 201, r.text
        change_id: str = r.json()["change_id"]
        return change_id

    def assess(
        self, who: str, change_id: str, *, reassess: bool = False, reason: str | None = None
    ) -> Outcome:
        body: dict[str, Any] = {"reassess": reassess}
        if reason is not None:
            body["reason"] = reason
        return self.call(who, "POST", f"/changes/{change_id}/assess", body)

    def update(self, who: str, change_id: str, **fields: Any) -> Outcome:
        return self.call(who, "PATCH", f"/changes/{change_id}", fields)

    def approve(self, who: str, change_id: str, reason: str = "reviewed") -> Outcome:
        return self.call(who, "POST", f"/changes/{change_id}/approve", {"reason": reason})

    def implement(self, who: str, change_id: str) -> Outcome:
        out = self.call(who, "POST", f"/changes/{change_id}/implement")
        # 202: handed to the workers (SPEC §11, being built); `implemented` runs a worker pass.
        return out._replace(code=self.OK) if out.code == 202 else out

    def close(self, who: str, change_id: str, status: str = "successful") -> Outcome:
        return self.call(who, "POST", f"/changes/{change_id}/close", {"status": status, "notes": "done"})

    def cancel(self, who: str, change_id: str, reason: str = "not needed") -> Outcome:
        return self.call(who, "POST", f"/changes/{change_id}/cancel", {"reason": reason})

    def review(
        self, who: str, change_id: str, outcome: str = "accepted", notes: str = "justified"
    ) -> Outcome:
        return self.call(who, "POST", f"/changes/{change_id}/review", {"outcome": outcome, "notes": notes})

    def integrate(self, who: str, component: str, action: str, details: dict[str, Any]) -> str:
        r = self.client(who).post(f"/integrations/{component}/{action}", json={"details": details})
        assert r.status_code == 200, r.text
        change_id: str = r.json()["change_id"]
        return change_id


class CliDoor(Door):
    """The local console script as a subprocess on the same store; `--as NAME` is the identity."""

    name = "cli"

    def run(self, *args: str) -> Outcome:
        code, out, err = self.world.cli(*args)
        if code == 0:
            return Outcome(0, "")
        assert out == "", out
        lines = err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("cortex-change: "), err  # one line, no traceback
        return Outcome(code, lines[0].removeprefix("cortex-change: "))

    def create(self, who: str, type_: str, category: str, title: str, **fields: Any) -> str:
        args = ["create", type_, category, title, fields.pop("description", "")]
        if "standard_model" in fields:
            args += ["--model", fields.pop("standard_model")]
        for key, value in fields.pop("parameters", {}).items():
            args += ["--param", f"{key}={value}"]
        if fields:
            args += ["--details", json.dumps(fields)]
        code, out, err = self.world.cli(*args, "--as", who)
        assert code == 0, err
        return out.strip()

    def assess(
        self, who: str, change_id: str, *, reassess: bool = False, reason: str | None = None
    ) -> Outcome:
        args = ["assess", change_id, "--as", who]
        if reassess:
            args.append("--reassess")
        if reason is not None:
            args += ["--reason", reason]
        return self.run(*args)

    def update(self, who: str, change_id: str, **fields: Any) -> Outcome:
        args = ["update", change_id, "--as", who]
        for key in ("title", "description"):
            if key in fields:
                args += [f"--{key}", fields.pop(key)]
        if fields:
            args += ["--details", json.dumps(fields)]
        return self.run(*args)

    def approve(self, who: str, change_id: str, reason: str = "reviewed") -> Outcome:
        return self.run("approve", change_id, who, reason)

    def implement(self, who: str, change_id: str) -> Outcome:
        return self.run("implement", change_id, "--as", who)

    def close(self, who: str, change_id: str, status: str = "successful") -> Outcome:
        return self.run("close", change_id, status, "done", "--as", who)

    def cancel(self, who: str, change_id: str, reason: str = "not needed") -> Outcome:
        return self.run("cancel", change_id, reason, "--as", who)

    def review(
        self, who: str, change_id: str, outcome: str = "accepted", notes: str = "justified"
    ) -> Outcome:
        return self.run("review", change_id, who, outcome, notes)

    def integrate(self, who: str, component: str, action: str, details: dict[str, Any]) -> str:
        code, out, err = self.world.cli("integrate", component, action, json.dumps(details), "--as", who)
        assert code == 0, err
        ids = ID.findall(out)
        assert ids, out
        return str(ids[-1])
