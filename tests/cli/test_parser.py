"""The CLI builds only the parser of the command being run; it must equal the full grammar's."""

from __future__ import annotations

import argparse

import pytest

from cortex_change.cli.parser import COMMANDS, build_parser, command_word


def _choices(parser: argparse.ArgumentParser) -> set[str]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return set(action.choices)


def test_commands_list_matches_the_full_grammar() -> None:
    assert _choices(build_parser()) == set(COMMANDS)


@pytest.mark.parametrize(
    "argv",
    [
        ["create", "normal", "deployment", "T", "D", "alice", "high", "low", "--service", "a"],
        ["approve", "RFC-20260101000000-abcdef", "tech-lead", "ok", "--role", "cab"],
        ["--db", "/tmp/x.db", "list", "pending", "--limit", "5"],
        ["--db=/tmp/x.db", "metrics", "week", "--json"],
        ["integrate", "worker", "worker-001", "execute", "RFC-20260101000000-abcdef"],
        ["audit", "export", "--dir", "/tmp/out", "--all"],
        ["models", "show", "autoscale"],
        ["config", "show"],
    ],
)
def test_a_single_command_parser_parses_like_the_full_one(argv: list[str]) -> None:
    word = command_word(argv)
    assert word is not None
    assert _choices(build_parser(word)) == {word}
    assert vars(build_parser(word).parse_args(argv)) == vars(build_parser().parse_args(argv))


@pytest.mark.parametrize("argv", [["--help"], ["--db", "x", "--help"], ["nonsense"], [], ["--version"]])
def test_anything_else_gets_the_full_grammar(argv: list[str]) -> None:
    assert command_word(argv) is None
