"""The close-words index (searchapp.engine.words) against a plain scan."""

from __future__ import annotations

import random

import pytest

from searchapp.engine.words import CloseWords, edit_distance


@pytest.mark.parametrize(("a", "b", "edits"), [
    ("word", "word", 0), ("word", "wrod", 1), ("guerrini", "guerini", 1),
    ("woman", "women", 1), ("teh", "the", 1), ("ca", "abc", 3), ("", "ab", 2),
    ("kitten", "sitting", 3), ("café", "cafe", 1),
])
def test_edit_distance(a: str, b: str, edits: int) -> None:
    assert edit_distance(a, b) == edits == edit_distance(b, a)


def test_edit_distance_stops_early_past_a_limit() -> None:
    assert edit_distance("abcdefgh", "zzzzzzzz", 2) > 2
    assert edit_distance("abc", "abcdef", 1) > 1


def test_the_index_finds_what_a_scan_finds() -> None:
    rng = random.Random(12)
    letters = "abcdeéz’"
    vocabulary = {"".join(rng.choice(letters) for _ in range(rng.randint(3, 10)))
                  for _ in range(3000)}
    index = CloseWords(vocabulary)
    assert len(index) == len(vocabulary)
    for _ in range(200):
        word = rng.choice(sorted(vocabulary))
        if rng.random() < 0.7:  # most of the time, a word not in the vocabulary
            at = rng.randrange(1, len(word))
            word = word[:at] + rng.choice(letters) + word[at + 1:]
        for distance in (1, 2):
            expected = sorted((w, edit_distance(word, w)) for w in vocabulary
                              if w[0] == word[0] and edit_distance(word, w) <= distance)
            assert sorted(index.near(word, distance=distance)) == expected


def test_a_segment_in_memory_is_searched_and_the_slow_way_is_counted(
        caplog: pytest.LogCaptureFixture) -> None:
    from whoosh.filedb.filestore import RamStorage

    from searchapp.engine import FALLBACKS
    from searchapp.engine.plain import WhooshSnapshot
    from searchapp.models import build_item
    from searchapp.schema import schema, to_document

    ix = RamStorage().create_index(schema())
    with ix.writer() as writer:
        writer.add_document(**to_document(build_item(
            {"id": "1", "title": "Giuseppe Guerini elected"}, organisation="Test")))
    snapshot = WhooshSnapshot(ix.searcher())
    before = FALLBACKS.snapshot().get("close words: segment without a path, index not kept", 0)
    try:
        found = list(snapshot.vocabulary().near("title", "guerrini", distance=1, prefix=1))
    finally:
        snapshot.close()
    assert found == ["guerini"]
    after = FALLBACKS.snapshot()["close words: segment without a path, index not kept"]
    assert after == before + 1
    assert "its word index is built for each mistyped word" in caplog.text
