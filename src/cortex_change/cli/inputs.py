"""Reading the command line's values: JSON arguments, parameters and identities."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from typing import Any

from ..domain.errors import ValidationError


def json_arg(field: str, value: str) -> Any:
    """Inline JSON, `@file`, or the path of a JSON file."""
    text = value
    path = value[1:] if value.startswith("@") else value
    if value.startswith("@") or (not value.lstrip().startswith(("{", "[")) and os.path.isfile(path)):
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise ValidationError(field, f"cannot read {path!r}: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(
            field, f"malformed JSON: {exc.msg} (line {exc.lineno} column {exc.colno})"
        ) from None
    # The seed's Best Practices wrap a plan in its own name: {"rollback_plan": {...}}.
    if isinstance(data, dict) and list(data) == [field]:
        data = data[field]
    return data


DETAIL_KEYS = {
    "implementation_plan",
    "rollback_plan",
    "test_plan",
    "validation",
    "affected_services",
    "affected_cis",
    "dependencies",
    "environment",
    "tested_in_staging",
    "impact",
    "urgency",
}


def details(value: str | None) -> dict[str, Any]:
    if value is None:
        return {}
    data = json_arg("details", value)
    if not isinstance(data, dict):
        raise ValidationError("details", "must be a JSON object")
    unknown = sorted(set(data) - DETAIL_KEYS)
    if unknown:
        raise ValidationError(
            "details", f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(DETAIL_KEYS))}"
        )
    return data


def params(pairs: list[str]) -> dict[str, Any]:
    """KEY=VALUE pairs; numbers become numbers so range conditions can compare them."""
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
        out[key] = number
    return out


def who(args: argparse.Namespace, named: str | None, field: str, default_os: bool) -> str:
    """The identity rules are checked against: positional, --as, CORTEX_CHANGE_USER, OS user."""
    flag = getattr(args, "as_", None)
    if named and flag and named != flag:
        raise ValidationError(field, f"named twice, as {named!r} and --as {flag!r}")
    who = named or flag or os.environ.get("CORTEX_CHANGE_USER")
    if not who and default_os:
        import getpass

        who = getpass.getuser()
    if not who:
        raise ValidationError(field, f"name the {field} (argument, --as or CORTEX_CHANGE_USER)")
    return who


Who = Callable[[argparse.Namespace, str | None, str, bool], str | None]


def person_and_text(
    args: argparse.Namespace, field: str, n: int, who: Who = who
) -> tuple[str | None, list[str]]:
    """Split `[PERSON] TEXT...` where the person may come from --as instead.

    `who` resolves the identity (the local rules by default; the server's gateway checks the name
    against the token's identity and answers None for "the token's").
    """
    rest: list[str] = args.rest
    if len(rest) == n + 1:
        return who(args, rest[0], field, False), rest[1:]
    if len(rest) == n:
        return who(args, None, field, False), rest
    raise ValidationError(field, f"expected {field.upper()} and {n} more argument(s), got {len(rest)}")
