from __future__ import annotations

import json
from pathlib import Path

from conftest import SAMPLES, Cli


def test_import_reports_and_is_idempotent(cli: Cli) -> None:
    first = cli("import", SAMPLES)
    assert first.exit_code == 0
    assert "35 added, 0 updated, 0 unchanged" in first.stdout
    again = cli("import", SAMPLES)
    assert "0 added, 0 updated, 35 unchanged" in again.stdout
    stats = json.loads(cli("stats", "--json").stdout)
    assert stats["items"] == 35 and stats["index_documents"] == 35
    assert dict(map(tuple, stats["by"]["organisation"])) == {"CECOP": 25, "ILO": 10}


def test_import_if_empty_does_nothing_the_second_time(cli: Cli) -> None:
    assert "35 added" in cli("import", SAMPLES, "--if-empty").stdout
    assert "nothing imported" in cli("import", SAMPLES, "--if-empty").stdout


def test_bad_file_is_rejected_with_file_and_line_and_nothing_written(cli: Cli,
                                                                     tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    good.write_text('{"id": "g", "title": "Good"}\n')
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "1", "title": "Fine"}\n{"id": "2", "title": ""}\n{not json\n')
    result = cli("import", good, bad, "--org", "ILO")
    assert result.exit_code == 1
    assert f"{bad}:2: title is missing or blank" in result.stderr
    assert f"{bad}:3: invalid JSON" in result.stderr
    assert "nothing was written" in result.stderr
    assert "Traceback" not in result.output
    assert json.loads(cli("stats", "--json").stdout)["items"] == 0


def test_a_missing_file_or_an_empty_folder_is_refused_not_imported_as_nothing(
        cli: Cli, tmp_path: Path) -> None:
    # A mistyped path in a nightly import must fail, not report "0 added" and exit 0.
    good = tmp_path / "good.jsonl"
    good.write_text('{"id": "g", "title": "Good"}\n')
    empty = tmp_path / "empty"
    empty.mkdir()
    for given, message in ((tmp_path / "nope.jsonl", "no such file or directory"),
                           (empty, "directory has no manifest.toml and no file to import")):
        result = cli("import", good, given, "--org", "ILO")
        assert result.exit_code == 1, result.output
        assert f"{given}:1: {message}" in result.stderr
        assert "nothing was written" in result.stderr
        assert json.loads(cli("stats", "--json").stdout)["items"] == 0


def test_skip_invalid_imports_the_rest_and_lists_what_it_skipped(cli: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "mixed.csv"
    bad.write_text("id,title,date\n1,Fine,2017-01-02\n2,Impossible,2017-02-30\n")
    result = cli("import", bad, "--org", "ILO", "--skip-invalid")
    assert result.exit_code == 0
    assert "1 added" in result.stdout and "1 skipped" in result.stdout
    assert f"skipped {bad}:3:" in result.stderr


def test_search_prints_hits_and_facets(cli: Cli) -> None:
    cli("import", SAMPLES)
    out = cli("search", "elections").stdout
    assert out.startswith("3 items (sorted by relevance)")
    assert "1. Elections: Giuseppe Guerini new President of CECOP" in out
    assert "organisation: CECOP (2), ILO (1)" in out
    filtered = cli("search", "cooperatives", "--org", "ILO", "--year", "2017", "--limit", "2")
    assert "*ILO" in filtered.stdout and "*2017" in filtered.stdout


def test_a_misspelt_organisation_is_named_with_the_closest_known_one(cli: Cli) -> None:
    cli("import", SAMPLES)
    out = cli("search", "cooperatives", "--org", "CECPO").stdout
    assert out.startswith("0 items")
    assert "\nno item has the organisation 'CECPO'; did you mean 'CECOP'?\n" in out
    out = cli("search", "cooperatives", "--org", "NoSuchOrg", "--type", "Newz").stdout
    assert "\nno item has the organisation 'NoSuchOrg'\n" in out
    assert "\nno item has the type 'Newz'; did you mean 'News'?\n" in out
    assert "no item has the" not in cli("search", "cooperatives", "--org", "ilo").stdout


def test_search_json_is_the_api_shape(cli: Cli) -> None:
    cli("import", SAMPLES)
    data = json.loads(cli("search", "refugees", "--json").stdout)
    assert set(data) == {"query", "total", "page", "per_page", "sort", "match", "filters",
                         "dates", "hits", "facets", "facet_size", "facets_truncated",
                         "suggestion", "shortened", "any_words", "too_common", "typos",
                         "partial", "warnings", "unmatched"}
    assert data["total"] == 2 and data["hits"][0]["highlights"]["title"].count("<mark>") == 1
    assert data["shortened"] is False


def test_a_long_search_says_it_was_shortened(cli: Cli) -> None:
    cli("import", SAMPLES)
    out = cli("search", "--any", "refugees", *(f"word{k}" for k in range(100))).stdout
    assert out.startswith("2 items (sorted by relevance)")
    assert "the query is long: only its first words were searched" in out
    assert "only its first words" not in cli("search", "refugees").stdout


def test_reindex_builds_a_new_generation(cli: Cli) -> None:
    cli("import", SAMPLES)
    result = cli("reindex")
    assert result.exit_code == 0 and "rebuilt gen-000002: 35 items" in result.stdout
    assert "up to date" in cli("reindex", "--if-needed").stdout


def test_search_without_an_index_says_what_to_do(cli: Cli) -> None:
    result = cli("search", "anything")
    assert result.exit_code == 1
    assert "run `searchapp reindex`" in result.stderr


def test_bad_option_values_are_usage_errors(cli: Cli) -> None:
    result = cli("search", "x", "--sort", "random")
    assert result.exit_code == 2 and "Invalid value for '--sort'" in result.stderr
