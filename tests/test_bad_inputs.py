"""Every file in tests/data/bad is rejected with its own message; nothing is lost."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from conftest import SAMPLES, Cli
from flask.testing import FlaskClient

from searchapp import create_app
from searchapp.config import Settings

BAD = Path(__file__).parent / "data" / "bad"

EXPECTED = {
    "empty.jsonl": (1, "file is empty"),
    "binary.csv": (1, "binary file, not text"),
    "latin1.csv": (2, "not UTF-8: byte 0xE9"),
    "broken-line.jsonl": (2, "invalid JSON"),
    "invalid-fields.jsonl": (2, "title is missing or blank"),
    "no-title.csv": (1, "CSV header has no title column"),
    "unclosed-quote.csv": (2, "unclosed quote"),
    "no-items.txt": (1, "no items found in this listing page"),
}


def test_the_corpus_is_complete() -> None:
    assert sorted(p.name for p in BAD.iterdir() if p.name != "README.md") == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_cli_rejects_with_its_own_message_and_keeps_what_was_stored(cli: Cli, name: str) -> None:
    assert cli("import", SAMPLES).exit_code == 0
    before = json.loads(cli("stats", "--json").stdout)
    result = cli("import", BAD / name, "--org", "ILO")
    line, message = EXPECTED[name]
    assert result.exit_code == 1
    assert f"{BAD / name}:{line}: {message}" in result.stderr
    assert "Traceback" not in result.output
    assert json.loads(cli("stats", "--json").stdout) == before


def test_messages_differ_from_file_to_file(cli: Cli) -> None:
    messages = {cli("import", BAD / name, "--org", "ILO").stderr.split(": ", 1)[1]
                for name in EXPECTED}
    assert len(messages) == len(EXPECTED)


def test_invalid_fields_lists_every_problem(cli: Cli) -> None:
    stderr = cli("import", BAD / "invalid-fields.jsonl").stderr
    path = BAD / "invalid-fields.jsonl"
    assert f"{path}:2: title is missing or blank" in stderr
    assert f"{path}:3: date '2017-02-30' does not exist" in stderr
    assert f"{path}:4: unknown field(s) 'colour'" in stderr


def test_a_six_megabyte_line(cli: Cli, tmp_path: Path) -> None:
    big = tmp_path / "big.jsonl"
    big.write_text(json.dumps({"id": "1", "organisation": "ILO", "title": "x" * 6_000_000}))
    result = cli("import", big)
    assert result.exit_code == 1
    assert f"{big}:1: line is 6,000,047 characters long; the limit is 1,000,000" in result.stderr


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_http_upload_rejects_the_same_way(samples: Settings, name: str) -> None:
    app = create_app({"catalog": samples.catalog, "index_dir": samples.index_dir,
                      "admin_token": "t"})
    client: FlaskClient = app.test_client()
    response = client.post("/api/admin/imports?wait=60", headers={"Authorization": "Bearer t"},
                           data={"file": (io.BytesIO((BAD / name).read_bytes()), name),
                                 "organisation": "ILO"}, content_type="multipart/form-data")
    line, message = EXPECTED[name]
    job = response.get_json()
    assert response.status_code == 200 and job["state"] == "failed"
    assert job["error"]["problems"][0]["line"] == line
    assert message in job["error"]["problems"][0]["message"]
    assert client.get("/api/search").get_json()["total"] == 35
    app.extensions["searchapp.engine"].close()
