"""The CMDB's rules (domain/cmdb.py): names, types, tiers and data classes, attributes, import plans,
the blast radius (chains, diamonds, cycles, the depth bound, its paths) and the graph renderings."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import pytest

from cortex_change.domain import cmdb
from cortex_change.domain.cmdb import CI, Radius, Reach
from cortex_change.domain.errors import ValidationError

Edge = tuple[str, str, str]


def parse(*cis: dict[str, Any]) -> list[CI]:
    return cmdb.parse_document({"cis": list(cis)})


def refused(*cis: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as exc:
        parse(*cis)
    message = str(exc.value)
    assert "\n" not in message
    return message


def current(*cis: dict[str, Any]) -> dict[str, CI]:
    return {c.name: c for c in parse(*cis)}


def graph(edges: Iterable[Edge]) -> tuple[Callable[[list[str]], list[Edge]], list[list[str]]]:
    """A `dependents` function over these edges, and the frontiers it was asked about."""
    held = list(edges)
    asked: list[list[str]] = []

    def dependents(names: list[str]) -> list[Edge]:
        asked.append(list(names))
        wanted = set(names)
        return [e for e in held if e[2] in wanted]

    return dependents, asked


def radius(edges: Sequence[Edge], starts: Iterable[str], max_depth: int = 10) -> dict[str, Reach]:
    dependents, _ = graph(edges)
    return {r.name: r for r in cmdb.blast_radius(starts, dependents, max_depth)}


# --- names --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("redis-cache", "redis-cache"),
        ("Redis-Cache", "redis-cache"),
        ("  POSTGRES-main  ", "postgres-main"),
        ("Redis Cache", "redis-cache"),
        ("redis   cache  primary", "redis-cache-primary"),
        ("svc/Cortex/Cortex-Chat", "svc/cortex/cortex-chat"),
    ],
)
def test_names_are_normalised(given: str, stored: str) -> None:
    assert cmdb.normalise(given) == stored
    (ci,) = parse({"name": given, "type": "service"})
    assert ci.name == stored


def test_relationship_targets_are_normalised_sorted_and_held_once() -> None:
    cis = parse(
        {"name": "b", "type": "database"},
        {"name": "C D", "type": "queue"},
        {"name": "a", "type": "service", "depends_on": ["C D", "B", "b", " c-d "], "runs_on": "B"},
    )
    a = {c.name: c for c in cis}["a"]
    assert a.relations == {"depends_on": ("b", "c-d"), "runs_on": ("b",), "part_of": ()}
    assert a.edges() == [("a", "depends_on", "b"), ("a", "depends_on", "c-d"), ("a", "runs_on", "b")]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("Redis", "redis"),
        ("redis", "REDIS"),
        ("redis cache", "Redis-Cache"),
        ("redis-cache", " redis  cache "),
    ],
)
def test_duplicates_differing_only_by_case_or_spaces_are_refused_naming_both(first: str, second: str) -> None:
    message = refused({"name": first, "type": "queue"}, {"name": second, "type": "queue"})
    assert repr(first) in message and repr(second) in message
    assert "cis[1]" in message


@pytest.mark.parametrize(
    "name", ["", "   ", "a;b", "-a", "a-", "a b;c", "x" * 201, "redis\ncache", "café", "a\x00b"]
)
def test_names_outside_the_alphabet_are_refused(name: str) -> None:
    message = refused({"name": name, "type": "service"})
    assert "name" in message


@pytest.mark.parametrize("name", [5, None, ["a"], {"a": 1}, True])
def test_a_name_must_be_text(name: Any) -> None:
    assert "cis[0] name" in refused({"name": name, "type": "service"})


def test_a_ci_without_name_or_type_or_not_an_object_is_refused() -> None:
    assert "has no name" in refused({"type": "service"})
    message = refused({"name": "a"})
    assert "has no type" in message and "service" in message and "database" in message
    assert "cis[0]" in refused("a")  # type: ignore[arg-type]


# --- types, tiers, data classes --------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("type", "blob", cmdb.TYPES),
        ("type", "Service", cmdb.TYPES),
        ("type", 3, cmdb.TYPES),
        ("tier", 7, cmdb.TIERS),
        ("tier", -1, cmdb.TIERS),
        ("tier", "1", cmdb.TIERS),
        ("tier", True, cmdb.TIERS),
        ("tier", None, cmdb.TIERS),
        ("data", "secret", cmdb.DATA),
        ("data", "PHI", cmdb.DATA),
        ("data", False, cmdb.DATA),
    ],
)
def test_unknown_type_tier_or_data_is_refused_with_the_allowed_list(
    key: str, value: Any, allowed: Any
) -> None:
    raw = {"name": "thing", "type": "service", key: value}
    message = refused(raw)
    assert f"CI 'thing' {key}" in message
    assert f"{value!r}" in message
    assert "allowed: " + ", ".join(str(a) for a in allowed) in message


def test_defaults_and_every_allowed_value() -> None:
    (plain,) = parse({"name": "x", "type": "other"})
    assert (plain.tier, plain.data, plain.owner, plain.environment) == (3, "none", None, None)
    for kind, tier, data in itertools.product(cmdb.TYPES, cmdb.TIERS, cmdb.DATA):
        (ci,) = parse({"name": "x", "type": kind, "tier": tier, "data": data})
        assert (ci.type, ci.tier, ci.data) == (kind, tier, data)


@pytest.mark.parametrize("key", ["owner", "environment"])
@pytest.mark.parametrize("value", [["a", "b"], {"team": "x"}, True])
def test_owner_and_environment_must_be_text(key: str, value: Any) -> None:
    """Not coerced with str(): `owner: [a, b]` is not the owner "['a', 'b']"."""
    message = refused({"name": "x", "type": "service", key: value})
    assert key in message


@pytest.mark.parametrize("kind", cmdb.RELATIONS)
@pytest.mark.parametrize("value", [{"a": 1}, 5, [5], [["a"]]])
def test_relationships_must_be_lists_of_names(kind: str, value: Any) -> None:
    assert kind in refused({"name": "x", "type": "service", kind: value})


# --- attributes -----------------------------------------------------------------------------------


def test_attributes_are_kept_scalars_and_lists() -> None:
    raw = {
        "name": "x",
        "type": "service",
        "slo": "99.9%",
        "replicas": 3,
        "cpu": 0.5,
        "public": False,
        "note": None,
        "hosts": ["a.example", "b.example"],
        "ports": [80, 443],
        "mixed": [1, "two", True, None, 2.5],
        "empty": [],
    }
    (ci,) = parse(raw)
    expected = {k: v for k, v in raw.items() if k not in ("name", "type")}
    assert ci.attributes == expected
    doc = ci.document()
    assert {k: doc[k] for k in expected} == expected
    assert parse(doc) == [ci]


@pytest.mark.parametrize(
    "value",
    [{"nested": 1}, [{"a": 1}], [[1, 2]], {"a": {"b": "c"}}],
    ids=["object", "list of objects", "list of lists", "deep"],
)
def test_nested_attributes_are_refused(value: Any) -> None:
    message = refused({"name": "x", "type": "service", "meta": value})
    assert "CI 'x' meta" in message and "text, a number, true/false or a list" in message


@pytest.mark.parametrize("value", [float("nan"), float("inf"), [1.0, float("-inf")]])
def test_non_finite_attributes_are_refused(value: Any) -> None:
    assert "finite" in refused({"name": "x", "type": "service", "w": value})


def test_attribute_limits() -> None:
    many = {f"k{i}": i for i in range(cmdb.ATTRIBUTES_MAX + 1)}
    assert str(cmdb.ATTRIBUTES_MAX) in refused({"name": "x", "type": "service", **many})
    parse({"name": "x", "type": "service", **dict(list(many.items())[:-1])})
    assert str(cmdb.ATTRIBUTE_BYTES_MAX) in refused(
        {"name": "x", "type": "service", "blob": "y" * cmdb.ATTRIBUTE_BYTES_MAX}
    )


# --- the document ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "words"),
    [
        ({"cis": 5}, ["cis"]),
        ({"cis": {"a": 1}}, ["cis"]),
        ([], ["cis"]),
        ("cis", ["cis"]),
        (None, ["cis"]),
        ({}, ["cis"]),
        ({"cis": [], "relations": []}, ["unknown top-level", "relations", "only cis"]),
    ],
)
def test_a_document_must_be_cis_and_nothing_else(doc: Any, words: list[str]) -> None:
    with pytest.raises(ValidationError) as exc:
        cmdb.parse_document(doc)
    for word in words:
        assert word in str(exc.value)


def test_an_empty_document_is_no_cis() -> None:
    assert cmdb.parse_document({"cis": []}) == []
    assert cmdb.as_json([]) == '{"cis": []}\n'


def test_export_is_sorted_one_ci_per_line_and_parses_back_to_the_same_cis() -> None:
    cis = parse(
        {"name": "Zed", "type": "service", "depends_on": ["alpha"], "hosts": ["z"], "tier": 0},
        {"name": "alpha", "type": "database", "data": "phi", "owner": "data", "environment": "prod"},
    )
    text = cmdb.as_json(cis)
    lines = text.splitlines()
    assert lines[0] == '{"cis": [' and lines[-1] == "]}"
    assert [json.loads(line.rstrip(","))["name"] for line in lines[1:-1]] == ["alpha", "zed"]
    again = cmdb.parse_document(json.loads(text))
    assert sorted(again, key=lambda c: c.name) == sorted(cis, key=lambda c: c.name)
    assert cmdb.as_json(again) == text


# --- import plans -----------------------------------------------------------------------------------


def test_a_relationship_to_a_missing_ci_is_refused() -> None:
    incoming = parse({"name": "app", "type": "service", "runs_on": ["ghost"]})
    with pytest.raises(ValidationError) as exc:
        cmdb.plan_import({}, incoming, prune=False)
    message = str(exc.value)
    assert "'app'" in message and "runs_on" in message and "'ghost'" in message
    assert "no such CI" in message


def test_a_relationship_to_a_ci_already_in_the_cmdb_is_allowed_without_prune() -> None:
    held = current({"name": "db", "type": "database"})
    incoming = parse({"name": "app", "type": "service", "depends_on": ["db"]})
    plan = cmdb.plan_import(held, incoming, prune=False)
    assert [c.name for c in plan.added] == ["app"] and plan.removed == []


def test_a_relationship_to_a_ci_prune_would_remove_is_refused() -> None:
    held = current({"name": "db", "type": "database"})
    incoming = parse({"name": "app", "type": "service", "depends_on": ["db"]})
    with pytest.raises(ValidationError) as exc:
        cmdb.plan_import(held, incoming, prune=True)
    assert "'db'" in str(exc.value) and "--prune removes it" in str(exc.value)


def test_a_kept_ci_pointing_at_a_changed_one_still_checks() -> None:
    """Without prune, CIs the file does not name are kept, and their relationships must still end."""
    held = current(
        {"name": "db", "type": "database"}, {"name": "app", "type": "service", "depends_on": ["db"]}
    )
    plan = cmdb.plan_import(held, parse({"name": "db", "type": "database", "tier": 0}), prune=False)
    assert plan.summary()["changed"] == [{"name": "db", "fields": ["tier"]}]
    assert plan.removed == [] and plan.unchanged == 0


def test_plan_added_changed_removed_unchanged() -> None:
    held = current(
        {"name": "same", "type": "service", "tier": 1, "slo": "99%"},
        {"name": "moved", "type": "service", "tier": 2, "owner": "a-team", "slo": "99%"},
        {"name": "rewired", "type": "service", "depends_on": ["same"]},
        {"name": "gone", "type": "host"},
    )
    incoming = parse(
        {"name": "same", "type": "service", "tier": 1, "slo": "99%"},
        {"name": "Moved", "type": "database", "tier": 0, "owner": "b-team", "data": "pci", "slo": "99.9%"},
        {"name": "rewired", "type": "service", "depends_on": ["new"]},
        {"name": "new", "type": "queue", "environment": "prod"},
    )
    plan = cmdb.plan_import(held, incoming, prune=True)
    assert plan.summary() == {
        "added": ["new"],
        "changed": [
            {"name": "moved", "fields": ["type", "tier", "owner", "data", "attributes"]},
            {"name": "rewired", "fields": ["relations"]},
        ],
        "removed": ["gone"],
        "unchanged": 1,
    }
    without = cmdb.plan_import(held, incoming, prune=False)
    assert without.removed == [] and without.summary()["changed"] == plan.summary()["changed"]


def test_the_same_file_again_plans_nothing() -> None:
    incoming = parse(
        {"name": "db", "type": "database", "tier": 0, "data": "phi", "version": "15"},
        {"name": "app", "type": "service", "depends_on": ["db"], "hosts": ["a", "b"]},
    )
    plan = cmdb.plan_import({c.name: c for c in incoming}, incoming, prune=True)
    assert plan.summary() == {"added": [], "changed": [], "removed": [], "unchanged": 2}


# --- the blast radius ------------------------------------------------------------------------------


def test_a_chain_is_followed_against_the_edges_with_the_path() -> None:
    edges = [("a", "depends_on", "b"), ("b", "runs_on", "c"), ("c", "part_of", "d")]
    found = radius(edges, ["c"])
    assert {n: r.depth for n, r in found.items()} == {"c": 0, "b": 1, "a": 2}
    assert found["a"].path == (("a", "depends_on", "b"), ("b", "runs_on", "c"))
    assert found["a"].explain() == "a → depends on b → runs on c"
    assert found["b"].explain() == "b → runs on c"
    assert found["c"].explain() == "c" and found["c"].path == ()
    assert "d" not in found  # what c relies on is not in its radius


def test_the_order_is_by_depth_then_name() -> None:
    edges = [("z", "depends_on", "root"), ("a", "depends_on", "root"), ("m", "depends_on", "z")]
    dependents, _ = graph(edges)
    assert [(r.name, r.depth) for r in cmdb.blast_radius(["root"], dependents, 10)] == [
        ("root", 0),
        ("a", 1),
        ("z", 1),
        ("m", 2),
    ]


DIAMOND = [
    ("top", "depends_on", "right"),
    ("top", "depends_on", "left"),
    ("left", "runs_on", "bottom"),
    ("right", "depends_on", "bottom"),
]


def test_a_diamond_reaches_the_top_once_at_its_shortest_distance() -> None:
    found = radius(DIAMOND, ["bottom"])
    assert sorted(found) == ["bottom", "left", "right", "top"]
    assert found["top"].depth == 2
    assert found["top"].explain() == "top → depends on left → runs on bottom"  # sorted: left first


@pytest.mark.parametrize("order", list(itertools.permutations(range(4))))
def test_paths_are_deterministic_whatever_order_edges_come_in(order: tuple[int, ...]) -> None:
    edges = [DIAMOND[i] for i in order]
    dependents, _ = graph(edges)
    got = cmdb.blast_radius(["bottom"], dependents, 10)
    dependents, _ = graph(DIAMOND)
    assert got == cmdb.blast_radius(["bottom"], dependents, 10)


def test_a_shorter_path_wins_over_an_earlier_longer_one() -> None:
    edges = [("a", "depends_on", "b"), ("b", "depends_on", "c"), ("a", "runs_on", "c")]
    found = radius(edges, ["c"])
    assert found["a"].depth == 1 and found["a"].explain() == "a → runs on c"


def test_a_cycle_is_walked_once_and_terminates() -> None:
    edges = [("a", "depends_on", "b"), ("b", "depends_on", "c"), ("c", "depends_on", "a")]
    dependents, asked = graph(edges)
    found = {r.name: r for r in cmdb.blast_radius(["a"], dependents, 1_000)}
    assert {n: r.depth for n, r in found.items()} == {"a": 0, "c": 1, "b": 2}
    assert found["b"].explain() == "b → depends on c → depends on a"
    assert len(asked) == 3  # a, c, b: then nothing new, the walk stops


def test_a_self_loop_and_a_two_cycle_terminate() -> None:
    found = radius([("a", "depends_on", "a"), ("b", "depends_on", "a"), ("a", "part_of", "b")], ["a"])
    assert {n: r.depth for n, r in found.items()} == {"a": 0, "b": 1}


@pytest.mark.parametrize(("max_depth", "reached"), [(0, 1), (1, 2), (3, 4), (19, 20), (20, 21), (50, 21)])
def test_the_depth_bound(max_depth: int, reached: int) -> None:
    chain = [(f"n{i + 1}", "depends_on", f"n{i}") for i in range(20)]
    dependents, asked = graph(chain)
    found = cmdb.blast_radius(["n0"], dependents, max_depth)
    assert len(found) == reached
    assert max(r.depth for r in found) == min(max_depth, 20)
    assert len(asked) <= max_depth


def test_several_starts_are_each_depth_zero_and_named_once() -> None:
    edges = [("a", "depends_on", "x"), ("a", "depends_on", "y"), ("b", "depends_on", "y")]
    found = radius(edges, ["y", "x", "y"])
    assert {n: r.depth for n, r in found.items()} == {"x": 0, "y": 0, "a": 1, "b": 1}
    assert found["a"].explain() == "a → depends on x"
    assert radius(edges, ["a", "x"])["a"].depth == 0  # a touched CI is never reached "through" another


def sensitive(doc: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(data, name, path) of each sensitive CI a radius document lists ({name, data, path}), sorted."""
    assert all(set(item) == {"name", "data", "path"} for item in doc["sensitive"])
    return sorted((item["data"], item["name"], item["path"]) for item in doc["sensitive"])


# --- Radius (what an assessment scores) ---------------------------------------------------------------


def reached(name: str, depth: int, tier: int, data: str = "none", via: str = "app") -> tuple[Reach, CI]:
    path = () if depth == 0 else ((name, "depends_on", via),)
    return Reach(name, depth, path), CI(name, "service", tier, data=data)


def test_radius_most_critical_is_the_lowest_tier_then_the_nearest_then_the_name() -> None:
    r = Radius([reached("app", 0, 2), reached("zz", 1, 1), reached("aa", 1, 1), reached("far", 2, 3)], [])
    critical = r.most_critical()
    assert critical is not None and critical[0].name == "aa"
    assert Radius([], ["ghost"]).most_critical() is None


def test_radius_document() -> None:
    r = Radius(
        [
            reached("app", 0, 2),
            reached("db", 1, 0, "phi"),
            reached("pay", 1, 1, "pci"),
            reached("x", 1, 3, "pii"),
        ],
        ["ghost"],
    )
    doc = r.document()
    assert doc["size"] == 4
    assert doc["most_critical"] == "db → depends on app (tier 0)"
    assert sensitive(doc) == [("pci", "pay", "pay → depends on app"), ("phi", "db", "db → depends on app")]
    assert doc["unknown"] == ["ghost"]
    assert doc["cis"][1] == {
        "name": "db",
        "depth": 1,
        "tier": 0,
        "data": "phi",
        "path": "db → depends on app",
    }
    big = Radius([reached(f"c{i:03}", 1, 3) for i in range(cmdb.RADIUS_KEPT + 10)], []).document()
    assert big["size"] == cmdb.RADIUS_KEPT + 10 and len(big["cis"]) == cmdb.RADIUS_KEPT


# --- graphs -----------------------------------------------------------------------------------------


EDGES = [("cortex-chat", "depends_on", "redis-cache"), ("redis-cache", "runs_on", "k8s-prod")]


def test_dot() -> None:
    text = cmdb.render_graph("redis-cache", EDGES, "dot")
    assert text == (
        "digraph cmdb {\n"
        "  rankdir=LR;\n"
        '  n0 [label="cortex-chat"];\n'
        '  n1 [label="k8s-prod"];\n'
        '  n2 [label="redis-cache", penwidth=3];\n'
        '  n0 -> n2 [label="depends_on"];\n'
        '  n2 -> n1 [label="runs_on"];\n'
        "}\n"
    )


def test_mermaid() -> None:
    text = cmdb.render_graph("redis-cache", EDGES, "mermaid")
    assert text == (
        "flowchart LR\n"
        '  n0["cortex-chat"]\n'
        '  n1["k8s-prod"]\n'
        '  n2["redis-cache"]\n'
        "  n0 -->|depends_on| n2\n"
        "  n2 -->|runs_on| n1\n"
        "  style n2 stroke-width:3px\n"
    )


def test_a_lone_ci_is_a_graph_of_one_node() -> None:
    assert cmdb.render_graph("solo", [], "dot").count("[label=") == 1
    assert '  n0["solo"]' in cmdb.render_graph("solo", [], "mermaid")


HOSTILE = ['a"b', "c\nd];e", "x\\y", "p|q", "<script>", "n0 --> n1", "svc/ns/a:b.c_d-e"]


def test_hostile_names_are_quoted_in_dot() -> None:
    edges = [(name, "depends_on", "root") for name in HOSTILE]
    text = cmdb.render_graph("root", edges, "dot")
    lines = text.splitlines()
    assert len(lines) == 2 + (len(HOSTILE) + 1) + len(HOSTILE) + 1  # no name breaks a line
    labels = [json.loads(m) for m in re.findall(r'label=("(?:[^"\\]|\\.)*")', text)]
    assert set(HOSTILE) | {"root", "depends_on"} == set(labels)
    for line in lines[2:-1]:
        assert re.fullmatch(r'  n\d+ (-> n\d+ )?\[label="(?:[^"\\]|\\.)*"(, penwidth=3)?\];', line), line


def test_hostile_names_are_escaped_in_mermaid() -> None:
    edges = [(name, "depends_on", "root") for name in HOSTILE]
    text = cmdb.render_graph("root", edges, "mermaid")
    lines = text.splitlines()
    assert len(lines) == 1 + (len(HOSTILE) + 1) + len(HOSTILE) + 1
    for line in lines[1 : 2 + len(HOSTILE)]:
        assert re.fullmatch(r'  n\d+\["[a-z0-9._/:#;-]+"\]', line), line
    assert '["svc/ns/a:b.c_d-e"]' in text  # the name alphabet itself passes unchanged
    assert '["a#34;b"]' in text


def test_a_yaml_date_attribute_is_kept_as_its_text_and_a_float_tier_is_refused() -> None:
    import datetime as dt

    (ci,) = cmdb.parse_document(
        {
            "cis": [
                {
                    "name": "db",
                    "type": "database",
                    "installed": dt.date(2024, 1, 1),
                    "windows": [dt.date(2024, 2, 1)],
                }
            ]
        }
    )
    assert ci.attributes == {"installed": "2024-01-01", "windows": ["2024-02-01"]}
    with pytest.raises(ValidationError) as refused:
        cmdb.parse_document({"cis": [{"name": "db", "type": "database", "tier": 1.0}]})
    assert str(refused.value) == "CI 'db' tier: 1.0 is not allowed; allowed: 0, 1, 2, 3"
