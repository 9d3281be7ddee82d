"""The README covers every command and every setting."""

from __future__ import annotations

import re
import shlex

import click
import pytest
from conftest import ROOT, Cli

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


def test_the_readmes_import_examples_run_from_a_fresh_clone(
        cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every `searchapp import` example reads files the checkout has, and imports them."""
    monkeypatch.chdir(ROOT)
    readme = (ROOT / "README.md").read_text(encoding="utf-8").replace("\\\n", " ")
    examples = [shlex.split(line.split("#")[0])[1:]
                for line in re.findall(r"^\s*\.venv/bin/searchapp import .*$", readme, re.MULTILINE)]
    assert len(examples) >= 5 and ["import", "data/examples/legacoop.html"] == examples[-1][:2]
    for args in examples:
        result = cli(*args)
        assert result.exit_code == 0, (args, result.output)
        assert re.match(r"imported: [1-9]\d* added|imported: 0 added, 0 updated, 35 unchanged",
                        result.stdout), (args, result.stdout)
