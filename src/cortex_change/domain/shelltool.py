"""The seed's shell tool as its files hold it (`change-manager.sh`, docs/moving.md): records in
`changes/FOLDER/ID.json` and `audit/YYYY-MM-DD.log` lines, read into our record and audit events.

Pure: the service reads the files and passes their bytes; nothing here touches a disk or a clock.
Nothing is guessed: a record that does not parse is skipped with the reason (`--salvage` repairs
only what its one-key-per-line layout proves), a field we do not know refuses the record, and
every choice between copies of one change is named in the report.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from hashlib import sha256

from .events import Event, EventKind
from .lifecycle import GROUPS, State
from .model import (
    Approval,
    Assessment,
    Change,
    ChangeType,
    ClosureStatus,
    Decision,
    Level,
    Review,
    RiskComponent,
    Route,
    Timeline,
)
from .policy import Policy
from .risk import priority as priority_for
from .routing import AUTO_APPROVER, EMERGENCY_APPROVER, TESTING_REQUIRED, assessor_for
from .values import Frozen, Value

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any, Final

SOURCE = "shell-tool"
CHANGE_ID = re.compile(r"RFC-\d{14}-[0-9a-f]{6}", re.ASCII)
LOG_NAME = re.compile(r"\d{4}-\d{2}-\d{2}\.log", re.ASCII)

# The tool's state folders -> the states a record in each may hold. `cab_queue` holds copies the
# tool takes when it submits a change to the CAB (`cp`, never removed): any state, usually stale.
FOLDERS: dict[str, frozenset[State] | None] = {
    "pending": GROUPS["pending"],
    "approved": GROUPS["approved"],
    "rejected": GROUPS["rejected"],
    "implemented": GROUPS["implemented"],
    "closed": GROUPS["closed"],
    "cab_queue": None,
}
# The tool's `state` values -> ours. It writes ours by name, and `rolled_back` once a failed
# change's rollback RFC was started (trigger_rollback): the change is rolling back, not closed.
STATES: dict[str, State] = {**{s.value: s for s in State}, "rolled_back": State.ROLLING_BACK}
# `approval_required` (determine_approval, route_change): the tool writes our route names.
ROUTES: dict[str, Route] = {r.value: r for r in Route}
# The tool's trail and audit actions -> ours; any other is kept under its own name.
ACTIONS: dict[str, EventKind] = {
    "created": EventKind.CREATED,
    "assessed": EventKind.ASSESSED,
    "approval_requested": EventKind.APPROVAL_REQUESTED,
    "submitted_to_cab": EventKind.APPROVAL_REQUESTED,  # submit_to_cab: the CAB's approval requested
    "approved": EventKind.APPROVED,
    "rejected": EventKind.REJECTED,
    "implementation_started": EventKind.IMPLEMENTATION_STARTED,
    "implemented": EventKind.IMPLEMENTED,
    "closed": EventKind.CLOSED,
    "rolled_back": EventKind.ROLLED_BACK,
    "cancelled": EventKind.CANCELLED,
}
# A human approver's role, by the route it approved on (the tool had no roles).
ROLES: dict[Route, str] = {
    Route.TECHNICAL_LEAD: "technical-lead",
    Route.CAB: "cab",
    Route.CAB_CISO_CTO: "cab",
    Route.EMERGENCY_CAB: "ecab",
}
RANK = {state: i for i, state in enumerate(State)}  # lifecycle order: the tie-break between copies
MATCH_SECONDS = 60  # a record's trail entry and its audit line are written moments apart


class Unusable(Exception):
    """A record that cannot be imported as it is; the message is the report's reason."""


class Skipped(Frozen):
    """A file (or an audit line) not imported, and why."""

    __slots__ = ("file", "reason")

    def __init__(self, file: str, reason: str) -> None:
        self.file: Final = file
        self.reason: Final = reason


# --------------------------------------------------------------------------- files


def skip_reason(path: str) -> str | None:
    """Why a file under the store (a path relative to it, `/`-separated) is not a record or an
    audit log; None when it is one (`changes/FOLDER/*.json`, `audit/YYYY-MM-DD.log`)."""
    parts = path.split("/")
    name = parts[-1]
    if not name:  # `name/`: a folder where the tool keeps none
        return "a folder the tool does not write (not entered)"
    if parts[0] == "audit":
        if len(parts) == 2 and LOG_NAME.fullmatch(name):
            return None
        return "not an audit log (the tool writes audit/YYYY-MM-DD.log)"
    if name.endswith(".tmp"):
        return "temporary file left by an interrupted update (*.tmp): not a record"
    if len(parts) != 3:
        return "not in a state folder (changes/FOLDER/ID.json)"
    if parts[1] not in FOLDERS:
        return f"unknown state folder {parts[1]!r} (the tool's: {', '.join(FOLDERS)})"
    if not name.endswith(".json"):
        return "not a record (records are *.json)"
    return None


def record_id(path: str) -> str:
    """The change id a record's file name gives (`changes/FOLDER/ID.json`)."""
    return path.rsplit("/", 1)[-1].removesuffix(".json")


def folder_of(path: str) -> str:
    return path.split("/")[1]


# --------------------------------------------------------------------------- records


class Parsed(Value):
    """One record file read: its document, or why not; the fields a salvage repaired."""

    __slots__ = ("digest", "doc", "file", "problem", "salvaged")

    def __init__(
        self,
        file: str,
        doc: dict[str, Any] | None,
        problem: str = "",
        salvaged: list[str] | None = None,
        digest: str = "",
    ) -> None:
        self.file = file
        self.doc = doc
        self.problem = problem
        self.salvaged: list[str] = [] if salvaged is None else salvaged
        self.digest = digest  # SHA-256 of the file's bytes, kept with the imported change


def parse_record(file: str, data: bytes, salvage: bool) -> Parsed:
    """A record's bytes as a document; with `salvage`, one whose string values were written
    unescaped (the tool's `create` writes title, description... into a heredoc) repaired line by
    line, when that layout is all that is wrong."""
    parsed = _parse(file, data, salvage)
    parsed.digest = sha256(data).hexdigest()
    return parsed


def _parse(file: str, data: bytes, salvage: bool) -> Parsed:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Parsed(file, None, f"not UTF-8 text (byte {exc.start})")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        problem = f"invalid JSON at line {exc.lineno} column {exc.colno} ({exc.msg})"
        if not salvage:
            return Parsed(file, None, f"{problem}; --salvage may recover what a tolerant parse proves")
        repaired = _salvage(text)
        if isinstance(repaired, str):
            return Parsed(file, None, f"{problem}; not salvaged: {repaired}")
        doc, fields = repaired
        return Parsed(file, doc, salvaged=fields) if isinstance(doc, dict) else Parsed(file, None, problem)
    if not isinstance(doc, dict):
        return Parsed(file, None, "not a change record (the JSON is not an object)")
    return Parsed(file, doc)


# `  "key": "value",` — the only layout the tool writes a string field in, one per line.
_MEMBER = re.compile(r'(\s*)"([A-Za-z_][A-Za-z0-9_]*)": "(.*)"(,?)\s*')


def _salvage(text: str) -> tuple[Any, list[str]] | str:
    """Re-escape string members that do not parse on their own line; the document if the result
    parses, with the keys repaired, else why not."""
    lines = text.split("\n")
    fields: list[str] = []
    for i, line in enumerate(lines):
        m = _MEMBER.fullmatch(line)
        if m is None or _member_parses(line):
            continue
        indent, key, raw, comma = m.groups()
        lines[i] = f'{indent}"{key}": {json.dumps(raw, ensure_ascii=False)}{comma}'
        fields.append(key)
    if not fields:
        return 'no line holds a repairable string value (one `"key": "value",` per line)'
    try:
        return json.loads("\n".join(lines)), fields
    except json.JSONDecodeError as exc:
        return f"still invalid after repairing {', '.join(fields)} (line {exc.lineno} column {exc.colno})"


def _member_parses(line: str) -> bool:
    try:
        json.loads("{" + line.strip().removesuffix(",") + "}")
    except json.JSONDecodeError:
        return False
    return True


def _trail(doc: dict[str, Any]) -> list[dict[str, Any]]:
    trail = doc.get("audit_trail")
    if not isinstance(trail, list) or not all(isinstance(e, dict) for e in trail):
        raise Unusable("audit_trail is not a list of entries")
    return trail


def _trail_key(entry: dict[str, Any]) -> tuple[str, str, str, str]:
    return tuple(str(entry.get(k)) for k in ("timestamp", "action", "actor", "details"))  # type: ignore[return-value]


def _newness(parsed: Parsed) -> tuple[str, int, int, int]:
    """How far a copy's trail goes: its last entry's time, its length, its state's place in the
    lifecycle, then a copy in a state folder over the CAB queue's."""
    assert parsed.doc is not None
    trail = _trail(parsed.doc)
    last = str(trail[-1].get("timestamp", "")) if trail else ""
    state = STATES.get(str(parsed.doc.get("state")))
    rank = RANK[state] if state is not None else -1
    return last, len(trail), rank, int(folder_of(parsed.file) != "cab_queue")


class Chosen(Value):
    """The copy of a change imported; the others skipped; the trail with what only they held."""

    __slots__ = ("kept", "notes", "skipped", "trail")

    def __init__(
        self, kept: Parsed, trail: list[dict[str, Any]], skipped: list[Skipped], notes: list[str]
    ) -> None:
        self.kept = kept
        self.trail = trail
        self.skipped = skipped
        self.notes = notes


def choose(copies: list[Parsed]) -> Chosen:
    """The newest copy of a change by its trail (the tool's `find | head -n 1` updated whichever
    copy it found first, so copies diverge); trail entries only a stale copy holds are kept too:
    they are the tool's own record of what happened. Copies must parse (`doc` set)."""
    ordered = sorted(copies, key=_newness, reverse=True)
    kept, stale = ordered[0], ordered[1:]
    assert kept.doc is not None
    trail = list(_trail(kept.doc))
    skipped, notes = [], []
    where = kept.file.removeprefix("changes/")
    for copy in stale:
        assert copy.doc is not None
        theirs = _trail(copy.doc)
        if [_trail_key(e) for e in theirs] == [_trail_key(e) for e in trail]:
            skipped.append(Skipped(copy.file, f"duplicate of {where} (same trail)"))
            continue
        last = trail[-1] if trail else {}
        skipped.append(
            Skipped(
                copy.file,
                f"stale duplicate, superseded by {where} per the trail "
                f"(it goes further: {last.get('action')} at {last.get('timestamp')})",
            )
        )
        for entry in _merge(trail, theirs):
            notes.append(
                f"trail entry only in the superseded {copy.file.removeprefix('changes/')} kept: "
                f"{entry.get('action')} by {entry.get('actor')} at {entry.get('timestamp')}"
            )
    return Chosen(kept, trail, skipped, notes)


def _merge(trail: list[dict[str, Any]], other: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Insert into `trail` (in place) the entries of `other` it lacks, each after the entry that
    precedes it in `other`; the entries added."""
    keys = [_trail_key(e) for e in trail]
    added, at = [], -1
    for entry in other:
        key = _trail_key(entry)
        if key in keys:
            at = keys.index(key)
            continue
        at += 1
        trail.insert(at, entry)
        keys.insert(at, key)
        added.append(entry)
    return added


# --------------------------------------------------------------------------- audit lines


class Line(Frozen):
    """One `TIMESTAMP | CHANGE_ID | ACTION | ACTOR | DETAILS` line of `file` (at `lineno`)."""

    __slots__ = ("action", "actor", "at", "change_id", "details", "file", "lineno", "text", "timestamp")

    def __init__(
        self,
        file: str,
        lineno: int,
        text: str,
        timestamp: str,
        at: datetime,
        change_id: str,
        action: str,
        actor: str,
        details: str,
    ) -> None:
        self.file: Final = file
        self.lineno: Final = lineno
        self.text: Final = text
        self.timestamp: Final = timestamp
        self.at: Final = at
        self.change_id: Final = change_id
        self.action: Final = action
        self.actor: Final = actor
        self.details: Final = details


Raw = tuple[str, int, str]  # (file, line number, text): a line kept as read until its change's turn


class Log(Value):
    """Audit lines by change id (as read: 100 000 changes have ~600 000), and the lines that are none."""

    __slots__ = ("by_change", "continued", "lines", "skipped")

    def __init__(self) -> None:
        self.by_change: dict[str, list[Raw]] = {}
        self.skipped: list[Skipped] = []
        self.lines = 0
        self.continued = 0

    def read(self, file: str, lines: Iterable[str]) -> None:
        """Add one audit file's lines (files in name order: days in order). A line that does not
        start as one is the rest of the line before: the tool echoes details holding a newline."""
        previous: list[Raw] | None = None
        for lineno, read in enumerate(lines, start=1):
            text = read.removesuffix("\n")
            if not text.strip():
                continue
            self.lines += 1
            parts = text.split(" | ", 2)
            if len(parts) == 3 and CHANGE_ID.fullmatch(parts[1]):
                previous = self.by_change.setdefault(parts[1], [])
                previous.append((file, lineno, text))
            elif previous is not None:
                first_file, first_line, start = previous[-1]
                previous[-1] = (first_file, first_line, f"{start}\n{text}")
                self.continued += 1
            else:
                self.skipped.append(Skipped(f"{file}:{lineno}", NOT_A_LINE))

    def lines_of(self, change_id: str) -> tuple[list[Line], list[Skipped]]:
        """A change's lines, parsed; those that do not parse, with why."""
        lines, skipped = [], []
        for file, lineno, text in self.by_change.get(change_id, []):
            line = parse_line(file, lineno, text)
            if line is None:
                skipped.append(Skipped(f"{file}:{lineno}", NOT_A_LINE))
            else:
                lines.append(line)
        return lines, skipped


NOT_A_LINE = "not an audit line (TIMESTAMP | CHANGE_ID | ACTION | ACTOR | DETAILS, time in ISO 8601 UTC)"


def parse_line(file: str, lineno: int, text: str) -> Line | None:
    parts = text.split(" | ", 4)
    if len(parts) != 5 or not CHANGE_ID.fullmatch(parts[1]) or not parts[2]:
        return None
    at = _instant(parts[0])
    if at is None:
        return None
    return Line(file, lineno, text, parts[0], at, parts[1], parts[2], parts[3], parts[4])


def _instant(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return None if parsed.tzinfo is None else parsed.astimezone(UTC)


# --------------------------------------------------------------------------- mapping


class Imported(Value):
    """A change as we hold it, the audit events its history becomes, and what the report says."""

    __slots__ = ("change", "events", "file", "notes", "salvaged")

    def __init__(
        self, change: Change, events: list[Event], file: str, notes: list[str], salvaged: list[str]
    ) -> None:
        self.change = change
        self.events = events
        self.file = file
        self.notes = notes
        self.salvaged = salvaged


def plan_change(
    copies: list[Parsed], lines: list[Line], policy: Policy, actor: str
) -> tuple[Imported | None, list[Skipped]]:
    """One change from the copies of its record (one, or several folders' worth): the newest that
    parses, mapped, or nothing; every file not imported with why."""
    readable = [c for c in copies if c.doc is not None]
    skipped = [Skipped(c.file, c.problem) for c in copies if c.doc is None]
    if not readable:
        return None, skipped
    try:
        chosen = choose(readable)
        imported = to_change(chosen, lines, policy, actor)
    except Unusable as exc:
        files = sorted(c.file for c in readable)
        return None, [*skipped, *(Skipped(f, f"not imported: {exc}") for f in files)]
    for bad in skipped:
        imported.notes.append(f"another copy, {bad.file}, could not be read: this one was imported")
    return imported, [*skipped, *chosen.skipped]


def to_change(chosen: Chosen, lines: list[Line], policy: Policy, actor: str) -> Imported:
    """Map the chosen copy (and its merged trail) to our record and its events; Unusable if a field
    holds what we cannot represent without guessing."""
    parsed, trail = chosen.kept, chosen.trail
    doc = parsed.doc
    assert doc is not None
    change_id = _text(doc, "change_id")
    if not CHANGE_ID.fullmatch(change_id):
        raise Unusable(f"change_id {change_id!r} is not a change id (RFC-YYYYMMDDHHMMSS-xxxxxx)")
    if change_id != record_id(parsed.file):
        raise Unusable(f"the file name does not match its change_id {change_id!r}")
    notes = list(chosen.notes)
    state = _state(doc, parsed.file, notes)
    impact, urgency = _level(doc, "impact"), _level(doc, "urgency")
    timeline = _timeline(doc, trail, state)
    change = Change(
        change_id=change_id,
        type=_enum(ChangeType, doc, "type"),
        category=_text(doc, "category"),
        title=_text(doc, "title", empty=True),
        description=_text(doc, "description", empty=True, default=""),
        requested_by=_text(doc, "requested_by"),
        impact=impact,
        urgency=urgency,
        timeline=timeline,
        implementation_plan=_plan(doc, "implementation_plan"),
        rollback_plan=_plan(doc, "rollback_plan"),
        test_plan=_plan(doc, "test_plan"),
        affected_services=_names(doc, "affected_services"),
        affected_cis=_names(doc, "affected_cis"),
        dependencies=_names(doc, "dependencies"),
        environment=_optional_text(doc, "environment"),
        tested_in_staging=_optional_text(doc, "tested_in_staging"),
        state=state,
        closure_status=_closure(doc),
        closure_notes=_optional_text(doc, "closure_notes"),
    )
    change.assessment = _assessment(doc, trail, change, policy)
    change.approvals = _approvals(doc, trail, change, notes)
    if change.type is ChangeType.EMERGENCY and timeline.approved_at is not None:
        # Every emergency change gets a retrospective review (SPEC §5); the tool recorded none.
        change.review = Review(
            due_at=timeline.approved_at + timedelta(hours=policy.emergency_review_sla_hours)
        )
    if change.category not in policy.category_weights:
        notes.append(f"category {change.category!r} is not configured (kept; it scores 0 on a re-assessment)")
    record: dict[str, Any] = {"file": parsed.file, "sha256": parsed.digest, "imported_by": actor}
    if parsed.salvaged:
        record["salvaged"] = parsed.salvaged
    unmapped = {k: v for k, v in doc.items() if k not in MAPPED}
    if unmapped:
        record["fields_not_mapped"] = unmapped
    events = history(change_id, trail, lines, parsed.file, record)
    return Imported(change, events, parsed.file, notes, parsed.salvaged)


# The tool's fields the record above takes (others go, verbatim, into the first event's details).
MAPPED = frozenset(
    {
        "change_id", "type", "category", "title", "description", "requested_by", "requested_at",
        "state", "impact", "urgency", "priority", "risk_score", "approval_required", "assigned_to",
        "implementation_plan", "rollback_plan", "test_plan", "affected_services", "affected_cis",
        "dependencies", "environment", "tested_in_staging", "audit_trail", "metrics", "approved_by",
        "approved_at", "rejected_by", "rejected_at", "rejection_reason", "implementation_started_at",
        "closure_status", "closure_notes",
        "compliance",  # always null in the tool's records; ours is evaluated
    }
)  # fmt: skip


def _text(doc: dict[str, Any], key: str, empty: bool = False, default: str | None = None) -> str:
    value = doc.get(key, default)
    if not isinstance(value, str) or (not empty and not value.strip()):
        raise Unusable(f"{key} is {'missing' if value is None else repr(value)}: a record needs one")
    return value


def _optional_text(doc: dict[str, Any], key: str) -> str | None:
    value = doc.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise Unusable(f"{key} {value!r} is not text")
    return value


def _enum(kind: Any, doc: dict[str, Any], key: str) -> Any:
    value = doc.get(key)
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(m.value for m in kind)
        raise Unusable(f"{key} {value!r} is not one of {allowed}") from None


def _level(doc: dict[str, Any], key: str) -> Level:
    if doc.get(key) is None:  # the tool's default, as ours (SPEC §1)
        return Level.MEDIUM
    level: Level = _enum(Level, doc, key)
    return level


def _state(doc: dict[str, Any], file: str, notes: list[str]) -> State:
    """The record's own state; a folder that disagrees is noted (the record is what the tool's
    commands read: `find` by id, whatever the folder)."""
    value = doc.get("state")
    state = STATES.get(value) if isinstance(value, str) else None
    if state is None:
        raise Unusable(f"state {value!r} is not one the tool writes ({', '.join(sorted(STATES))})")
    folder = folder_of(file)
    allowed = FOLDERS[folder]
    if allowed is not None and state not in allowed:
        notes.append(f"the record says {value} but lies in {folder}/: its own state is kept")
    return state


def _closure(doc: dict[str, Any]) -> ClosureStatus | None:
    if doc.get("closure_status") is None:
        return None
    status: ClosureStatus = _enum(ClosureStatus, doc, "closure_status")
    return status


def _plan(doc: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = doc.get(key)
    if value is None or value == {}:  # the tool writes {} for "none"
        return None
    if not isinstance(value, dict):
        raise Unusable(f"{key} is not an object")
    return value


def _names(doc: dict[str, Any], key: str) -> list[str]:
    value = doc.get(key) or []
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise Unusable(f"{key} is not a list of names")
    return list(value)


def _time(value: object, what: str) -> datetime | None:
    if value is None:
        return None
    at = _instant(value)
    if at is None:
        raise Unusable(f"{what} {value!r} is not an ISO 8601 UTC time")
    return at


def _first(trail: list[dict[str, Any]], action: str) -> object:
    return next((e.get("timestamp") for e in trail if e.get("action") == action), None)


def _timeline(doc: dict[str, Any], trail: list[dict[str, Any]], state: State) -> Timeline:
    """Each milestone from the record's metrics, else its top-level field, else its first trail
    entry (a trail merged from a stale copy may hold one the metrics lack)."""
    m = doc.get("metrics") or {}
    if not isinstance(m, dict):
        raise Unusable("metrics is not an object")

    def when(*sources: object, action: str, what: str) -> datetime | None:
        value = next((v for v in sources if v is not None), None) or _first(trail, action)
        return _time(value, what)

    created = when(m.get("created_at"), doc.get("requested_at"), action="created", what="created_at")
    if created is None:
        raise Unusable("no creation time (metrics.created_at, requested_at or a `created` entry)")
    closed = when(m.get("closed_at"), action="closed", what="metrics.closed_at")
    timeline = Timeline(
        created_at=created,
        assessed_at=when(m.get("assessed_at"), action="assessed", what="metrics.assessed_at"),
        approved_at=when(m.get("approved_at"), doc.get("approved_at"), action="approved", what="approved_at"),
        # The tool's metrics.implemented_at is set when implementation *starts* (implement_change).
        implementation_started_at=when(
            doc.get("implementation_started_at"),
            m.get("implemented_at"),
            action="implementation_started",
            what="implementation_started_at",
        ),
        closed_at=closed,
    )
    if state is State.CLOSED and timeline.implementation_started_at is not None:
        timeline.implemented_at = closed  # as our `close` records it: done when closed
    return timeline


def _assessment(
    doc: dict[str, Any], trail: list[dict[str, Any]], change: Change, policy: Policy
) -> Assessment | None:
    score, route_name = doc.get("risk_score"), doc.get("approval_required")
    if score is None and route_name is None:
        if change.state not in (State.PENDING_ASSESSMENT, State.CANCELLED):
            raise Unusable(f"state {change.state.value} but no risk_score: its assessment cannot be proven")
        return None
    if isinstance(score, bool) or not isinstance(score, int) or not 0 <= score <= 100:
        raise Unusable(f"risk_score {score!r} is not a whole number 0-100")
    route = ROUTES.get(route_name) if isinstance(route_name, str) else None
    if route is None:
        raise Unusable(f"approval_required {route_name!r} is not one of {', '.join(ROUTES)}")
    level = policy.level_for(score)
    priority = doc.get("priority")
    assessed = (
        change.timeline.assessed_at
        or _time(_first(trail, "assessed"), "assessed")
        or change.timeline.created_at
    )
    details = next((str(e.get("details")) for e in trail if e.get("action") == "assessed"), "")
    return Assessment(
        score=score,
        level=level,
        priority=priority
        if isinstance(priority, str) and priority
        else priority_for(change.impact, change.urgency),
        route=route,
        components={
            "shell_tool": RiskComponent(score, f"scored by the shell tool: {details or 'total only'}")
        },
        history_used=[],
        testing_required=TESTING_REQUIRED[level],
        assigned_to=_optional_text(doc, "assigned_to") or assessor_for(change.category, score),
        assessed_at=assessed,
        route_reason=f"imported from the shell tool (approval_required {route.value})",
    )


def _role(approver: str, route: Route | None) -> str:
    """The role an imported decision is recorded under: a policy's own approval as ours records it
    (the route's name), a person's as the route's role."""
    if approver == EMERGENCY_APPROVER:
        return Route.EMERGENCY_CAB.value
    if approver == AUTO_APPROVER:
        auto = route in (Route.PRE_APPROVED, Route.AUTO_APPROVED)
        return route.value if auto and route is not None else Route.AUTO_APPROVED.value
    if route is None:
        return "approver"
    return ROLES.get(route, route.value)


def _approvals(
    doc: dict[str, Any], trail: list[dict[str, Any]], change: Change, notes: list[str]
) -> list[Approval]:
    """Each `approved` and `rejected` entry of the trail; the record's approved_by / rejected_by when
    its trail lacks the entry (noted)."""
    route = change.assessment.route if change.assessment else None
    approvals = []
    for entry in trail:
        decision = {"approved": Decision.APPROVED, "rejected": Decision.REJECTED}.get(
            str(entry.get("action"))
        )
        if decision is None:
            continue
        actor, at = entry.get("actor"), _time(entry.get("timestamp"), "an audit_trail timestamp")
        if not isinstance(actor, str) or at is None:
            raise Unusable(f"a {decision.value} entry of its trail has no actor or time")
        approvals.append(Approval(actor, _role(actor, route), decision, str(entry.get("details") or ""), at))
    for decision, who, when, why in (
        (Decision.APPROVED, "approved_by", "approved_at", None),
        (Decision.REJECTED, "rejected_by", "rejected_at", "rejection_reason"),
    ):
        person = doc.get(who)
        if isinstance(person, str) and not any(a.decision is decision for a in approvals):
            at = _time(doc.get(when), when) or change.timeline.created_at
            reason = doc.get(why) if why else None
            approvals.append(Approval(person, _role(person, route), decision, str(reason or ""), at))
            notes.append(f"{who} {person} has no {decision.value} entry in the trail: taken from {who}")
    return approvals


# --------------------------------------------------------------------------- events


def history(
    change_id: str, trail: list[dict[str, Any]], lines: list[Line], file: str, record: dict[str, Any]
) -> list[Event]:
    """The change's audit events: its audit lines, and the trail entries no line records (a day's
    log lost), in time order; each marked imported, with its original time and text. The first
    carries where the record came from."""
    unmatched = list(lines)
    only_in_record = []
    for entry in trail:
        line = _matching(entry, unmatched)
        if line is None:
            only_in_record.append(entry)
        else:
            unmatched.remove(line)
    timed: list[tuple[datetime, Event]] = [(line.at, _line_event(line)) for line in lines]
    for entry in only_in_record:
        at = _time(entry.get("timestamp"), "an audit_trail timestamp")
        timed.append((at or datetime.min.replace(tzinfo=UTC), _entry_event(entry, file)))
    timed.sort(key=lambda pair: pair[0])  # stable: the log's own order among equal times
    events = [event for _, event in timed]
    if events:
        first = events[0]
        events[0] = Event(first.action, first.actor, {**first.details, "record": record})
    return events


def _matching(entry: dict[str, Any], lines: Iterable[Line]) -> Line | None:
    at = _instant(entry.get("timestamp"))
    for line in lines:
        same = line.action == entry.get("action") and line.actor == entry.get("actor")
        if same and (at is None or abs((line.at - at).total_seconds()) <= MATCH_SECONDS):
            return line
    return None


def _kind(action: str) -> EventKind:
    """Our event kind for the tool's action; an action we have no kind for keeps its own name (the
    chain stores the action as text: an imported history is not rewritten into ours)."""
    kind: EventKind = ACTIONS.get(action, action)  # type: ignore[arg-type]
    return kind


def _imported(timestamp: str, original: str, details: str) -> dict[str, Any]:
    shown = {"imported": True, "source": SOURCE, "original_timestamp": timestamp, "details": details}
    if ACTIONS.get(original, original) != original:
        shown["original_action"] = original
    return shown


def _line_event(line: Line) -> Event:
    details = _imported(line.timestamp, line.action, line.details)
    details.update(line=line.text, file=f"{line.file}:{line.lineno}")
    return Event(_kind(line.action), line.actor, details)


def _entry_event(entry: dict[str, Any], file: str) -> Event:
    action = str(entry.get("action"))
    details = _imported(str(entry.get("timestamp")), action, str(entry.get("details") or ""))
    details.update(entry=entry, file=file)
    return Event(_kind(action), str(entry.get("actor") or "shell-tool"), details)
