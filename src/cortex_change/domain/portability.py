"""The JSONL export's format (docs/portability.md): which tables travel, in what order, under
which line kind; the header and the trailer; a line read back into a row. Pure: no I/O, no clock.

A file is a header line, then every row of every table below in this order (a table's rows in
key order, so two exports of the same data are identical line for line), then a trailer with
the counts and the SHA-256 of every line before it. Rows travel as stored: the change's
document (`doc`) and an event's `details` stay the JSON text the store holds (the chain's
hashes cover that text), nothing is re-encoded.
"""

from __future__ import annotations

import json

from .errors import ValidationError
from .values import Frozen

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any, Final

FORMAT = "cortex-change-jsonl"
FORMAT_VERSION = 1


class Table(Frozen):
    """A table that travels: its line kind and the key its rows are written in order of."""

    __slots__ = ("credentials", "key", "kind", "name", "numeric_key")

    def __init__(
        self, name: str, kind: str, key: tuple[str, ...], numeric_key: bool = False, credentials: bool = False
    ) -> None:
        self.name: Final = name
        self.kind: Final = kind
        self.key: Final = key
        self.numeric_key: Final = numeric_key  # else text: ordered bytewise on both engines
        self.credentials: Final = credentials  # hashes of secrets (left out by --without-credentials)


# In an order that satisfies the foreign keys (change_services → changes).
TABLES = (
    Table("changes", "change", ("change_id",)),
    Table("change_services", "change_service", ("service", "change_id")),
    Table("audit_events", "event", ("seq",), numeric_key=True),
    Table("audit_head", "head", ("id",), numeric_key=True),
    Table("config_snapshot", "config", ("id",), numeric_key=True),
    Table("api_tokens", "token", ("token_id",), credentials=True),
    Table("idempotency_keys", "idempotency_key", ("identity", "idem_key")),
    Table("leases", "lease", ("change_id",)),
    Table("incidents", "incident", ("incident_id",)),
    Table("outbox", "outbox", ("message_id",)),
    Table("timers", "timer", ("timer_id",)),
    Table("cis", "ci", ("name",)),
    Table("ci_relations", "relationship", ("source", "kind", "target")),
    Table("change_windows", "window", ("window_id",)),
    Table("observations", "observation", ("observation_id",)),
    Table("calendar_feeds", "calendar_feed", ("feed_id",), credentials=True),
    Table("automation_halt", "halt", ("id",), numeric_key=True),
    Table("risk_models", "risk_model", ("version",), numeric_key=True),
    Table("audit_keys", "audit_key", ("key_id",)),  # signed checkpoints (docs/checkpoints.md)
    Table("audit_checkpoints", "checkpoint", ("number",), numeric_key=True),
    Table("audit_witness_receipts", "witness_receipt", ("receipt_id",)),
    Table("pirs", "pir", ("change_id",)),  # after changes; pir_actions after pirs (foreign keys)
    Table("pir_actions", "pir_action", ("change_id", "action_id")),
    Table("remediation_alerts", "remediation_alert", ("alert_key",)),
)
KINDS = {t.kind: t for t in TABLES}
# The store's other tables, and why they stay behind. A table in neither list stops an export
# (a newer migration's table this code does not know would otherwise be lost without a word).
EXCLUDED = {
    "schema_version": "the target records its own migrations; the header carries the version",
    "portal_sessions": "sign-ins are transient: people sign in again on the new store, and a "
    "session secret's hash never outlives the store it was issued by",
}
SCALARS = (str, int, float, type(None))  # what a column holds (bool is an int)


def header(
    schema_version: int,
    source: str,
    exported_at: str,
    counts: dict[str, int],
    columns: dict[str, list[str]],
    credentials: bool,
) -> dict[str, Any]:
    """The first line: what the file is and what it holds, by line kind."""
    return {
        "kind": "header",
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "schema_version": schema_version,
        "source": source,
        "exported_at": exported_at,
        "credentials": credentials,
        "counts": counts,
        "columns": columns,
    }


def trailer(lines: int, counts: dict[str, int], digest: str) -> dict[str, Any]:
    """The last line: the lines before it, each kind's rows, and the SHA-256 of those lines' bytes."""
    return {"kind": "trailer", "lines": lines, "counts": counts, "sha256": digest}


def decode(name: str, number: int, raw: bytes) -> dict[str, Any]:
    """One line as its object; a line that is not a whole JSON object is refused."""
    try:
        obj = json.loads(raw)
    except ValueError:  # UnicodeDecodeError included
        raise ValidationError(
            name, f"line {number} is not complete JSON (the file was cut short or damaged)"
        ) from None
    if not isinstance(obj, dict) or not isinstance(obj.get("kind"), str):
        raise ValidationError(name, f"line {number} is not a cortex-change JSONL line (no `kind`)")
    return obj


def read_header(name: str, obj: dict[str, Any] | None, schema_version: int) -> dict[str, list[str]]:
    """The columns of each kind the file holds, once the header is found to be this format's."""
    if obj is None or obj["kind"] != "header" or obj.get("format") != FORMAT:
        raise ValidationError(name, f"is not a {FORMAT} export: its first line is not the header")
    if obj.get("format_version") != FORMAT_VERSION:
        raise ValidationError(
            name, f"is format version {obj.get('format_version')!r}; this program reads {FORMAT_VERSION}"
        )
    if obj.get("schema_version") != schema_version:
        raise ValidationError(
            name,
            f"was exported at schema version {obj.get('schema_version')!r}, this store is at "
            f"{schema_version}: import it with the release that exported it, then upgrade",
        )
    columns = obj.get("columns")
    if not isinstance(columns, dict) or not all(
        kind in KINDS and isinstance(names, list) and all(isinstance(c, str) for c in names)
        for kind, names in columns.items()
    ):
        raise ValidationError(name, "the header's `columns` is not a map of known line kinds to names")
    return columns


def values(name: str, number: int, obj: dict[str, Any], columns: list[str]) -> tuple[Any, ...]:
    """A row line's values in `columns` order: exactly those columns, each a JSON scalar."""
    row = obj.get("row")
    if not isinstance(row, dict) or len(row) != len(columns):
        raise ValidationError(name, f"line {number}: its `row` does not have the header's columns")
    try:
        found = tuple([row[c] for c in columns])
    except KeyError as exc:
        raise ValidationError(name, f"line {number}: its `row` has no {exc.args[0]!r}") from None
    for value in found:
        if not isinstance(value, SCALARS):
            raise ValidationError(name, f"line {number}: a column holds {type(value).__name__}, not a scalar")
    return found


def check_trailer(
    name: str, obj: dict[str, Any] | None, lines: int, counts: dict[str, int], digest: str
) -> None:
    """The trailer agrees with what was read: every line there, none changed."""
    if obj is None or obj["kind"] != "trailer":
        raise ValidationError(name, f"has no trailer after line {lines}: the file was cut short")
    if obj.get("lines") != lines or obj.get("counts") != counts:
        raise ValidationError(
            name,
            f"the trailer counts {obj.get('lines')!r} lines {obj.get('counts')!r}, the file has "
            f"{lines} lines {counts}: lines were removed or added",
        )
    if obj.get("sha256") != digest:
        raise ValidationError(name, "the lines do not match the trailer's SHA-256: the file was altered")
