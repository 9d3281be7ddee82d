"""Settings: defaults, environment, overrides, and clear messages for bad values."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from searchapp.cli import main
from searchapp.config import Settings
from searchapp.errors import ConfigError


def test_environment_and_overrides() -> None:
    settings = Settings.load({"index_dir": "/tmp/x"}, environ={
        "SEARCHAPP_CATALOG": "c.db", "SEARCHAPP_LOCK_TIMEOUT": "2.5",
        "SEARCHAPP_MAX_UPLOAD_BYTES": " 1000 ", "SEARCHAPP_ADMIN_TOKEN": ""})
    assert settings.catalog == Path("c.db") and settings.index_dir == Path("/tmp/x")
    assert settings.lock_timeout == 2.5 and settings.max_upload_bytes == 1000
    assert settings.admin_token is None
    assert settings.feedback == "none"
    assert Settings.load(environ={"SEARCHAPP_FEEDBACK": " RM3 "}).feedback == "rm3"


@pytest.mark.parametrize(("name", "value", "message"), [
    ("SEARCHAPP_LOCK_TIMEOUT", "abc", "SEARCHAPP_LOCK_TIMEOUT: must be a number, not 'abc'"),
    ("SEARCHAPP_LOCK_TIMEOUT", "-1", "SEARCHAPP_LOCK_TIMEOUT: must be at least 0, not '-1'"),
    ("SEARCHAPP_LOCK_TIMEOUT", "nan", "SEARCHAPP_LOCK_TIMEOUT: must be at least 0, not 'nan'"),
    ("SEARCHAPP_MAX_UPLOAD_BYTES", "20MB",
     "SEARCHAPP_MAX_UPLOAD_BYTES: must be a whole number, not '20MB'"),
    ("SEARCHAPP_MAX_UPLOAD_BYTES", "0",
     "SEARCHAPP_MAX_UPLOAD_BYTES: must be at least 1, not '0'"),
    ("SEARCHAPP_FEEDBACK", "bo1", "SEARCHAPP_FEEDBACK: must be one of none, rm3, not 'bo1'"),
])
def test_a_bad_value_names_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.load(environ={name: value})
    assert str(caught.value) == message


@pytest.mark.parametrize("command", [["stats"], ["reindex"], ["serve", "--port", "1"],
                                     ["search", "x"]])
def test_commands_say_which_setting_is_wrong(tmp_path: Path, command: list[str]) -> None:
    result = CliRunner().invoke(main, command, env={
        "SEARCHAPP_CATALOG": str(tmp_path / "c.db"), "SEARCHAPP_INDEX_DIR": str(tmp_path / "ix"),
        "SEARCHAPP_LOCK_TIMEOUT": "soon"})
    assert result.exit_code == 1
    assert "Error: SEARCHAPP_LOCK_TIMEOUT: must be a number, not 'soon'" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
