"""Search-as-you-type (`GET /api/suggest`) answered from a word table made once per
set of segments (searchapp.engine.completion): the same completions as the scan
of the words it replaced, on every prefix of a six-language index of two
segments, made ahead by the engine's warm-up, and said so when it is not."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import app_over
from flask.testing import FlaskClient

from searchapp import operations
from searchapp.analysis import fold
from searchapp.config import Settings
from searchapp.engine import FALLBACKS, completion, open_snapshot
from searchapp.engine.completion import MAX_SCAN, WordCounts, scan
from searchapp.engine.plain import reserve_completion
from searchapp.fields import TEXT_FIELDS
from searchapp.indexer import IndexStore
from searchapp.service import Engine

ROOT = Path(__file__).resolve().parent.parent
TITLES = ROOT / "tests" / "data" / "language_titles.jsonl"  # 50 items in each of 6 languages
SAMPLES = ROOT / "data" / "samples"


def counted(reason: str) -> int:
    return int(FALLBACKS.snapshot().get(reason, 0))


def suggestions(client: FlaskClient, q: str) -> list[str]:
    response = client.get("/api/suggest", query_string={"q": q})
    assert response.status_code == 200
    return list(response.get_json()["suggestions"])


@pytest.fixture(scope="module")
def six_languages(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The samples, then 300 items in six languages imported on top: an index of two
    segments (a word's count is summed over both)."""
    root = tmp_path_factory.mktemp("six")
    settings = Settings.load({"catalog": root / "instance" / "catalog.sqlite3",
                              "index_dir": root / "index"}, environ={})
    operations.import_paths(settings, [SAMPLES])
    records = [{**json.loads(line), "id": f"t{n}", "organisation": "ICA",
                "date": f"2024-{n % 12 + 1:02d}-{n % 28 + 1:02d}"}
               for n, line in enumerate(TITLES.read_text(encoding="utf-8").splitlines())]
    path = root / "titles.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records),
                    encoding="utf-8")
    operations.import_paths(settings, [path])
    return settings


def prefixes_of(settings: Settings) -> list[str]:
    """Every two- and three-letter start of every word of the titles and summaries (as
    typed: accented, capitalised), four-letter starts of the non-ASCII ones, and a few
    that match nothing or go past the end."""
    words: set[str] = set()
    for line in TITLES.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        words.update(re.findall(r"\w+", record["title"] + " " + record["summary"]))
    found = {w[:n] for w in words for n in (2, 3) if len(w) >= n}
    found |= {w[:4] for w in words if len(w) >= 4 and not w.isascii()}
    found |= {"zz", "qx", "ÿÿ", "жу", "co", "Co", "CO", "coopé", "Genoss", "Ünt",
              "ze" + chr(sys.maxunicode)}
    return sorted(found)


def test_every_prefix_completes_as_the_word_scan_did(six_languages: Settings) -> None:
    ix = IndexStore(six_languages.index_dir).open_index()
    snapshot = open_snapshot(ix)
    try:
        assert len(list(snapshot.reader.leaf_readers())) == 2
        vocabulary = snapshot.vocabulary()
        prefixes = prefixes_of(six_languages)
        assert len(prefixes) > 1_000
        languages_met, differing = set(), []
        for typed in prefixes:
            prefix = fold(typed)
            # The scan's cap never binds here, so it is the old answer exactly.
            for name in TEXT_FIELDS:
                assert sum(1 for _ in vocabulary.words(name, prefix)) < MAX_SCAN
            for limit in (8, 1, 30):
                old = scan(vocabulary, TEXT_FIELDS, prefix, limit)
                if vocabulary.top_words(TEXT_FIELDS, prefix, limit) != old:
                    differing.append((typed, limit))
            if scan(vocabulary, TEXT_FIELDS, prefix, 8):
                languages_met.add(typed)
        assert differing == []
        assert len(languages_met) > 800  # most prefixes complete to something
    finally:
        snapshot.close()


def test_the_api_answers_the_scans_completions_in_six_languages(six_languages: Settings
                                                                ) -> None:
    ix = IndexStore(six_languages.index_dir).open_index()
    snapshot = open_snapshot(ix)
    vocabulary = snapshot.vocabulary()
    with app_over(six_languages) as app:
        client = app.test_client()
        for head, typed, first in [("", "genossen", "genossenschaften"),  # de
                                   ("economia ", "coop", "cooperative"),  # it (folded)
                                   ("", "coopé", "cooperatives"),  # fr, typed accented
                                   ("", "trabaj", "trabajo"),  # es
                                   ("crédito ", "cooperativ", "cooperativas"),  # pt
                                   ("social ", "wor", "worker")]:  # en
            got = suggestions(client, head + typed)
            expected = [head + w for w in scan(vocabulary, TEXT_FIELDS, fold(typed), 8)]
            assert got == expected
            assert head + first in got
        # Too short to complete, or nothing being typed: nothing.
        for q in ("", "c", "é", "social c", "social "):
            assert suggestions(client, q) == []
    snapshot.close()


def test_the_word_table_ranks_by_count_then_word_order() -> None:
    table = WordCounts({"coop": 5, "cooper": 5, "cooperative": 9, "coopérative": 1,
                        "co": 2, "coal": 5, "d": 1, "ze" + chr(sys.maxunicode): 3, "ze": 1})
    assert table.top("coo", 8) == ["cooperative", "coop", "cooper", "coopérative"]
    assert table.top("coo", 2) == ["cooperative", "coop"]  # the tie goes in word order
    assert table.top("co", 3) == ["cooperative", "coal", "coop"]
    assert table.top("co", 0) == []
    assert table.top("cp", 8) == [] and table.top("zz", 8) == [] and table.top("a", 8) == []
    assert table.top("ze" + chr(sys.maxunicode), 8) == ["ze" + chr(sys.maxunicode)]
    assert table.top("", 2) == ["cooperative", "coal"]


def test_the_warm_up_makes_the_table_before_the_first_completion(samples: Settings) -> None:
    with app_over(samples) as app:
        client = app.test_client()
        engine: Engine = app.extensions["searchapp.engine"]
        engine.warm()  # what each gunicorn worker does as it starts
        assert engine.warmed(timeout=120)
        built = counted(completion.BUILT_AT_QUERY_TIME)
        scanned = counted(completion.SCANNED_WHILE_MADE)
        first = suggestions(client, "coo")
        assert first and all(s.startswith("coo") for s in first)

        operations.rebuild(samples)  # a new generation swapped in: its segments are new
        client.get("/api/search", query_string={"q": "women"})  # opens it, starts its warm-up
        assert engine.warmed(timeout=120)
        assert suggestions(client, "coo") == first
        assert counted(completion.BUILT_AT_QUERY_TIME) == built
        assert counted(completion.SCANNED_WHILE_MADE) == scanned


def test_while_the_table_is_made_completion_scans_and_says_so(samples: Settings,
                                                                caplog: Any) -> None:
    engine = Engine(IndexStore(samples.index_dir), warm_up=False)
    probe = open_snapshot(IndexStore(samples.index_dir).open_index())
    try:
        reserved = reserve_completion(probe.reader, TEXT_FIELDS)  # as a warm-up does
        assert reserved is not None
        scanned = counted(completion.SCANNED_WHILE_MADE)
        expected = scan(probe.vocabulary(), TEXT_FIELDS, "coo", 8)
        assert engine.complete("coo") == expected and expected
        assert counted(completion.SCANNED_WHILE_MADE) == scanned + 1
        completion.release(reserved[0])  # given up: the next completion builds it

        built = counted(completion.BUILT_AT_QUERY_TIME)
        assert engine.complete("coo") == expected
        assert counted(completion.BUILT_AT_QUERY_TIME) == built + 1
        assert "word table" in caplog.text and "built at query time" in caplog.text
        assert engine.complete("social coo") == ["social " + w for w in expected]
        assert counted(completion.BUILT_AT_QUERY_TIME) == built + 1  # kept
        assert counted(completion.SCANNED_WHILE_MADE) == scanned + 1
    finally:
        probe.close()
        engine.close()
