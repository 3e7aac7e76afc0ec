"""The CMDB's rules (docs/cmdb.md): configuration items, their relationships, an import's plan, and
the blast radius — what transitively relies on what a change touches.

A relationship `A depends_on B` (or `runs_on`, `part_of`) says A relies on B: a change to B reaches
A. The blast radius of some CIs is every CI that reaches them through such edges, followed against
their direction, breadth first, at most `max_depth` steps, each with the path that explains it.
Cycles are allowed in the data and walked once.
"""

from __future__ import annotations

import json
import re
from datetime import date

from . import validation as v
from .errors import ValidationError
from .values import Frozen

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence
    from typing import Any, Final

    Dependents = Callable[[list[str]], Iterable[tuple[str, str, str]]]

TYPES = ("service", "database", "queue", "host", "cluster", "network", "saas", "other")
DATA = ("none", "pii", "phi", "pci")
TIERS = (0, 1, 2, 3)  # 0: the most critical
RELATIONS = ("depends_on", "runs_on", "part_of")
KNOWN_KEYS = frozenset({"name", "type", "tier", "owner", "environment", "data", *RELATIONS})
NAME = re.compile(r"^[a-z0-9]([a-z0-9._/:-]{0,198}[a-z0-9])?$")
CIS_MAX = 200_000
EDGES_MAX = 1_000_000
ATTRIBUTES_MAX = 50
ATTRIBUTE_BYTES_MAX = 4_000
DEFAULT_TIER = 3


def normalise(value: str) -> str:
    """A CI's name as stored: trimmed, lower case, runs of spaces as one '-'."""
    return "-".join(value.strip().lower().split())


def ci_name(field: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ValidationError(field, f"must be a name (text), not {type(value).__name__}")
    v.name(field, value)
    name = normalise(value)
    if not NAME.match(name):
        raise ValidationError(
            field,
            f"{value!r} is not a CI name (letters, digits, . _ / : - inside)",
        )
    return name


class CI(Frozen):
    """A configuration item; `relations` maps each relationship kind to the names it points at."""

    __slots__ = ("attributes", "data", "environment", "name", "owner", "relations", "tier", "type")

    def __init__(
        self,
        name: str,
        type: str,
        tier: int = DEFAULT_TIER,
        owner: str | None = None,
        environment: str | None = None,
        data: str = "none",
        attributes: dict[str, Any] | None = None,
        relations: dict[str, tuple[str, ...]] | None = None,
    ) -> None:
        self.name: Final = name
        self.type: Final = type
        self.tier: Final = tier
        self.owner: Final = owner
        self.environment: Final = environment
        self.data: Final = data
        self.attributes: Final = {} if attributes is None else attributes
        self.relations: Final = {k: tuple(sorted((relations or {}).get(k, ()))) for k in RELATIONS}

    def document(self) -> dict[str, Any]:
        """The CI as the import file gives it (and `cmdb export` writes it)."""
        out: dict[str, Any] = {"name": self.name, "type": self.type, "tier": self.tier}
        for key in ("owner", "environment"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        out["data"] = self.data
        out.update({k: list(names) for k, names in self.relations.items() if names})
        out.update(sorted(self.attributes.items()))
        return out

    def edges(self) -> list[tuple[str, str, str]]:
        """(source, kind, target) of each relationship, sorted."""
        return [(self.name, kind, target) for kind in RELATIONS for target in self.relations[kind]]


def choice(field: str, value: Any, allowed: Sequence[Any]) -> Any:
    """`value` if it is one of `allowed` (of the same type: 1.0 is not the tier 1, True not 1)."""
    if not any(type(value) is type(a) and value == a for a in allowed):
        shown = ", ".join(str(a) for a in allowed)
        raise ValidationError(field, f"{value!r} is not allowed; allowed: {shown}")
    return value


def _attribute(where: str, key: str, value: Any) -> Any:
    if isinstance(value, date):  # YAML reads 2024-01-01 as a date: keep it as the text it was
        value = value.isoformat()
    elif isinstance(value, list):
        value = [x.isoformat() if isinstance(x, date) else x for x in value]
    scalar = (str, int, float, bool, type(None))
    ok = isinstance(value, scalar) or (isinstance(value, list) and all(isinstance(x, scalar) for x in value))
    if not ok:
        raise ValidationError(
            f"{where} {key}", "an attribute is text, a number, true/false or a list of those"
        )
    try:
        size = len(json.dumps(value, ensure_ascii=False, allow_nan=False))
    except ValueError:
        raise ValidationError(f"{where} {key}", "numbers must be finite (no NaN or Infinity)") from None
    if size > ATTRIBUTE_BYTES_MAX:
        raise ValidationError(f"{where} {key}", f"is over {ATTRIBUTE_BYTES_MAX} bytes")
    return value


def parse_ci(index: int, raw: Any) -> CI:
    """One entry of an import file's `cis` list, checked."""
    where = f"cis[{index}]"
    if not isinstance(raw, dict):
        raise ValidationError(where, "must be an object with name and type")
    if "name" not in raw:
        raise ValidationError(where, "has no name")
    name = ci_name(f"{where} name", raw["name"])
    where = f"CI {name!r}"
    if "type" not in raw:
        raise ValidationError(where, f"has no type; types: {', '.join(TYPES)}")
    relations: dict[str, tuple[str, ...]] = {}
    for kind in RELATIONS:
        targets = raw.get(kind, [])
        if isinstance(targets, str):
            targets = [targets]
        if not isinstance(targets, list):
            raise ValidationError(f"{where} {kind}", "must be a list of CI names")
        relations[kind] = tuple(sorted({ci_name(f"{where} {kind}", t) for t in targets}))
    attributes = {str(k): _attribute(where, str(k), val) for k, val in raw.items() if k not in KNOWN_KEYS}
    if len(attributes) > ATTRIBUTES_MAX:
        raise ValidationError(where, f"has {len(attributes)} attributes; at most {ATTRIBUTES_MAX} allowed")
    optional: dict[str, str] = {}
    for k in ("owner", "environment"):
        if raw.get(k) is None:
            continue
        if not isinstance(raw[k], str):
            raise ValidationError(f"{where} {k}", f"must be text, not {type(raw[k]).__name__}")
        optional[k] = v.name(f"{where} {k}", raw[k])
    return CI(
        name,
        choice(f"{where} type", raw["type"], TYPES),
        choice(f"{where} tier", raw.get("tier", DEFAULT_TIER), TIERS),
        optional.get("owner"),
        optional.get("environment"),
        choice(f"{where} data", raw.get("data", "none"), DATA),
        attributes,
        relations,
    )


def parse_document(doc: Any) -> list[CI]:
    """An import document `{"cis": [...]}`: every entry checked, names unique once normalised."""
    if not isinstance(doc, dict) or not isinstance(doc.get("cis"), list):
        raise ValidationError("cmdb file", 'must hold {"cis": [...]} (a list of configuration items)')
    unknown = sorted(set(doc) - {"cis"})
    if unknown:
        raise ValidationError("cmdb file", f"unknown top-level key(s) {', '.join(unknown)}; only cis")
    if len(doc["cis"]) > CIS_MAX:
        raise ValidationError("cmdb file", f"has {len(doc['cis'])} CIs; at most {CIS_MAX} allowed")
    cis: dict[str, CI] = {}
    spelled: dict[str, str] = {}
    for i, raw in enumerate(doc["cis"]):
        ci = parse_ci(i, raw)
        if ci.name in cis:
            raise ValidationError(
                f"cis[{i}] name",
                f"{raw['name']!r} duplicates {spelled[ci.name]!r} (names are compared in lower case, "
                "spaces as '-')",
            )
        cis[ci.name] = ci
        spelled[ci.name] = str(raw["name"])
    if sum(len(c.edges()) for c in cis.values()) > EDGES_MAX:
        raise ValidationError("cmdb file", f"has more than {EDGES_MAX} relationships")
    return list(cis.values())


class ImportPlan(Frozen):
    """What an import would do: CIs added, changed (with the fields that differ), removed."""

    __slots__ = ("added", "changed", "removed", "unchanged")

    def __init__(
        self, added: list[CI], changed: list[tuple[CI, list[str]]], removed: list[str], unchanged: int
    ) -> None:
        self.added: Final = added
        self.changed: Final = changed
        self.removed: Final = removed
        self.unchanged: Final = unchanged

    def summary(self) -> dict[str, Any]:
        return {
            "added": [c.name for c in self.added],
            "changed": [{"name": c.name, "fields": fields} for c, fields in self.changed],
            "removed": self.removed,
            "unchanged": self.unchanged,
        }


def plan_import(current: Mapping[str, CI], incoming: Sequence[CI], prune: bool) -> ImportPlan:
    """Compare a file with the CMDB. Every relationship must end at a CI that exists afterwards
    (in the file, or kept); without `prune`, CIs the file does not name are kept as they are."""
    names = {c.name for c in incoming}
    removed = sorted(set(current) - names) if prune else []
    after = names | (set(current) - set(removed))
    kept = [c for n, c in current.items() if n not in names and n not in removed]
    for ci in [*incoming, *kept]:
        for source, kind, target in ci.edges():
            if target not in after:
                why = "--prune removes it" if target in removed else "no such CI in the file or the CMDB"
                raise ValidationError(f"CI {source!r} {kind}", f"{target!r}: {why}")
    added, changed, same = [], [], 0
    for ci in incoming:
        old = current.get(ci.name)
        if old is None:
            added.append(ci)
            continue
        fields = [
            k
            for k in ("type", "tier", "owner", "environment", "data", "attributes", "relations")
            if getattr(old, k) != getattr(ci, k)
        ]
        if fields:
            changed.append((ci, fields))
        else:
            same += 1
    return ImportPlan(added, changed, removed, same)


class Reach(Frozen):
    """A CI in a blast radius: how far, and the path from it to a CI the change touches, as
    (name, kind, name) steps: `cortex-chat depends_on postgres-main`."""

    __slots__ = ("depth", "name", "path")

    def __init__(self, name: str, depth: int, path: tuple[tuple[str, str, str], ...]) -> None:
        self.name: Final = name
        self.depth: Final = depth
        self.path: Final = path

    def explain(self) -> str:
        """`cortex-chat → depends on postgres-main`, or the name alone for a touched CI."""
        if not self.path:
            return self.name
        words = [self.path[0][0]]
        for _, kind, target in self.path:
            words.append(f"{kind.replace('_', ' ')} {target}")
        return " → ".join(words)


def blast_radius(starts: Iterable[str], dependents: Dependents, max_depth: int) -> list[Reach]:
    """The touched CIs (depth 0) and every CI relying on them, breadth first, at most `max_depth`
    steps away; `dependents(names)` gives the (source, kind, target) edges whose target is one of
    `names`. Each CI appears once, at its shortest distance (ties: the first path found in
    sorted order, so the answer is deterministic)."""
    reached: dict[str, Reach] = {}
    frontier = sorted(set(starts))
    for name in frontier:
        reached[name] = Reach(name, 0, ())
    depth = 0
    while frontier and depth < max_depth:
        depth += 1
        following: list[str] = []
        for source, kind, target in sorted(dependents(frontier)):
            if source in reached:
                continue
            reached[source] = Reach(source, depth, ((source, kind, target), *reached[target].path))
            following.append(source)
        frontier = following
    return sorted(reached.values(), key=lambda r: (r.depth, r.name))


def as_json(cis: Iterable[CI]) -> str:
    """The export document, stable (sorted, one CI per line)."""
    rows = [json.dumps(c.document(), ensure_ascii=False) for c in sorted(cis, key=lambda c: c.name)]
    return '{"cis": [\n  ' + ",\n  ".join(rows) + "\n]}\n" if rows else '{"cis": []}\n'


def render_graph(root: str, edges: Sequence[tuple[str, str, str]], fmt: str) -> str:
    """Edges as Graphviz dot or Mermaid flowchart text; names quoted, the root highlighted."""
    nodes = sorted({root, *(e[0] for e in edges), *(e[2] for e in edges)})
    ids = {name: f"n{i}" for i, name in enumerate(nodes)}
    if fmt == "mermaid":
        lines = ["flowchart LR"]
        lines += [f'  {ids[n]}["{_mermaid(n)}"]' for n in nodes]
        lines += [f"  {ids[s]} -->|{k}| {ids[t]}" for s, k, t in edges]
        lines.append(f"  style {ids[root]} stroke-width:3px")
        return "\n".join(lines) + "\n"
    lines = ["digraph cmdb {", "  rankdir=LR;"]
    lines += [f"  {ids[n]} [label={json.dumps(n)}{', penwidth=3' if n == root else ''}];" for n in nodes]
    lines += [f"  {ids[s]} -> {ids[t]} [label={json.dumps(k)}];" for s, k, t in edges]
    return "\n".join([*lines, "}"]) + "\n"


def _mermaid(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._/:-" else f"#{ord(c)};" for c in name)


# Impact a touched tier implies (risk.py raises a change's impact to it); tier 3 implies nothing.
TIER_IMPACT = {0: "critical", 1: "high", 2: "medium"}
SENSITIVE = ("phi", "pci")
RADIUS_KEPT = 50  # CIs of a radius kept on the record (the size is kept whole)


class Radius(Frozen):
    """A change's blast radius: the CIs reached (with their records), the names not in the CMDB."""

    __slots__ = ("reaches", "unknown")

    def __init__(self, reaches: list[tuple[Reach, CI]], unknown: list[str]) -> None:
        self.reaches: Final = reaches
        self.unknown: Final = unknown

    def most_critical(self) -> tuple[Reach, CI] | None:
        """The reached CI of the lowest tier (then the nearest, then by name)."""
        return min(self.reaches, key=lambda rc: (rc[1].tier, rc[0].depth, rc[0].name), default=None)

    def sensitive(self) -> list[tuple[Reach, CI]]:
        """The reached CIs holding PHI or PCI data."""
        return [(r, ci) for r, ci in self.reaches if ci.data in SENSITIVE]

    def document(self) -> dict[str, Any]:
        """What the assessment keeps: size, the nearest CIs with their paths, sensitive data."""
        critical = self.most_critical()
        return {
            "size": len(self.reaches),
            "cis": [
                {"name": r.name, "depth": r.depth, "tier": ci.tier, "data": ci.data, "path": r.explain()}
                for r, ci in self.reaches[:RADIUS_KEPT]
            ],
            "most_critical": None
            if critical is None
            else f"{critical[0].explain()} (tier {critical[1].tier})",
            "sensitive": [
                {"name": r.name, "data": ci.data, "path": r.explain()} for r, ci in self.sensitive()
            ],
            "unknown": self.unknown,
        }
