"""``xstilts --help``: every command once, in its group, on one line."""

from __future__ import annotations

import argparse
from collections import Counter

import pytest

from xstilts.cli import GROUPS, build_parser, main


def _commands(parser: argparse.ArgumentParser) -> set[str]:
    (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return set(sub.choices)


def test_every_command_is_in_exactly_one_group():
    listed = Counter(name for names in GROUPS.values() for name in names)
    assert {name for name, n in listed.items() if n > 1} == set()
    assert set(listed) == _commands(build_parser())


def test_help_lists_the_groups_in_order_one_line_a_command(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    headings = [line.strip().rstrip(":") for line in lines if line.startswith("  ") and line.strip().endswith(":")]
    assert headings == list(GROUPS)
    for group, names in GROUPS.items():
        start = lines.index(f"  {group}:")
        shown = [line.split()[0] for line in lines[start + 1 : start + 1 + len(names)]]
        assert shown == list(names)  # each command on the line after the previous one: no wrapped help
    assert all(len(line) <= 100 for line in lines)
