"""The CMDB's tables: configuration items and their relationships (domain/cmdb.py's values)."""

from __future__ import annotations

import json

from ..domain.cmdb import CI, RELATIONS, ImportPlan
from .db import Tx

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from .db import Row

COLUMNS = "name, type, tier, owner, environment, data, attributes"
BATCH = 5000  # names per IN (...) list (SQLite takes 32 766 parameters, PostgreSQL 65 535)


def _ci(row: Row, edges: Iterable[Row]) -> CI:
    name, typ, tier, owner, environment, data, attributes = row
    relations: dict[str, list[str]] = {k: [] for k in RELATIONS}
    for _, kind, target in edges:
        relations[kind].append(target)
    return CI(
        name,
        typ,
        int(tier),
        owner,
        environment,
        data,
        json.loads(attributes),
        {k: tuple(v) for k, v in relations.items()},
    )


def _batches(names: Sequence[str]) -> Iterable[Sequence[str]]:
    for i in range(0, len(names), BATCH):
        yield names[i : i + BATCH]


def everything(tx: Tx) -> dict[str, CI]:
    """Every CI with its relationships (an import compares the file with them)."""
    edges: dict[str, list[Row]] = {}
    for row in tx.all("SELECT source, kind, target FROM ci_relations ORDER BY source, kind, target"):
        edges.setdefault(row[0], []).append(row)
    return {row[0]: _ci(row, edges.get(row[0], ())) for row in tx.all(f"SELECT {COLUMNS} FROM cis")}


def get(tx: Tx, name: str) -> CI | None:
    row = tx.one(f"SELECT {COLUMNS} FROM cis WHERE name = ?", (name,))
    if row is None:
        return None
    edges = tx.all(
        "SELECT source, kind, target FROM ci_relations WHERE source = ? ORDER BY kind, target", (name,)
    )
    return _ci(row, edges)


def many(tx: Tx, names: Sequence[str]) -> dict[str, CI]:
    """The CIs of these names that exist, without their attributes or relationships (what a blast
    radius needs: type, tier, owner, environment, data)."""
    out: dict[str, CI] = {}
    for chunk in _batches(list(names)):
        marks = ", ".join("?" * len(chunk))
        sql = f"SELECT name, type, tier, owner, environment, data FROM cis WHERE name IN ({marks})"
        for name, typ, tier, owner, environment, data in tx.all(sql, tuple(chunk)):
            out[name] = CI(name, typ, int(tier), owner, environment, data)
    return out


def dependents(tx: Tx, names: Sequence[str]) -> list[tuple[str, str, str]]:
    """(source, kind, target) edges whose target is one of `names`: who relies on them."""
    out: list[tuple[str, str, str]] = []
    for chunk in _batches(list(names)):
        marks = ", ".join("?" * len(chunk))
        rows = tx.all(
            f"SELECT source, kind, target FROM ci_relations WHERE target IN ({marks})", tuple(chunk)
        )
        out += [(str(s), str(k), str(t)) for s, k, t in rows]
    return out


def listing(tx: Tx, filters: dict[str, object]) -> list[Row]:
    """CIs by name, filtered on type, tier and owner (exact)."""
    where = [f"{k} = ?" for k in filters]
    sql = f"SELECT {COLUMNS} FROM cis" + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY name"
    return tx.all(sql, tuple(filters.values()))


def empty(tx: Tx) -> bool:
    """No CI at all (one index probe, not a count)."""
    return tx.one("SELECT 1 FROM cis LIMIT 1") is None


def _write(tx: Tx, cis: Sequence[CI]) -> None:
    tx.many(
        f"INSERT INTO cis ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (c.name, c.type, c.tier, c.owner, c.environment, c.data, json.dumps(c.attributes, sort_keys=True))
            for c in cis
        ],
    )
    tx.many(
        "INSERT INTO ci_relations (source, kind, target) VALUES (?, ?, ?)",
        [e for c in cis for e in c.edges()],
    )


def _delete(tx: Tx, names: Sequence[str]) -> None:
    for chunk in _batches(list(names)):
        marks = ", ".join("?" * len(chunk))
        tx.run(f"DELETE FROM ci_relations WHERE source IN ({marks})", tuple(chunk))
        tx.run(f"DELETE FROM cis WHERE name IN ({marks})", tuple(chunk))


def apply(tx: Tx, plan: ImportPlan) -> None:
    """Carry out an import's plan (already checked: every relationship ends at a CI)."""
    changed = [c for c, _ in plan.changed]
    _delete(tx, [*plan.removed, *(c.name for c in changed)])
    _write(tx, [*plan.added, *changed])
