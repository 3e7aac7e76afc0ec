"""Moving a store (services/portability.py) on both backends: JSONL export and import round trips
line for line, SQLite → JSONL → PostgreSQL → JSONL and migrate-store; a tampered event, a cut
file, a removed line and a non-empty target are refused with one line and nothing written."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from cortex_change.domain import portability as fmt
from cortex_change.domain.errors import Refused, StoreError, ValidationError
from cortex_change.services import audit as audit_service
from cortex_change.services.automation import switch
from cortex_change.services.calendar import create_feed
from cortex_change.services.changes import assess_change, cancel_change
from cortex_change.services.cmdb import import_file
from cortex_change.services.context import Context, open_context
from cortex_change.services.observations import observe
from cortex_change.services.portability import export_jsonl, import_jsonl, migrate_store
from cortex_change.services.queries import get_change
from cortex_change.services.tokens import create_token
from cortex_change.services.windows import add_window
from cortex_change.store import portability as tables
from support import TEST_IMPLEMENTERS, FakeClock, file_change, query

EXAMPLE_CMDB = Path(__file__).resolve().parents[2] / "examples" / "cortex-platform-cmdb.json"
Opener = Callable[[str], Context]


@pytest.fixture
def opener(clock: FakeClock, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Opener]:
    """Contexts on any store location, all closed at teardown."""
    monkeypatch.chdir(tmp_path)
    opened: list[Context] = []

    def make(location: str) -> Context:
        ctx = open_context(env={"CORTEX_CHANGE_DB": location, "IMPLEMENTERS": TEST_IMPLEMENTERS}, clock=clock)
        opened.append(ctx)
        return ctx

    yield make
    for ctx in opened:
        ctx.close()


def fresh_pg(database: str) -> str:
    """A new schema of its own in the run's PostgreSQL database."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return f"{database}?options=-csearch_path%3D{schema}"


@pytest.fixture
def another(store_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Callable[[], str]:
    """Another empty store on the same backend as `store_url`."""

    def make() -> str:
        if store_url.startswith("postgresql://"):
            return fresh_pg(request.getfixturevalue("postgres_database"))
        return str(tmp_path / f"other-{uuid.uuid4().hex[:6]}.db")

    return make


def populate(ctx: Context, clock: FakeClock) -> list[str]:
    """A store with something in every kind of table a user fills."""
    ids = []
    for n, title in enumerate(('Déploiement ☃ "quoted"\\path', "Second", "Third")):
        change = file_change(
            ctx,
            type="normal",
            category="deployment",
            title=title,
            requested_by="dev",
            impact="low",
            affected_services=["api", f"svc-{n}"],
            environment="production",
            rollback_plan={"steps": ["undo"]},
        )
        ids.append(str(change.change_id))
        clock.advance(minutes=3)
    assess_change(ctx, change_id=ids[0])
    cancel_change(ctx, change_id=ids[2], actor="dev", reason="not needed")
    create_token(ctx, name="bot")
    create_feed(ctx, "team", "change-manager")
    start = clock() + timedelta(days=2)
    add_window(
        ctx,
        kind="freeze",
        start=start.isoformat(),
        end=(start + timedelta(days=1)).isoformat(),
        scope="all",
        reason="Year end",
        actor="change-manager",
    )
    import_file(ctx, path=str(EXAMPLE_CMDB), actor="change-manager")
    observe(
        ctx, service="api", environment=None, at=None, source="argocd", reference="r1", actor="change-manager"
    )
    switch(ctx, on=True, actor="change-manager", reason="drill")
    return ids


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def comparable(path: Path) -> list[dict[str, Any]]:
    """The lines, less what differs between two exports of the same data: when, from which
    engine, and the digest over the header that says so."""
    found = lines(path)
    for key in ("exported_at", "source"):
        found[0].pop(key)
    found[-1].pop("sha256")
    return found


def total(location: str) -> int:
    """Rows in every table that travels, the head aside."""
    return sum(
        int(query(location, f"SELECT count(*) FROM {t.name}")[0][0]) for t in fmt.TABLES if t.kind != "head"
    )


def test_round_trip_is_identical_line_for_line(
    opener: Opener, clock: FakeClock, store_url: str, another: Callable[[], str], tmp_path: Path
) -> None:
    source = opener(store_url)
    ids = populate(source, clock)
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    result = export_jsonl(source, path=str(first))
    assert result["counts"]["change"] == 3 and result["counts"]["event"] > 10
    assert all(result["counts"][k] >= 1 for k in ("token", "calendar_feed", "window", "ci", "halt"))
    assert oct(first.stat().st_mode & 0o777) == "0o600"  # it holds token hashes
    target = opener(another())
    imported = import_jsonl(target, path=str(first))
    assert imported["counts"] == {k: v for k, v in result["counts"].items()}
    assert audit_service.verify(target).ok
    assert audit_service.verify(target).head_hash == audit_service.verify(source).head_hash
    export_jsonl(target, path=str(second))
    assert first.read_bytes() == second.read_bytes()  # same clock, same engine: byte for byte
    for change_id in ids:
        assert get_change(target, change_id=change_id) == get_change(source, change_id=change_id)
    assert indexes(target) == indexes(source) and len(indexes(source)) > 10  # built again after the copy


def indexes(ctx: Context) -> set[str]:
    with ctx.db.read() as tx:
        if tx.dialect == "postgres":
            sql = "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema()"
            return {
                str(r[0]).split(" ON ", 1)[1].split(".", 1)[-1] + str(r[0]).split(" ON ")[0]
                for r in tx.all(sql)
            }
        return {
            str(r[0])
            for r in tx.all("SELECT name || coalesce(sql, '') FROM sqlite_master WHERE type = 'index'")
        }


def test_sqlite_to_jsonl_to_postgresql_to_jsonl(
    opener: Opener, clock: FakeClock, tmp_path: Path, postgres_database: str
) -> None:
    source = opener(str(tmp_path / "embedded.db"))
    populate(source, clock)
    exported, again, migrated = (tmp_path / f"{n}.jsonl" for n in ("sqlite", "pg", "migrated"))
    export_jsonl(source, path=str(exported))
    pg = opener(fresh_pg(postgres_database))
    import_jsonl(pg, path=str(exported))
    export_jsonl(pg, path=str(again))
    assert lines(again)[0]["source"] == "postgresql"
    assert comparable(exported) == comparable(again)
    # migrate-store copies the same rows: its target exports the same lines too.
    url = fresh_pg(postgres_database)
    result = migrate_store(source, to=url)
    assert result["counts"]["changes"] == 3 and result["head"] == audit_service.verify(source).head_hash
    export_jsonl(opener(url), path=str(migrated))
    assert comparable(exported) == comparable(migrated)


def _rewrite(path: Path, edit: Callable[[list[dict[str, Any]]], None], digest: bool = True) -> None:
    """Edit the lines; with `digest` the trailer is made to agree (a careful forger's file)."""
    found = lines(path)
    edit(found)
    body = "".join(json.dumps(x, ensure_ascii=False, separators=(",", ":")) + "\n" for x in found[:-1])
    if digest:
        import hashlib

        found[-1]["sha256"] = hashlib.sha256(body.encode("utf-8")).hexdigest()
    path.write_text(body + json.dumps(found[-1]) + "\n", "utf-8")


@pytest.mark.parametrize("digest", [True, False], ids=["digest-forged", "digest-left"])
def test_an_altered_event_is_refused_naming_it(
    opener: Opener, clock: FakeClock, store_url: str, another: Callable[[], str], tmp_path: Path, digest: bool
) -> None:
    populate(opener(store_url), clock)
    path = tmp_path / "export.jsonl"
    export_jsonl(opener(store_url), path=str(path))

    def alter(found: list[dict[str, Any]]) -> None:
        event = next(x for x in found if x["kind"] == "event" and x["row"]["seq"] == 4)
        event["row"]["actor"] = "mallory"

    _rewrite(path, alter, digest)
    target = another()
    with pytest.raises(ValidationError, match=r"event #4 \(.*\) was altered.*nothing was written"):
        import_jsonl(opener(target), path=str(path))
    assert total(target) == 0


def test_a_cut_file_is_refused_and_nothing_written(
    opener: Opener, clock: FakeClock, store_url: str, another: Callable[[], str], tmp_path: Path
) -> None:
    populate(opener(store_url), clock)
    path = tmp_path / "export.jsonl"
    export_jsonl(opener(store_url), path=str(path))
    data = path.read_bytes()
    target = another()
    path.write_bytes(data[: len(data) // 2])  # cut in the middle of a line
    with pytest.raises(ValidationError, match="cut short; nothing was written"):
        import_jsonl(opener(target), path=str(path))
    text = data.decode("utf-8").splitlines(keepends=True)
    middle = len(text) // 2
    path.write_text("".join([*text[:middle], text[middle][:40] + "\n", *text[middle + 1 :]]), "utf-8")
    with pytest.raises(ValidationError, match=f"line {middle + 1} is not complete JSON"):
        import_jsonl(opener(target), path=str(path))
    assert total(target) == 0


def test_a_removed_line_is_refused(
    opener: Opener, clock: FakeClock, store_url: str, another: Callable[[], str], tmp_path: Path
) -> None:
    populate(opener(store_url), clock)
    path = tmp_path / "export.jsonl"
    export_jsonl(opener(store_url), path=str(path))
    _rewrite(path, lambda found: found.remove(next(x for x in found if x["kind"] == "window")))
    target = another()
    with pytest.raises(ValidationError, match="lines were removed or added"):
        import_jsonl(opener(target), path=str(path))
    assert total(target) == 0


def test_a_non_empty_target_is_refused(
    opener: Opener, clock: FakeClock, store_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    source = opener(store_url)
    populate(source, clock)
    path = tmp_path / "export.jsonl"
    export_jsonl(source, path=str(path))
    before = total(store_url)
    with pytest.raises(Refused, match=r"this store is not empty \(changes, .*\): import fills an empty"):
        import_jsonl(source, path=str(path))
    assert total(store_url) == before
    if store_url.startswith("postgresql://"):
        with pytest.raises(Refused, match=r"is not empty .*migrate-store fills an empty store only"):
            migrate_store(source, to=store_url)
        assert total(store_url) == before


def test_without_credentials_tokens_stay_behind(
    opener: Opener, clock: FakeClock, store_url: str, another: Callable[[], str], tmp_path: Path
) -> None:
    populate(opener(store_url), clock)
    path = tmp_path / "export.jsonl"
    result = export_jsonl(opener(store_url), path=str(path), credentials=False)
    kinds = {x["kind"] for x in lines(path)}
    assert "token" not in kinds and "calendar_feed" not in kinds and "token" not in result["counts"]
    assert not any("secret_hash" in line for line in path.read_text("utf-8").splitlines())
    target = another()
    import_jsonl(opener(target), path=str(path))
    assert query(target, "SELECT count(*) FROM api_tokens")[0][0] == 0
    assert query(target, "SELECT count(*) FROM changes")[0][0] == 3


def test_every_table_is_moved_or_excluded_by_name(opener: Opener, store_url: str) -> None:
    """A migration's new table must be added to TABLES or EXCLUDED (docs/portability.md)."""
    ctx = opener(store_url)
    with ctx.db.read() as tx:
        assert tables.unknown(tx) == []
        assert tables.tables(tx) == {t.name for t in fmt.TABLES} | set(fmt.EXCLUDED)


def test_migrate_store_refuses_what_is_not_postgresql(opener: Opener, tmp_path: Path) -> None:
    ctx = opener(str(tmp_path / "a.db"))
    with pytest.raises(ValidationError, match="--to: must be a postgresql:// URL"):
        migrate_store(ctx, to=str(tmp_path / "b.db"))
    with pytest.raises(StoreError, match=r"cannot open the database postgresql://u:\*\*\*@"):
        migrate_store(ctx, to="postgresql://u:hunter2@127.0.0.1:1/nowhere")
