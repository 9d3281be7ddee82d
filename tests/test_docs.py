"""The README covers every command and every setting."""

from __future__ import annotations

import re

import click
from conftest import ROOT

from searchapp.cli import main


def _commands(group: click.Group, prefix: str = "searchapp") -> list[str]:
    found = []
    for name, command in sorted(group.commands.items()):
        path = f"{prefix} {name}"
        if isinstance(command, click.Group):
            found.extend(_commands(command, path))
        else:
            found.append(path)
    return found


def test_every_command_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = _commands(main)
    assert "searchapp sources add" in commands and "searchapp refresh" in commands
    assert [c for c in commands if f"`{c}" not in readme] == []


def test_every_setting_is_in_the_readme() -> None:
    """Every SEARCHAPP_* variable the configuration reads is in the README."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    source = (ROOT / "searchapp" / "config.py").read_text(encoding="utf-8")
    variables = sorted(set(re.findall(r"\"(SEARCHAPP_[A-Z_]+)\"", source)))
    assert "SEARCHAPP_FETCH_HOST_DELAY" in variables and "SEARCHAPP_CATALOG" in variables
    assert [v for v in variables if f"`{v}`" not in readme] == []
