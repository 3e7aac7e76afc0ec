"""Reading the command line's values: JSON arguments, parameters and identities."""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable, Mapping

from ..domain.errors import ValidationError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any

PLAN_JSON_MAX = 100_000  # the key's default; commands pass the configured value (json_max)


def json_max(env: Mapping[str, str]) -> int:
    """PLAN_JSON_MAX of the local configuration: the most bytes a JSON argument may hold."""
    from ..config import load

    return int(load(env)["PLAN_JSON_MAX"])


def json_arg(field: str, value: str, max_bytes: int = PLAN_JSON_MAX) -> Any:
    """Inline JSON, `@file`, or the path of a JSON file: at most `max_bytes` bytes (a file is
    read no further), numbers finite."""
    text = value
    path = value[1:] if value.startswith("@") else value
    too_big = f"is larger than PLAN_JSON_MAX ({max_bytes} bytes)"
    if value.startswith("@") or (not value.lstrip().startswith(("{", "[")) and os.path.isfile(path)):
        try:
            with open(path, "rb") as fh:
                raw = fh.read(max_bytes + 1)
            if len(raw) > max_bytes:
                raise ValidationError(field, f"{path!r} {too_big}")
            text = raw.decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValidationError(field, f"cannot read {path!r}: {exc}") from None
    elif len(value.encode("utf-8", "surrogatepass")) > max_bytes:
        raise ValidationError(field, too_big)
    from ..domain.validation import json_text  # not at start-up: most commands read no JSON

    data = json_text(field, text)
    # The seed's Best Practices wrap a plan in its own name: {"rollback_plan": {...}}.
    if isinstance(data, dict) and list(data) == [field]:
        data = data[field]
    return data


def details(value: str | None, max_bytes: int = PLAN_JSON_MAX) -> dict[str, Any]:
    """`--details`: a JSON object of the fields the table allows there (domain/fields.py)."""
    if value is None:
        return {}
    data = json_arg("details", value, max_bytes)
    if not isinstance(data, dict):
        raise ValidationError("details", "must be a JSON object")
    from ..domain.fields import DETAILS

    unknown = sorted(set(data) - DETAILS)
    if unknown:
        raise ValidationError(
            "details", f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(DETAILS))}"
        )
    return data


def fields_given(
    a: argparse.Namespace, max_bytes: int, details: dict[str, Any], *, append: bool
) -> dict[str, Any]:
    """`details` with the change fields given as arguments laid over it, by field name (create's
    positional argument before its option; JSON arguments parsed, `--param` pairs read). A
    repeated option's values are added to the details' list (`append`: create) or replace it.
    The requester is not among them: `who` resolves it."""
    from ..domain.fields import FIELDS, Kind

    fields = dict(details)
    for f in FIELDS.values():
        value = getattr(a, f"{f.name}_pos", None)
        if value is None:
            value = getattr(a, f.name, None)
        if value is None or f.kind == Kind.IDENTITY:
            continue
        if f.kind in (Kind.PLAN, Kind.DOCUMENT):
            value = json_arg(f.name, value, max_bytes)
        elif f.kind == Kind.PARAMETERS:
            value = params(value)
        elif f.cli.repeat and append:
            value = [*fields.get(f.name, []), *value]
        fields[f.name] = value
    return fields


def params(pairs: list[str]) -> dict[str, Any]:
    """KEY=VALUE pairs; finite numbers become numbers so range conditions can compare them
    (`nan`, `inf` stay text)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValidationError("param", f"{pair!r} is not KEY=VALUE")
        number: Any = value
        for kind in (int, float):
            try:
                number = kind(value)
                break
            except ValueError:
                continue
        out[key] = number if not isinstance(number, float) or math.isfinite(number) else value
    return out


def who(flag: str | None, named: str | None, field: str, default_os: bool) -> str:
    """The identity rules are checked against: positional (`named`), --as (`flag`),
    CORTEX_CHANGE_USER, the OS user (with `default_os`)."""
    given_empty(named, flag, field)
    if named and flag and named != flag:
        raise ValidationError(field, f"named twice, as {named!r} and --as {flag!r}")
    who = named or flag or os.environ.get("CORTEX_CHANGE_USER")
    if not who and default_os:
        import getpass

        who = getpass.getuser()
    if not who:
        raise ValidationError(field, f"name the {field} (argument, --as or CORTEX_CHANGE_USER)")
    return who


def given_empty(named: str | None, flag: str | None, field: str) -> None:
    """A name given on the command line but empty is bad input, never "use the default"."""
    for value, how in ((named, "the name given"), (flag, "--as")):
        if value is not None and not value.strip():
            raise ValidationError(field, f"{how} is empty: name someone, or leave it out")


Who = Callable[[str | None, str | None, str, bool], str | None]


def person_and_text(
    rest: list[str], flag: str | None, field: str, n: int, who: Who = who
) -> tuple[str | None, list[str]]:
    """Split `[PERSON] TEXT...` where the person may come from --as instead.

    `who` resolves the identity (the local rules by default; the server's gateway checks the name
    against the token's identity and answers None for "the token's").
    """
    if len(rest) == n + 1:
        return who(flag, rest[0], field, False), rest[1:]
    if len(rest) == n:
        return who(flag, None, field, False), rest
    raise ValidationError(field, f"expected {field.upper()} and {n} more argument(s), got {len(rest)}")
